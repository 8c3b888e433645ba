// Package rules discovers Prometheus's alerting rules and makes every
// alert carry the value that fired it, with no configuration per rule.
//
// It reads /api/v1/rules at start, on reload, every refresh interval and
// when an alert of an unknown rule arrives. For each alerting rule it
// derives the value expression (pkg/valueexpr), has the poller poll it at
// the rule group's interval under a stable query name per alert name and
// expression, writes the rule and everything derived from it to the
// prometheus_rules table, and tells the webhook (as an alerts.Resolver)
// which query and series key each alert joins:
//
//	/api/v1/rules ─► Discovery ─► poller queries (set "rules") ─► prometheus_metrics
//	                          ├─► prometheus_rules
//	webhook alert ─► Resolve ─► PrometheusQuery, SeriesKey    ─► prometheus_alerts ─► as-of join
//
// An alert is matched to its rule by its alertname and the rule's
// expression, which Prometheus puts into the alert's generatorURL (g0.expr)
// exactly as /api/v1/rules prints it.
package rules

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.yaml.in/yaml/v3"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/config"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/poller"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/sink"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/source"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/valueexpr"
)

var (
	_ source.Source   = (*Discovery)(nil)
	_ source.Reloader = (*Discovery)(nil)
)

// QuerySet is where the rules' value expressions are polled: the poller,
// which keeps them apart from the configured queries.
type QuerySet interface {
	SetQueries(set string, queries []poller.Query)
}

// PollerSet is the name of the rules' query set in the poller.
const PollerSet = "rules"

// Settings are what the configuration says about discovery.
type Settings struct {
	Enabled         bool
	RefreshInterval time.Duration
	// Match keeps the rules whose labels (static labels and alertname)
	// match at least one selector; none keeps every rule.
	Match [][]*labels.Matcher
	// ExternalLabels, when not nil, are Prometheus's external labels;
	// nil reads them from Prometheus.
	ExternalLabels map[string]string
	// QueryTimeout bounds each poll of a value expression, at most the
	// rule group's interval.
	QueryTimeout time.Duration
}

// SettingsFromConfig returns the discovery settings of cfg.
func SettingsFromConfig(cfg *config.Config) (Settings, error) {
	s := Settings{
		Enabled:         cfg.Rules.Enabled,
		RefreshInterval: time.Duration(cfg.Rules.RefreshInterval),
		ExternalLabels:  cfg.Rules.ExternalLabels,
		QueryTimeout:    time.Duration(cfg.Prometheus.QueryTimeout),
	}
	for i, sel := range cfg.Rules.Match {
		ms, err := config.ParseSelector(sel)
		if err != nil {
			return s, fmt.Errorf("rules.match[%d]: %w", i, err)
		}
		s.Match = append(s.Match, ms)
	}
	return s, nil
}

// Discovery is the rules source. Make it with New.
//
// Run refreshes the rules until its context ends; Resolve may be called
// from any goroutine at any time (before the first refresh it knows no
// rule, and asks for a refresh). Reload takes new settings.
type Discovery struct {
	api     v1.API
	queries QuerySet
	out     sink.Writer[rows.RuleRow]
	logger  *slog.Logger
	now     func() time.Time

	settings atomic.Pointer[Settings]
	idx      atomic.Pointer[index]
	// lastExpr is the last generatorURL parsed and its expression: the
	// alerts of a request are mostly one rule's, and parsing the URL for
	// each of them was a tenth of the webhook's allocations.
	lastExpr atomic.Pointer[[2]string]

	// refresh asks Run for a refresh now; each request gets a channel
	// that is closed when a refresh that started after it has ended.
	refresh chan chan struct{}

	mu       sync.Mutex // guards known, lastMiss and missDone
	known    map[[4]string]rows.RuleRow
	lastMiss time.Time       // when an unknown alert last asked for a read
	missDone <-chan struct{} // closed when that read is done

	refreshes   *prometheus.CounterVec
	ruleCount   *prometheus.GaugeVec
	resolutions *prometheus.CounterVec
}

// New returns a Discovery reading rules from api, polling their value
// expressions through queries and writing rule rows to out.
func New(api v1.API, queries QuerySet, out sink.Writer[rows.RuleRow], s Settings, logger *slog.Logger, reg prometheus.Registerer) *Discovery {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := promauto.With(reg)
	d := &Discovery{
		api: api, queries: queries, out: out, logger: logger, now: time.Now,
		refresh: make(chan chan struct{}, 16),
		known:   map[[4]string]rows.RuleRow{},
		refreshes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_rules_refreshes_total",
			Help: "Reads of Prometheus's alerting rules, by result.",
		}, []string{"result"}),
		ruleCount: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prometheus_deephaven_bridge_rules",
			Help: "Alerting rules known from the last read, by whether their value expression is reduced, kept whole or not polled.",
		}, []string{"value"}),
		resolutions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_rules_alert_lookups_total",
			Help: "Alerts looked up among the discovered rules, by result.",
		}, []string{"result"}),
	}
	for _, r := range []string{"ok", "error"} {
		d.refreshes.WithLabelValues(r)
	}
	for _, r := range []string{"found", "unknown"} {
		d.resolutions.WithLabelValues(r)
	}
	d.settings.Store(&s)
	d.idx.Store(&index{})
	return d
}

// Name identifies the source.
func (d *Discovery) Name() string { return "rules" }

// Reload prepares new settings; applying them refreshes at once.
func (d *Discovery) Reload(cfg *config.Config) (func(), error) {
	s, err := SettingsFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	return func() {
		d.settings.Store(&s)
		d.requestRefresh()
	}, nil
}

// Run reads the rules at once and then every refresh interval, and when
// asked by a Resolve that missed, until ctx ends. A failed read keeps what
// was known and is tried again sooner (backing off up to the interval).
// Rule rows are written after the index and the poller are updated, and a
// write that fails is repeated by the next read (every read writes every
// rule), so a Deephaven that is down never holds up alert lookups.
func (d *Discovery) Run(ctx context.Context) error {
	var backoff time.Duration
	var lastErr string
	var waiting []chan struct{}
	for {
		s := d.settings.Load()
		var err error
		var rs []rows.RuleRow
		if s.Enabled {
			rs, err = d.read(ctx)
		} else {
			d.clear()
		}
		for _, w := range waiting {
			close(w)
		}
		waiting = nil
		if ctx.Err() != nil {
			return nil
		}
		wait := s.RefreshInterval
		switch {
		case err != nil:
			d.refreshes.WithLabelValues("error").Inc()
			if msg := err.Error(); msg != lastErr {
				d.logger.Warn("Reading Prometheus's alerting rules failed; keeping the rules known so far", "err", err)
				lastErr = msg
			}
			backoff = min(max(2*backoff, time.Second), wait)
			wait = backoff
		case s.Enabled:
			d.refreshes.WithLabelValues("ok").Inc()
			if lastErr != "" {
				d.logger.Info("Reading Prometheus's alerting rules works again")
			}
			backoff, lastErr = 0, ""
			d.write(ctx, rs, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case w := <-d.refresh:
			t.Stop()
			waiting = append(waiting, w)
		}
		// Requests that piled up are served by the same refresh.
	drain:
		for {
			select {
			case w := <-d.refresh:
				waiting = append(waiting, w)
			default:
				break drain
			}
		}
	}
}

// write writes rule rows, giving up after limit; the next read writes them
// again.
func (d *Discovery) write(ctx context.Context, rs []rows.RuleRow, limit time.Duration) {
	if len(rs) == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := d.out.Write(wctx, rs); err != nil {
		if ctx.Err() == nil {
			d.logger.Debug("Writing rule rows failed; the next read writes them again", "rows", len(rs), "err", err)
		}
		return
	}
	d.mu.Lock()
	for _, r := range rs {
		d.known[r.Key()] = r
	}
	d.mu.Unlock()
}

// requestRefresh asks Run for a refresh and returns a channel closed once
// it is done (or never, when Run is not running).
func (d *Discovery) requestRefresh() <-chan struct{} {
	w := make(chan struct{})
	select {
	case d.refresh <- w:
	default:
		// Enough requests are queued; one of them will do.
		close(w)
	}
	return w
}

// clear forgets every rule when discovery is turned off.
func (d *Discovery) clear() {
	if len(d.idx.Load().byExpr) == 0 {
		return
	}
	d.queries.SetQueries(PollerSet, nil)
	d.idx.Store(&index{})
	d.logger.Info("Rule discovery is off; no rule's value expression is polled any more")
}

// Refresh reads the rules once, applies them (the poller's rule queries
// and the index Resolve looks alerts up in) and writes the rule rows.
func (d *Discovery) Refresh(ctx context.Context) error {
	rs, err := d.read(ctx)
	if err != nil {
		return err
	}
	if len(rs) > 0 {
		if err := d.out.Write(ctx, rs); err != nil {
			return fmt.Errorf("rules: write %d rule rows: %w", len(rs), err)
		}
		d.mu.Lock()
		for _, r := range rs {
			d.known[r.Key()] = r
		}
		d.mu.Unlock()
	}
	return nil
}

// read reads the rules, updates the poller's rule queries and the index,
// and returns the rule rows to write: every rule read, and a row marking
// each rule that is gone since the last rows were written.
func (d *Discovery) read(ctx context.Context) ([]rows.RuleRow, error) {
	s := d.settings.Load()
	external := s.ExternalLabels
	if external == nil {
		var err error
		if external, err = d.externalLabels(ctx); err != nil {
			return nil, err
		}
	}
	res, err := d.api.Rules(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("rules: read /api/v1/rules: %w", err)
	}
	now := d.now().UTC()
	b := newBuilder(s, external, d.logger)
	for _, g := range res.Groups {
		for _, r := range g.Rules {
			if ar, ok := r.(v1.AlertingRule); ok {
				b.add(g, ar, now)
			}
		}
	}
	idx, queries, rs := b.finish()

	d.mu.Lock()
	seen := make(map[[4]string]bool, len(rs))
	for i := range rs {
		seen[rs[i].Key()] = true
	}
	for k, old := range d.known {
		if !seen[k] && old.Present {
			// Gone from Prometheus: its row stays, marked, so that its
			// alerts can still be explained.
			old.Present, old.UpdatedAt, old.State, old.ActiveAlerts = false, now, "", 0
			rs = append(rs, old)
		}
	}
	d.mu.Unlock()

	d.queries.SetQueries(PollerSet, queries)
	d.idx.Store(idx)
	d.ruleCount.WithLabelValues("reduced").Set(float64(b.count.reduced))
	d.ruleCount.WithLabelValues("whole").Set(float64(b.count.whole))
	d.ruleCount.WithLabelValues("not_polled").Set(float64(b.count.notPolled))
	d.logger.Debug("Alerting rules read", "rules", len(rs), "value_queries", len(queries))
	return rs, nil
}

// externalLabels reads global.external_labels from Prometheus's running
// configuration: alerts carry them, query results do not.
func (d *Discovery) externalLabels(ctx context.Context) (map[string]string, error) {
	cfg, err := d.api.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("rules: read Prometheus's configuration for its external labels (or set rules.external_labels): %w", err)
	}
	var c struct {
		Global struct {
			ExternalLabels map[string]string `yaml:"external_labels"`
		} `yaml:"global"`
	}
	if err := yaml.Unmarshal([]byte(cfg.YAML), &c); err != nil {
		return nil, fmt.Errorf("rules: parse Prometheus's configuration: %w", err)
	}
	if c.Global.ExternalLabels == nil {
		return map[string]string{}, nil
	}
	return c.Global.ExternalLabels, nil
}

// Resolve finds the rule-derived query of an alert and its series key
// there. An alert whose rule is not known yet (new, or the first read has
// not finished) makes it read the rules again, at most once per
// missInterval, and wait for that within ctx.
func (d *Discovery) Resolve(ctx context.Context, alertLabels map[string]string, generatorURL string) (rows.JoinTarget, bool) {
	name, expr := alertLabels["alertname"], d.exprOf(generatorURL)
	if t, ok := d.idx.Load().lookup(name, expr); ok {
		d.resolutions.WithLabelValues("found").Inc()
		return t.target(alertLabels), true
	}
	if done := d.missRefresh(expr); done != nil {
		t := time.NewTimer(missWait)
		select {
		case <-done:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if t, ok := d.idx.Load().lookup(name, expr); ok {
			d.resolutions.WithLabelValues("found").Inc()
			return t.target(alertLabels), true
		}
	}
	d.resolutions.WithLabelValues("unknown").Inc()
	return rows.JoinTarget{}, false
}

// missInterval spaces the refreshes that unknown alerts ask for: alerts of
// rules evaluated elsewhere (another Prometheus, a Thanos ruler) would
// otherwise make every request read the rules.
const missInterval = 10 * time.Second

// missWait bounds how long an alert of an unknown rule waits for the rules
// to be read: the sender waits for the answer.
const missWait = 3 * time.Second

// missRefresh returns a channel closed when a read of the rules asked for
// by an unknown alert is done: one in progress, or a new one unless the
// last was less than missInterval ago (then nil).
func (d *Discovery) missRefresh(expr string) <-chan struct{} {
	if expr == "" || !d.settings.Load().Enabled {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.missDone != nil {
		select {
		case <-d.missDone:
		default:
			return d.missDone
		}
	}
	if now := d.now(); now.Sub(d.lastMiss) >= missInterval {
		d.lastMiss = now
		d.missDone = d.requestRefresh()
		return d.missDone
	}
	return nil
}

// exprOf is exprOf, remembering the last URL it parsed.
func (d *Discovery) exprOf(generatorURL string) string {
	if last := d.lastExpr.Load(); last != nil && last[0] == generatorURL {
		return last[1]
	}
	expr := exprOf(generatorURL)
	d.lastExpr.Store(&[2]string{generatorURL, expr})
	return expr
}

// exprOf returns the expression in a Prometheus generatorURL
// (…/graph?g0.expr=…&g0.tab=1), "" when there is none.
func exprOf(generatorURL string) string {
	u, err := url.Parse(generatorURL)
	if err != nil {
		return ""
	}
	return u.Query().Get("g0.expr")
}

// index finds a rule's join target by alert name and rule expression.
type index struct {
	byExpr map[[2]string]target // alertname, the rule's expression
	byName map[string][]target  // for alerts without a generatorURL expression
}

// target is what an alert of a rule joins: a query name and how to key
// the alert's labels.
type target struct {
	query string
	key   rows.KeySpec
}

func (t target) target(alertLabels map[string]string) rows.JoinTarget {
	ls := make(model.LabelSet, len(alertLabels))
	for k, v := range alertLabels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return rows.JoinTarget{Query: t.query, SeriesKey: t.key.Key(ls)}
}

func (x *index) lookup(name, expr string) (target, bool) {
	if expr != "" {
		t, ok := x.byExpr[[2]string{name, expr}]
		return t, ok
	}
	// Without the expression, only an alert name with one target is sure.
	if ts := x.byName[name]; len(ts) == 1 {
		return ts[0], true
	}
	return target{}, false
}

// builder turns one read of the rules into the index, the poller queries
// and the rule rows.
type builder struct {
	s        *Settings
	external map[string]string
	logger   *slog.Logger
	idx      *index
	rows     []rows.RuleRow
	// values gathers, per value expression, the alert names that use it
	// and everything their queries need.
	values map[string]*valueQuery
	count  struct{ reduced, whole, notPolled int }
}

// valueQuery is one polled value expression and the names it is written
// under (one per alert name using it).
type valueQuery struct {
	expr     string
	interval time.Duration
	names    map[string]*nameKey // query name → its key
}

type nameKey struct {
	drop map[string]bool
	only []string
}

func newBuilder(s *Settings, external map[string]string, logger *slog.Logger) *builder {
	return &builder{
		s: s, external: external, logger: logger,
		idx:    &index{byExpr: map[[2]string]target{}, byName: map[string][]target{}},
		values: map[string]*valueQuery{},
	}
}

// add takes one alerting rule of group g.
func (b *builder) add(g v1.RuleGroup, r v1.AlertingRule, now time.Time) {
	if !b.matches(r) {
		return
	}
	row := rows.RuleRow{
		Group: g.Name, File: g.File, AlertName: r.Name, Expr: r.Query,
		ForSeconds: r.Duration, IntervalSeconds: g.Interval,
		StaticLabels: r.Labels.String(), Annotations: r.Annotations.String(),
		Health: string(r.Health), LastError: r.LastError, State: r.State,
		ActiveAlerts: int64(len(r.Alerts)), LastEvaluation: r.LastEvaluation.UTC(),
		UpdatedAt: now, Present: true,
	}
	res, err := valueexpr.Reduce(r.Query)
	if err != nil {
		row.Derivation = "does not parse: " + err.Error()
		b.count.notPolled++
		b.rows = append(b.rows, row)
		return
	}
	row.ValueExpr, row.Reduced, row.Derivation = res.Expr, res.Reduced, res.Derivation
	switch {
	case !res.Poll:
		b.count.notPolled++
		b.rows = append(b.rows, row)
		return
	case res.Reduced:
		b.count.reduced++
	default:
		b.count.whole++
	}

	// Labels the alert has and the value's series do not, or that the
	// rule set to other values than the series have, leave the key.
	drop := map[string]bool{"alertname": true}
	for name := range r.Labels {
		drop[string(name)] = true
	}
	for name := range b.external {
		drop[name] = true
	}
	for _, name := range res.ExtraLabels {
		drop[name] = true
	}
	query := queryName(r.Name, res.Expr)
	interval := time.Duration(g.Interval * float64(time.Second))
	if interval <= 0 {
		interval = time.Minute
	}
	vq := b.values[res.Expr]
	if vq == nil {
		vq = &valueQuery{expr: res.Expr, interval: interval, names: map[string]*nameKey{}}
		b.values[res.Expr] = vq
	}
	vq.interval = min(vq.interval, interval)
	nk := vq.names[query]
	if nk == nil {
		nk = &nameKey{drop: map[string]bool{}, only: res.OnlyLabels}
		vq.names[query] = nk
	}
	// Rules of one alert name and value expression (warning and critical)
	// share a query: its key drops what any of them drops.
	maps.Copy(nk.drop, drop)
	row.Query = query
	b.rows = append(b.rows, row)
}

// matches applies rules.match to the rule's static labels and alertname.
func (b *builder) matches(r v1.AlertingRule) bool {
	if len(b.s.Match) == 0 {
		return true
	}
	ls := make(map[string]string, len(r.Labels)+1)
	for k, v := range r.Labels {
		ls[string(k)] = string(v)
	}
	ls["alertname"] = r.Name
	for _, sel := range b.s.Match {
		ok := true
		for _, m := range sel {
			if !m.Matches(ls[m.Name]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// finish makes the index, the poller queries and the rows. Query names and
// the order of everything are deterministic, so repeated reads of the same
// rules change nothing.
func (b *builder) finish() (*index, []poller.Query, []rows.RuleRow) {
	keys := map[string]rows.KeySpec{}
	var queries []poller.Query
	for _, expr := range slices.Sorted(maps.Keys(b.values)) {
		vq := b.values[expr]
		names := slices.Sorted(maps.Keys(vq.names))
		outs := make([]poller.Output, len(names))
		for i, name := range names {
			outs[i] = poller.Output{Name: name, Key: vq.names[name].keySpec()}
			keys[name] = outs[i].Key
		}
		timeout := vq.interval
		if b.s.QueryTimeout > 0 {
			timeout = min(timeout, b.s.QueryTimeout)
		}
		queries = append(queries, poller.Query{
			Name: outs[0].Name, Expr: expr, Interval: vq.interval, Timeout: timeout,
			Key: outs[0].Key, Also: outs[1:],
		})
	}
	for i := range b.rows {
		r := &b.rows[i]
		if r.Query == "" {
			continue
		}
		k := keys[r.Query]
		r.JoinLabels = describeKey(k)
		t := target{query: r.Query, key: k}
		b.idx.byExpr[[2]string{r.AlertName, r.Expr}] = t
		if !slices.ContainsFunc(b.idx.byName[r.AlertName], func(o target) bool { return o.query == t.query }) {
			b.idx.byName[r.AlertName] = append(b.idx.byName[r.AlertName], t)
		}
	}
	sort.SliceStable(b.rows, func(i, j int) bool {
		a, c := b.rows[i].Key(), b.rows[j].Key()
		return slices.Compare(a[:], c[:]) < 0
	})
	return b.idx, queries, b.rows
}

func (nk *nameKey) keySpec() rows.KeySpec {
	if nk.only != nil {
		return rows.KeySpec{Only: nk.only}
	}
	return rows.KeySpec{Drop: slices.Sorted(maps.Keys(nk.drop))}
}

// describeKey says, for the rules table, which labels make a series key.
func describeKey(k rows.KeySpec) string {
	if k.Only != nil {
		return "only {" + strings.Join(k.Only, ", ") + "}"
	}
	return "all but {" + strings.Join(append([]string{"__name__"}, k.Drop...), ", ") + "}"
}

// queryName is the PrometheusQuery name of the value rows of the rules
// named alertName with this value expression: readable (the alert name)
// and stable (a hash of the expression, not of rule order), e.g.
// NodeHighLoad:1a2b3c4d. Warning and critical rules of one name share it.
func queryName(alertName, valueExpr string) string {
	h := fnv.New32a()
	h.Write([]byte(valueExpr))
	return fmt.Sprintf("%s:%08x", alertName, h.Sum32())
}
