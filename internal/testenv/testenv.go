// Package testenv starts the real servers the bridge talks to — Deephaven,
// Prometheus and Alertmanager — as child processes for integration tests.
//
// Every server listens on a free loopback port and is stopped when the test
// that started it ends, whether it passed or not: children run in their own
// process group, which Stop and Kill signal as a whole, and they are started
// with a parent-death signal so that even a test binary that panics or times
// out leaves nothing behind. Server output goes to a log file in the test's
// temporary directory (or in $TESTENV_LOG_DIR, where it is kept); the last
// lines are printed when the test fails.
//
// Missing binaries or a missing Python virtualenv make the test skip, telling
// to run ./test.sh, unless $CI is "true": then they are a failure, so that CI
// cannot silently skip the integration tests.
//
// Environment variables:
//
//	DH_ADDR              address of a running Deephaven server for Deephaven(t)
//	DH_PYTHON            Python with deephaven-server (default <repo>/.venv/bin/python)
//	PROMETHEUS_BIN       Prometheus binary (default: prometheus on $PATH)
//	ALERTMANAGER_BIN     Alertmanager binary (default: prometheus-alertmanager or alertmanager on $PATH)
//	NODE_EXPORTER_BIN    node exporter binary (default: prometheus-node-exporter or node_exporter on $PATH)
//	TESTENV_LOG_DIR      keep server logs in this directory
//	CI                   "true" turns skips for missing tools into failures
package testenv

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// The port is released before it is returned, so another process may take it
// first; the servers started here then fail to start with a clear error
// rather than talk to the wrong process.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	return port
}

// freePort picks a port below the kernel's ephemeral range, where the
// local ends of outgoing connections never land. A server restarted on its
// port (Deephaven's and Kafka's outage tests) once found it taken while it
// was down: a port the kernel hands out for port 0 is one it also hands to
// any connection's local end.
func freePort() (int, error) {
	lo, hi := freePortRange()
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	// A crowded range: let the kernel choose.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePortRange is where freePort looks: from 20000 (above the usual
// servers' ports: 9090, 9093, 10000, ...) to the first ephemeral port.
func freePortRange() (lo, hi int) {
	lo, hi = 20000, 32768 // Linux's default ephemeral range starts at 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if first, err := strconv.Atoi(f[0]); err == nil && first > lo+1000 {
				hi = first
			}
		}
	}
	return lo, hi
}

var (
	repoRootOnce sync.Once
	repoRoot     string
	repoRootErr  error
)

// RepoRoot returns the directory holding the module's go.mod, found by walking
// up from the working directory (go test runs in the package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	repoRootOnce.Do(func() { repoRoot, repoRootErr = findRepoRoot() })
	if repoRootErr != nil {
		t.Fatalf("finding the repository root: %v", repoRootErr)
	}
	return repoRoot
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// RepoFile returns the contents of a file given relative to RepoRoot.
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), rel))
	if err != nil {
		t.Fatalf("reading %s: %v", rel, err)
	}
	return string(b)
}

// Render executes tmpl as a text/template with data, for configuration files
// whose addresses are only known at run time. Missing keys are an error.
// Don't render files that use {{ }} themselves, such as alerting rules with
// templated annotations.
func Render(t testing.TB, tmpl string, data any) string {
	t.Helper()
	tm, err := template.New("config").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		t.Fatalf("parsing template: %v", err)
	}
	var buf bytes.Buffer
	if err := tm.Execute(&buf, data); err != nil {
		t.Fatalf("rendering template: %v", err)
	}
	return buf.String()
}

// Replace returns s with each old string of the old, new pairs replaced by its
// new string. It fails the test if an old string does not occur in s, so that
// a test notices when a checked-in configuration file no longer has the
// address it expects to replace.
func Replace(t testing.TB, s string, oldnew ...string) string {
	t.Helper()
	if len(oldnew)%2 != 0 {
		t.Fatalf("testenv.Replace: odd number of arguments")
	}
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(s, oldnew[i]) {
			t.Fatalf("testenv.Replace: %q not found", oldnew[i])
		}
	}
	return strings.NewReplacer(oldnew...).Replace(s)
}

// Missing reports a tool the test environment lacks: a failure in CI, where
// the environment is supposed to be complete, a skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this is an error)", msg)
	}
	t.Skipf("%s; run ./test.sh to set up the test environment", msg)
}

// Python returns the Python interpreter that has deephaven-server and
// pydeephaven installed: $DH_PYTHON or the repository's .venv.
func Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv("DH_PYTHON")
	if py == "" {
		py = filepath.Join(RepoRoot(t), ".venv", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		Missing(t, "Python with deephaven-server not found at %s (set DH_PYTHON)", py)
	}
	return py
}
