package kafkasink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// TestSinkAgainstBroker writes alerts to a real broker and reads them back,
// then stops the broker: a write fails within the produce timeout instead of
// succeeding, and succeeds again once the broker is back.
func TestSinkAgainstBroker(t *testing.T) {
	kafka := testenv.StartKafka(t)
	reg := prometheus.NewRegistry()
	s, err := New(Options{Brokers: []string{kafka.Addr()}, ClientID: "test", TopicPrefix: "t_",
		ProduceTimeout: 3 * time.Second, Partitions: 2, Bridge: "bridge-a"}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, context.Background()) }()
	defer func() { cancel(); <-done; s.Close() }()

	alerts := s.Alerts()
	if err := alerts.Write(ctx, []rows.AlertRow{{Fingerprint: "early"}}); !errors.Is(err, ErrNotReady) && err != nil {
		t.Fatalf("Write before ready: %v", err)
	}
	select {
	case <-s.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("topics not ready after 30s")
	}
	write := func(n, from int) error {
		rs := make([]rows.AlertRow, n)
		for i := range rs {
			rs[i] = rows.AlertRow{Fingerprint: fmt.Sprintf("fp%d", from+i), Status: "firing",
				PrometheusDateTime: time.Unix(int64(from+i), 0)}
		}
		return alerts.Write(ctx, rs)
	}
	// Ready means every partition has a leader; the producer's first
	// request still fetches a producer ID, which a busy broker that just
	// started may answer after the 3s timeout. A timed-out write is not
	// counted as produced, so the count below stays exact.
	for attempt := 1; ; attempt++ {
		err := write(100, 0)
		if err == nil {
			break
		}
		if attempt == 10 {
			t.Fatalf("first write, attempt %d: %v", attempt, err)
		}
		t.Logf("first write, attempt %d: %v", attempt, err)
	}
	if got := testutil.ToFloat64(s.produced.WithLabelValues("t_alerts")); got != 100 {
		t.Errorf("records produced = %v, want 100", got)
	}

	kafka.Stop()
	start := time.Now()
	err = write(1, 100)
	t.Logf("write with the broker down: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err == nil {
		t.Fatal("write succeeded with the broker down")
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("write took %v with a 3s produce timeout", d)
	}
	if s.Err() == nil {
		t.Error("Err() = nil after a failed write")
	}
	kafka.Restart(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err = write(10, 200); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write after the broker's restart: %v", err)
		}
	}

	// Everything acknowledged is in the topic, with the columns as JSON.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.Addr()), kgo.ConsumeTopics("t_alerts"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for len(seen) < 110 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			var m map[string]any
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Errorf("record %s: %v", r.Value, err)
			}
			if m["Bridge"] != "bridge-a" || m["Fingerprint"] != string(r.Key) {
				t.Errorf("record key %s value %s", r.Key, r.Value)
			}
			seen[string(r.Key)] = true
		})
	}
	for i := range 100 {
		if !seen[fmt.Sprintf("fp%d", i)] {
			t.Errorf("fp%d acknowledged but not in the topic", i)
		}
	}
	for i := 200; i < 210; i++ {
		if !seen[fmt.Sprintf("fp%d", i)] {
			t.Errorf("fp%d acknowledged but not in the topic", i)
		}
	}
}

// TestOversizeRowsReachTheBroker writes rows larger than a Kafka record may
// be to a real broker: into a topic its operators made with a small
// max.message.bytes, and into one the sink made with the broker's default.
// Both writes succeed (without cutting, each failed with MESSAGE_TOO_LARGE
// on every retry, and a sender retries for ever), and the records hold the
// rows with their long text cut to the topic's limit.
func TestOversizeRowsReachTheBroker(t *testing.T) {
	kafka := testenv.StartKafka(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const smallLimit = 200_000
	admin, err := kgo.NewClient(kgo.SeedBrokers(kafka.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	maxBytes := fmt.Sprint(smallLimit)
	res, err := kadm.NewClient(admin).CreateTopics(ctx, 1, 1, map[string]*string{"max.message.bytes": &maxBytes}, "ops_alerts")
	if err != nil || res.Error() != nil {
		t.Fatalf("create ops_alerts: %v %v", err, res.Error())
	}

	s, err := New(Options{Brokers: []string{kafka.Addr()}, ClientID: "test", TopicPrefix: "ops_",
		ProduceTimeout: 10 * time.Second, Partitions: 1, Bridge: "bridge-a"}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, context.Background()) }()
	defer func() { cancel(); <-done; s.Close() }()
	select {
	case <-s.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("topics not ready after 60s")
	}
	retry := func(what string, write func() error) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			err := write()
			if err == nil {
				return
			}
			if attempt == 5 || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "not acknowledged") {
				t.Fatalf("%s, attempt %d: %v", what, attempt, err)
			}
			t.Logf("%s, attempt %d: %v", what, attempt, err)
		}
	}
	alert := rows.AlertRow{Fingerprint: "huge", Status: "firing", AlertName: "Huge",
		Annotations: strings.Repeat("a", 500_000), PrometheusDateTime: time.Unix(1, 0)}
	retry("write a 500 kB alert", func() error {
		return s.Alerts().Write(ctx, []rows.AlertRow{alert, {Fingerprint: "small", Status: "firing"}})
	})
	metric := rows.MetricRow{PrometheusQuery: "q", SeriesKey: "k", Labels: strings.Repeat("l", 3_000_000), Value: 1}
	retry("write a 3 MB metric", func() error { return s.Metrics().Write(ctx, []rows.MetricRow{metric}) })

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.Addr()), kgo.ConsumeTopics("ops_alerts", "ops_metrics"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(8<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]map[string]any{}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for len(got) < 3 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			var m map[string]any
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Errorf("record %.100s: %v", r.Value, err)
			}
			if r.Topic == "ops_alerts" && len(r.Key)+len(r.Value) > smallLimit {
				t.Errorf("record %s: %d bytes in a topic of %d", r.Key, len(r.Key)+len(r.Value), smallLimit)
			}
			got[r.Topic+"/"+string(r.Key)] = m
		})
	}
	a, m, small := got["ops_alerts/huge"], got["ops_metrics/q\x00k"], got["ops_alerts/small"]
	if a == nil || m == nil || small == nil {
		t.Fatalf("records missing: %d of 3 read", len(got))
	}
	if s, _ := a["Annotations"].(string); !strings.HasSuffix(s, "…[cut by prometheus-deephaven-bridge from 500000 bytes]") || len(s) < smallLimit/2 {
		t.Errorf("alert Annotations: %d bytes ending %q", len(s), s[max(0, len(s)-60):])
	}
	if a["AlertName"] != "Huge" || a["Status"] != "firing" {
		t.Errorf("alert fields changed: %v %v", a["AlertName"], a["Status"])
	}
	if s, _ := m["Labels"].(string); !strings.HasSuffix(s, "from 3000000 bytes]") || len(s) < 500_000 {
		t.Errorf("metric Labels: %d bytes ending %q", len(s), s[max(0, len(s)-60):])
	}
	if m["Value"] != 1.0 {
		t.Errorf("metric Value = %v", m["Value"])
	}
	if n := testutil.ToFloat64(s.cut.WithLabelValues("ops_alerts")) + testutil.ToFloat64(s.cut.WithLabelValues("ops_metrics")); n != 2 {
		t.Errorf("kafka_records_cut_total = %v, want 2", n)
	}
}
