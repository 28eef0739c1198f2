# Ledger — one Makefile for the whole workspace. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every module of the workspace (see go.work).
MODULES := proto libs sim services/ingest services/mapper services/relay services/sage-writer \
           services/statecallback services/admin cmd/ledgerctl cmd/ledger-dev
BIN := $(CURDIR)/.bin
export PATH := $(BIN):$(PATH)
GO_TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: run
run: ## run the whole pipeline with a demo shop (embedded NATS, throwaway Postgres, simulators); Ctrl-C stops
	go run ./cmd/ledger-dev run

.PHONY: demo
demo: ## run the pipeline, drain a demo outbox, print one summary line, exit 0 only if nothing was lost or duplicated
	go run ./cmd/ledger-dev demo

.PHONY: test
test: ## run every module's tests against real NATS and real Postgres
	go test $(GO_TEST_FLAGS) $(addprefix ./,$(addsuffix /...,$(MODULES)))

.PHONY: test-short
test-short: ## the fast subset (skips the 200-invoice end-to-end run)
	go test -short $(GO_TEST_FLAGS) $(addprefix ./,$(addsuffix /...,$(MODULES)))

# FUZZTIME is how long make fuzz runs each fuzz target; FUZZ, a regexp, picks
# targets (tools/fuzz.sh -l lists them).
FUZZTIME ?= 1m
FUZZ ?= .

.PHONY: fuzz
fuzz: ## run every native fuzz target for FUZZTIME (default 1m) one after another; FUZZ=regexp picks some; not part of make test (which runs their seed corpora)
	FUZZTIME=$(FUZZTIME) FUZZ='$(FUZZ)' tools/fuzz.sh

.PHONY: chaos
chaos: ## kill test (not in make test): every service a process, 5,000 events, Sage faults, SIGKILLs and NATS restarts; prints lost=0 duplicates=0
	set -o pipefail; LEDGER_CHAOS=1 go test -count=1 -run '^TestChaos$$' -timeout 40m -v ./cmd/ledger-dev 2>&1 | grep -vE '^\s+\{'

# bench writes its report, profiles and service logs to BENCH_DIR; the
# BENCH_* variables (docs/performance.md) scale it.
BENCH_DIR ?= $(CURDIR)/.ledger/bench

.PHONY: bench
bench: ## pipeline benchmark (not in make test): services as processes, N shops, raw JetStream baseline in the same run; last line is the summary (docs/performance.md)
	@mkdir -p $(BENCH_DIR)
	@set -o pipefail; LEDGER_BENCH=1 BENCH_DIR=$(BENCH_DIR) go test -count=1 -run '^TestBench$$' -timeout 45m -v ./cmd/ledger-dev 2>&1 | grep -vE '^\s+\{' > $(BENCH_DIR)/test.log || { tail -40 $(BENCH_DIR)/test.log; exit 1; }
	@cat $(BENCH_DIR)/report.txt

.PHONY: bench-relay
bench-relay: ## outbox relay benchmark (not in make test): rows/s MariaDB → OUTBOX beside raw JetStream publish, insert → OUTBOX latency at 200 rows/s (docs/performance.md)
	@mkdir -p $(BENCH_DIR)
	@set -o pipefail; LEDGER_BENCH=1 BENCH_DIR=$(BENCH_DIR) go test -count=1 -run '^TestRelayBench$$' -timeout 30m -v ./cmd/ledger-dev 2>&1 | grep -vE '^\s+\{' > $(BENCH_DIR)/relay-test.log || { tail -40 $(BENCH_DIR)/relay-test.log; exit 1; }
	@cat $(BENCH_DIR)/relay-report.txt

.PHONY: check-modules
check-modules: ## build and vet every module on its own (GOWORK=off), as a user of one module would
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && GOWORK=off go build ./... && GOWORK=off go vet ./...); done

# tidy runs go mod tidy before go work sync (sync loads every package, so each
# import needs its requirement) and after it (sync raises requirements to the
# workspace's versions but writes no go.sum lines for them), then checks that
# every module requires the same versions.
.PHONY: tidy
tidy: ## go mod tidy in every module, go work sync (the workspace's versions into every go.mod), tidy again, check-versions
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done
	go work sync
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done
	@$(MAKE) --no-print-directory check-versions

.PHONY: check-versions
check-versions: ## fail when two modules require different versions of one module (make tidy aligns them)
	go test -count=1 -run '^TestOneVersionOfEveryDependency$$' ./cmd/ledger-dev

.PHONY: tools
tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## build buf and the protoc plugins at their pinned versions

$(BIN)/buf: tools/buf/go.mod
	cd tools/buf && GOWORK=off GOBIN=$(BIN) go install tool

$(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc: tools/plugins/go.mod
	cd tools/plugins && GOWORK=off GOBIN=$(BIN) go install tool

# promtool validates deploy/prometheus/alerts.yml; built from the Go module
# proxy at this version (the module's go.sum lines come from the checksum
# database, as for every go install pkg@version).
PROMTOOL_VERSION := v0.316.0

$(BIN)/promtool: Makefile
	GOWORK=off GOBIN=$(BIN) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	@touch $@

.PHONY: check-alerts
check-alerts: $(BIN)/promtool ## validate the Prometheus alert rules (promtool check rules) and run their unit tests (promtool test rules)
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

.PHONY: generate
generate: tools ## regenerate Go code from proto/ (buf lint first)
	cd proto && buf lint && buf generate

.PHONY: check-generate
check-generate: generate ## fail when the committed generated code is stale
	@git diff --exit-code -- proto || { echo "generated code in proto/ is stale: run 'make generate' and commit the result"; exit 1; }
	@test -z "$$(git status --porcelain -- proto)" || { git status --porcelain -- proto; echo "untracked generated files: run 'make generate' and commit them"; exit 1; }

.PHONY: breaking
breaking: tools ## check proto/ for wire-breaking changes against main
	cd proto && buf breaking --against '../.git#branch=main,subdir=proto'

.PHONY: fmt
fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

.PHONY: clean
clean: ## remove local state (.ledger/) and built tools
	rm -rf .ledger .bin
