# wanotify — see README.md. Everything here runs with Go, npm, Java 17 and
# Maven installed; the ClickHouse server library and Apache Kafka's jars are
# fetched once into a cache outside the working tree.

SHELL := /bin/bash
GO    ?= go
BIN   := bin
PKGS  := ./...
# Short fuzz runs inside `make test` (a count, not a duration: Go 1.26's
# fuzz coordinator can report a spurious deadline at the end of a timed
# run); `make fuzz` runs each target for FUZZ_LONG.
FUZZTIME  ?= 20000x
FUZZ_LONG ?= 5m
TEST_TIMEOUT ?= 18m
# The broker of make run, make chaos and make bench: kfake (in process, the
# default of make run) or apache (Apache Kafka from scripts/fetch-kafka.sh).
# make test runs its Kafka lane on Apache Kafka whatever this says.
KAFKA ?= kfake
# Packages make test runs against Apache Kafka (one shared broker, leased
# to one test at a time by pkg/testinfra); the rest keep kfake.
APACHE_PKGS := ./pkg/e2e/... ./pkg/sink/... ./pkg/cli/... ./pkg/testinfra/...

FUZZ_TARGETS := $(shell grep -rl --include='*_test.go' '^func Fuzz' pkg 2>/dev/null | xargs -r grep -H '^func Fuzz' | sed -E 's|^(.*)/[^/]*_test.go:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|' | sort -u)

.PHONY: all build run test unit vet fmt-check fuzz fuzz-short bench bench-deps chaos topics clickhouse kafka clean help

all: build

help:
	@echo "make run    - the whole pipeline locally (broker, ClickHouse, simulator, every service); KAFKA=apache for Apache Kafka"
	@echo "make test   - vet, unit and integration tests against a real ClickHouse, Apache Kafka (dispatcher, e2e, sink, notifyctl, chaos) and kfake (the rest), short fuzz runs"
	@echo "make bench  - benchmarks, each next to its baseline; writes BENCHMARKS.md"
	@echo "make chaos  - the reliability scenario (N=50000 by default)"
	@echo "make fuzz   - longer fuzz runs (FUZZTIME=5m)"

build:
	$(GO) build -o $(BIN)/ ./services/...

clickhouse:
	@bash scripts/fetch-clickhouse.sh >/dev/null

kafka:
	@bash scripts/fetch-kafka.sh >/dev/null

run: clickhouse build
	@if [ "$(KAFKA)" = apache ]; then export WANOTIFY_BROKER_KIND=apache WANOTIFY_KAFKA_LIBS="$$(bash scripts/fetch-kafka.sh | tail -n1)"; fi; \
	  WANOTIFY_CH_LIB="$$(bash scripts/fetch-clickhouse.sh | tail -n1)" ./$(BIN)/local

topics: build
	./$(BIN)/notifyctl topics apply

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out="$$(gofmt -l pkg services schemas bench deploy)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# helm is built from source once per machine (several minutes on a cold
# module cache), in parallel with vet and build.
test: fmt-check
	@bash scripts/helm-tool.sh > /tmp/wanotify-helm.log 2>&1 & hp=$$!; \
	  $(MAKE) vet build || exit 1; \
	  wait $$hp || { cat /tmp/wanotify-helm.log; exit 1; }
	DEPLOYCHECK_HELM="$$(bash scripts/helm-tool.sh)" bash scripts/with-clickhouse.sh bash scripts/with-kafka.sh bash -c '\
	  set -e; \
	  echo "unit and integration tests on kfake (each test its own in-process cluster)"; \
	  WANOTIFY_TEST_KAFKA=kfake $(GO) test -timeout $(TEST_TIMEOUT) -count=1 $$($(GO) list ./... | grep -v -e /pkg/chaos$$ -e /pkg/dispatcher -e /pkg/e2e -e /pkg/sink -e /pkg/cli -e /pkg/testinfra); \
	  echo "end-to-end, sink and notifyctl on Apache Kafka ($$WANOTIFY_TEST_KAFKA_BROKERS)"; \
	  $(GO) test -timeout $(TEST_TIMEOUT) -count=1 $(APACHE_PKGS); \
	  echo "dispatcher (rate and throughput scenarios) on Apache Kafka, alone"; \
	  $(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./pkg/dispatcher/...; \
	  echo "short reliability scenario (pkg/chaos) on an Apache Kafka broker of its own, alone: it keeps eight processes busy"; \
	  $(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./pkg/chaos'
	$(MAKE) fuzz-short

fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do pkg="./$${t%%:*}"; fn="$${t##*:}"; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) "$$pkg" >/tmp/wanotify-fuzz.log 2>&1 || { cat /tmp/wanotify-fuzz.log; exit 1; }; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(FUZZ_LONG)

# The harness builds its own binaries. wrk (Debian) drives the throughput
# rows; without it the harness's Go load generator stands in. KAFKA=apache
# runs the sink, dispatcher and end-to-end rows again on an Apache Kafka
# broker and prints both brokers' figures side by side.
bench: clickhouse
	@command -v wrk >/dev/null 2>&1 || echo "bench: wrk not installed (make bench-deps, or apt-get install -y wrk); the Go load generator stands in"
	@if [ "$(KAFKA)" = apache ]; then export BENCH_KAFKA=apache WANOTIFY_KAFKA_LIBS="$$(bash scripts/fetch-kafka.sh | tail -n1)"; fi; \
	  bash scripts/with-clickhouse.sh $(GO) run ./bench/cmd/benchtable

bench-deps:
	apt-get install -y wrk

# The reliability scenario; e.g. make chaos CHAOS_FLAGS="-n 5000 -seed 2".
CHAOS_FLAGS ?=
# KAFKA=apache runs it on Apache Kafka (the broker SIGKILLed mid-run is
# the JVM; its own log recovery and transaction coordinator recover it);
# KAFKA=apache-cluster on three Apache Kafka nodes with production's
# replication, killing the node that leads the most partitions.
chaos: clickhouse build
	@if [ "$(KAFKA)" = apache ] || [ "$(KAFKA)" = apache-cluster ]; then export WANOTIFY_KAFKA_LIBS="$$(bash scripts/fetch-kafka.sh | tail -n1)"; fi; \
	  WANOTIFY_CH_LIB="$$(bash scripts/fetch-clickhouse.sh | tail -n1)" $(GO) run ./services/chaos -kafka $(KAFKA) $(CHAOS_FLAGS)

clean:
	rm -rf $(BIN)

# --- deployment: Dockerfile, docker-compose.yml, helm/ (docs/deployment.md) ---
HELM_VERSION ?= v3.22.0
HELM         ?= $(shell bash scripts/helm-tool.sh)
# A helm built from source knows no cluster; render for this Kubernetes.
KUBE_VERSION ?= 1.31.0
CHART        := helm/wanotify
IMAGE_PREFIX ?= wanotify
IMAGE_TAG    ?= $(shell awk '/^appVersion:/ {gsub(/"/, "", $$2); print $$2}' $(CHART)/Chart.yaml)
IMAGES       := ingest dispatcher webhook sink notifyctl simulator

.PHONY: manifests chart-lint deploy-sync images config-table

# The chart's manifests with the simulator and the production-like values
# (the bare defaults ask for a provider target),
# into rendered/ (ignored by git; never committed).
manifests:
	@mkdir -p rendered
	$(HELM) template wanotify $(CHART) --namespace wanotify --kube-version $(KUBE_VERSION) -f $(CHART)/ci/simulator-values.yaml > rendered/simulator.yaml
	$(HELM) template wanotify $(CHART) --namespace wanotify --kube-version $(KUBE_VERSION) -f $(CHART)/ci/production-values.yaml > rendered/production.yaml
	@echo "wrote rendered/simulator.yaml rendered/production.yaml"

chart-lint:
	$(HELM) lint --strict $(CHART) --kube-version $(KUBE_VERSION) -f $(CHART)/ci/simulator-values.yaml
	$(HELM) lint --strict $(CHART) --kube-version $(KUBE_VERSION) -f $(CHART)/ci/production-values.yaml

# The chart ships copies of files kept elsewhere (a chart cannot read
# outside its folder); pkg/deploycheck fails while they differ.
deploy-sync:
	cp topics.yaml $(CHART)/files/topics.yaml
	cp deploy/prometheus/alerts.yml $(CHART)/files/alerts.yml
	rm -f $(CHART)/files/dashboards/*.json
	@for f in deploy/grafana/dashboards/*.json; do [ -e "$$f" ] && cp "$$f" $(CHART)/files/dashboards/ || true; done

# Every production image (needs Docker with BuildKit).
images:
	@set -e; for s in $(IMAGES); do docker build --build-arg SERVICE=$$s -t $(IMAGE_PREFIX)-$$s:$(IMAGE_TAG) .; done

# README's configuration table, from the binaries themselves.
config-table: build
	@bash scripts/config-table.sh
