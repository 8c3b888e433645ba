#!/usr/bin/env python3
"""Report what app.d/ created on a running Deephaven server, as JSON.

Prints one JSON object on stdout:

  {
    "tables": {
      "<name>": {
        "columns": [{"name": "...", "type": "<deephaven:type>"}, ...],
        "input_table": true|false,
        "key_columns": ["...", ...]            # empty for append-only tables
      }, ...                                   # one entry per expected table
    },
    "missing": ["<name>", ...],                # expected tables that do not exist
    "figures": {"<name>": ["<error>", ...]},   # global figures and the errors
                                               # the server reports when it
                                               # describes them to the web UI
    "join": {...}                              # only with --write-rows
  }

Go tests compare "tables" with pkg/rows. With --write-rows the script also adds
one metric row and one alert row with a random Instance to the input tables and
reports what prometheus_alerts_metrics shows for that alert, to prove the
as-of join ticks. Only use it against a throw-away server: the rows stay.

Exit status: 0 if every expected table exists, no figure reports errors and,
with --write-rows, the join produced the expected value; 1 otherwise; 2 on
connection errors. Key columns are listed in table column order.
"""
import argparse
import datetime
import json
import sys
import time
import uuid

ALERTS = "prometheus_alerts"
METRICS = "prometheus_metrics"
JOINED = "prometheus_alerts_metrics"
CHECKPOINTS = "prometheus_bridge_checkpoints"
RULES = "prometheus_rules"
STATE = "prometheus_alert_state"
NOTIFICATIONS = "prometheus_alert_notifications"
EPISODES = "prometheus_alert_episodes"
SAMPLES = "prometheus_samples"
PSK_HANDLER = "io.deephaven.authentication.psk.PskAuthenticationHandler"


def describe(table):
    cols, keys = [], []
    for f in table.schema:
        md = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        cols.append({"name": f.name, "type": md.get("deephaven:type", str(f.type))})
        if md.get("deephaven:inputtable.isKey") == "true":
            keys.append(f.name)
    smd = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return {
        "columns": cols,
        "input_table": "deephaven:unsent.attribute.InputTable" in smd,
        "key_columns": keys,
    }


def figure_errors(session, obj):
    """Fetches a figure the way the web UI does and returns its errors.

    Errors such as unsupported series types only show up here, not when the
    app script builds the figure.
    """
    from deephaven_core.proto import console_pb2

    client = session.plugin_client(obj)
    try:
        payload, _ = next(client.resp_stream)
    finally:
        client.close()
    desc = console_pb2.FigureDescriptor()
    desc.ParseFromString(payload)
    return list(desc.errors)


def write_rows(session):
    """Adds one matching metric and alert row and reads the joined row back."""
    import pyarrow as pa

    # The rows are built from constants and a UUID only; nothing here comes
    # from outside the script.
    instance = "check-app-d-" + uuid.uuid4().hex
    series_key = '{instance="' + instance + '", job="check_app_d"}'
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    metric_ts = now - datetime.timedelta(seconds=1)
    ts = pa.timestamp("ns", tz="UTC")

    metrics = pa.table(
        {
            "PrometheusDateTime": pa.array([metric_ts], ts),
            "PrometheusQuery": ["check_app_d"],
            "Job": ["check_app_d"],
            "Instance": [instance],
            "Value": pa.array([42.5], pa.float64()),
            "MetricIngestDateTime": pa.array([now], ts),
            "Labels": ['{job="check_app_d"}'],
            "SeriesKey": [series_key],
            "Writer": pa.array([1], pa.int64()),
            "Slot": pa.array([uuid.uuid4().int & 0x7FFFFFFFFFFFFFFF], pa.int64()),
        }
    )
    alerts = pa.table(
        {
            "PrometheusDateTime": pa.array([now], ts),
            "Job": ["check_app_d"],
            "Instance": [instance],
            "PrometheusQuery": ["check_app_d"],
            "Status": ["firing"],
            "AlertIngestDateTime": pa.array([now], ts),
            "AlertName": ["CheckAppD"],
            "Severity": ["none"],
            "Fingerprint": [uuid.uuid4().hex[:16]],
            "StartsAt": pa.array([now], ts),
            "EndsAt": pa.array([None], ts),
            "Labels": ['{alertname="CheckAppD"}'],
            "Annotations": ["{}"],
            "GeneratorURL": [""],
            "Receiver": ["check_app_d"],
            "Source": ["alertmanager"],
            "SeriesKey": [series_key],
            "Values": [""],
            "AlertValue": pa.array([None], pa.float64()),
        }
    )
    for name, data in ((METRICS, metrics), (ALERTS, alerts)):
        target = session.open_table(name)
        session.input_table_service.add(target, session.import_table(data))

    joined = session.open_table(JOINED)
    got = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = joined.where([f"Instance == `{instance}`"]).to_arrow().to_pylist()
        if rows and rows[0].get("Value") is not None:
            got = rows[0]
            break
        time.sleep(0.2)
    ok = bool(got) and got["Value"] == 42.5 and got["MetricTimeStamp"] == metric_ts
    return {
        "ok": ok,
        "instance": instance,
        "value": got.get("Value"),
        "metric_timestamp": got["MetricTimeStamp"].isoformat() if got.get("MetricTimeStamp") else None,
        "expected_metric_timestamp": metric_ts.isoformat(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=10000)
    p.add_argument("--psk-file", default=None, help="file holding the server's pre-shared key")
    p.add_argument("--write-rows", action="store_true", help="add test rows and check the join ticks")
    args = p.parse_args()

    from pydeephaven import Session

    auth = {"auth_type": "Anonymous"}
    if args.psk_file:
        with open(args.psk_file, encoding="utf-8") as f:
            auth = {"auth_type": PSK_HANDLER, "auth_token": f.read().strip()}
    try:
        session = Session(host=args.host, port=args.port, **auth)
    except Exception as e:  # noqa: BLE001 - report any connection failure the same way
        print(f"cannot connect to {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2

    try:
        out = {"tables": {}, "missing": [], "figures": {}}
        existing = set(session.tables)
        for name in (ALERTS, METRICS, JOINED, RULES, CHECKPOINTS, STATE, NOTIFICATIONS, EPISODES, SAMPLES):
            if name not in existing:
                out["missing"].append(name)
                continue
            out["tables"][name] = describe(session.open_table(name))
        for name, obj in sorted(session.exportable_objects.items()):
            if obj.type == "Figure":
                out["figures"][name] = figure_errors(session, obj)
        ok = not out["missing"] and not any(out["figures"].values())
        if args.write_rows and ok:
            out["join"] = write_rows(session)
            ok = out["join"]["ok"]
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0 if ok else 1
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
