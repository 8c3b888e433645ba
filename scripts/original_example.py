#!/usr/bin/env python3
"""The alert path of Deephaven's original "Prometheus Alerts Metrics" example,
for the side-by-side benchmark (cmd/bridge-bench) only.

The original (deephaven-examples/prometheus-alerts-metrics, flask-app/server.py)
writes every alert of a webhook with one session.run_script() call, whose script
text is built from the alert's fields and calls a function that logs a row
through a DynamicTableWriter. This is that path with the 42.x names
(deephaven.DynamicTableWriter, deephaven.dtypes, deephaven.time). Building a
script from alert data is exactly what the bridge exists to avoid: here it is
fed only the benchmark's own synthetic alerts (letters and digits), never data
from outside.

Prints one JSON object: {"alerts": N, "seconds": S}.
"""
import argparse
import json
import sys
import time

INIT = """
from deephaven import DynamicTableWriter
import deephaven.dtypes as dht
from deephaven.time import to_j_instant, dh_now

original_alerts_writer = DynamicTableWriter({
    "PrometheusDateTime": dht.Instant, "Job": dht.string, "Instance": dht.string,
    "AlertIdentifier": dht.string, "Status": dht.string, "AlertIngestDateTime": dht.Instant,
})
original_alerts = original_alerts_writer.table

def update_prometheus_alerts(date_time_string, job, instance, alert_identifier, status):
    original_alerts_writer.write_row(to_j_instant(date_time_string), job, instance, alert_identifier, status, dh_now())
"""

UPDATE = 'update_prometheus_alerts("{date_time_string}", "{job}", "{instance}", "{alert_identifier}", "{status}")\n'


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=10000)
    p.add_argument("--alerts", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=0,
                   help="alerts written before the clock starts, so that the server's JIT has compiled the path")
    args = p.parse_args()

    from pydeephaven import Session

    session = Session(host=args.host, port=args.port)
    try:
        session.run_script(INIT)
        for i in range(args.warmup):
            session.run_script(UPDATE.format(date_time_string="2026-12-02T12:00:00.000Z",
                                             job="warmup", instance=f"i{i % 100}", alert_identifier="Bench", status="firing"))
        start = time.monotonic()
        for i in range(args.alerts):
            # As the original's receive_alert() does for each alert.
            session.run_script(UPDATE.format(
                date_time_string="2026-12-02T12:00:00.000 UTC".replace(" UTC", "Z"),
                job="bench", instance=f"i{i % 100}", alert_identifier="Bench", status="firing"))
        seconds = time.monotonic() - start
        print(json.dumps({"alerts": args.alerts, "seconds": seconds}))
        return 0
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
