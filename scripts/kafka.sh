#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, broker and controller in one
# process) from the jars on Maven Central, for tests and start.sh --kafka.
# Needs Java 17+ and Maven (scripts/setup.sh installs both).
#
#   scripts/kafka.sh fetch
#       downloads the broker's jars into $KAFKA_CACHE (default .cache/kafka)
#       once; prints the lib directory.
#   scripts/kafka.sh run --data-dir DIR [--port 19092] [--controller-port 19093]
#       formats DIR on first use (DIR/meta.properties survives restarts, so
#       a broker stopped and run again on the same DIR keeps its topics),
#       then runs the broker in the foreground (exec: the pid is the JVM's).
#       The log line "Kafka Server started" means it is ready.
#
# Topics are created by the bridge itself (franz-go's admin client), so the
# 27 MB of kafka-tools are not fetched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
KAFKA_CACHE=${KAFKA_CACHE:-$root/.cache/kafka}
lib="$KAFKA_CACHE/$KAFKA_VERSION/lib"

fetch() {
  if [ -f "$lib/.complete" ]; then
    echo "$lib"
    return
  fi
  command -v mvn >/dev/null 2>&1 || { echo "kafka.sh: mvn not found (scripts/setup.sh installs maven)" >&2; exit 1; }
  local dir="$KAFKA_CACHE/$KAFKA_VERSION"
  mkdir -p "$dir"
  cat >"$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.prometheus-deephaven-bridge</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$lib"
  echo "kafka.sh: fetching Kafka $KAFKA_VERSION from Maven Central into $lib" >&2
  (cd "$dir" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime >&2)
  touch "$lib/.complete"
  echo "$lib"
}

run() {
  local data="" port=19092 cport=19093
  while [ $# -gt 0 ]; do
    case $1 in
      --data-dir) data=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      --controller-port) cport=$2; shift 2 ;;
      *) echo "kafka.sh run: unknown argument: $1" >&2; exit 2 ;;
    esac
  done
  [ -n "$data" ] || { echo "kafka.sh run: --data-dir is required" >&2; exit 2; }
  command -v java >/dev/null 2>&1 || { echo "kafka.sh: java not found (scripts/setup.sh installs openjdk-17-jre-headless)" >&2; exit 1; }
  fetch >/dev/null
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data/logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  cat >"$data/log4j.properties" <<'LOG'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
LOG
  local jvm=(-Xmx${KAFKA_HEAP:-512m} "-Dlog4j.configuration=file:$data/log4j.properties" -cp "$lib/*")
  if [ ! -f "$data/logs/meta.properties" ]; then
    local cid
    cid=$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java "${jvm[@]}" kafka.tools.StorageTool format -t "$cid" -c "$data/server.properties"
  fi
  exec java "${jvm[@]}" kafka.Kafka "$data/server.properties"
}

case ${1:-} in
  fetch) fetch ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/kafka.sh fetch | run --data-dir DIR [--port P] [--controller-port P]" >&2; exit 2 ;;
esac
