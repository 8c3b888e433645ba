#!/usr/bin/env bash
# Regenerates the Go code for our minimal Deephaven .proto files with Debian's
# protoc and the protoc-gen-go / protoc-gen-go-grpc versions pinned in go.mod.
set -euo pipefail
cd "$(dirname "$0")/../pkg/deephaven/internal"
command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
protoc -I . \
  --plugin=protoc-gen-go="$(go tool -n protoc-gen-go)" \
  --plugin=protoc-gen-go-grpc="$(go tool -n protoc-gen-go-grpc)" \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  backplane/backplane.proto console/console.proto
