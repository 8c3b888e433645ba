package remotewrite

import (
	"context"
	"fmt"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
)

var (
	_ source.Source   = (*Handler)(nil)
	_ source.Reloader = (*Handler)(nil)
	_ source.HTTP     = (*Handler)(nil)
)

// Name identifies the remote write receiver.
func (h *Handler) Name() string { return "remote_write" }

// Run does nothing but wait: the receiver works through its HTTP route.
// Requests answered after Run returned still write through the sink, which
// stops after the sources.
func (h *Handler) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Reload prepares the remote_write section of cfg: enabled, match and
// max_body_bytes all apply to the next request.
func (h *Handler) Reload(cfg *config.Config) (func(), error) {
	opts, err := OptionsFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	return func() { h.SetOptions(opts) }, nil
}

// OptionsFromConfig returns the handler options of cfg.
func OptionsFromConfig(cfg *config.Config) (Options, error) {
	rw := cfg.RemoteWrite
	o := Options{Disabled: !rw.Enabled, MaxBodyBytes: rw.MaxBodyBytes}
	for i, sel := range rw.Match {
		ms, err := config.ParseSelector(sel)
		if err != nil {
			// config.Load has checked them; this is for hand-made configs.
			return o, fmt.Errorf("remote_write.match[%d]: %w", i, err)
		}
		o.Match = append(o.Match, ms)
	}
	return o, nil
}
