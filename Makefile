# wanotify — see README.md. Everything here runs with only Go and npm
# installed; the ClickHouse server library is fetched once into a cache
# outside the working tree.

SHELL := /bin/bash
GO    ?= go
BIN   := bin
PKGS  := ./...
# Short fuzz runs inside `make test`; `make fuzz FUZZTIME=5m` for longer.
FUZZTIME ?= 10s
TEST_TIMEOUT ?= 18m

FUZZ_TARGETS := $(shell grep -rl --include='*_test.go' '^func Fuzz' pkg 2>/dev/null | xargs -r grep -H '^func Fuzz' | sed -E 's|^(.*)/[^/]*_test.go:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|' | sort -u)

.PHONY: all build run test unit vet fmt-check fuzz fuzz-short bench chaos topics clickhouse clean help

all: build

help:
	@echo "make run    - the whole pipeline locally (broker, ClickHouse, simulator, every service)"
	@echo "make test   - vet, unit and integration tests against kfake and a real ClickHouse, short fuzz runs"
	@echo "make bench  - benchmarks, each next to its baseline; writes BENCHMARKS.md"
	@echo "make chaos  - the reliability scenario (N=50000 by default)"
	@echo "make fuzz   - longer fuzz runs (FUZZTIME=5m)"

build:
	$(GO) build -o $(BIN)/ ./services/...

clickhouse:
	@bash scripts/fetch-clickhouse.sh >/dev/null

run: clickhouse build
	WANOTIFY_CH_LIB="$$(bash scripts/fetch-clickhouse.sh | tail -n1)" ./$(BIN)/local

topics: build
	./$(BIN)/notifyctl topics apply

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out="$$(gofmt -l pkg services schemas)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: fmt-check vet build
	bash scripts/with-clickhouse.sh $(GO) test -timeout $(TEST_TIMEOUT) -count=1 $(PKGS)
	$(MAKE) fuzz-short

fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do pkg="./$${t%%:*}"; fn="$${t##*:}"; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) "$$pkg" >/tmp/wanotify-fuzz.log 2>&1 || { cat /tmp/wanotify-fuzz.log; exit 1; }; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(if $(filter 10s,$(FUZZTIME)),5m,$(FUZZTIME))

bench: clickhouse build
	bash scripts/with-clickhouse.sh $(GO) run ./bench/cmd/benchtable

chaos: clickhouse build
	$(GO) run ./services/chaos

clean:
	rm -rf $(BIN)
