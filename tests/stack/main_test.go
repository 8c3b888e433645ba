// Package stack tests the demo stack as a user meets it: docker-compose.yml
// and the configuration files it mounts, ./start.sh without Docker, and the
// Deephaven web UI showing the app.d tables and figures in a browser.
//
// The tests start real processes (a Deephaven JVM each for the start.sh and
// browser tests), so they take a few minutes. Missing tools make a test skip,
// unless $CI is "true": then they are a failure.
package stack

import (
	"os/exec"
	"testing"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// lookPath returns the path of the first of names found on $PATH, or reports
// the tool as missing.
func lookPath(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	testenv.Missing(t, "%v not found on $PATH", names)
	return ""
}
