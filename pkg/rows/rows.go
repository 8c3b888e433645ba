// Package rows defines the rows the bridge writes to Deephaven and the schemas
// of the tables that hold them. It is the one place where column names, order
// and types live: the webhook handler and the poller produce these rows, the
// sink turns them into Arrow records, and app.d/ creates the same tables on the
// server (a test checks that both agree).
//
// The package is a leaf: it imports nothing else from this project.
package rows

import (
	"encoding/binary"
	"hash/maphash"
	"time"
)

// Default table names, as published in Deephaven's global scope.
const (
	DefaultAlertsTable  = "prometheus_alerts"
	DefaultMetricsTable = "prometheus_metrics"
	DefaultJoinedTable  = "prometheus_alerts_metrics"
	DefaultRulesTable   = "prometheus_rules"
	// DefaultStateTable holds each alert's current state in Alertmanager.
	DefaultStateTable = "prometheus_alert_state"
	// DefaultNotificationsTable logs every notification of every alert.
	DefaultNotificationsTable = "prometheus_alert_notifications"
	// DefaultEpisodesTable is derived: one row per alert episode.
	DefaultEpisodesTable = "prometheus_alert_episodes"
	// DefaultCheckpointsTable holds, per bridge and alerts table, the mark
	// that this Deephaven holds what the bridge wrote before.
	DefaultCheckpointsTable = "prometheus_bridge_checkpoints"
)

// Sources of alert rows, the Source column.
const (
	SourceAlertmanager = "alertmanager" // Alertmanager's webhook
	SourceGrafana      = "grafana"      // Grafana-managed alerts' webhook
	SourceAPI          = "alertmanager-api"
)

// AlertRow is one alert of one notification: a row of the prometheus_alerts
// table. Times are UTC; a zero time is written as null.
type AlertRow struct {
	PrometheusDateTime  time.Time // StartsAt when firing, EndsAt when resolved
	Job                 string
	Instance            string
	PrometheusQuery     string
	Status              string // "firing" or "resolved"
	AlertIngestDateTime time.Time
	AlertName           string
	Severity            string
	Fingerprint         string
	StartsAt            time.Time
	EndsAt              time.Time // zero while firing
	Labels              string    // canonical text, e.g. {instance="a:9090", job="x"}
	Annotations         string
	GeneratorURL        string
	Receiver            string
	// Source says who sent the row: SourceAlertmanager, SourceGrafana or
	// SourceAPI.
	Source string
	// SeriesKey identifies the series of PrometheusQuery the alert is
	// about (see KeySpec); the join matches it with the metric rows'.
	SeriesKey string
	// Values are the values the sender reported with the alert, as
	// canonical text ({B="44.2", C="1"}), or Grafana's valueString as sent
	// when it cannot be read; "" when it reported none.
	Values string
	// AlertValue is the value that fed the alert's condition, when the
	// sender reports one (Grafana); nil otherwise, written as null.
	AlertValue *float64 `json:",omitempty"`
}

// Key identifies an alert event: a repeat of the same key is the same row.
type AlertKey struct {
	Fingerprint        string
	Status             string
	PrometheusDateTime int64 // UnixNano
}

// Key returns the row's identity in prometheus_alerts.
func (r *AlertRow) Key() AlertKey {
	return AlertKey{Fingerprint: r.Fingerprint, Status: r.Status, PrometheusDateTime: r.PrometheusDateTime.UnixNano()}
}

// Hash returns a hash of the key, for sets of keys in flight.
func (k AlertKey) Hash(seed maphash.Seed) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(k.Fingerprint)
	h.WriteByte(0)
	h.WriteString(k.Status)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(k.PrometheusDateTime))
	h.Write(b[:])
	return h.Sum64()
}

// MetricRow is one sample of one series returned by a PromQL query: a row of
// the prometheus_metrics table.
type MetricRow struct {
	PrometheusDateTime   time.Time // the sample's timestamp
	PrometheusQuery      string    // the query's name
	Job                  string
	Instance             string
	Value                float64 // NaN and ±Inf are kept
	MetricIngestDateTime time.Time
	Labels               string // the series' whole label set as canonical text
	SeriesKey            string // the labels that identify the series in the join, see KeySpec
}

// ColumnType is a Deephaven column type the bridge uses.
type ColumnType int

// The column types of the bridge's tables.
const (
	String ColumnType = iota + 1
	Double
	Instant
	Long
	Bool
)

// String returns the Deephaven (Java) type name, as seen in deephaven:type.
func (t ColumnType) String() string {
	switch t {
	case String:
		return "java.lang.String"
	case Double:
		return "double"
	case Instant:
		return "java.time.Instant"
	case Long:
		return "long"
	case Bool:
		return "java.lang.Boolean"
	}
	return "unknown"
}

// Column is one column of a table.
type Column struct {
	Name string
	Type ColumnType
}

// TableSpec describes one of the bridge's input tables.
type TableSpec struct {
	Columns []Column
	// Keys are the key columns of a key-backed input table; empty means
	// append-only.
	Keys []string
	// Time is the column retention ages rows by: a row whose Time is older
	// than retention.live leaves the live table (for the history). Empty
	// for tables that hold current state, which retention leaves alone.
	Time string
	// Slotted tables are keyed by place, not by content: the key columns
	// are SlotKeys, and the bridge gives every row a place (Slot) that is
	// reused once the row left. Deephaven's key-backed input tables keep
	// every key they ever saw, so only a table whose keys recur stays
	// bounded under retention (see pkg/tables, slots.go).
	Slotted bool
}

// SlotColumns end the column list of a slotted table: the writer (a hash
// of the bridge's retention.writer name) and the row's place among that
// writer's rows.
var SlotColumns = []Column{
	{"Writer", Long},
	{"Slot", Long},
}

// SlotKeys are the key columns of a slotted table.
var SlotKeys = []string{"Writer", "Slot"}

// AlertColumns is the column list of prometheus_alerts, in order.
var AlertColumns = []Column{
	{"PrometheusDateTime", Instant},
	{"Job", String},
	{"Instance", String},
	{"PrometheusQuery", String},
	{"Status", String},
	{"AlertIngestDateTime", Instant},
	{"AlertName", String},
	{"Severity", String},
	{"Fingerprint", String},
	{"StartsAt", Instant},
	{"EndsAt", Instant},
	{"Labels", String},
	{"Annotations", String},
	{"GeneratorURL", String},
	{"Receiver", String},
	{"Source", String},
	{"SeriesKey", String},
	{"Values", String},
	{"AlertValue", Double},
}

// AlertKeys are the key columns of prometheus_alerts: the same alert event
// replayed replaces its row instead of adding one.
var AlertKeys = []string{"Fingerprint", "Status", "PrometheusDateTime"}

// MetricColumns is the column list of prometheus_metrics, in order.
var MetricColumns = []Column{
	{"PrometheusDateTime", Instant},
	{"PrometheusQuery", String},
	{"Job", String},
	{"Instance", String},
	{"Value", Double},
	{"MetricIngestDateTime", Instant},
	{"Labels", String},
	{"SeriesKey", String},
	{"Writer", Long},
	{"Slot", Long},
}

// RuleRow is one alerting rule of Prometheus as the bridge discovered it: a
// row of prometheus_rules. It shows what the bridge derived from the rule
// (the value expression it polls and how the alerts join it) and why, next
// to the rule's own state in Prometheus.
type RuleRow struct {
	Group      string
	File       string
	AlertName  string
	Expr       string // the rule's expression, as Prometheus prints it
	ValueExpr  string // the vector whose value made it fire; "" when not polled
	Reduced    bool   // ValueExpr is part of Expr, not all of it
	Derivation string // how ValueExpr was derived, or why not
	// Query is the PrometheusQuery name the value rows are written
	// under; "" when the rule is not polled.
	Query           string
	JoinLabels      string  // how an alert's SeriesKey is made, for people: "all but {…}" or "only {…}"
	ForSeconds      float64 // the rule's for
	IntervalSeconds float64 // the rule group's evaluation interval
	StaticLabels    string  // canonical text
	Annotations     string
	Health          string
	LastError       string
	State           string // inactive, pending or firing
	ActiveAlerts    int64
	LastEvaluation  time.Time
	UpdatedAt       time.Time // when the bridge read the rule
	// Present is false once the rule is gone from Prometheus (its row
	// stays, so that alerts of it can still be explained).
	Present bool
}

// RuleColumns is the column list of prometheus_rules.
var RuleColumns = []Column{
	{"Group", String},
	{"File", String},
	{"AlertName", String},
	{"Expr", String},
	{"ValueExpr", String},
	{"Reduced", Bool},
	{"Derivation", String},
	{"Query", String},
	{"JoinLabels", String},
	{"ForSeconds", Double},
	{"IntervalSeconds", Double},
	{"StaticLabels", String},
	{"Annotations", String},
	{"Health", String},
	{"LastError", String},
	{"State", String},
	{"ActiveAlerts", Long},
	{"LastEvaluation", Instant},
	{"UpdatedAt", Instant},
	{"Present", Bool},
}

// RuleKeys are its key columns: a rule is its group, file, name and
// expression (names repeat across warning/critical pairs, expressions
// across alert names).
var RuleKeys = []string{"File", "Group", "AlertName", "Expr"}

// Key identifies the rule.
func (r *RuleRow) Key() [4]string { return [4]string{r.File, r.Group, r.AlertName, r.Expr} }

// KeyHash returns a hash of the rule's key, for sets of keys in flight.
func (r *RuleRow) KeyHash(seed maphash.Seed) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for _, s := range r.Key() {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// Alert states in prometheus_alert_state: Alertmanager's own, and StateGone
// for an alert Alertmanager no longer holds (resolved and expired).
const (
	StateActive      = "active"
	StateSuppressed  = "suppressed"
	StateUnprocessed = "unprocessed"
	StateGone        = "gone"
)

// AlertStateRow is an alert's current state as Alertmanager holds it: a
// row of prometheus_alert_state, keyed on the fingerprint. Silenced and
// inhibited alerts are here although no webhook ever carries them.
type AlertStateRow struct {
	Fingerprint  string
	AlertName    string
	Severity     string
	State        string // StateActive, StateSuppressed, StateUnprocessed or StateGone
	SilencedBy   string // silence IDs, comma-separated
	InhibitedBy  string // fingerprints of the inhibiting alerts, comma-separated
	Receivers    string // comma-separated
	StartsAt     time.Time
	EndsAt       time.Time // Alertmanager's provisional end while active
	UpdatedAt    time.Time
	Labels       string
	Annotations  string
	GeneratorURL string
	Alertmanager string    // the URL that reported it last
	SyncedAt     time.Time // when the bridge read it
}

// StateColumns is the column list of prometheus_alert_state.
var StateColumns = []Column{
	{"Fingerprint", String},
	{"AlertName", String},
	{"Severity", String},
	{"State", String},
	{"SilencedBy", String},
	{"InhibitedBy", String},
	{"Receivers", String},
	{"StartsAt", Instant},
	{"EndsAt", Instant},
	{"UpdatedAt", Instant},
	{"Labels", String},
	{"Annotations", String},
	{"GeneratorURL", String},
	{"Alertmanager", String},
	{"SyncedAt", Instant},
}

// StateKeys are its key columns: one row per alert.
var StateKeys = []string{"Fingerprint"}

// NotificationRow is one alert of one notification as received, repeats
// included: a row of prometheus_alert_notifications. Episodes count them.
type NotificationRow struct {
	Fingerprint string
	StartsAt    time.Time
	Status      string
	AlertName   string
	ReceivedAt  time.Time
	Source      string
	Receiver    string
}

// EpisodeFormulas finish prometheus_alert_episodes after its aggregations:
// the duration of a resolved episode (null while firing). Fixed text, the
// same in app.d.
var EpisodeFormulas = []string{
	"DurationSeconds = isNull(ResolvedAt) ? NULL_DOUBLE : (epochNanos(ResolvedAt) - epochNanos(StartsAt)) / 1.0e9",
}

// NotificationColumns is the column list of prometheus_alert_notifications.
var NotificationColumns = []Column{
	{"Fingerprint", String},
	{"StartsAt", Instant},
	{"Status", String},
	{"AlertName", String},
	{"ReceivedAt", Instant},
	{"Source", String},
	{"Receiver", String},
	{"Writer", Long},
	{"Slot", Long},
}

// CheckpointRow is a row of prometheus_bridge_checkpoints: the bridge
// Bridge has written to the alerts table AlertsTable of this Deephaven, and
// this Deephaven still holds what it wrote (the row vanishes with the
// server's memory, which is the point). See pkg/shipper for how the journal
// uses it.
type CheckpointRow struct {
	Bridge      string // the journal's ID, or a per-process ID without a journal
	AlertsTable string
	Host        string    // where the bridge runs, for people reading the table
	Journal     string    // the journal directory, "" without one
	Since       time.Time // when the bridge wrote the row into this Deephaven
}

// CheckpointColumns is the column list of prometheus_bridge_checkpoints.
var CheckpointColumns = []Column{
	{"Bridge", String},
	{"AlertsTable", String},
	{"Host", String},
	{"Journal", String},
	{"Since", Instant},
}

// CheckpointKeys are its key columns: one row per bridge and alerts table.
var CheckpointKeys = []string{"Bridge", "AlertsTable"}

// The input tables.
var (
	AlertsTable  = TableSpec{Columns: AlertColumns, Keys: AlertKeys, Time: "AlertIngestDateTime"}
	MetricsTable = TableSpec{Columns: MetricColumns, Keys: SlotKeys, Time: "PrometheusDateTime", Slotted: true}
	RulesTable   = TableSpec{Columns: RuleColumns, Keys: RuleKeys}
	StateTable   = TableSpec{Columns: StateColumns, Keys: StateKeys, Time: "SyncedAt"}
	// NotificationsTable logs every notification: it has no key of its
	// own, and is slotted so that retention can delete from it.
	NotificationsTable = TableSpec{Columns: NotificationColumns, Keys: SlotKeys, Time: "ReceivedAt", Slotted: true}
	CheckpointsTable   = TableSpec{Columns: CheckpointColumns, Keys: CheckpointKeys}
)

// Join describes prometheus_alerts_metrics: Deephaven's as-of join of the
// alerts (left) onto the metrics (right). For each alert it adds the value of
// the latest sample of the same PrometheusQuery and SeriesKey at or before
// the alert's PrometheusDateTime.
var Join = struct {
	ExactMatch []string
	AsOf       string
	Add        []string
}{
	ExactMatch: []string{"PrometheusQuery", "SeriesKey"},
	AsOf:       "PrometheusDateTime>=PrometheusDateTime",
	Add:        []string{"Value", "MetricTimeStamp=PrometheusDateTime"},
}
