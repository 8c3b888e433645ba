package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// fakeProm serves /api/v1/rules and /api/v1/status/config from fixed data
// that a test may change. It is a unit-test stand-in; the real Prometheus is
// in the end-to-end tests.
type fakeProm struct {
	mu       sync.Mutex
	groups   []map[string]any
	external string // YAML of global.external_labels, e.g. "{cluster: c1}"
	reads    int
}

func (f *fakeProm) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/v1/rules":
		f.reads++
		json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"groups": f.groups}})
	case "/api/v1/status/config":
		yml := "global:\n  scrape_interval: 15s\n"
		if f.external != "" {
			yml += "  external_labels: " + f.external + "\n"
		}
		json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"yaml": yml}})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeProm) set(groups ...map[string]any) {
	f.mu.Lock()
	f.groups = groups
	f.mu.Unlock()
}

func group(name string, interval float64, rules ...map[string]any) map[string]any {
	return map[string]any{"name": name, "file": "/etc/prometheus/" + name + ".yml", "interval": interval, "rules": rules,
		"evaluationTime": 0.001, "lastEvaluation": "2026-12-02T12:00:00Z"}
}

func alerting(name, expr string, labels map[string]string) map[string]any {
	if labels == nil {
		labels = map[string]string{}
	}
	return map[string]any{"type": "alerting", "name": name, "query": expr, "duration": 300, "labels": labels,
		"annotations": map[string]string{"summary": "s"}, "alerts": []any{}, "health": "ok", "state": "inactive",
		"lastEvaluation": "2026-12-02T12:00:00Z", "evaluationTime": 0.001}
}

type fakeQueries struct {
	mu      sync.Mutex
	queries []poller.Query
}

func (q *fakeQueries) SetQueries(set string, qs []poller.Query) {
	if set != PollerSet {
		panic("wrong set " + set)
	}
	q.mu.Lock()
	q.queries = qs
	q.mu.Unlock()
}

func (q *fakeQueries) get() []poller.Query {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queries
}

type fakeRules struct {
	mu   sync.Mutex
	rows map[[4]string]rows.RuleRow
}

func (f *fakeRules) Write(_ context.Context, rs []rows.RuleRow) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rs {
		f.rows[r.Key()] = r
	}
	return nil
}

func (f *fakeRules) byName(name string) []rows.RuleRow {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rows.RuleRow
	for _, r := range f.rows {
		if r.AlertName == name {
			out = append(out, r)
		}
	}
	return out
}

func setup(t *testing.T, s Settings) (*Discovery, *fakeProm, *fakeQueries, *fakeRules) {
	t.Helper()
	fp := &fakeProm{}
	srv := httptest.NewServer(http.HandlerFunc(fp.serve))
	t.Cleanup(srv.Close)
	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if s.RefreshInterval == 0 {
		s.RefreshInterval = time.Hour
	}
	s.Enabled = true
	fq, fr := &fakeQueries{}, &fakeRules{rows: map[[4]string]rows.RuleRow{}}
	return New(v1.NewAPI(c), fq, fr, s, nil, nil), fp, fq, fr
}

func generatorURL(expr string) string {
	return "http://prometheus:9090/graph?g0.expr=" + url.QueryEscape(expr) + "&g0.tab=1"
}

func labelSet(m map[string]string) model.LabelSet {
	ls := model.LabelSet{}
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// Warning and critical rules of one alert name share a query; another alert
// name on the same value expression shares the poll under its own name;
// absent() is not polled; an or is polled whole. The rules table says what
// was derived and why.
func TestDiscoveryQueriesAndRows(t *testing.T) {
	d, fp, fq, fr := setup(t, Settings{QueryTimeout: 10 * time.Second})
	fp.external = "{cluster: c1}"
	fp.set(
		group("node", 15,
			alerting("NodeHighLoad", `node_load1{job="node"} > 4`, map[string]string{"severity": "warning"}),
			alerting("NodeHighLoad", `node_load1{job="node"} > 8`, map[string]string{"severity": "critical", "page": "yes"}),
			alerting("NodeBusy", `0 < node_load1{job="node"}`, nil),
		),
		group("other", 60,
			alerting("Missing", `absent(up{job="x"})`, nil),
			alerting("Either", `up == 0 or down == 1`, nil),
		),
	)
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	qs := fq.get()
	if len(qs) != 2 {
		t.Fatalf("%d queries, want 2 (node_load1, the or): %+v", len(qs), qs)
	}
	var load poller.Query
	for _, q := range qs {
		if q.Expr == `node_load1{job="node"}` {
			load = q
		}
	}
	if load.Interval != 15*time.Second || load.Timeout != 10*time.Second || len(load.Also) != 1 {
		t.Fatalf("node_load1 query: %+v", load)
	}
	highLoad := queryName("NodeHighLoad", `node_load1{job="node"}`)
	busy := queryName("NodeBusy", `node_load1{job="node"}`)
	if names := []string{load.Name, load.Also[0].Name}; !slices.Equal(names, []string{busy, highLoad}) {
		t.Errorf("query names %v, want %v", names, []string{busy, highLoad})
	}
	if !strings.HasPrefix(highLoad, "NodeHighLoad:") || len(highLoad) != len("NodeHighLoad:")+8 {
		t.Errorf("query name %q is not alertname:hash", highLoad)
	}

	rs := fr.byName("NodeHighLoad")
	if len(rs) != 2 {
		t.Fatalf("%d NodeHighLoad rows, want 2", len(rs))
	}
	for _, r := range rs {
		if r.Query != highLoad || r.ValueExpr != `node_load1{job="node"}` || !r.Reduced || r.Derivation != "vector side of >" ||
			r.JoinLabels != "all but {__name__, alertname, cluster, page, severity}" || r.IntervalSeconds != 15 || r.ForSeconds != 300 ||
			!r.Present || r.Group != "node" || r.File != "/etc/prometheus/node.yml" {
			t.Errorf("NodeHighLoad row: %+v", r)
		}
	}
	if r := fr.byName("Missing"); len(r) != 1 || r[0].Query != "" || r[0].ValueExpr != "" || r[0].Derivation != "absent(): the value is always 1" {
		t.Errorf("absent() row: %+v", r)
	}
	if r := fr.byName("Either"); len(r) != 1 || r[0].Reduced || r[0].ValueExpr != "up == 0 or down == 1" || r[0].Derivation != "top-level or: either side may fire" || r[0].Query == "" {
		t.Errorf("or row: %+v", r)
	}
}

// An alert of a known rule joins its value expression's series: its key is
// its labels without alertname, the rule's static labels and Prometheus's
// external labels, which equals the series' key, also when a static label
// overrides a series label and when group_left adds labels.
func TestResolveMatchesTheSeries(t *testing.T) {
	d, fp, _, _ := setup(t, Settings{})
	fp.external = "{cluster: c1, replica: a}"
	rules := []struct {
		name, expr string
		static     map[string]string
		series     map[string]string // a series of the value expression
		alertExtra map[string]string // labels the alert has beyond series + static + external
	}{
		{"Load", `node_load1 > 4`, map[string]string{"severity": "warning"},
			map[string]string{"__name__": "node_load1", "instance": "a:9100", "job": "node"}, nil},
		{"Override", `node_load1 > 0`, map[string]string{"instance": "overridden"},
			map[string]string{"__name__": "node_load1", "instance": "a:9100", "job": "node"}, nil},
		{"WithNode", `node_load1 > on (instance) group_left (nodename) (node_uname_info * 0)`, nil,
			map[string]string{"__name__": "node_load1", "instance": "a:9100", "job": "node"}, map[string]string{"nodename": "host-a"}},
		{"Ratio", `sum by (job) (rate(errors[5m])) / sum by (job) (rate(requests[5m])) > 0.1`, map[string]string{"team": "x"},
			map[string]string{"job": "api"}, nil},
		{"FS", `(node_filesystem_avail_bytes / node_filesystem_size_bytes * 100 < 10 and node_filesystem_readonly == 0)`, nil,
			map[string]string{"device": "/dev/sda1", "fstype": "ext4", "instance": "a:9100", "job": "node", "mountpoint": "/"}, nil},
	}
	var groupRules []map[string]any
	for _, r := range rules {
		groupRules = append(groupRules, alerting(r.name, r.expr, r.static))
	}
	fp.set(group("g", 30, groupRules...))
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := d.api.Rules(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	printed := map[string]string{} // alert name → expression as Prometheus prints it
	for _, r := range res.Groups[0].Rules {
		ar := r.(v1.AlertingRule)
		printed[ar.Name] = ar.Query
	}
	for _, r := range rules {
		alert := map[string]string{"alertname": r.name, "cluster": "c1", "replica": "a"}
		for k, v := range r.series {
			if k != "__name__" {
				alert[k] = v
			}
		}
		for k, v := range r.static {
			alert[k] = v
		}
		for k, v := range r.alertExtra {
			alert[k] = v
		}
		got, ok := d.Resolve(context.Background(), alert, generatorURL(printed[r.name]))
		if !ok {
			t.Errorf("%s: alert not resolved", r.name)
			continue
		}
		idx := d.idx.Load()
		tgt := idx.byExpr[[2]string{r.name, printed[r.name]}]
		if want := tgt.key.Key(labelSet(r.series)); got.SeriesKey != want || got.Query != tgt.query {
			t.Errorf("%s: alert key %s (query %s), series key %s (query %s)", r.name, got.SeriesKey, got.Query, want, tgt.query)
		}
		if strings.Contains(got.SeriesKey, "alertname") || strings.Contains(got.SeriesKey, "cluster") {
			t.Errorf("%s: key %s keeps alertname or an external label", r.name, got.SeriesKey)
		}
	}
	// Without a generatorURL expression, a unique alert name still resolves.
	if _, ok := d.Resolve(context.Background(), map[string]string{"alertname": "Ratio", "job": "api"}, ""); !ok {
		t.Error("alert without g0.expr, unique alert name: not resolved")
	}
}

// An alert of a rule added after the last read makes Resolve read the rules
// again and find it; a rule that is gone keeps its row, marked not present.
func TestResolveReadsNewRulesAndGoneRulesStay(t *testing.T) {
	d, fp, _, fr := setup(t, Settings{})
	fp.set(group("g", 30, alerting("Old", `up == 0`, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); len(fr.byName("Old")) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("first read did not happen")
		}
	}
	fp.set(group("g", 30, alerting("New", `rate(errors[5m]) > 1`, nil)))
	got, ok := d.Resolve(context.Background(), map[string]string{"alertname": "New", "instance": "i"}, generatorURL(`rate(errors[5m]) > 1`))
	if !ok || got.Query != queryName("New", "rate(errors[5m])") || got.SeriesKey != `{instance="i"}` {
		t.Fatalf("alert of a new rule: %+v %v", got, ok)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if r := fr.byName("Old"); len(r) == 1 && !r[0].Present {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gone rule's row: %+v", fr.byName("Old"))
		}
	}
	// Unknown alerts do not make every request read the rules.
	reads := fp.reads
	for i := 0; i < 5; i++ {
		if _, ok := d.Resolve(context.Background(), map[string]string{"alertname": "Elsewhere"}, generatorURL(fmt.Sprintf("x%d > 1", i))); ok {
			t.Fatal("an unknown rule resolved")
		}
	}
	if fp.reads > reads+1 {
		t.Errorf("%d reads for 5 unknown alerts, want at most 1", fp.reads-reads)
	}
	cancel()
	<-done
}

// rules.match narrows discovery by static labels and alertname.
func TestMatch(t *testing.T) {
	cfg := &config.Config{Rules: config.RulesConfig{Enabled: true, RefreshInterval: model.Duration(time.Minute),
		Match: []string{`{severity="critical"}`, `{alertname="Keep"}`}}}
	s, err := SettingsFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, fp, fq, fr := setup(t, s)
	fp.set(group("g", 30,
		alerting("Crit", `a > 1`, map[string]string{"severity": "critical"}),
		alerting("Warn", `b > 1`, map[string]string{"severity": "warning"}),
		alerting("Keep", `c > 1`, nil),
	))
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(fq.get()) != 2 || len(fr.byName("Warn")) != 0 || len(fr.byName("Crit")) != 1 || len(fr.byName("Keep")) != 1 {
		t.Errorf("queries %+v; rows Warn %d Crit %d Keep %d", fq.get(), len(fr.byName("Warn")), len(fr.byName("Crit")), len(fr.byName("Keep")))
	}
	cfg.Rules.Match = []string{"{severity=}"}
	if _, err := SettingsFromConfig(cfg); err == nil || !strings.Contains(err.Error(), "rules.match[0]") {
		t.Errorf("bad selector: %v", err)
	}
}

func TestExprOf(t *testing.T) {
	for in, want := range map[string]string{
		"http://vm:19090/graph?g0.expr=node_load1%7Bjob%3D%22node%22%7D+%3E+0&g0.tab=1": `node_load1{job="node"} > 0`,
		"http://grafana/alerting/grafana/abc/view":                                      "",
		"::not a url": "",
	} {
		if got := exprOf(in); got != want {
			t.Errorf("exprOf(%q) = %q, want %q", in, got, want)
		}
	}
}
