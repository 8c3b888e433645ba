package app

import (
	"context"
	"reflect"
	"strings"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
)

// reloadLoop serves reload requests from main (SIGHUP) until ctx ends.
func (b *bridge) reloadLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case done := <-b.opts.Reload:
			err := b.reload()
			if done != nil {
				done <- err
			}
		}
	}
}

// reload re-reads the configuration. Every reloadable source prepares it
// first; only when none failed do they all take it, so an invalid file keeps
// the old configuration running everywhere. Settings that need a new
// connection or new tables are reported, not applied.
func (b *bridge) reload() error {
	b.cfgMu.Lock()
	defer b.cfgMu.Unlock()
	cfg, err := LoadConfig(b.opts.ConfigFile, b.opts.Getenv)
	if err == nil {
		err = checkWebhookAuth(cfg, b.opts.Web)
	}
	var applies []func()
	for _, s := range b.sources {
		if err != nil {
			break
		}
		if r, ok := s.(source.Reloader); ok {
			var apply func()
			if apply, err = r.Reload(cfg); err == nil {
				applies = append(applies, apply)
			}
		}
	}
	if err != nil {
		b.reloadOK.Set(0)
		b.logger.Error("Reloading the configuration failed; the previous configuration stays in effect", "file", b.opts.ConfigFile, "err", err)
		return err
	}
	for _, apply := range applies {
		apply()
	}
	old := b.cfg
	var needRestart []string
	if old.Deephaven.Address != cfg.Deephaven.Address || old.Deephaven.Auth != cfg.Deephaven.Auth || old.Deephaven.TLS != cfg.Deephaven.TLS {
		needRestart = append(needRestart, "deephaven")
	}
	if old.Tables != cfg.Tables {
		needRestart = append(needRestart, "tables")
	}
	if old.Prometheus.URL != cfg.Prometheus.URL {
		needRestart = append(needRestart, "prometheus.url")
	}
	if old.Journal != cfg.Journal {
		needRestart = append(needRestart, "journal")
	}
	if old.Sink != cfg.Sink || !reflect.DeepEqual(old.Kafka, cfg.Kafka) {
		needRestart = append(needRestart, "sink, kafka")
	}
	if len(needRestart) > 0 {
		b.logger.Warn("Some changed settings take effect only after a restart", "keys", strings.Join(needRestart, ", "))
	}
	b.cfg = cfg
	b.reloadOK.Set(1)
	b.reloadTime.SetToCurrentTime()
	b.logger.Info("Configuration reloaded", "file", b.opts.ConfigFile, "queries", len(cfg.Queries))
	return nil
}
