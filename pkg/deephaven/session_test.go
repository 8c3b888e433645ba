package deephaven_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

func waitState(t *testing.T, c *deephaven.Client, want deephaven.State, within time.Duration) deephaven.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := c.Status()
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %v (last error %v) after %v, want %v", st.State, st.LastError, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A server restart ends the session and every export. The client notices,
// reports Reconnecting with the error, makes a new session with backoff,
// runs the OnNewSession hooks, and rebuilds derived tables on next use.
func TestReconnectAfterServerRestart(t *testing.T) {
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{})
	c := dial(t, srv.Addr(), deephaven.WithBackoff(50*time.Millisecond, time.Second), deephaven.WithKeepAlive(500*time.Millisecond))
	ctx := ctxT(t)
	name := uniqueName("survivor")
	var hooks atomic.Int32
	c.OnNewSession(func(ctx context.Context) {
		hooks.Add(1)
		if _, err := c.CreateInputTable(ctx, name, kvSchema, "K"); err != nil {
			t.Errorf("hook: %v", err)
		}
	})
	it, err := c.CreateInputTable(ctx, name, kvSchema, "K")
	if err != nil {
		t.Fatal(err)
	}
	r := kv([]string{"a", "b"}, []float64{1, 2}, []int64{1, 2})
	defer r.Release()
	if err := it.Add(ctx, r); err != nil {
		t.Fatal(err)
	}
	filtered, err := it.Table().Where(ctx, `K == "b"`)
	if err != nil {
		t.Fatal(err)
	}
	imported, err := c.Import(ctx, kvSchema, r)
	if err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	st := waitState(t, c, deephaven.Reconnecting, 30*time.Second)
	if st.LastError == nil {
		t.Errorf("reconnecting without a last error")
	}
	if err := it.Add(ctx, r); !deephaven.Retryable(err) {
		t.Errorf("add while the server is down: %v, want a retryable error", err)
	}
	srv.Restart(t)
	st = waitState(t, c, deephaven.Connected, 2*time.Minute)
	if st.Session < 2 {
		t.Errorf("session count %d after a server restart, want >= 2", st.Session)
	}
	if hooks.Load() == 0 {
		t.Errorf("OnNewSession hook did not run")
	}
	// The input table (re-created by the hook) takes rows again; the
	// derived table is rebuilt in the new session.
	if err := it.Add(ctx, r); err != nil {
		t.Fatalf("add after reconnect: %v", err)
	}
	if _, cols := snapshot(t, c, filtered); !reflect.DeepEqual(cols["V"], []any{2.0}) {
		t.Errorf("rebuilt where = %v, want [2]", cols["V"])
	}
	if _, err := c.Snapshot(ctx, imported); !errors.Is(err, deephaven.ErrStale) {
		t.Errorf("snapshot of an upload from the old session: %v, want ErrStale", err)
	}
}

// With a short server session lifetime, the keep-alive refreshes the token
// in time and the session outlives several lifetimes.
func TestSessionOutlivesTokenLifetime(t *testing.T) {
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{JVMArgs: []string{"-Dhttp.session.durationMs=10000"}})
	c := dial(t, srv.Addr())
	ctx := ctxT(t)
	cfg, err := c.ServerConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["http.session.durationMs"] != "10000" {
		t.Fatalf("server session lifetime %q, want 10000", cfg["http.session.durationMs"])
	}
	r := kv([]string{"a"}, []float64{1}, []int64{1})
	defer r.Release()
	tb, err := c.Import(ctx, kvSchema, r)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(32 * time.Second) // more than three lifetimes, with no calls of ours
	if st := c.Status(); st.Session != 1 || st.State != deephaven.Connected {
		t.Fatalf("status %+v, want the first session still connected", st)
	}
	// The export of the first session is still there: the session never lapsed.
	if _, err := c.Snapshot(ctx, tb); err != nil {
		t.Fatalf("snapshot after 32s: %v", err)
	}
}

// Every append uploads into a temporary export; all of them are released.
func TestAppendsReleaseTheirExports(t *testing.T) {
	c := shared(t)
	ctx := ctxT(t)
	it, err := c.CreateInputTable(ctx, uniqueName("leak"), kvSchema)
	if err != nil {
		t.Fatal(err)
	}
	r := kv([]string{"a"}, []float64{1}, []int64{1})
	defer r.Release()
	appends := 100_000
	if s := os.Getenv("DH_LEAK_APPENDS"); s != "" {
		appends, _ = strconv.Atoi(s)
	}
	count := func(after int) int {
		if err := c.WaitReleases(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := deephaven.LiveExports(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("live exports after %d appends: %d", after, n)
		return n
	}
	addN := func(n int) {
		// Several goroutines, as the bridge's batchers would.
		const workers = 32
		errc := make(chan error, workers)
		for w := 0; w < workers; w++ {
			go func(w int) {
				for i := w; i < n; i += workers {
					if err := it.Add(ctx, r); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}(w)
		}
		for w := 0; w < workers; w++ {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
	addN(10)
	after10 := count(10)
	start := time.Now()
	addN(appends - 10)
	t.Logf("%d single-row appends in %v (%.0f/s)", appends-10, time.Since(start), float64(appends-10)/time.Since(start).Seconds())
	if got := count(appends); got > after10 {
		t.Fatalf("server holds %d exports for our session after %d appends, %d after 10", got, appends, after10)
	}
	tb, err := it.Table().Tail(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Size() != 1 {
		t.Errorf("tail size %d", tb.Size())
	}
	if cnt, err := c.OpenTable(ctx, it.Name()); err != nil || cnt.Size() != int64(appends) {
		t.Errorf("input table holds %d rows, want %d (err %v)", cnt.Size(), appends, err)
	}
}
