#!/usr/bin/env bash
# Installs what the tests and the local stack need, only where missing:
# Debian packages (Java, Maven for the Kafka broker's jars, Prometheus, Alertmanager,
# node exporter, docker-compose for the static compose check, Chromium for the browser
# test), the Kafka broker's jars from Maven Central (scripts/kafka.sh) and a project-local
# Python virtualenv with deephaven-server and pydeephaven, and DuckDB for the
# check that other readers read the history's Parquet files.
set -euo pipefail
cd "$(dirname "$0")/.."

DEEPHAVEN_VERSION="${DEEPHAVEN_VERSION:-42.7}"
DUCKDB_VERSION="${DUCKDB_VERSION:-2.0.1}"

need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v curl >/dev/null 2>&1 || need+=(curl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "setup: missing packages ${need[*]} and no root to install them" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  # The packages' services must not start: we run our own processes.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import deephaven_server, pydeephaven" >/dev/null 2>&1; then
  echo "setup: creating .venv with deephaven-server==${DEEPHAVEN_VERSION} and pydeephaven==${DEEPHAVEN_VERSION}"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "deephaven-server==${DEEPHAVEN_VERSION}" "pydeephaven==${DEEPHAVEN_VERSION}"
fi

if ! .venv/bin/python -c "import duckdb" >/dev/null 2>&1; then
  echo "setup: installing duckdb==${DUCKDB_VERSION} into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "duckdb==${DUCKDB_VERSION}"
fi

# The Kafka broker of Kafka mode's tests and of start.sh --kafka (43 MB,
# cached in .cache/kafka; a no-op once there).
scripts/kafka.sh fetch >/dev/null
