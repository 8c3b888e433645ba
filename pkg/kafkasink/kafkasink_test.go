package kafkasink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
