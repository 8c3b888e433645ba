// Package source is the contract every source of rows follows: the
// Alertmanager and Grafana webhook, the PromQL poller, rule discovery,
// Alertmanager's API and remote_write. Each lives in a package of its own,
// is built from the configuration and the sink writers of the tables it
// fills (see pkg/sink), and is run by pkg/app from a list, so adding one
// never touches the others.
//
// Rows are born in a source, handed to a sink.Writer, wait there, and land
// in Deephaven (or Kafka); a source never knows which.
package source

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
)

// Source produces rows.
//
// Run produces rows until ctx ends, then returns nil; it returns early with
// an error only when the source cannot work at all, and the bridge stops
// then. Sources run concurrently; Run is called once. A source stops taking
// new work when ctx ends and returns once the rows it already handed to a
// writer are written or have failed: nothing it acknowledged to a sender is
// dropped. Sources are stopped before the sinks they write to, so those
// writes can still complete.
type Source interface {
	// Name identifies the source in logs and errors, e.g. "webhook".
	Name() string
	Run(ctx context.Context) error
}

// Reloader is a Source that takes a new configuration without a restart.
//
// Reload does all the work that can fail (reading files, validating) and
// changes nothing; it returns a function that puts cfg into effect and
// cannot fail. The bridge calls Reload on every source first and the apply
// functions only when none failed, so a bad file leaves every source as it
// was. After apply the new settings hold for new work (a request, a poll
// round). Settings that need a restart are left as they were. Reload may be
// called at any time, also before or after Run, but never concurrently with
// itself.
type Reloader interface {
	Reload(cfg *config.Config) (apply func(), err error)
}

// HTTP is a Source that receives rows in HTTP requests. Register adds its
// routes before the server starts; requests may arrive before Run is called
// and after it returned, and are answered (503 when rows cannot be taken).
type HTTP interface {
	Register(r gin.IRoutes)
}
