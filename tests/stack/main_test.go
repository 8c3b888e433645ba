// Package stack tests the demo stack as a user meets it: docker-compose.yml
// and the configuration files it mounts, ./start.sh without Docker, and the
// Deephaven web UI showing the app.d tables and figures in a browser.
//
// The tests start real processes (a Deephaven JVM each for the start.sh and
// browser tests), so they take a few minutes. Missing tools make a test skip,
// unless $CI is "true": then they are a failure.
package stack

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// missing reports a tool the environment lacks: a failure in CI, which is
// supposed to have everything, a skip elsewhere (like testenv does).
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this is an error)", msg)
	}
	t.Skipf("%s; run scripts/setup.sh to install it", msg)
}

// lookPath returns the path of the first of names found on $PATH, or reports
// the tool as missing.
func lookPath(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	missing(t, "%v not found on $PATH", names)
	return ""
}
