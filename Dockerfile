# syntax=docker/dockerfile:1.7
#
# One Dockerfile for every production service. Pick the service with the
# SERVICE build argument:
#
#   docker build --build-arg SERVICE=ingest     -t wanotify-ingest:0.1.0 .
#   docker build --build-arg SERVICE=dispatcher -t wanotify-dispatcher:0.1.0 .
#   (webhook, sink, notifyctl and simulator alike)
#
# SERVICE selects both what the build stage compiles and which final stage
# becomes the image, so each image holds one static binary with its own
# ENTRYPOINT. broker, clickhouse and local exist for development on one
# machine and are refused here. Needs BuildKit (the default builder since
# Docker 23), which builds only the stages the chosen target uses.

ARG SERVICE=ingest

# Base images are pinned by digest as well as tag: a tag can be moved, a
# digest cannot. Bump both together.
FROM golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
ARG SERVICE
RUN case "${SERVICE}" in \
      ingest|dispatcher|webhook|sink|notifyctl|simulator) ;; \
      broker|clickhouse|local) echo "SERVICE=${SERVICE} is for local development only; production uses Apache Kafka and a ClickHouse server" >&2; exit 1 ;; \
      *) echo "SERVICE=${SERVICE} is not one of: ingest dispatcher webhook sink notifyctl simulator" >&2; exit 1 ;; \
    esac
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/ "./services/${SERVICE}" ./deploy/healthcheck

# Shared by every image: no shell, no package manager, user 65532.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639 AS runtime
COPY --from=build /out/healthcheck /usr/local/bin/healthcheck
COPY topics.yaml /etc/wanotify/topics.yaml
USER 65532:65532

# Each service listens on every interface of its container: the binaries'
# own defaults are loopback-only, which suits one machine but not a
# container network.
FROM runtime AS ingest
COPY --from=build /out/ingest /usr/local/bin/ingest
ENV WANOTIFY_INGEST_ADDR=0.0.0.0:8080 WANOTIFY_ADMIN_ADDR=0.0.0.0:9466
EXPOSE 8080 9466
ENTRYPOINT ["/usr/local/bin/ingest"]

FROM runtime AS dispatcher
COPY --from=build /out/dispatcher /usr/local/bin/dispatcher
ENV WANOTIFY_ADMIN_ADDR=0.0.0.0:9464
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/dispatcher"]

FROM runtime AS webhook
COPY --from=build /out/webhook /usr/local/bin/webhook
ENV WANOTIFY_WEBHOOK_ADDR=0.0.0.0:8081 WANOTIFY_ADMIN_ADDR=0.0.0.0:9467
EXPOSE 8081 9467
ENTRYPOINT ["/usr/local/bin/webhook"]

FROM runtime AS sink
COPY --from=build /out/sink /usr/local/bin/sink
ENV WANOTIFY_ADMIN_ADDR=0.0.0.0:9465
EXPOSE 9465
ENTRYPOINT ["/usr/local/bin/sink"]

# The operator CLI; the topics job runs
#   notifyctl topics apply --file /etc/wanotify/topics.yaml
FROM runtime AS notifyctl
COPY --from=build /out/notifyctl /usr/local/bin/notifyctl
ENTRYPOINT ["/usr/local/bin/notifyctl"]
CMD ["--help"]

# The provider simulator, for trying the pipeline without a WhatsApp account.
FROM runtime AS simulator
COPY --from=build /out/simulator /usr/local/bin/simulator
ENV WANOTIFY_SIM_ADDR=0.0.0.0:8090
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/simulator"]

# The image is the stage named by SERVICE.
FROM ${SERVICE}
