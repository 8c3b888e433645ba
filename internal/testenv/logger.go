package testenv

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// Logger returns a debug-level logger that writes to t's log, for code under
// test that takes a *slog.Logger. Lines logged after t and its cleanups have
// finished, e.g. by goroutines that outlive the test, are dropped instead of
// making the testing package panic.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

// close runs as a cleanup registered when the logger was made, so cleanups
// registered later (stopping the code under test) still log.
func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}
