package poller

import (
	"slices"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
)

var (
	_ source.Source   = (*Poller)(nil)
	_ source.Reloader = (*Poller)(nil)
)

// ConfigSet is the query set of the configured queries (see SetQueries).
const ConfigSet = "config"

// Name identifies the poller.
func (p *Poller) Name() string { return "poller" }

// Reload prepares the queries of cfg to be polled (the set ConfigSet);
// other sets, such as the rules', stay.
func (p *Poller) Reload(cfg *config.Config) (func(), error) {
	qs := ConfiguredQueries(cfg)
	if err := ValidateQueries(qs); err != nil {
		return nil, err
	}
	return func() { p.SetQueries(ConfigSet, qs) }, nil
}

// ConfiguredQueries returns the queries of cfg, keyed on their join labels.
func ConfiguredQueries(cfg *config.Config) []Query {
	qs := make([]Query, len(cfg.Queries))
	for i, q := range cfg.Queries {
		join := slices.Clone(q.JoinLabels)
		if join == nil {
			join = rows.DefaultJoinLabels
		}
		qs[i] = Query{
			Name: q.Name, Expr: q.Expr,
			Interval: time.Duration(q.Interval), Timeout: time.Duration(q.Timeout),
			Key: rows.KeySpec{Only: join},
		}
	}
	return qs
}
