#!/usr/bin/env python3
"""Start an embedded Deephaven server (PyPI deephaven-server) and keep it running.

Used by the test suite and by start.sh when Docker is not available. It binds to
loopback only, prints "DEEPHAVEN READY <port>" once the server answers, and
stops cleanly on SIGTERM or SIGINT.

Authentication: anonymous by default; with --psk-file (or the environment
variable named by --psk-env) the pre-shared-key handler is used instead. The key
is passed to the JVM as a system property and never printed.
"""
import argparse
import os
import signal
import sys
import threading


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=10000)
    p.add_argument("--app-dir", default=None, help="Deephaven application-mode directory (app.d)")
    p.add_argument("--data-dir", default=None, help="directory for the server's cache, config and data")
    p.add_argument("--heap", default="2g", help="JVM heap size (-Xmx)")
    p.add_argument("--psk-file", default=None, help="file holding a pre-shared key; enables PSK auth")
    p.add_argument("--psk-env", default=None, help="environment variable holding a pre-shared key; enables PSK auth")
    p.add_argument(
        "--gc",
        choices=("zgc", "g1"),
        default="zgc",
        help="the JVM's garbage collector: zgc (default) pauses for well under a millisecond; "
        "g1 (deephaven-server's default, with a 100 ms pause target) paused 30-220 ms every few seconds "
        "under the bridge's load, which was the p99 of its acknowledgements (docs/performance.md)",
    )
    p.add_argument("--jvm-arg", action="append", default=[], help="one more JVM argument (repeatable); it overrides the defaults")
    args = p.parse_args()

    jvm_args = [f"-Xmx{args.heap}", "-Dprocess.info.system-info.enabled=false"]
    key = None
    if args.psk_file:
        with open(args.psk_file, encoding="utf-8") as f:
            key = f.read().strip()
    elif args.psk_env:
        key = os.environ.get(args.psk_env, "").strip()
        if not key:
            print(f"environment variable {args.psk_env} is empty", file=sys.stderr)
            return 2
    if key:
        jvm_args += [
            "-DAuthHandlers=io.deephaven.authentication.psk.PskAuthenticationHandler",
            f"-Dauthentication.psk={key}",
        ]
    else:
        jvm_args += ["-DAuthHandlers=io.deephaven.auth.AnonymousAuthenticationHandler"]
    if args.app_dir:
        jvm_args += [
            f"-Ddeephaven.application.dir={os.path.abspath(args.app_dir)}",
            # app.d's <table>_history tables find new Parquet files on this
            # period (Deephaven's default is 60 s): rows that left a live
            # table are out of sight until their file is found.
            "-DTableDataRefreshService.tableLocationsRefreshMillis=5000",
        ]
    if args.data_dir:
        d = os.path.abspath(args.data_dir)
        for sub in ("cache", "config", "data"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        jvm_args += [
            f"-Ddeephaven.cacheDir={d}/cache",
            f"-Ddeephaven.configDir={d}/config",
            f"-Ddeephaven.dataDir={d}/data",
            f"-Dstorage.path={d}/data",
        ]

    if args.gc == "zgc":
        # deephaven-server's defaults select G1; two collectors cannot both be on.
        jvm_args += ["-XX:-UseG1GC", "-XX:+UseZGC"]
    jvm_args += args.jvm_arg

    from deephaven_server import Server

    server = Server(host=args.host, port=args.port, jvm_args=jvm_args)
    server.start()
    print(f"DEEPHAVEN READY {server.port}", flush=True)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1):
        pass
    # The JVM was started with -Xrs and its own shutdown hooks run at interpreter exit.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
