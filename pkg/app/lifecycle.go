package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// stage is one part of the running bridge: the Deephaven connection, a
// sink, a source, the HTTP server. run works until its context ends and
// then returns nil, or returns an error that stops the whole bridge.
type stage struct {
	name string
	run  func(ctx context.Context) error
}

// lifecycle runs stages and stops them in order. Stages start in the order
// they were added, downstream first: the Deephaven connection, the sinks,
// the sources, the HTTP server. They stop in reverse: a stage's context is
// cancelled only after every stage added after it has returned, so rows a
// source already took still flow into sinks that are running. The whole
// stop is bounded by the shutdown timeout: when it has passed, drain()'s
// context ends and stages still finishing their last work give up.
type lifecycle struct {
	stages []stage
	logger *slog.Logger

	drainCtx    context.Context
	drainCancel context.CancelFunc
}

func newLifecycle(logger *slog.Logger) *lifecycle {
	l := &lifecycle{logger: logger}
	l.drainCtx, l.drainCancel = context.WithCancel(context.Background())
	return l
}

func (l *lifecycle) add(name string, run func(ctx context.Context) error) {
	l.stages = append(l.stages, stage{name: name, run: run})
}

// drain returns the context for the last work of a stopping stage (a final
// upload, a journal flush): it ends once the shutdown timeout has passed.
func (l *lifecycle) drain() context.Context { return l.drainCtx }

// run starts every stage and waits until ctx ends or a stage fails, then
// stops them in reverse order within timeout. It returns the first stage's
// error, or nil after a normal stop.
func (l *lifecycle) run(ctx context.Context, timeout time.Duration) error {
	defer l.drainCancel()
	failed := make(chan error, len(l.stages))
	cancels := make([]context.CancelFunc, len(l.stages))
	done := make([]chan struct{}, len(l.stages))
	for i, s := range l.stages {
		sctx, cancel := context.WithCancel(context.Background())
		cancels[i], done[i] = cancel, make(chan struct{})
		go func() {
			defer close(done[i])
			// A stage with nothing to do may return nil at once; only
			// an error before it was told to stop ends the bridge.
			if err := s.run(sctx); err != nil && sctx.Err() == nil {
				failed <- fmt.Errorf("%s: %w", s.name, err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
		l.logger.Error("A part of the bridge failed; stopping", "err", runErr)
	}
	l.logger.Info("Shutting down")
	timer := time.AfterFunc(timeout, l.drainCancel)
	defer timer.Stop()
	for i := len(l.stages) - 1; i >= 0; i-- {
		cancels[i]()
		<-done[i]
	}
	return runErr
}
