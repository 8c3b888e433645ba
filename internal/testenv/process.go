package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// stopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
	stopTimeout = 15 * time.Second
	// portFreeTimeout bounds how long Restart waits for the old process's port.
	portFreeTimeout = 30 * time.Second
	// logTailLines is how much of a server's log a failed test prints.
	logTailLines = 50
)

// Process is a server running as a child process of the test binary.
// Its methods are safe for concurrent use.
type Process struct {
	name         string
	port         int
	argv         []string
	dir          string
	logPath      string
	configPath   string
	env          []string // added to the test binary's environment
	startTimeout time.Duration
	// ready reports whether the server serves; logOffset is where the log of
	// the current run begins, for servers that announce readiness there.
	ready func(ctx context.Context, p *Process, logOffset int64) error

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{} // closed when cmd has exited
	waitErr   error
	logOffset int64
}

// Pid returns the process ID of the server's current run, 0 when it is not
// running (for tools such as jcmd).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil || !p.running() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Addr returns the server's host:port on 127.0.0.1.
func (p *Process) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Port returns the server's port.
func (p *Process) Port() int { return p.port }

// URL returns the server's base HTTP URL, without a trailing slash.
func (p *Process) URL() string { return "http://" + p.Addr() }

// LogPath returns the file that holds the server's output of all its runs.
func (p *Process) LogPath() string { return p.logPath }

// Running reports whether the current run of the server has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running()
}

func (p *Process) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// newProcess prepares p to run argv with output to a log file; the log lives
// in dir unless $TESTENV_LOG_DIR says otherwise.
func newProcess(t testing.TB, name string, port int, argv []string, dir string) *Process {
	t.Helper()
	logDir := dir
	if d := os.Getenv("TESTENV_LOG_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("creating TESTENV_LOG_DIR: %v", err)
		}
		logDir = d
	}
	return &Process{
		name:    name,
		port:    port,
		argv:    argv,
		dir:     dir,
		logPath: filepath.Join(logDir, fmt.Sprintf("%s-%s-%d.log", sanitize(t.Name()), name, port)),
	}
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func sanitize(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// startAndWait starts the process and waits until it is ready. On failure the
// process is killed and the error includes the end of its log.
func (p *Process) startAndWait() error {
	if err := p.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.startTimeout)
	defer cancel()
	if err := p.waitReady(ctx); err != nil {
		p.Kill()
		return fmt.Errorf("%s on %s: %w\nlast lines of %s:\n%s", p.name, p.Addr(), err, p.logPath, p.logTail())
	}
	return nil
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running() {
		return fmt.Errorf("%s is already running", p.name)
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	fi, err := logFile.Stat()
	if err != nil {
		return err
	}
	p.logOffset = fi.Size()
	fmt.Fprintf(logFile, "### testenv: %s %s: %s\n", time.Now().Format(time.RFC3339), p.name, strings.Join(p.argv, " "))

	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: Stop and Kill signal everything the server
		// spawned, and a ^C in the terminal does not reach it twice.
		Setpgid: true,
		// The kernel kills the child when the thread that started it exits.
		// That thread is locked below and exits only with the child or with
		// the test binary, which covers panics and test timeouts.
		Pdeathsig: syscall.SIGKILL,
	}

	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		// Never unlocked on purpose: see Pdeathsig above.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		// Whatever the leader left in its group goes too. Doing it here,
		// right after the leader is reaped, and never later, avoids
		// signalling a process group id the kernel has since reused.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	p.cmd, p.done, p.waitErr = cmd, done, nil
	return nil
}

func (p *Process) waitReady(ctx context.Context) error {
	p.mu.Lock()
	done, offset := p.done, p.logOffset
	p.mu.Unlock()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-done:
			p.mu.Lock()
			err := p.waitErr
			p.mu.Unlock()
			return fmt.Errorf("exited before it was ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", p.startTimeout, lastErr)
		case <-tick.C:
		}
		if lastErr = p.ready(ctx, p, offset); lastErr == nil {
			return nil
		}
	}
}

// Stop stops the server: SIGTERM to its process group, SIGKILL if it has not
// exited after a grace period. Stopping a stopped server does nothing.
func (p *Process) Stop() {
	p.signal(syscall.SIGTERM, stopTimeout)
}

// Kill kills the server's process group with SIGKILL and waits for it to exit,
// to simulate a crash.
func (p *Process) Kill() {
	p.signal(syscall.SIGKILL, 0)
}

func (p *Process) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done, running := p.cmd, p.done, p.running()
	p.mu.Unlock()
	if !running {
		return
	}
	pgid := cmd.Process.Pid // the leader's pid, thanks to Setpgid
	_ = syscall.Kill(-pgid, sig)
	if sig != syscall.SIGKILL {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	<-done
}

// Restart starts the server again on the same port, with the same arguments
// and data directories, after stopping it if it is still running. It waits
// until the old process has released the port, then until the new one is
// ready.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	p.Stop()
	if err := waitPortFree(p.Addr(), portFreeTimeout); err != nil {
		t.Fatalf("restarting %s: %v", p.name, err)
	}
	if err := p.startAndWait(); err != nil {
		t.Fatalf("restarting %s: %v", p.name, err)
	}
}

func waitPortFree(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %s still in use after %v: %w", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logTail returns the last logTailLines lines of the log.
func (p *Process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logSince returns the log written from offset on.
func (p *Process) logSince(offset int64) ([]byte, error) {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}

// cleanup stops p when t ends and, if t failed, prints the end of p's log.
func (p *Process) cleanup(t testing.TB) {
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("last lines of %s log %s:\n%s", p.name, p.logPath, p.logTail())
		}
	})
}

// httpReady returns a readiness check that wants 200 from GET path.
func httpReady(path string) func(context.Context, *Process, int64) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context, p *Process, _ int64) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New("GET " + path + ": " + resp.Status)
		}
		return nil
	}
}
