#!/usr/bin/env python3
"""Deephaven's own Python client (pydeephaven) on the command line, for tests
that cross-check what our Go client wrote, and for the speed comparison.

  pydh.py read  --port P --table NAME        print the table as JSON (schema + rows)
  pydh.py write --port P --table NAME        publish a small typed table made by pydeephaven
  pydh.py bench --port P --rows N --mode M   time pydeephaven uploads; prints JSON

All values come from the command line as data; nothing is sent as a script.
"""
import argparse
import datetime as dt
import json
import math
import sys
import time

import pyarrow as pa
from pydeephaven import Session


def connect(a):
    if a.psk:
        return Session(host=a.host, port=a.port, auth_type="io.deephaven.authentication.psk.PskAuthenticationHandler", auth_token=a.psk)
    return Session(host=a.host, port=a.port, auth_type="Anonymous")


def jsonable(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
    if isinstance(v, (dt.datetime, pa.TimestampScalar)):
        return v.isoformat()
    if hasattr(v, "value") and hasattr(v, "tz"):  # pandas Timestamp
        return int(v.value)
    return v


def read(a):
    s = connect(a)
    t = s.open_table(a.table).to_arrow()
    out = {
        "columns": [{"name": f.name, "arrow": str(f.type), "deephaven": (f.metadata or {}).get(b"deephaven:type", b"").decode()} for f in t.schema],
        "rows": [],
    }
    cols = [c.to_pylist() for c in t.columns]
    for i in range(t.num_rows):
        row = []
        for f, c in zip(t.schema, cols):
            v = c[i]
            if pa.types.is_timestamp(f.type) and v is not None:
                v = t.column(f.name).cast(pa.int64())[i].as_py()
            row.append(jsonable(v))
        out["rows"].append(row)
    print(json.dumps(out))
    s.close()


def write(a):
    s = connect(a)
    tbl = pa.table({
        "S": pa.array(["x", None, "quote\"d"], pa.string()),
        "D": pa.array([1.5, float("nan"), float("-inf")], pa.float64()),
        "L": pa.array([1, None, -7], pa.int64()),
        "T": pa.array([1_700_000_000_000_000_001, None, 0], pa.timestamp("ns", tz="UTC")),
    })
    t = s.import_table(tbl)
    s.bind_table(a.table, t)
    s.close()


def bench(a):
    s = connect(a)
    n = a.rows
    def batch(k):
        now = time.time_ns()
        return pa.table({
            "Fingerprint": pa.array([f"fp{i}" for i in range(k)], pa.string()),
            "At": pa.array([now + i for i in range(k)], pa.timestamp("ns", tz="UTC")),
            "Value": pa.array([float(i) for i in range(k)], pa.float64()),
        })
    if a.mode == "import":
        tbl = batch(n)
        times = []
        for _ in range(a.reps):
            start = time.perf_counter()
            s.import_table(tbl)
            times.append(time.perf_counter() - start)
        el = sorted(times)[len(times) // 2]  # median
    else:
        from pydeephaven.table import InputTable  # noqa: F401
        per = 1000 if a.mode == "append1000" else 1
        tmpl = batch(per)
        schema = tmpl.schema
        it = s.input_table(schema=schema)
        calls = max(1, n // per)
        start = time.perf_counter()
        for _ in range(calls):
            t = s.import_table(tmpl)
            it.add(t)
        el = time.perf_counter() - start
        n = calls * per
    print(json.dumps({"rows": n, "seconds": el, "rows_per_second": n / el if el > 0 else 0}))
    s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["read", "write", "bench"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--psk", default=None)
    p.add_argument("--table", default=None)
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--reps", type=int, default=5, help="import mode: runs, the median is reported")
    p.add_argument("--mode", choices=["import", "append1000", "append1"], default="import")
    a = p.parse_args()
    {"read": read, "write": write, "bench": bench}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
