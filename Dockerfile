# Multi-stage build of prometheus-deephaven-bridge: a static binary in a
# distroless image that runs as an unprivileged user.
#
# Only classic Dockerfile features are used so that both BuildKit and the
# legacy builder (docker-compose 1.x) can build it.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src

# Dependencies first, so that source changes do not invalidate the module
# download layer.
COPY go.mod go.sum ./
RUN go mod download

COPY . .

# Build metadata for github.com/prometheus/common/version (the -X flags are
# ignored if the binary does not link that package).
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildUser=docker \
        -X github.com/prometheus/common/version.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
      -o /out/prometheus-deephaven-bridge ./cmd/prometheus-deephaven-bridge \
 && mkdir -p /out/var/history

# No shell, no package manager, CA certificates for TLS to Deephaven or
# Prometheus, and the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/prometheus-deephaven-bridge /bin/prometheus-deephaven-bridge
# The history directory, owned by nonroot so that a volume mounted there
# starts writable.
COPY --from=build --chown=65532:65532 /out/var/history /var/lib/prometheus-deephaven-bridge/history
USER nonroot:nonroot
EXPOSE 5000
ENTRYPOINT ["/bin/prometheus-deephaven-bridge"]
CMD ["--config.file=/etc/bridge/bridge.yml"]
