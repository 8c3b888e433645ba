package alerts

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
)

var (
	_ source.Source   = (*Handler)(nil)
	_ source.Reloader = (*Handler)(nil)
	_ source.HTTP     = (*Handler)(nil)
)

// Name identifies the webhook source.
func (h *Handler) Name() string { return "webhook" }

// Run does nothing but wait: the webhook works through its HTTP routes.
// Requests answered after Run returned still write through the sink, which
// stops after the sources.
func (h *Handler) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Reload prepares the alerts section and the configured queries' join
// labels of cfg (reading the bearer token file); the Resolver stays.
func (h *Handler) Reload(cfg *config.Config) (func(), error) {
	opts, err := OptionsFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	return func() {
		opts.Resolver = h.opts.Load().Resolver
		h.SetOptions(opts)
	}, nil
}

// OptionsFromConfig returns the handler options of cfg, reading the bearer
// token file.
func OptionsFromConfig(cfg *config.Config) (Options, error) {
	a := cfg.Alerts
	o := Options{
		QueryLabel:          a.QueryLabel,
		SeverityLabel:       a.SeverityLabel,
		MaxBodyBytes:        a.MaxBodyBytes,
		MaxAlertsPerRequest: a.MaxAlertsPerRequest,
		MaxConcurrent:       a.MaxConcurrentRequests,
		RequestTimeout:      time.Duration(a.RequestTimeout),
		DedupCapacity:       a.DedupCacheSize,
		JoinLabels:          make(map[string][]string, len(cfg.Queries)),
	}
	for _, q := range cfg.Queries {
		o.JoinLabels[q.Name] = q.JoinLabels
	}
	if a.BearerTokenFile != "" {
		tok, err := os.ReadFile(a.BearerTokenFile)
		if err != nil {
			return o, fmt.Errorf("alerts.bearer_token_file: %w", err)
		}
		o.BearerToken = strings.TrimSpace(string(tok))
		if o.BearerToken == "" {
			return o, fmt.Errorf("alerts.bearer_token_file: %s is empty", a.BearerTokenFile)
		}
	}
	return o, nil
}
