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
//   - A row too large for one record of its topic (the topic's
//     max.message.bytes, at most about 1 MB) is written with its longest
//     text fields cut, each ending in a note of how long it was, rather
//     than failing every write that carries it: a sender retries a failed
//     write for ever, and the row's other fields still say what happened.
//     The cut is logged and counted (kafka_records_cut_total).
//   - Topics are created, when missing, by Run before it reports ready;
//     until then Write fails with ErrNotReady.
//   - When Run's context ends it waits for records in flight (bounded by
//     the drain context); Close then closes the client, and writes after
//     that fail.
package kafkasink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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

// producerBatchMaxBytes bounds a record batch the producer sends:
// franz-go's default, just under the broker's default message.max.bytes
// (1048588). A record that does not fit in a batch fails for good
// (MESSAGE_TOO_LARGE), so records are kept below it (Writer.Write).
const producerBatchMaxBytes = 1_000_012

// recordFraming is the room a batch's header and a record's framing take
// beside the record's key and value.
const recordFraming = 512

// maxKeyBytes bounds a record key. Keys only place rows on partitions, so
// a longer one (an absurd fingerprint, series or rule) is replaced by its
// hash. It is high enough that real keys, long rule expressions included,
// stay as they were: a changed key would move a row's successors to another
// partition, and the consumer's last_by could then read them out of order.
const maxKeyBytes = 4096

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

	ready   chan struct{} // closed once the topics exist
	isReady atomic.Bool
	lastErr atomic.Pointer[error] // the last Write's failure, nil after a success
	// recordLimit is the most bytes of key and value a record of each
	// topic may have; set before ready, read-only after.
	recordLimit map[string]int
	lastCutLog  atomic.Int64 // Unix ns of the last log line of a cut row
	produced    *prometheus.CounterVec
	failed      *prometheus.CounterVec
	cut         *prometheus.CounterVec
	latency     prometheus.Histogram
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
		kgo.ProducerBatchMaxBytes(producerBatchMaxBytes),
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
	s.cut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prometheus_deephaven_bridge_kafka_records_cut_total",
		Help: "Rows too large for one record of their topic, written with their longest text fields cut, per topic.",
	}, []string{"topic"})
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "prometheus_deephaven_bridge_kafka_write_duration_seconds",
		Help:    "How long a write to Kafka took until every record was acknowledged or failed.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	})
	if reg != nil {
		reg.MustRegister(s.produced, s.failed, s.cut, s.latency, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
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
	s.recordLimit = s.recordLimits(ctx, adm, topics)
	return nil
}

// recordLimits returns the most bytes of key and value a record of each
// topic may have: what a producer batch holds, or less where the topic's
// max.message.bytes says so (a topic made by its operators may be
// smaller). Without leave to read the topics' configuration it assumes
// the broker's default.
func (s *Sink) recordLimits(ctx context.Context, adm *kadm.Client, topics []string) map[string]int {
	limits := make(map[string]int, len(topics))
	for _, t := range topics {
		limits[t] = producerBatchMaxBytes - recordFraming
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		s.logger.Warn("Cannot read the Kafka topics' max.message.bytes; assuming the broker's default", "err", err)
		return limits
	}
	for _, rc := range configs {
		if rc.Err != nil {
			s.logger.Warn("Cannot read a Kafka topic's max.message.bytes; assuming the broker's default", "topic", rc.Name, "err", rc.Err)
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" {
				continue
			}
			if n, err := strconv.Atoi(c.MaybeValue()); err == nil && n-recordFraming < limits[rc.Name] {
				// Room for the fields that are never cut, whatever the topic says.
				limits[rc.Name] = max(n-recordFraming, minRecordBytes)
			}
		}
	}
	return limits
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
	if len(rs) == 0 {
		return nil
	}
	if !w.s.isReady.Load() {
		return ErrNotReady
	}
	return w.s.write(ctx, w.topic, w.records(rs, w.s.recordLimit[w.topic]))
}

// records encodes the rows, each record at most limit bytes of key and
// value.
func (w *Writer[R]) records(rs []R, limit int) []*kgo.Record {
	recs := make([]*kgo.Record, len(rs))
	e := &encoder{bridge: w.s.opts.Bridge}
	for i := range rs {
		key := recordKey(w.key(&rs[i], nil))
		e.buf, e.longest = nil, 0
		w.encode(&rs[i], e)
		value := e.finish()
		if len(key)+len(value) > limit {
			value = w.fit(&rs[i], e, limit-len(key), len(value))
		}
		recs[i] = &kgo.Record{Key: key, Value: value}
	}
	return recs
}

// fit encodes a row whose record would not fit its topic again, with
// every text field longer than a cap cut to it, halving the cap until the
// value takes at most room bytes. Fields shorter than the cap, which are
// all but the offending ones, stay whole. The first cap leaves the longest
// field what the others do not take (e.longest is from the first encoding).
func (w *Writer[R]) fit(r *R, e *encoder, room, size int) []byte {
	defer func() { e.maxText = 0 }()
	first := room - (size - e.longest) - 256
	if first < room/4 {
		first = room / 2
	}
	var value []byte
	for e.maxText = first; ; e.maxText /= 2 {
		e.buf, e.cut = nil, 0
		w.encode(r, e)
		value = e.finish()
		if len(value) <= room || e.maxText < 64 {
			break
		}
	}
	w.s.cut.WithLabelValues(w.topic).Inc()
	// One line per cutLogEvery at most: a sender of many such rows would
	// flood the log; the counter has them all.
	now := time.Now().UnixNano()
	if last := w.s.lastCutLog.Load(); now-last >= int64(cutLogEvery) && w.s.lastCutLog.CompareAndSwap(last, now) {
		w.s.logger.Warn("A row was too large for one Kafka record; its longest text fields were cut",
			"topic", w.topic, "bytes", size, "limit", room, "fields_cut", e.cut, "record", truncate(string(value), 200))
	}
	return value
}

// cutLogEvery spaces the log lines of rows cut to fit.
const cutLogEvery = 10 * time.Second

// recordKey keeps a key short: one over maxKeyBytes is replaced by the hex
// of its SHA-256, which places its rows on one partition all the same.
func recordKey(k []byte) []byte {
	if len(k) <= maxKeyBytes {
		return k
	}
	sum := sha256.Sum256(k)
	return hex.AppendEncode(nil, sum[:])
}

// truncate shortens s for a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return runePrefix(s, n) + "…"
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
