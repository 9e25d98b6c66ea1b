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

# What `make image` records: the version (label, tag, `crossmap version`),
# the commit, and the commit's time as the image's creation time, so that
# one commit always gives the same image.
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT        ?= $(shell git rev-parse HEAD 2>/dev/null)
CREATED       ?= $(shell git log -1 --format=%cI 2>/dev/null)
GOARCH        ?= $(shell $(GO) env GOARCH)
IMAGE_DIR     ?= $(BIN)/image
IMAGE_ARCHIVE ?= $(IMAGE_DIR)/crossmap-image.tar

.PHONY: image
image: ## Build the container image as an OCI archive, without a container daemon (IMAGE_ARCHIVE, VERSION).
	@mkdir -p $(IMAGE_DIR)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build -trimpath \
		-ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(IMAGE_DIR)/crossmap ./cmd/crossmap
	cd tools/image && GOWORK=off $(GO) run . --binary $(abspath $(IMAGE_DIR))/crossmap --out $(abspath $(IMAGE_ARCHIVE)) \
		--version $(VERSION) --revision $(COMMIT) --created "$(CREATED)" --arch $(GOARCH)
	@echo "built $(IMAGE_ARCHIVE) (crossmap $(VERSION)): push it with skopeo copy oci-archive:$(IMAGE_ARCHIVE) docker://<registry>/crossmap:$(VERSION)"

.PHONY: generate
generate: ## Regenerate deepcopy code and CRDs with controller-gen.
	@tools/generate.sh $(BIN)

.PHONY: emissary-python
emissary-python: ## Install the Debian python3 packages Emissary's compiler needs (internal/emissarytest), when missing.
	@tools/emissary-python.sh

.PHONY: deps
deps: ## Install the Debian packages the tests use (tools/deps.sh), or print the command that does.
	@tools/deps.sh test

.PHONY: deps-demo
deps-demo: ## Install the Debian packages the demo uses (tools/deps.sh demo), or print the command that does.
	@tools/deps.sh demo

.PHONY: test
test: deps tools emissary-python ## Run every test: unit, envtest integration and end to end.
	$(GO) test -count=1 ./...

# The Multi-Cluster Services API's conformance suite against crossmap on two
# control planes (e2e/mcsconformance; the README's "Multi-Cluster Services
# API"). The Go module proxy does not serve the suite's module, so it is built
# from a clone of kubernetes-sigs/mcs-api holding the pinned release:
#   git clone https://github.com/kubernetes-sigs/mcs-api ../mcs-api
#   make mcs-conformance MCS_API_SRC=../mcs-api
# MCS_CONFORMANCE_OUT keeps the suite's logs and reports (report.{html,yaml,json}), a
# folder per Link mode, and crossmap's logs.
MCS_API_SRC         ?=
MCS_CONFORMANCE_OUT ?=
.PHONY: mcs-conformance
mcs-conformance: deps tools ## Run the MCS API conformance suite against crossmap (MCS_API_SRC=<clone of kubernetes-sigs/mcs-api>).
	MCS_API_SRC=$(abspath $(MCS_API_SRC)) MCS_CONFORMANCE_OUT=$(MCS_CONFORMANCE_OUT) \
		$(GO) test -tags mcsconformance -count=1 -timeout 30m -v -run TestMCSConformance ./e2e/mcsconformance

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
	$(GO) test -run '^$$' -bench . -benchtime 1x ./mapper ./edge
	$(GO) test -run '^$$' -bench 'Failover|InitialConvergence|Propagation/services=10$$' -benchtime 1x -timeout 10m ./e2e

.PHONY: lint
lint: ## gofmt, go vet, and a check that the generated files are current.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags mcsconformance ./e2e/mcsconformance
	@tools/generate.sh $(BIN)
	@git diff --exit-code -- internal/api manifests/crd || { echo "generated files are stale: run make generate and commit"; exit 1; }
