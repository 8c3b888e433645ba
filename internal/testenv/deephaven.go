package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// deephavenStartTimeout is generous: the server is a JVM, which takes 10-30 s
// to start on an idle machine and more when tests run in parallel.
const deephavenStartTimeout = 3 * time.Minute

// DeephavenOptions configures a dedicated Deephaven server.
type DeephavenOptions struct {
	// AppDir is an application-mode directory such as "app.d". A relative
	// path is taken relative to RepoRoot. Empty starts the server without one.
	AppDir string
	// PSK enables pre-shared-key authentication with this key instead of
	// anonymous authentication.
	PSK string
	// Heap is the JVM's maximum heap, e.g. "1g"; empty uses the start
	// script's default.
	Heap string
	// GC is the garbage collector (run_deephaven.py --gc: "zgc" or "g1");
	// empty uses the start script's default.
	GC string
	// Port is the port to listen on; 0 picks a free one.
	Port int
	// JVMArgs are extra JVM options, typically -Dproperty=value settings
	// such as -Dhttp.session.durationMs=6000. They reach the embedded JVM
	// through JAVA_TOOL_OPTIONS, so they must not contain whitespace.
	JVMArgs []string
	// TLSCertFile and TLSKeyFile (PEM certificate chain and PKCS#8 key)
	// make the server speak TLS only.
	TLSCertFile, TLSKeyFile string
	// Env adds NAME=value settings to the server's environment (app.d
	// reads its configuration from there).
	Env []string
}

// StartDeephaven starts a Deephaven server for t alone and waits until it
// serves. Use it for tests that kill or restart the server or need PSK
// authentication or app.d; other tests should share one server through
// Deephaven. The server is stopped when t ends.
func StartDeephaven(t testing.TB, opts DeephavenOptions) *Process {
	t.Helper()
	p, err := newDeephaven(t, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	p.cleanup(t)
	if err := p.startAndWait(); err != nil {
		t.Fatal(err)
	}
	return p
}

// newDeephaven prepares a Deephaven process that keeps its data and log in dir.
// t is only used to find tools and name the log; the process does not depend
// on t's lifetime.
func newDeephaven(t testing.TB, dir string, opts DeephavenOptions) (*Process, error) {
	t.Helper()
	py := Python(t)
	script := filepath.Join(RepoRoot(t), "scripts", "run_deephaven.py")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("Deephaven start script: %w", err)
	}
	port := opts.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	argv := []string{
		py, "-u", script,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--data-dir", filepath.Join(dir, "deephaven-data"),
	}
	if opts.AppDir != "" {
		appDir := opts.AppDir
		if !filepath.IsAbs(appDir) {
			appDir = filepath.Join(RepoRoot(t), appDir)
		}
		argv = append(argv, "--app-dir", appDir)
	}
	if opts.Heap != "" {
		argv = append(argv, "--heap", opts.Heap)
	}
	if opts.GC != "" {
		argv = append(argv, "--gc", opts.GC)
	}
	if opts.PSK != "" {
		// A file rather than an argument keeps the key out of ps output.
		pskFile := filepath.Join(dir, "deephaven.psk")
		if err := os.WriteFile(pskFile, []byte(opts.PSK), 0o600); err != nil {
			return nil, err
		}
		argv = append(argv, "--psk-file", pskFile)
	}
	p := newProcess(t, "deephaven", port, argv, dir)
	p.ready = deephavenReady
	if opts.TLSCertFile != "" {
		opts.JVMArgs = append(opts.JVMArgs, "-Dssl.identity.type=privatekey",
			"-Dssl.identity.certChainPath="+opts.TLSCertFile, "-Dssl.identity.privateKeyPath="+opts.TLSKeyFile)
		// The plain-HTTP probe of the IDE cannot reach a TLS-only server;
		// the start script's line comes after the server listens.
		p.ready = deephavenAnnounced
	}
	if len(opts.JVMArgs) > 0 {
		// The start script has no option for arbitrary JVM arguments, but
		// every JVM, also one created through JNI as here, reads
		// JAVA_TOOL_OPTIONS.
		for _, a := range opts.JVMArgs {
			if strings.ContainsAny(a, " \t\n\"'") {
				return nil, fmt.Errorf("JVM argument %q: whitespace and quotes are not supported", a)
			}
		}
		tool := strings.Join(opts.JVMArgs, " ")
		if prev := os.Getenv("JAVA_TOOL_OPTIONS"); prev != "" {
			tool = prev + " " + tool
		}
		p.env = []string{"JAVA_TOOL_OPTIONS=" + tool}
	}
	p.env = append(p.env, opts.Env...)
	p.startTimeout = deephavenStartTimeout
	return p, nil
}

var (
	readyLine = []byte("DEEPHAVEN READY ")
	ideReady  = httpReady("/ide/")
)

// deephavenReady waits for the start script's announcement, which comes after
// the app.d scripts ran, and then for the web server to answer.
func deephavenReady(ctx context.Context, p *Process, logOffset int64) error {
	out, err := p.logSince(logOffset)
	if err != nil {
		return err
	}
	if !bytes.Contains(out, readyLine) {
		return errors.New("no DEEPHAVEN READY line yet")
	}
	return ideReady(ctx, p, logOffset)
}

// deephavenAnnounced waits only for the start script's announcement.
func deephavenAnnounced(ctx context.Context, p *Process, logOffset int64) error {
	out, err := p.logSince(logOffset)
	if err != nil {
		return err
	}
	if !bytes.Contains(out, readyLine) {
		return errors.New("no DEEPHAVEN READY line yet")
	}
	return nil
}

// The shared server of this test binary, started by the first Deephaven call.
var (
	mainUsed   atomic.Bool
	sharedOnce sync.Once
	shared     *Process
	sharedErr  error
	sharedDir  string
)

// Deephaven returns the address of the Deephaven server shared by the tests of
// this test binary: $DH_ADDR if set, else a server started on first use
// (anonymous authentication, no app.d). Tests must not stop it or rely on it
// being empty; give tables unique names.
//
// A server started here outlives the test that started it, so the package
// must stop it by calling Main from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Deephaven(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv("DH_ADDR"); addr != "" {
		return addr
	}
	if !mainUsed.Load() {
		t.Fatal("testenv.Deephaven needs TestMain to call testenv.Main (or DH_ADDR to be set)")
	}
	// Checked here, not inside the Once: a skip or failure there would end
	// the Once without a server or an error for later callers.
	Python(t)
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "testenv-deephaven-")
		if sharedErr != nil {
			return
		}
		shared, sharedErr = newDeephaven(t, sharedDir, DeephavenOptions{})
		if sharedErr != nil {
			return
		}
		sharedErr = shared.startAndWait()
	})
	if sharedErr == nil && shared == nil {
		sharedErr = errors.New("an earlier attempt to start it was interrupted")
	}
	if sharedErr != nil {
		t.Fatalf("shared Deephaven server: %v", sharedErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the shared Deephaven log %s:\n%s", shared.logPath, shared.logTail())
		}
	})
	return shared.Addr()
}

// Main runs the tests and then stops the shared Deephaven server, if one was
// started, then runs cleanup. Call it from TestMain in every package that
// uses Deephaven.
func Main(m *testing.M, cleanup ...func()) {
	mainUsed.Store(true)
	code := m.Run()
	for _, f := range cleanup {
		f()
	}
	if shared != nil {
		shared.Stop()
	}
	if sharedDir != "" && os.Getenv("TESTENV_LOG_DIR") == "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}
