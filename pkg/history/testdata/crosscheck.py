#!/usr/bin/env python3
"""Reads a table directory of the history with pyarrow, pandas and DuckDB
and prints what each saw as JSON, for crosscheck_test.go:

  crosscheck.py DIR                      DIR is <history dir>/<table>
  crosscheck.py DIR --deephaven H:P      read it with the Deephaven server at H:P instead
                                         (parquet.read with KV_PARTITIONED, server-side)

{"pyarrow": {"names": [...], "types": {column: type}, "rows": [[value, ...], ...]}, "pandas": ..., "duckdb": ...}
or {"deephaven": ...}, its types "<arrow type>|<deephaven:type>".

Rows are sorted by SeriesKey, columns in the readers' order (the file's, then
date). Timestamps are Unix nanoseconds, the date partition is YYYY-MM-DD,
floats that JSON lacks are "NaN", "+Inf", "-Inf", and nulls are null.
pandas has no null floats: it reads them as NaN.
"""
import json
import math
import sys

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def jv(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
    return v


def from_arrow(t, types=None):
    t = t.sort_by("SeriesKey")
    cols = []
    for f, c in zip(t.schema, t.columns):
        if pa.types.is_timestamp(f.type):
            c = c.cast(pa.int64())
        elif pa.types.is_dictionary(f.type) or pa.types.is_date(f.type):
            c = c.cast(pa.string())
        cols.append(c.to_pylist())
    return {
        "names": t.column_names,
        "types": types or {f.name: str(f.type) for f in t.schema},
        "rows": [[jv(v) for v in r] for r in zip(*cols)],
    }


def from_pandas(df):
    df = df.sort_values("SeriesKey")
    cols = []
    for name in df.columns:
        s, dt = df[name], str(df[name].dtype)
        if dt.startswith("datetime64"):
            cols.append([None if pd.isna(v) else int(v.value) for v in s])
        elif dt == "float64":
            cols.append([jv(float(v)) for v in s])
        else:
            cols.append([None if pd.isna(v) else str(v) for v in s])
    return {
        "names": [str(c) for c in df.columns],
        "types": {str(c): str(df[c].dtype) for c in df.columns},
        "rows": [list(r) for r in zip(*cols)],
    }


def deephaven(d, addr):
    from pydeephaven import Session

    host, port = addr.rsplit(":", 1)
    s = Session(host=host, port=int(port), auth_type="Anonymous")
    try:
        # The path goes in as a Python literal (repr), never as code.
        s.run_script(
            "from deephaven import parquet\n"
            "from deephaven.parquet import ParquetFileLayout\n"
            f"history_crosscheck = parquet.read({d!r}, file_layout=ParquetFileLayout.KV_PARTITIONED)\n"
        )
        t = s.open_table("history_crosscheck").to_arrow()
    finally:
        s.close()
    types = {f.name: f"{f.type}|{(f.metadata or {}).get(b'deephaven:type', b'').decode()}" for f in t.schema}
    return from_arrow(t, types)


def main():
    d = sys.argv[1]
    if len(sys.argv) == 4 and sys.argv[2] == "--deephaven":
        print(json.dumps({"deephaven": deephaven(d, sys.argv[3])}))
        return
    out = {"pyarrow": from_arrow(pq.read_table(d)), "pandas": from_pandas(pd.read_parquet(d))}
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{d}/**/*.parquet', hive_partitioning=true)")
    out["duckdb"] = from_arrow(rel.to_arrow_table(), {n: str(t) for n, t in zip(rel.columns, rel.types)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
