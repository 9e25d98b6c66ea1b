# crossmap's developer entry points. `make help` lists them.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

BIN            ?= $(CURDIR)/bin
GO             ?= go
export KUBEBUILDER_ASSETS ?= $(BIN)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Build kube-apiserver, etcd and podinfo into bin/ (only when missing or the version changed).
	@tools/build.sh $(BIN)

.PHONY: build
build: ## Build the crossmap binary into bin/.
	$(GO) build -o $(BIN)/crossmap ./cmd/crossmap

.PHONY: generate
generate: ## Regenerate deepcopy code and CRDs with controller-gen.
	@tools/generate.sh $(BIN)

.PHONY: deps
deps: ## Install the Debian packages the tests use (tools/deps.sh), or print the command that does.
	@tools/deps.sh test

.PHONY: deps-demo
deps-demo: ## Install the Debian packages the demo uses (tools/deps.sh demo), or print the command that does.
	@tools/deps.sh demo

.PHONY: test
test: deps tools ## Run every test: unit, envtest integration and end to end.
	$(GO) test -count=1 ./...

DEMO_FLAGS ?=
.PHONY: demo
demo: deps-demo tools build ## Run the local three-cluster demo and keep it running to explore (DEMO_FLAGS=--once to check every step and exit).
	$(BIN)/crossmap demo $(DEMO_FLAGS)

# How long the idle benchmark leaves a controller alone; issue 6 asks about
# five minutes, anything shorter is a smoke run.
BENCH_IDLE ?= 5m
.PHONY: bench
bench: tools ## Run the benchmarks and print their figures (BENCH_IDLE=30s for a quicker smoke run).
	@GO=$(GO) BENCH_IDLE=$(BENCH_IDLE) tools/bench.sh $(BIN)

.PHONY: bench-smoke
bench-smoke: tools ## Run the quick benchmarks once, as a check that they still run (CI does).
	$(GO) test -run '^$$' -bench . -benchtime 1x ./mapper ./ingress/edge
	$(GO) test -run '^$$' -bench 'Failover|InitialConvergence|Propagation/services=10$$' -benchtime 1x -timeout 10m ./e2e

.PHONY: lint
lint: ## gofmt, go vet, and a check that the generated files are current.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	@tools/generate.sh $(BIN)
	@git diff --exit-code -- internal/api manifests/crd || { echo "generated files are stale: run make generate and commit"; exit 1; }
