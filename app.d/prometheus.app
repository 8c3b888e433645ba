# Deephaven application-mode definition for prometheus-deephaven-bridge.
# The server runs prometheus.py at startup (see README.md in this directory).
type=script
scriptType=python
enabled=true
id=io.github.prometheus-deephaven-bridge
name=Prometheus Deephaven Bridge
file_0=prometheus.py
