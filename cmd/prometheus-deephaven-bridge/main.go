// Command prometheus-deephaven-bridge receives Alertmanager webhooks and
// polls PromQL queries, and writes both as live tables into Deephaven.
// main only wires flags, logging and signals; the daemon is pkg/app.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/app"
)

const name = "prometheus-deephaven-bridge"

func main() { os.Exit(run()) }

func run() int {
	a := kingpin.New(name, "Writes Alertmanager alerts and Prometheus query results into live Deephaven tables.")
	configFile := a.Flag("config.file", "Bridge configuration file.").Default("bridge.yml").String()
	configCheck := a.Flag("config.check", "Validate the configuration file and exit.").Bool()
	shutdownTimeout := a.Flag("shutdown.timeout", "How long to flush held rows at shutdown.").Default("10s").Duration()
	webConfig := kingpinflag.AddFlags(a, ":5000")
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(a, logConfig)
	a.Version(version.Print(name))
	a.HelpFlag.Short('h')
	kingpin.MustParse(a.Parse(os.Args[1:]))

	logger := promslog.New(logConfig)

	if *configCheck {
		if err := app.CheckConfig(*configFile, webConfig, os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stdout, "%s: configuration is valid\n", *configFile)
		return 0
	}
	logger.Info("Starting "+name, "version", version.Info(), "config", *configFile)
	logger.Info("Build context", "build_context", version.BuildContext())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload := make(chan chan error, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			select {
			case reload <- nil: // bursts coalesce
			default:
			}
		}
	}()

	err := app.Run(ctx, app.Options{
		ConfigFile:      *configFile,
		Web:             webConfig,
		Logger:          logger,
		Reload:          reload,
		ShutdownTimeout: *shutdownTimeout,
	})
	if err != nil {
		logger.Error("Bridge stopped with an error", "err", err)
		return 1
	}
	return 0
}
