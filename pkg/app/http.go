package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
)

// serve serves HTTP until ctx ends, then shuts the server down within
// drain's deadline. An error to listen or serve stops the bridge.
func (b *bridge) serve(ctx, drain context.Context) error {
	srv := &http.Server{Handler: b.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, b.opts.Web, b.logger) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	if err := srv.Shutdown(drain); err != nil && !errors.Is(err, http.ErrServerClosed) {
		b.logger.Warn("HTTP shutdown", "err", err)
	}
	return nil
}

func (b *bridge) routes() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	for _, s := range b.sources {
		if h, ok := s.(source.HTTP); ok {
			h.Register(r)
		}
	}
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{Registry: b.reg})))
	health := func(c *gin.Context) { c.String(http.StatusOK, "Healthy.\n") }
	r.GET("/-/healthy", health)
	r.HEAD("/-/healthy", health)
	ready := func(c *gin.Context) {
		if err := b.out.ready(); err != nil {
			c.String(http.StatusServiceUnavailable, "Not ready: %v\n", err)
			return
		}
		c.String(http.StatusOK, "Ready.\n")
	}
	r.GET("/-/ready", ready)
	r.HEAD("/-/ready", ready)
	reload := func(c *gin.Context) {
		if err := b.reload(); err != nil {
			c.String(http.StatusInternalServerError, "failed to reload config: %v\n", err)
			return
		}
		c.String(http.StatusOK, "Reloaded.\n")
	}
	r.POST("/-/reload", reload)
	r.PUT("/-/reload", reload)
	// Go's profiles, as Prometheus serves them: behind the same web config
	// (TLS, basic auth) as everything else.
	r.GET("/debug/pprof/*profile", func(c *gin.Context) {
		switch name := strings.TrimPrefix(c.Param("profile"), "/"); name {
		case "":
			pprof.Index(c.Writer, c.Request)
		case "cmdline":
			pprof.Cmdline(c.Writer, c.Request)
		case "profile":
			pprof.Profile(c.Writer, c.Request)
		case "symbol":
			pprof.Symbol(c.Writer, c.Request)
		case "trace":
			pprof.Trace(c.Writer, c.Request)
		default:
			pprof.Handler(name).ServeHTTP(c.Writer, c.Request)
		}
	})
	return r
}

func (b *bridge) registerMetrics() {
	b.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("prometheus_deephaven_bridge"),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_ready",
			Help: "1 while the bridge can write rows to Deephaven, else 0.",
		}, func() float64 {
			if b.out.ready != nil && b.out.ready() == nil {
				return 1
			}
			return 0
		}),
	)
	b.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_deephaven_bridge_config_last_reload_successful",
		Help: "Whether the last configuration reload attempt was successful.",
	})
	b.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_deephaven_bridge_config_last_reload_success_timestamp_seconds",
		Help: "Timestamp of the last successful configuration reload.",
	})
	b.reg.MustRegister(b.reloadOK, b.reloadTime)
	b.reloadOK.Set(1)
	b.reloadTime.SetToCurrentTime()
}

// checkWebhookAuth refuses a configuration that nobody could post to:
// basic auth in the web configuration file and a bearer token both required,
// while Alertmanager's http_config sends a single Authorization header.
func checkWebhookAuth(cfg *config.Config, flags *web.FlagConfig) error {
	if cfg.Alerts.BearerTokenFile == "" || flags == nil || flags.WebConfigFile == nil || *flags.WebConfigFile == "" {
		return nil
	}
	path := *flags.WebConfigFile
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--web.config.file: %w", err)
	}
	var wc web.Config
	if err := yaml.Unmarshal(data, &wc); err != nil {
		return fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	if len(wc.Users) > 0 {
		return fmt.Errorf("--web.config.file %s sets basic_auth_users and alerts.bearer_token_file is set: "+
			"a webhook request would need both a basic-auth and a bearer Authorization header, which no sender "+
			"(Alertmanager's http_config sends one) can do; keep one of the two", path)
	}
	return nil
}
