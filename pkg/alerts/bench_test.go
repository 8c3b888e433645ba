package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// benchBody returns an Alertmanager notification of n alerts shaped like
// real ones: encoded as Alertmanager encodes it (json.Encoder, so & in
// generatorURL is \u0026), six labels and two annotations per alert,
// RFC3339Nano times, the fingerprint of the labels, a resolved alert every
// tenth, and the group's common labels.
func benchBody(n int) []byte {
	type alert struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	}
	type message struct {
		Receiver          string            `json:"receiver"`
		Status            string            `json:"status"`
		Alerts            []alert           `json:"alerts"`
		GroupLabels       map[string]string `json:"groupLabels"`
		CommonLabels      map[string]string `json:"commonLabels"`
		CommonAnnotations map[string]string `json:"commonAnnotations"`
		ExternalURL       string            `json:"externalURL"`
		Version           string            `json:"version"`
		GroupKey          string            `json:"groupKey"`
		TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	}
	start := time.Date(2026, 11, 25, 2, 54, 38, 320123456, time.UTC)
	m := message{
		Receiver:          "deephaven",
		Status:            "firing",
		GroupLabels:       map[string]string{"alertname": "NodeLoadHigh"},
		CommonLabels:      map[string]string{"alertname": "NodeLoadHigh", "job": "node", "severity": "warning"},
		CommonAnnotations: map[string]string{},
		ExternalURL:       "http://alertmanager.example:9093",
		Version:           "4",
		GroupKey:          `{}/{severity="warning"}:{alertname="NodeLoadHigh"}`,
	}
	for i := range n {
		labels := map[string]string{
			"alertname":        "NodeLoadHigh",
			"instance":         fmt.Sprintf("node-%03d.example:9100", i),
			"job":              "node",
			"severity":         "warning",
			"prometheus_query": "node_load",
			"region":           []string{"eu-west-1", "us-east-1", "ap-south-1"}[i%3],
		}
		a := alert{
			Status: StatusFiring,
			Labels: labels,
			Annotations: map[string]string{
				"summary":     fmt.Sprintf("Load on node-%03d is high", i),
				"description": fmt.Sprintf("The 5 minute load average of node-%03d.example:9100 is %.2f, above 4 for 10 minutes.", i, 4+float64(i)/7),
			},
			StartsAt:     start.Add(time.Duration(i) * 1234567891),
			GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=node_load5+%3E+4&g0.tab=1",
			Fingerprint:  toLabelSet(labels).Fingerprint().String(),
		}
		a.EndsAt = time.Time{}
		if i%10 == 9 {
			a.Status = StatusResolved
			a.EndsAt = a.StartsAt.Add(17*time.Minute + 123456789)
		}
		m.Alerts = append(m.Alerts, a)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkDecode decodes Alertmanager notifications of 1 and 100 alerts
// with Decode and, for comparison, with decodeOld (the former encoding/json
// decoder).
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1, 100} {
		body := benchBody(n)
		for _, impl := range []struct {
			name   string
			decode func([]byte, Options) (*Message, error)
		}{
			{"new", Decode},
			{"old", decodeOld},
		} {
			b.Run(fmt.Sprintf("alerts=%d/%s", n, impl.name), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					m, err := impl.decode(body, Options{})
					if err != nil || len(m.Alerts) != n {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRows maps a decoded notification of 100 alerts to rows (no
// Resolver).
func BenchmarkRows(b *testing.B) {
	m, err := Decode(benchBody(100), Options{})
	if err != nil {
		b.Fatal(err)
	}
	received := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if rs := m.Rows(context.Background(), received, Options{}); len(rs) != 100 {
			b.Fatal(len(rs))
		}
	}
}

// BenchmarkLabelsText renders a label set of six labels, with LabelsText
// and, for comparison, as model.LabelSet's String.
func BenchmarkLabelsText(b *testing.B) {
	labels := map[string]string{"alertname": "NodeLoadHigh", "instance": "node-007.example:9100", "job": "node",
		"severity": "warning", "prometheus_query": "node_load", "region": "eu-west-1"}
	b.Run("LabelsText", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = LabelsText(labels)
		}
	})
	b.Run("model.LabelSet", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ls := make(model.LabelSet, len(labels))
			for k, v := range labels {
				ls[model.LabelName(k)] = model.LabelValue(v)
			}
			_ = ls.String()
		}
	})
}
