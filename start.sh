#!/usr/bin/env bash
# Starts the demo stack: Deephaven (with app.d), Prometheus, Alertmanager and
# the bridge. With a working Docker engine this is `docker compose up --build`;
# without one the same stack runs as local processes. See --help.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./start.sh [--no-docker] [--kafka] [--help]

Starts Deephaven, Prometheus, Alertmanager and prometheus-deephaven-bridge,
prints their URLs and, until Ctrl-C, a status line every few seconds.
Ctrl-C stops everything that was started.

With a working Docker engine (`docker info` succeeds) it runs
`docker compose up --build` with docker-compose.yml (fixed ports 10000, 9090,
9093, 5000). Otherwise, or with --no-docker, it runs the stack as local
processes bound to 127.0.0.1: scripts/setup.sh installs what is missing
(Debian packages and the .venv with deephaven-server), the bridge is built
with `go build`, and the compose configuration files are reused with the
service names replaced by local addresses.

Options:
  --no-docker   run local processes even if Docker works
  --kafka       Kafka mode: a Kafka broker too (scripts/kafka.sh locally, the
                compose profile kafka with Docker); the bridge produces to it
                and Deephaven's app.d consumes the topics
  -h, --help    show this help

Environment (local mode):
  DEEPHAVEN_PORT=10000     Deephaven web UI and gRPC
  PROMETHEUS_PORT=9090
  ALERTMANAGER_PORT=9093
  BRIDGE_PORT=5000         the bridge's webhook (/alerts) and /metrics
  KAFKA_PORT=19092         with --kafka: the broker (and KAFKA_CONTROLLER_PORT=19093)
  DEEPHAVEN_HEAP=2g        Deephaven JVM heap (-Xmx)
  DEEPHAVEN_GC=zgc         Deephaven's garbage collector: zgc, or g1 (longer pauses)
  STATUS_INTERVAL=5        seconds between status lines
  START_RUN_DIR=.run       configs, data, logs (logs/) and the bridge binary
  PROMETHEUS_BIN, ALERTMANAGER_BIN   binaries (default: from $PATH)
EOF
}

root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

local_mode=false
kafka=false
for arg in "$@"; do
  case $arg in
    --no-docker) local_mode=true ;;
    --kafka) kafka=true ;;
    -h | --help) usage; exit 0 ;;
    *) echo "start.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

# --- Docker -------------------------------------------------------------------

# `docker info` talks to the engine, so it fails where only the client is
# installed; the timeout covers an engine socket that does not answer.
if ! $local_mode && command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
  if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
  else
    echo "start.sh: Docker works but neither 'docker compose' nor docker-compose is installed; use --no-docker" >&2
    exit 1
  fi
  if $kafka; then
    # One variable switches the bridge and app.d (docker-compose.yml).
    export SINK_KIND=kafka
    compose+=(--profile kafka)
  fi
  cat <<EOF
start.sh: Docker engine found, running: ${compose[*]} up --build
  Deephaven IDE   http://localhost:10000/ide/  (after its health check passes)
  Prometheus      http://localhost:9090/
  Alertmanager    http://localhost:9093/
  bridge metrics  http://localhost:5000/metrics
Ctrl-C stops the stack; '${compose[*]} down' removes the containers.
EOF
  # compose handles Ctrl-C itself; nothing of ours needs to outlive it.
  exec "${compose[@]}" -f docker-compose.yml up --build
fi

# --- Local processes --------------------------------------------------------

DEEPHAVEN_PORT=${DEEPHAVEN_PORT:-10000}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
BRIDGE_PORT=${BRIDGE_PORT:-5000}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
DEEPHAVEN_HEAP=${DEEPHAVEN_HEAP:-2g}
DEEPHAVEN_GC=${DEEPHAVEN_GC:-zgc}
STATUS_INTERVAL=${STATUS_INTERVAL:-5}

die() { echo "start.sh: $*" >&2; exit 1; }

for var in DEEPHAVEN_PORT PROMETHEUS_PORT ALERTMANAGER_PORT BRIDGE_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT STATUS_INTERVAL; do
  [[ ${!var} =~ ^[0-9]+$ ]] || die "$var=${!var} is not a number"
done
ports="$DEEPHAVEN_PORT $PROMETHEUS_PORT $ALERTMANAGER_PORT $BRIDGE_PORT"
port_vars="DEEPHAVEN_PORT:Deephaven PROMETHEUS_PORT:Prometheus ALERTMANAGER_PORT:Alertmanager BRIDGE_PORT:bridge"
if $kafka; then
  ports="$ports $KAFKA_PORT $KAFKA_CONTROLLER_PORT"
  port_vars="$port_vars KAFKA_PORT:Kafka KAFKA_CONTROLLER_PORT:Kafka-controller"
fi
[ "$(tr ' ' '\n' <<<"$ports" | sort -u | wc -l)" -eq "$(wc -w <<<"$ports")" ] || die "the ports must differ: $ports"

run_dir=${START_RUN_DIR:-$root/.run}
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)
logs=$run_dir/logs
pidfile=$run_dir/pids

# The pid file lists "name pid" of this script and of every service, each the
# leader of its own process group. A start.sh that is still running owns the
# run directory; services listed by one that was killed too hard to clean up
# (SIGKILL) are stopped here, so they do not hold the ports forever.
cmdline_of() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true; }
if [ -f "$pidfile" ]; then
  read -r _ owner <"$pidfile" || true
  if [ -n "${owner:-}" ] && [[ $(cmdline_of "$owner") == *start.sh* ]]; then
    die "already running as pid $owner with run directory $run_dir"
  fi
  # Services in reverse start order: the bridge first.
  while read -r name pid; do
    [ "$name" != start.sh ] && [[ $(cmdline_of "$pid") == *"$run_dir"* ]] || continue
    echo "start.sh: stopping $name (pid $pid) left over from an earlier run"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done < <(tac "$pidfile")
fi

# Connecting is the portable test; it also sees listeners on 0.0.0.0 and ::.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for pair in $port_vars; do
  var=${pair%%:*}
  if port_in_use "${!var}"; then
    die "port ${!var} for ${pair#*:} is already in use; choose another with $var=..."
  fi
done

scripts/setup.sh

for tool in go curl setsid; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
prometheus_bin=${PROMETHEUS_BIN:-$(command -v prometheus || true)}
alertmanager_bin=${ALERTMANAGER_BIN:-$(command -v prometheus-alertmanager || command -v alertmanager || true)}
[ -n "$prometheus_bin" ] || die "prometheus not found (set PROMETHEUS_BIN)"
[ -n "$alertmanager_bin" ] || die "prometheus-alertmanager not found (set ALERTMANAGER_BIN)"

mkdir -p "$logs" "$run_dir/bin" "$run_dir/prometheus" "$run_dir/alertmanager"
echo "start.sh: building the bridge"
go build -o "$run_dir/bin/prometheus-deephaven-bridge" ./cmd/prometheus-deephaven-bridge

# render FILE OLD NEW...: FILE with each OLD replaced by NEW. An OLD that is
# missing is an error, so that an edited compose config cannot silently keep
# pointing at compose hostnames.
render() {
  local file=$1 text
  text=$(<"$file")
  shift
  while [ $# -gt 0 ]; do
    [[ $text == *"$1"* ]] || die "$file no longer contains $1, which start.sh replaces"
    text=${text//"$1"/"$2"}
    shift 2
  done
  printf '%s\n' "$text"
}

render prometheus/prometheus.yml \
  localhost:9090 "127.0.0.1:$PROMETHEUS_PORT" \
  alertmanager:9093 "127.0.0.1:$ALERTMANAGER_PORT" \
  bridge:5000 "127.0.0.1:$BRIDGE_PORT" >"$run_dir/prometheus/prometheus.yml"
# rule_files is relative to prometheus.yml; the rules use {{ }} templates and
# are copied unchanged.
cp prometheus/rules.yml "$run_dir/prometheus/rules.yml"
render alertmanager/config.yml \
  http://bridge:5000/alerts "http://127.0.0.1:$BRIDGE_PORT/alerts" >"$run_dir/alertmanager/alertmanager.yml"

# Services, in start order, as "name pid".
services=()
stopping=false
hurry=false
sleep_pid=""

# stop_groups TIMEOUT PID...: SIGTERM to each process group, SIGKILL to those
# still there after TIMEOUT seconds (at once after a second Ctrl-C).
stop_groups() {
  local timeout=$1 pid deadline alive
  shift
  for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + timeout))
  while :; do
    alive=false
    for pid in "$@"; do kill -0 -- "-$pid" 2>/dev/null && alive=true; done
    $alive || return 0
    { $hurry || [ $SECONDS -ge $deadline ]; } && break
    sleep 0.2
  done
  for pid in "$@"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

cleanup() {
  local status=$? entry bridge=() others=()
  $stopping && return
  stopping=true
  # A second Ctrl-C skips the grace periods.
  trap 'hurry=true' INT TERM
  [ -z "$sleep_pid" ] || kill "$sleep_pid" 2>/dev/null || true
  if [ ${#services[@]} -gt 0 ]; then
    echo "start.sh: stopping ${#services[@]} processes"
    for entry in "${services[@]}"; do
      case $entry in
        "bridge "*) bridge+=("${entry#* }") ;;
        *) others+=("${entry#* }") ;;
      esac
    done
    # The bridge first, while Deephaven is up to take the rows it flushes.
    [ ${#bridge[@]} -eq 0 ] || stop_groups 15 "${bridge[@]}"
    [ ${#others[@]} -eq 0 ] || stop_groups 30 "${others[@]}"
    wait 2>/dev/null || true
  fi
  rm -f "$pidfile"
  echo "start.sh: stopped"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "start.sh $$" >"$pidfile"

# start NAME CMD...: runs CMD in a new session, so that it leads its own
# process group (stopped as a whole, also its children) and a Ctrl-C in the
# terminal reaches only this script, which stops the services in order.
start() {
  local name=$1
  shift
  echo "### $(date -Is) $*" >>"$logs/$name.log"
  setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  services+=("$name $!")
  echo "$name $!" >>"$pidfile"
}

pid_of() {
  local entry
  for entry in "${services[@]}"; do
    if [ "${entry%% *}" = "$1" ]; then echo "${entry#* }"; return 0; fi
  done
  return 1
}

log_tail() { tail -n 30 "$logs/$1.log" | sed 's/^/    /' >&2; }

# wait_ready NAME TIMEOUT CMD...: until CMD succeeds; fails if NAME exits.
wait_ready() {
  local name=$1 timeout=$2 pid deadline
  shift 2
  pid=$(pid_of "$name")
  deadline=$((SECONDS + timeout))
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "start.sh: $name exited while starting; last lines of $logs/$name.log:" >&2
      log_tail "$name"
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "start.sh: $name not ready after ${timeout}s; last lines of $logs/$name.log:" >&2
      log_tail "$name"
      exit 1
    fi
    sleep 1
  done
  echo "start.sh: $name is ready"
}

http_ok() { curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; }
deephaven_ready() {
  grep -q "DEEPHAVEN READY" "$logs/deephaven.log" && http_ok "http://127.0.0.1:$DEEPHAVEN_PORT/ide/"
}

# Deephaven (a JVM running app.d) is the slowest: Prometheus and Alertmanager
# start while it does. The bridge needs both Deephaven and Prometheus;
# Alertmanager retries webhooks until the bridge is there.
# In Kafka mode the broker comes first: app.d consumes its topics (and
# creates them when missing) at start.
kafka_env=()
bridge_env=()
if $kafka; then
  : >"$logs/kafka.log"
  start kafka scripts/kafka.sh run --data-dir "$run_dir/kafka" \
    --port "$KAFKA_PORT" --controller-port "$KAFKA_CONTROLLER_PORT"
  wait_ready kafka 180 grep -q "Kafka Server started" "$logs/kafka.log"
  kafka_env=(PROMETHEUS_BRIDGE_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT")
  bridge_env=(BRIDGE_SINK_KIND=kafka BRIDGE_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT")
fi
: >"$logs/deephaven.log"
PROMETHEUS_BRIDGE_HISTORY_DIR="$run_dir/history" \
start deephaven env "${kafka_env[@]}" .venv/bin/python -u scripts/run_deephaven.py \
  --host 127.0.0.1 --port "$DEEPHAVEN_PORT" --heap "$DEEPHAVEN_HEAP" --gc "$DEEPHAVEN_GC" \
  --app-dir app.d --data-dir "$run_dir/deephaven"
start prometheus "$prometheus_bin" \
  --config.file="$run_dir/prometheus/prometheus.yml" \
  --storage.tsdb.path="$run_dir/prometheus/data" \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
  --web.enable-lifecycle
start alertmanager "$alertmanager_bin" \
  --config.file="$run_dir/alertmanager/alertmanager.yml" \
  --storage.path="$run_dir/alertmanager/data" \
  --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
  --cluster.listen-address=
echo "start.sh: starting Deephaven, Prometheus and Alertmanager (logs in $logs)"
wait_ready prometheus 60 http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
wait_ready alertmanager 60 http_ok "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready"
wait_ready deephaven 300 deephaven_ready

BRIDGE_DEEPHAVEN_ADDRESS="127.0.0.1:$DEEPHAVEN_PORT" \
BRIDGE_PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT" \
BRIDGE_HISTORY_DIR="$run_dir/history" \
  start bridge env "${bridge_env[@]}" "$run_dir/bin/prometheus-deephaven-bridge" \
  --config.file="$root/bridge.yml" \
  --web.listen-address="127.0.0.1:$BRIDGE_PORT"
wait_ready bridge 60 http_ok "http://127.0.0.1:$BRIDGE_PORT/-/ready"

# Background jobs of non-interactive shells start with SIGINT ignored, and
# bash cannot trap a signal ignored on entry: then only SIGTERM stops us.
stop_hint="Ctrl-C stops everything."
sig_ignored=$(awk '/^SigIgn:/ { print $2 }' "/proc/$$/status" 2>/dev/null || echo 0)
if (( 0x${sig_ignored:-0} & 2 )); then
  stop_hint="'kill $$' stops everything (Ctrl-C/SIGINT is ignored in this background job)."
fi

cat <<EOF

start.sh: the stack is up$($kafka && echo " in Kafka mode (broker 127.0.0.1:$KAFKA_PORT)") (logs in $logs):
  Deephaven IDE   http://localhost:$DEEPHAVEN_PORT/ide/
                  Panels menu: prometheus_alerts, prometheus_metrics,
                  prometheus_alerts_metrics (their join) and the figures
  Prometheus      http://localhost:$PROMETHEUS_PORT/
  Alertmanager    http://localhost:$ALERTMANAGER_PORT/
  bridge metrics  http://localhost:$BRIDGE_PORT/metrics
The demo alerts fire and resolve every minute. $stop_hint

EOF

# One line from the bridge's own counters: rows it wrote per table (the join
# is computed by Deephaven), upload failures, and whether it can write.
status_line() {
  local metrics
  if ! metrics=$(curl -fsS --max-time 3 "http://127.0.0.1:$BRIDGE_PORT/metrics" 2>/dev/null); then
    echo "$(date +%T) status: the bridge's /metrics does not answer"
    return
  fi
  awk -v now="$(date +%T)" '
    /^prometheus_deephaven_bridge_rows_written_total\{/ {
      match($0, /table="[^"]*"/)
      rows = rows sprintf(" %s=%.0f", substr($0, RSTART + 7, RLENGTH - 8), $NF)
    }
    /^prometheus_deephaven_bridge_kafka_records_produced_total\{/ {
      match($0, /topic="[^"]*"/)
      rows = rows sprintf(" %s=%.0f", substr($0, RSTART + 7, RLENGTH - 8), $NF)
    }
    /^prometheus_deephaven_bridge_upload_failures_total\{/ { failures += $NF }
    /^prometheus_deephaven_bridge_kafka_produce_errors_total\{/ { failures += $NF }
    /^prometheus_deephaven_bridge_ready / { ready = ($NF == 1) ? "yes" : "NO" }
    END {
      if (rows == "") rows = " none yet"
      printf "%s status: rows written:%s; upload failures %.0f; bridge ready %s\n", now, rows, failures, ready
    }' <<<"$metrics"
}

while :; do
  for entry in "${services[@]}"; do
    if ! kill -0 "${entry#* }" 2>/dev/null; then
      echo "start.sh: ${entry%% *} exited; last lines of $logs/${entry%% *}.log:" >&2
      log_tail "${entry%% *}"
      exit 1
    fi
  done
  status_line
  # wait, unlike a foreground sleep, returns as soon as a signal arrives.
  sleep "$STATUS_INTERVAL" &
  sleep_pid=$!
  wait "$sleep_pid" || true
done
