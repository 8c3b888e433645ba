// Package kafkasink produces the bridge's rows to Kafka topics, one topic
// per table, for Deephaven's own Kafka consumer to read (app.d/prometheus.py
// with PROMETHEUS_BRIDGE_KAFKA_BROKERS set). It is the sink of Kafka mode
// (sink.kind: kafka), an alternative to writing into Deephaven's input
// tables directly.
//
// Data flow: source → Writer.Write → franz-go producer → topic → Deephaven's
// consumer → an append table → last_by(key) → the table of the same name as
// in direct mode.
//
// Each record's value is a JSON object with the table's columns, named as
// in pkg/rows (without the Writer and Slot columns of direct mode: Kafka
// mode has no slots), and a Bridge field naming the bridge that produced
// it. Instants are RFC 3339 strings with nanoseconds and zero times null;
// NaN and the infinities are the strings "NaN", "Infinity" and "-Infinity"
// (JSON has no numbers for them; Deephaven's consumer parses the strings). The record key is what places rows of one
// alert or series on one partition, in order: the fingerprint for alerts,
// their state and notifications, the query or metric name and series key
// for metric and sample rows, the rule's identity for rules.
//
// Guarantees:
//   - Write returns nil only once the brokers acknowledged every record of
//     the write (acks from all in-sync replicas, idempotent producer), so a
//     caller that acknowledges its own sender afterwards never acknowledges
//     rows Kafka does not hold. It returns an error when any record failed or
//     the write took longer than Options.ProduceTimeout or ctx allowed; some
//     of the records may be stored nevertheless, and a retry stores them
//     again: the consumer side deduplicates by key (last_by).
//   - Writers are safe for concurrent use; records of one key from one
//     bridge keep their order.
//   - Topics are created, when missing, by Run before it reports ready;
//     until then Write fails with ErrNotReady.
//   - When Run's context ends it waits for records in flight (bounded by
//     the drain context); Close then closes the client, and writes after
//     that fail.
package kafkasink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
)

// ErrNotReady is returned by Write before the topics were prepared.
var ErrNotReady = errors.New("kafka topics are not ready yet")

// Topic names end with these suffixes after Options.TopicPrefix. With the
// default prefix "prometheus_" they are the Deephaven tables' names.
const (
	TopicAlerts        = "alerts"
	TopicMetrics       = "metrics"
	TopicSamples       = "samples"
	TopicRules         = "rules"
	TopicState         = "alert_state"
	TopicNotifications = "alert_notifications"
)

var topicSuffixes = []string{TopicAlerts, TopicMetrics, TopicSamples, TopicRules, TopicState, TopicNotifications}

// Options configure a Sink.
type Options struct {
	Brokers     []string
	ClientID    string
	TopicPrefix string
	// ProduceTimeout bounds one Write (default 10s).
	ProduceTimeout time.Duration
	// Partitions and ReplicationFactor are for topics the sink creates
	// (defaults 4 and the broker's default).
	Partitions        int32
	ReplicationFactor int16
	// Bridge names this bridge in every record (the Bridge field).
	Bridge string
}

// Sink is a Kafka producer with a Writer per table.
type Sink struct {
	opts   Options
	client *kgo.Client
	logger *slog.Logger

	ready    chan struct{} // closed once the topics exist
	isReady  atomic.Bool
	lastErr  atomic.Pointer[error] // the last Write's failure, nil after a success
	produced *prometheus.CounterVec
	failed   *prometheus.CounterVec
	latency  prometheus.Histogram
}

// New makes a Sink. It does not connect: Run does.
func New(opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	if len(opts.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	if opts.ProduceTimeout <= 0 {
		opts.ProduceTimeout = 10 * time.Second
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 4
	}
	if opts.ReplicationFactor <= 0 {
		opts.ReplicationFactor = -1 // the broker's default
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ClientID(opts.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is franz-go's default and needs all acks
		kgo.ProducerLinger(2*time.Millisecond),
		// A record is failed, not retried for ever, once a Write could no
		// longer return in time; the caller then gets its error.
		kgo.RecordDeliveryTimeout(opts.ProduceTimeout),
		kgo.ProduceRequestTimeout(opts.ProduceTimeout),
		kgo.WithLogger(kgoLogger{logger}),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s := &Sink{opts: opts, client: client, logger: logger, ready: make(chan struct{})}
	s.produced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prometheus_deephaven_bridge_kafka_records_produced_total",
		Help: "Records the Kafka brokers acknowledged, per topic.",
	}, []string{"topic"})
	s.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prometheus_deephaven_bridge_kafka_produce_errors_total",
		Help: "Writes to Kafka that failed (the caller got an error), per topic.",
	}, []string{"topic"})
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "prometheus_deephaven_bridge_kafka_write_duration_seconds",
		Help:    "How long a write to Kafka took until every record was acknowledged or failed.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	})
	if reg != nil {
		reg.MustRegister(s.produced, s.failed, s.latency, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_kafka_ready",
			Help: "1 once the topics exist and the last write to Kafka succeeded, else 0.",
		}, func() float64 {
			if s.Err() == nil {
				return 1
			}
			return 0
		}))
	}
	return s, nil
}

// Topic returns the full name of the topic with the given suffix.
func (s *Sink) Topic(suffix string) string { return s.opts.TopicPrefix + suffix }

// Ready is closed once the topics exist and every partition has a leader.
func (s *Sink) Ready() <-chan struct{} { return s.ready }

// Err says why rows cannot be written now: the topics are not prepared
// yet, or the last write failed. It returns nil otherwise.
func (s *Sink) Err() error {
	if !s.isReady.Load() {
		return ErrNotReady
	}
	if p := s.lastErr.Load(); p != nil {
		return fmt.Errorf("last write to Kafka failed: %w", *p)
	}
	return nil
}

// Run creates missing topics (retrying until it succeeds or ctx ends),
// reports ready, and keeps the client until ctx ends. Then it waits for
// records in flight until drain ends.
func (s *Sink) Run(ctx, drain context.Context) error {
	var backoff time.Duration
	var last string
	for {
		err := s.ensureTopics(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if err.Error() != last {
			s.logger.Warn("Cannot prepare the Kafka topics; retrying", "err", err)
			last = err.Error()
		}
		backoff = min(max(2*backoff, 200*time.Millisecond), 10*time.Second)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
	}
	s.isReady.Store(true)
	close(s.ready)
	s.logger.Info("Kafka topics ready", "brokers", s.opts.Brokers, "prefix", s.opts.TopicPrefix)
	<-ctx.Done()
	if err := s.client.Flush(drain); err != nil {
		s.logger.Warn("Records still in flight at shutdown", "err", err)
	}
	return nil
}

// Close closes the client; later writes fail. Call it once, after Run
// returned (or when Run was never called).
func (s *Sink) Close() { s.client.Close() }

func (s *Sink) ensureTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ProduceTimeout)
	defer cancel()
	adm := kadm.NewClient(s.client)
	topics := make([]string, len(topicSuffixes))
	for i, t := range topicSuffixes {
		topics[i] = s.Topic(t)
	}
	res, err := adm.CreateTopics(ctx, s.opts.Partitions, s.opts.ReplicationFactor, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for _, r := range res.Sorted() {
		if r.Err == nil {
			s.logger.Info("Created Kafka topic", "topic", r.Topic, "partitions", s.opts.Partitions)
			continue
		}
		if !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// A topic just created has no partition leader for a moment, and a
	// write in that moment waits out the produce timeout: ready means
	// every partition can take a write.
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, d := range details.Sorted() {
		if d.Err != nil {
			return fmt.Errorf("topic %s: %w", d.Topic, d.Err)
		}
		for _, p := range d.Partitions.Sorted() {
			if p.Err != nil || p.Leader < 0 {
				return fmt.Errorf("topic %s partition %d has no leader yet (%v)", d.Topic, p.Partition, p.Err)
			}
		}
	}
	return nil
}

// write produces one record per row and waits for all of them.
func (s *Sink) write(ctx context.Context, topic string, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if !s.isReady.Load() {
		return ErrNotReady
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.opts.ProduceTimeout,
		fmt.Errorf("no acknowledgement within kafka.produce_timeout (%v)", s.opts.ProduceTimeout))
	defer cancel()
	start := time.Now()
	// The producer's callbacks may come after Write returned (below), so
	// they only touch this state, never the caller's.
	st := &writeState{left: len(recs), done: make(chan struct{})}
	for _, r := range recs {
		r.Topic = topic
		s.client.Produce(ctx, r, st.promise)
	}
	var err error
	select {
	case <-st.done:
		st.mu.Lock()
		if st.firstErr != nil {
			err = fmt.Errorf("produce to %s: %d of %d records failed: %w", topic, st.failed, len(recs), st.firstErr)
		}
		s.produced.WithLabelValues(topic).Add(float64(len(recs) - st.failed))
		st.mu.Unlock()
	case <-ctx.Done():
		// The idempotent producer fails a record on timeout only when that
		// cannot break its sequence numbers: a record sent on a connection
		// that died waits for the broker. The caller must not wait that
		// long; the record may still be stored later, as a failed write's
		// rows may.
		err = fmt.Errorf("produce to %s: not acknowledged: %w", topic, context.Cause(ctx))
	}
	s.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		s.failed.WithLabelValues(topic).Inc()
		s.lastErr.Store(&err)
		return err
	}
	s.lastErr.Store(nil)
	return nil
}

// writeState gathers the outcome of one write's records.
type writeState struct {
	mu       sync.Mutex
	left     int
	failed   int
	firstErr error
	done     chan struct{} // closed when left reaches 0
}

func (w *writeState) promise(_ *kgo.Record, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failed++
		if w.firstErr == nil {
			w.firstErr = err
		}
	}
	if w.left--; w.left == 0 {
		close(w.done)
	}
}

// Writer is the sink.Writer of one table.
type Writer[R any] struct {
	s      *Sink
	topic  string
	key    func(*R, []byte) []byte
	encode func(*R, *encoder)
}

// Write produces the rows and returns once Kafka acknowledged all of them,
// or an error (see the package doc).
func (w *Writer[R]) Write(ctx context.Context, rs []R) error {
	recs := make([]*kgo.Record, len(rs))
	e := &encoder{bridge: w.s.opts.Bridge}
	for i := range rs {
		e.buf = nil
		w.encode(&rs[i], e)
		recs[i] = &kgo.Record{Key: w.key(&rs[i], nil), Value: e.finish()}
	}
	return w.s.write(ctx, w.topic, recs)
}

var _ sink.Writer[rows.AlertRow] = (*Writer[rows.AlertRow])(nil)

// Alerts returns the writer of the alerts topic.
func (s *Sink) Alerts() *Writer[rows.AlertRow] {
	return &Writer[rows.AlertRow]{s: s, topic: s.Topic(TopicAlerts), encode: encodeAlert,
		key: func(r *rows.AlertRow, b []byte) []byte { return append(b, r.Fingerprint...) }}
}

// Metrics returns the writer of the metrics topic.
func (s *Sink) Metrics() *Writer[rows.MetricRow] {
	return &Writer[rows.MetricRow]{s: s, topic: s.Topic(TopicMetrics), encode: encodeMetric,
		key: func(r *rows.MetricRow, b []byte) []byte {
			return append(append(append(b, r.PrometheusQuery...), 0), r.SeriesKey...)
		}}
}

// Samples returns the writer of the samples topic.
func (s *Sink) Samples() *Writer[rows.SampleRow] {
	return &Writer[rows.SampleRow]{s: s, topic: s.Topic(TopicSamples), encode: encodeSample,
		key: func(r *rows.SampleRow, b []byte) []byte {
			return append(append(append(b, r.MetricName...), 0), r.SeriesKey...)
		}}
}

// Rules returns the writer of the rules topic.
func (s *Sink) Rules() *Writer[rows.RuleRow] {
	return &Writer[rows.RuleRow]{s: s, topic: s.Topic(TopicRules), encode: encodeRule,
		key: func(r *rows.RuleRow, b []byte) []byte {
			for _, k := range r.Key() {
				b = append(append(b, k...), 0)
			}
			return b
		}}
}

// States returns the writer of the alert state topic.
func (s *Sink) States() *Writer[rows.AlertStateRow] {
	return &Writer[rows.AlertStateRow]{s: s, topic: s.Topic(TopicState), encode: encodeState,
		key: func(r *rows.AlertStateRow, b []byte) []byte { return append(b, r.Fingerprint...) }}
}

// Notifications returns the writer of the notifications topic.
func (s *Sink) Notifications() *Writer[rows.NotificationRow] {
	return &Writer[rows.NotificationRow]{s: s, topic: s.Topic(TopicNotifications), encode: encodeNotification,
		key: func(r *rows.NotificationRow, b []byte) []byte { return append(b, r.Fingerprint...) }}
}

// kgoLogger passes franz-go's logs to slog. The client logs every failed
// dial and retry at warn, many lines a second while a broker is down; the
// bridge already logs failed writes where they fail a caller, so those go
// to debug, and only franz-go's errors reach warn.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelError
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	if level == kgo.LogLevelError {
		k.l.Warn(msg, kv...)
		return
	}
	k.l.Debug(msg, kv...)
}
