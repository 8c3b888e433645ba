"""Deephaven application script for prometheus-deephaven-bridge.

Creates the tables the bridge writes to, the as-of join of alerts onto
metrics, and a few figures. The bridge checks the names, column types and keys
of the input tables against pkg/rows and refuses to write to tables
that differ, so the schema part below must stay identical to it (a Go
test compares them via scripts/check_app_d.py).

Everything here is static code: nothing is built from table contents, alert
labels or metric names.
"""

import os
import queue
import re
import threading

from deephaven import agg, parquet
from deephaven import dtypes as dht
from deephaven import input_table, new_table, update_graph
from deephaven.column import ColumnType, col_def
from deephaven.appmode import get_app_state
from deephaven.column import string_col
from deephaven.execution_context import get_exec_ctx
from deephaven.plot import PlotStyle
from deephaven.plot.figure import Figure
from deephaven.plot.selectable_dataset import one_click
from deephaven.table_listener import listen

# --- Schemas: keep in sync with pkg/rows/rows.go and samples.go (order matters). ---
#
# Two modes, chosen by the environment (never by data):
#  - direct (default): the tables below are input tables the bridge writes;
#  - Kafka (PROMETHEUS_BRIDGE_KAFKA_BROKERS set): the bridges produce rows to
#    Kafka topics (pkg/kafkasink) and the same table names are built from
#    Deephaven's own Kafka consumer, deduplicated by key (see _from_kafka).

# PROMETHEUS_BRIDGE_SINK_KIND=direct turns Kafka mode off even with brokers
# set (docker-compose.yml sets the brokers always, the kind by profile).
_kafka_brokers = os.environ.get("PROMETHEUS_BRIDGE_KAFKA_BROKERS", "").strip()
if os.environ.get("PROMETHEUS_BRIDGE_SINK_KIND", "kafka") != "kafka":
    _kafka_brokers = ""
_kafka_prefix = os.environ.get("PROMETHEUS_BRIDGE_KAFKA_TOPIC_PREFIX", "prometheus_")
_kafka_partitions = int(os.environ.get("PROMETHEUS_BRIDGE_KAFKA_PARTITIONS", "4"))


def _ensure_topics(topics):
    """Creates the topics that do not exist yet (as the bridge does), so that
    this server may start before any bridge. Fixed code: the names come from
    the prefix in the environment and the constant suffixes below."""
    import jpy

    admin_client = jpy.get_type("org.apache.kafka.clients.admin.AdminClient")
    new_topic = jpy.get_type("org.apache.kafka.clients.admin.NewTopic")
    optional = jpy.get_type("java.util.Optional")
    integer = jpy.get_type("java.lang.Integer")
    props = jpy.get_type("java.util.Properties")()
    props.setProperty("bootstrap.servers", _kafka_brokers)
    admin = admin_client.create(props)
    try:
        existing = set(admin.listTopics().names().get().toArray())
        missing = [t for t in topics if t not in existing]
        if missing:
            # The broker's default replication factor, as the bridge does.
            new = jpy.get_type("java.util.ArrayList")()
            for t in missing:
                new.add(new_topic(t, optional.of(integer(_kafka_partitions)), optional.empty()))
            try:
                admin.createTopics(new).all().get()
            except Exception as e:  # noqa: BLE001 - a bridge may have created them meanwhile
                print(f"prometheus.app: creating Kafka topics {missing}: {e}")
    finally:
        admin.close()


def _from_kafka(suffix, col_defs, keys):
    """The table of one topic: every record of the topic since its
    beginning (no consumer group, no committed offsets: a restarted server
    refills itself from Kafka's retention without any bridge's help), as a
    blink table, reduced to the last row per key. last_by on a blink table
    keeps one row per key for ever without keeping the blink rows, so two
    bridges producing the same alert event, or a bridge retrying a write,
    leave one row. Columns are the bridge's (pkg/kafkasink) plus Bridge,
    the bridge that produced the row."""
    from deephaven.stream.kafka import consumer as kc

    spec = dict(col_defs)
    spec["Bridge"] = dht.string
    blink = kc.consume(
        {"bootstrap.servers": _kafka_brokers, "auto.offset.reset": "earliest"},
        _kafka_prefix + suffix,
        offsets=kc.ALL_PARTITIONS_SEEK_TO_BEGINNING,
        key_spec=kc.KeyValueSpec.IGNORE,
        value_spec=kc.json_spec(spec),
        table_type=kc.TableType.blink(),
    )
    return blink.last_by(keys).view(list(spec.keys()))


_SLOTS = {"Writer": dht.long, "Slot": dht.long}


def _table(suffix, col_defs, key_cols, kafka_keys):
    """An input table in direct mode, a deduplicated Kafka table in Kafka
    mode (where the direct mode's Writer and Slot columns do not exist)."""
    if _kafka_brokers:
        return _from_kafka(suffix, {k: v for k, v in col_defs.items() if k not in _SLOTS}, kafka_keys)
    return input_table(col_defs=col_defs, key_cols=key_cols)


if _kafka_brokers:
    _ensure_topics([_kafka_prefix + s for s in ("alerts", "metrics", "samples", "rules", "alert_state", "alert_notifications")])

prometheus_alerts = _table(
    "alerts",
    {
        "PrometheusDateTime": dht.Instant,
        "Job": dht.string,
        "Instance": dht.string,
        "PrometheusQuery": dht.string,
        "Status": dht.string,
        "AlertIngestDateTime": dht.Instant,
        "AlertName": dht.string,
        "Severity": dht.string,
        "Fingerprint": dht.string,
        "StartsAt": dht.Instant,
        "EndsAt": dht.Instant,
        "Labels": dht.string,
        "Annotations": dht.string,
        "GeneratorURL": dht.string,
        "Receiver": dht.string,
        "Source": dht.string,
        "SeriesKey": dht.string,
        "Values": dht.string,
        "AlertValue": dht.double,
    },
    # A repeated notification of the same alert event replaces its row.
    ["Fingerprint", "Status", "PrometheusDateTime"],
    # Kafka mode: the last row per key.
    ["Fingerprint", "Status", "PrometheusDateTime"],
)

prometheus_metrics = _table(
    "metrics",
    {
        "PrometheusDateTime": dht.Instant,
        "PrometheusQuery": dht.string,
        "Job": dht.string,
        "Instance": dht.string,
        "Value": dht.double,
        "MetricIngestDateTime": dht.Instant,
        "Labels": dht.string,
        "SeriesKey": dht.string,
        "Writer": dht.long,
        "Slot": dht.long,
    },
    # Keyed by place, not content: the bridge reuses a slot once its row
    # left the live window (retention), so the table stays bounded.
    ["Writer", "Slot"],
    # Kafka mode: the last row per key.
    ["PrometheusQuery", "SeriesKey", "PrometheusDateTime"],
)

# Each alert's current state in Alertmanager (read from its API), silenced
# and inhibited ones included.
prometheus_alert_state = _table(
    "alert_state",
    {
        "Fingerprint": dht.string,
        "AlertName": dht.string,
        "Severity": dht.string,
        "State": dht.string,
        "SilencedBy": dht.string,
        "InhibitedBy": dht.string,
        "Receivers": dht.string,
        "StartsAt": dht.Instant,
        "EndsAt": dht.Instant,
        "UpdatedAt": dht.Instant,
        "Labels": dht.string,
        "Annotations": dht.string,
        "GeneratorURL": dht.string,
        "Alertmanager": dht.string,
        "SyncedAt": dht.Instant,
    },
    ["Fingerprint"],
    # Kafka mode: the last row per key.
    ["Fingerprint"],
)

# Every notification of every alert, repeats included.
prometheus_alert_notifications = _table(
    "alert_notifications",
    {
        "Fingerprint": dht.string,
        "StartsAt": dht.Instant,
        "Status": dht.string,
        "AlertName": dht.string,
        "ReceivedAt": dht.Instant,
        "Source": dht.string,
        "Receiver": dht.string,
        "Writer": dht.long,
        "Slot": dht.long,
    },
    ["Writer", "Slot"],
    # Kafka mode: the last row per key.
    ["Bridge", "Fingerprint", "StartsAt", "Status", "ReceivedAt", "Source", "Receiver"],
)

# One row per alerting rule the bridge discovered in Prometheus, with the
# value expression it polls (as PrometheusQuery `Query` in prometheus_metrics)
# and how each alert of the rule joins it, or why the rule is not polled.
prometheus_rules = _table(
    "rules",
    {
        "Group": dht.string,
        "File": dht.string,
        "AlertName": dht.string,
        "Expr": dht.string,
        "ValueExpr": dht.string,
        "Reduced": dht.bool_,
        "Derivation": dht.string,
        "Query": dht.string,
        "JoinLabels": dht.string,
        "ForSeconds": dht.double,
        "IntervalSeconds": dht.double,
        "StaticLabels": dht.string,
        "Annotations": dht.string,
        "Health": dht.string,
        "LastError": dht.string,
        "State": dht.string,
        "ActiveAlerts": dht.long,
        "LastEvaluation": dht.Instant,
        "UpdatedAt": dht.Instant,
        "Present": dht.bool_,
    },
    ["File", "Group", "AlertName", "Expr"],
    # Kafka mode: the last row per key.
    ["File", "Group", "AlertName", "Expr"],
)

# One row per bridge and alerts table: this server still holds what that
# bridge wrote (the row goes with the server's memory, like the rows).
prometheus_bridge_checkpoints = input_table(
    col_defs={
        "Bridge": dht.string,
        "AlertsTable": dht.string,
        "Host": dht.string,
        "Journal": dht.string,
        "Since": dht.Instant,
    },
    key_cols=["Bridge", "AlertsTable"],
)

# One row per float sample Prometheus sends by remote write (POST
# /api/v1/write to the bridge); append-only. Matches pkg/rows/samples.go.
prometheus_samples = _table(
    "samples",
    {
        "PrometheusDateTime": dht.Instant,
        "MetricName": dht.string,
        "SeriesKey": dht.string,
        "Labels": dht.string,
        "Value": dht.double,
        "Job": dht.string,
        "Instance": dht.string,
        "SampleIngestDateTime": dht.Instant,
        "Writer": dht.long,
        "Slot": dht.long,
    },
    ["Writer", "Slot"],
    # Kafka mode: the last row per key.
    ["MetricName", "SeriesKey", "PrometheusDateTime"],
)

# For each alert event, the latest sample of the same series (PrometheusQuery
# and SeriesKey) at or before the event. Matches rows.Join.
prometheus_alerts_metrics = prometheus_alerts.aj(
    prometheus_metrics,
    on=["PrometheusQuery", "SeriesKey", "PrometheusDateTime>=PrometheusDateTime"],
    joins=["Value", "MetricTimeStamp=PrometheusDateTime"],
)

# One row per alert episode (Fingerprint, StartsAt): the same aggregations
# as pkg/tables/decl.go (buildEpisodes). Times by min and max, never
# first/last: last_by picks by row position.
_episode_alerts = prometheus_alerts.agg_by(
    [
        agg.first(["AlertName", "Severity", "Labels"]),
        agg.min_(["FirstSeen=AlertIngestDateTime"]),
        agg.max_(["ResolvedAt=EndsAt"]),
    ],
    by=["Fingerprint", "StartsAt"],
)
_episode_notes = prometheus_alert_notifications.agg_by(
    [
        agg.count_where("Notifications", "Source != `alertmanager-api`"),
        agg.max_(["LastSeen=ReceivedAt"]),
        agg.distinct(["Sources=Source"]),
    ],
    by=["Fingerprint", "StartsAt"],
)
prometheus_alert_episodes = _episode_alerts.natural_join(
    _episode_notes, on=["Fingerprint", "StartsAt"], joins=["Notifications", "LastSeen", "Sources"]
).update_view(
    ["DurationSeconds = isNull(ResolvedAt) ? NULL_DOUBLE : (epochNanos(ResolvedAt) - epochNanos(StartsAt)) / 1.0e9"]
)
del _episode_alerts, _episode_notes

# --- History: the rows that left the live tables, as Parquet files the
# bridge writes (history.dir). The directory comes from the environment;
# new files show up without a restart. ---


def _history(directory, live_tables):
    """<table>_history for each live table: its Parquet tree, read as a
    refreshing, date-partitioned table with the live table's columns."""
    out = {}
    for name, live in live_tables.items():
        path = os.path.join(directory, name)
        os.makedirs(path, exist_ok=True)
        definition = [col_def("date", dht.string, column_type=ColumnType.PARTITIONING)]
        definition += [col_def(c.name, c.data_type) for c in live.columns]
        out[name + "_history"] = parquet.read(
            path,
            is_refreshing=True,
            file_layout=parquet.ParquetFileLayout.KV_PARTITIONED,
            table_definition=definition,
        )
    return out


_history_dir = os.environ.get("PROMETHEUS_BRIDGE_HISTORY_DIR", "")
if _history_dir:
    _app = get_app_state()
    for _name, _table in _history(
        _history_dir,
        {
            "prometheus_alerts": prometheus_alerts,
            "prometheus_metrics": prometheus_metrics,
            "prometheus_alert_notifications": prometheus_alert_notifications,
            "prometheus_alert_state": prometheus_alert_state,
            "prometheus_samples": prometheus_samples,
        },
    ).items():
        _app[_name] = _table
        globals()[_name] = _table
    del _app, _name, _table

# --- Figures (derived views; the bridge does not depend on them). ---


def _episode_figures(episodes):
    """How long episodes last per alert name, and how long alerts fired per
    day (resolved episodes, by the day they started, in UTC)."""
    resolved = episodes.where(["!isNull(DurationSeconds)"])
    per_name = resolved.agg_by(
        [agg.avg(["MeanMinutes=DurationSeconds"]), agg.max_(["MaxMinutes=DurationSeconds"]), agg.count_("Episodes")],
        by=["AlertName"],
    ).update_view(["MeanMinutes = MeanMinutes / 60.0", "MaxMinutes = MaxMinutes / 60.0"])
    durations = (
        Figure()
        .figure_title("Episode duration per alert name (minutes)")
        .plot_cat("Mean", t=per_name, category="AlertName", y="MeanMinutes")
        .plot_cat("Longest", t=per_name, category="AlertName", y="MaxMinutes")
        .show()
    )
    per_day = (
        resolved.update_view(["Day = formatDate(StartsAt, timeZone(`UTC`))"])
        .agg_by([agg.sum_(["FiringHours=DurationSeconds"])], by=["Day", "AlertName"])
        .update_view(["FiringHours = FiringHours / 3600.0"])
        .sort(["Day"])
    )
    firing_per_day = (
        Figure()
        .figure_title("Firing time per day (hours, resolved episodes)")
        .plot_cat("FiringHours", t=per_day, category="Day", y="FiringHours", by=["AlertName"])
        .show()
    )
    return durations, firing_per_day


prometheus_episode_durations, prometheus_firing_per_day = _episode_figures(prometheus_alert_episodes)


def _figures(alerts, metrics):
    """Builds the figures. Intermediate tables stay local so that only the
    figures show up next to the tables in the web UI."""
    # Every firing row is one firing episode: the key includes StartsAt (as
    # PrometheusDateTime), so repeated notifications of an episode do not add
    # rows.
    firings_per_query = alerts.where("Status == `firing`").count_by(
        "Firings", by=["PrometheusQuery"]
    )
    firing_count = (
        Figure()
        .figure_title("Alert firings per PrometheusQuery")
        .plot_cat("Firings", t=firings_per_query, category="PrometheusQuery", y="Firings")
        .show()
    )
    firing_share = (
        Figure()
        .figure_title("Share of alert firings per PrometheusQuery")
        .plot_pie("Firings", t=firings_per_query, category="PrometheusQuery", y="Firings")
        .show()
    )

    # Alert state as a number so it can share the time axis with the metric
    # values: 1 at a firing event, 0 at a resolve event.
    alert_state = alerts.update_view(
        ["AlertFiring = Status == `firing` ? 1.0 : 0.0"]
    ).sort(["PrometheusDateTime"])

    metrics = metrics.sort(["PrometheusDateTime"])

    # Left axis: the metric values, one line per series (PrometheusQuery, Job,
    # Instance); right axis: the alert state of the alerts on those queries as
    # a step line. The values of different queries differ by orders of
    # magnitude: hide series by clicking their legend entries.
    metric_values = (
        Figure()
        .figure_title("Metric values and alert firings")
        .plot_xy(
            "Value",
            t=metrics,
            x="PrometheusDateTime",
            y="Value",
            by=["PrometheusQuery", "Job", "Instance"],
        )
        .x_twin()
        .axes(plot_style=PlotStyle.STEP)
        .plot_xy(
            "AlertFiring",
            t=alert_state,
            x="PrometheusDateTime",
            y="AlertFiring",
            by=["PrometheusQuery", "AlertName", "Job", "Instance"],
        )
        .show()
    )

    # The configured queries are only known to the bridge, so instead of one
    # figure per query there is one figure with a PrometheusQuery one-click
    # filter: it stays empty until an Input Filter on PrometheusQuery picks a
    # query in the web UI. The web UI cannot draw one-click data sets split
    # with by=[...] (the figure reports "OpenAPI presently does not support
    # series of type ...Swappable"), so each side is a single series.
    metric_values_one_click = (
        Figure()
        .figure_title("Metric value and alert firings of one PrometheusQuery")
        .plot_xy(
            "Value",
            t=one_click(metrics, by=["PrometheusQuery"], require_all_filters=True),
            x="PrometheusDateTime",
            y="Value",
        )
        .x_twin()
        .axes(plot_style=PlotStyle.STEP)
        .plot_xy(
            "AlertFiring",
            t=one_click(alert_state, by=["PrometheusQuery"], require_all_filters=True),
            x="PrometheusDateTime",
            y="AlertFiring",
        )
        .show()
    )
    return firing_count, firing_share, metric_values, metric_values_one_click


(
    prometheus_alerts_firing_count,
    prometheus_alerts_firing_share,
    prometheus_metric_values,
    prometheus_metric_values_one_click,
) = _figures(prometheus_alerts, prometheus_metrics)


# --- One figure per rule family (figures appear as rules are discovered). ---
#
# A rule family is the alerting rules of one alert name (for example the
# warning and critical NodeFilesystemSpaceFillingUp rules). Its figure shows
# the values of the family's value expression over time, one line per
# series, and the family's alert events on them: a mark where an alert fired
# and one where it resolved. The families are only known once the bridge has
# discovered Prometheus's rules, so a listener on prometheus_rules adds a
# figure named prometheus_rule_<AlertName> to this application (and so to
# the Panels menu) for every new family. Each figure filters with where_in on
# a one-row key table: the alert name is data in a table, never part of a
# filter or a script.



def _rule_values(rules, metrics):
    """The value rows of every discovered rule, with the rule's alert name,
    and the table of rule families. A query name belongs to one alert name
    (the bridge names it AlertName:hash), so the join has one match per
    metric row at most."""
    queries = rules.where(["Present", "Query != ``"]).select_distinct(["AlertName", "Query"])
    values = metrics.natural_join(queries, on=["PrometheusQuery=Query"], joins=["AlertName"]).where(["!isNull(AlertName)"])
    return values, queries.select_distinct(["AlertName"])


class _RuleFigures:
    """Adds a figure for every new rule family to this application. Tables
    are made in a thread of its own: the listener only queues names."""

    def __init__(self, families, values, events):
        self.values, self.events = values, events
        self.app = get_app_state()
        self.ctx = get_exec_ctx()
        self.queue = queue.Queue()
        self.names = {}  # family -> field name
        threading.Thread(target=self._run, name="prometheus-rule-figures", daemon=True).start()
        self.listener = listen(families, self._on_update, do_replay=True)

    def _on_update(self, update, is_replay):
        for family in update.added(["AlertName"]).get("AlertName", []):
            if family is not None:
                self.queue.put(str(family))

    def _run(self):
        while True:
            family = self.queue.get()
            if family in self.names:
                continue
            try:
                # Some operations (sort) must hold the update graph's lock
                # when called from a thread of our own.
                with self.ctx, update_graph.shared_lock(self.values):
                    figure = self._figure(family)
                name = self._field_name(family)
                self.names[family] = name
                self.app[name] = figure
            except Exception as e:  # noqa: BLE001 - one family's figure must not stop the others
                print(f"prometheus.app: no figure for rule family {family!r}: {e}")

    def _figure(self, family):
        key = new_table([string_col("AlertName", [family])])
        values = self.values.where_in(key, ["AlertName"]).sort(["PrometheusDateTime"])
        events = self.events.where_in(key, ["AlertName"]).where(["!isNull(Value)"])
        firing = events.where(["Status == `firing`"]).sort(["PrometheusDateTime"])
        resolved = events.where(["Status == `resolved`"]).sort(["PrometheusDateTime"])
        return (
            Figure()
            .figure_title(family)
            .plot_xy("Value", t=values, x="PrometheusDateTime", y="Value", by=["SeriesKey"])
            .plot_xy("Fired", t=firing, x="PrometheusDateTime", y="Value", by=["SeriesKey"])
            .line(visible=False)
            .point(shape="up_triangle", size=2, color="red", visible=True)
            .plot_xy("Resolved", t=resolved, x="PrometheusDateTime", y="Value", by=["SeriesKey"])
            .line(visible=False)
            .point(shape="down_triangle", size=2, color="green", visible=True)
            .show()
        )

    def _field_name(self, family):
        """prometheus_rule_ and the alert name with anything but letters,
        digits and _ replaced, made unique."""
        base = "prometheus_rule_" + re.sub(r"[^A-Za-z0-9_]", "_", family)
        name, n = base, 1
        while name in self.names.values():
            n += 1
            name = f"{base}_{n}"
        return name


prometheus_rule_values, _families = _rule_values(prometheus_rules, prometheus_metrics)
_rule_figures = _RuleFigures(_families, prometheus_rule_values, prometheus_alerts_metrics)
del _families
