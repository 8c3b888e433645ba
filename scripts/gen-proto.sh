#!/usr/bin/env bash
# Regenerates the Go code for our own .proto files with Debian's protoc and
# the protoc-gen-go / protoc-gen-go-grpc versions pinned in go.mod: the
# minimal Deephaven RPCs we use, and the remote write 1.0 request.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
cd "$root/pkg/deephaven/internal"
protoc -I . \
  --plugin=protoc-gen-go="$(go tool -n protoc-gen-go)" \
  --plugin=protoc-gen-go-grpc="$(go tool -n protoc-gen-go-grpc)" \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  backplane/backplane.proto console/console.proto
cd "$root/pkg/remotewrite/internal"
protoc -I . \
  --plugin=protoc-gen-go="$(go tool -n protoc-gen-go)" \
  --go_out=. --go_opt=paths=source_relative \
  writev1/remote_write_v1.proto
