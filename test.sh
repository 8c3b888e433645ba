#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing, starts a
# shared Deephaven test server, runs every Go test (unit, integration against
# real Deephaven, Prometheus and Alertmanager, and in Kafka mode a broker that
# testenv.StartKafka runs from the jars setup.sh fetched, end to end), short fuzz runs,
# and stops every process it started.
#
#   ./test.sh            everything
#   ./test.sh -run X     extra arguments go to `go test`
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)

scripts/setup.sh

run_dir="$root/.run/test-$$"
mkdir -p "$run_dir"
export TESTENV_LOG_DIR="$run_dir/logs"
mkdir -p "$TESTENV_LOG_DIR"

dh_pid=""
cleanup() {
  if [ -n "$dh_pid" ] && kill -0 "$dh_pid" 2>/dev/null; then
    kill -TERM -- "-$dh_pid" 2>/dev/null || kill -TERM "$dh_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$dh_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$dh_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

# One shared Deephaven server for all packages; tests that stop or
# reconfigure a server start their own.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setsid .venv/bin/python scripts/run_deephaven.py --port "$port" --data-dir "$run_dir/dh-shared" >"$run_dir/deephaven.log" 2>&1 &
dh_pid=$!
for _ in $(seq 1 300); do
  grep -q "DEEPHAVEN READY" "$run_dir/deephaven.log" 2>/dev/null && break
  kill -0 "$dh_pid" 2>/dev/null || { echo "test.sh: Deephaven test server died:"; tail -50 "$run_dir/deephaven.log"; exit 1; }
  sleep 0.5
done
grep -q "DEEPHAVEN READY" "$run_dir/deephaven.log" || { echo "test.sh: Deephaven test server did not start"; tail -50 "$run_dir/deephaven.log"; exit 1; }
export DH_ADDR="127.0.0.1:$port"
echo "test.sh: Deephaven test server at $DH_ADDR"

status=0
go vet ./... || status=1
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "test.sh: not gofmt-formatted (run gofmt -w):"; echo "$unformatted"; status=1
fi
go test -count=1 -timeout 45m "$@" ./... || status=1

if [ $# -eq 0 ]; then
  # Short fuzz runs over the seed corpora in testdata/. The budget is a
  # count of executions, not a duration: a duration races Go's fuzzing
  # coordinator on a busy machine and fails with "context deadline
  # exceeded" and no crasher (golang/go#75804).
  for target in "FuzzDecode ./pkg/alerts" "FuzzVectorToRows ./pkg/poller" "FuzzJournalReader ./pkg/journal" "FuzzWebhookRowsThroughTheJournal ./pkg/shipper" "FuzzReduce ./pkg/valueexpr" "FuzzRecordsFit ./pkg/kafkasink"; do
    set -- $target
    go test -run '^$' -fuzz "^$1\$" -fuzztime "${FUZZTIME:-10000x}" "$2" || status=1
  done
fi
exit $status
