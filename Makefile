# localdisk: a CSI plugin that serves a node's local disks as volumes.
# Run `make help` for the targets.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go
GOFMT ?= gofmt
DOCKER ?= docker
GOLANGCI_LINT ?= golangci-lint

OUTPUT := $(CURDIR)/_output
BIN := $(OUTPUT)/localdisk
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/localdisk-csi/localdisk/driver.Version=$(VERSION)
IMAGE ?= localdisk:$(VERSION)
TEST_TIMEOUT ?= 40m

# The tests that mount need root; as root, `test` and `sanity` first install
# the tools they use. Elsewhere, SKIP_TESTS_USING_ROOT=1 skips those tests.
define install-test-deps
	if [[ "$$(id -u)" == 0 ]]; then hack/install-test-deps.sh; fi
endef

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# The binary is static (CGO_ENABLED=0): no ELF interpreter and no glibc
# dependency, so one build runs on every node, from CentOS 7 (glibc 2.17) up.
.PHONY: build
build: ## Build the static plugin binary into _output/localdisk (version from git describe).
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) -ldflags "$(LDFLAGS)" ./cmd/localdisk

.PHONY: run
run: build ## Build, then serve the embedded default pool on _output/csi.sock.
	@mkdir -p $(OUTPUT)/state
	@echo "serving on unix://$(OUTPUT)/csi.sock"
	$(BIN) serve --endpoint unix://$(OUTPUT)/csi.sock --state-dir $(OUTPUT)/state \
		--node-id "$$(hostname 2>/dev/null || uname -n)"

.PHONY: test
test: ## Vet, check gofmt, and run every test with -race (run as root).
	@$(install-test-deps)
	$(GO) vet ./...
	@$(MAKE) --no-print-directory fmt-check
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: sanity
sanity: ## Run csi-sanity against the plugin for every pool kind (as root).
	@$(install-test-deps)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./test/sanity/...

.PHONY: fmt-check
fmt-check: ## Fail if a Go file is not gofmt'd.
	@unformatted="$$($(GOFMT) -l .)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "not gofmt'd (run gofmt -w):" >&2; echo "$$unformatted" >&2; exit 1; \
	fi

.PHONY: lint
lint: fmt-check ## gofmt check, go vet, and golangci-lint and shellcheck when installed.
	$(GO) vet ./...
	@if command -v $(GOLANGCI_LINT) >/dev/null; then $(GOLANGCI_LINT) run ./...; \
	else echo "golangci-lint not installed: skipped"; fi
	@if command -v shellcheck >/dev/null; then shellcheck hack/*.sh .ci/run; \
	else echo "shellcheck not installed: skipped"; fi

.PHONY: image
image: ## Build the container image (IMAGE, default localdisk:VERSION).
	$(DOCKER) build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(OUTPUT)

.PHONY: mesos-examples
mesos-examples: ## Regenerate deploy/mesos's profiles, provider and isolator configs.
	$(GO) test -count=1 -run '^TestMesosExamples$$' ./cmd/localdisk -args -update

.PHONY: bench
bench: ## Measure the plugin against the syscall limit (hack/bench; as root; not part of test).
	$(GO) run ./hack/bench $(BENCH_ARGS)

.PHONY: e2e-tools
e2e-tools: ## Build kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and csi-provisioner for the e2e tests (cached).
	hack/build-e2e-tools.sh

.PHONY: e2e-kubernetes
e2e-kubernetes: ## Run the Kubernetes e2e test (as root; `make test` runs it too).
	@$(install-test-deps)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./test/e2e/kubernetes/...

.PHONY: e2e-node
e2e-node: ## Run the Kubernetes node e2e test: kubelet, containerd and kube-scheduler run pods on localdisk volumes (as root; `make test` runs it too).
	@$(install-test-deps)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./test/e2e/node/...

.PHONY: test-quota
test-quota: ## Run the project quota tests: XFS/ext4 in user-mode Linux, btrfs on the host (root).
	@$(install-test-deps)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./driver/quota/... ./test/uml/...

# The Go fuzz targets, as package:function. `go test ./...` runs their seed
# corpora; these targets fuzz each one for a while.
FUZZ_TARGETS := \
	./driver/pool:FuzzParse \
	./driver/pool:FuzzMesosNames \
	./driver/state:FuzzValidID \
	./driver/state:FuzzLoad \
	./driver/csiutil:FuzzCheckCapability \
	./driver/controller:FuzzController \
	./driver/node:FuzzNode
FUZZTIME ?= 1m
FUZZTIME_SHORT ?= 10s

# run-fuzz fuzzes every target for $(1), going on after a failure; a failing
# input is saved under the package's testdata/fuzz. A failure that saved no
# input is Go 1.26's fuzz coordinator racing its own -fuzztime deadline
# ("context deadline exceeded", go.dev/issue/75804): reported, not failed.
define run-fuzz
	failed=(); for t in $(FUZZ_TARGETS); do \
		pkg="$${t%%:*}"; fn="$${t##*:}"; dir="$$pkg/testdata/fuzz/$$fn"; \
		before=$$(find "$$dir" -type f 2>/dev/null | wc -l || true); \
		echo "fuzz: $$fn in $$pkg for $(1)"; \
		if ! $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(1) "$$pkg"; then \
			if (( $$(find "$$dir" -type f 2>/dev/null | wc -l || true) > before )); then failed+=("$$fn"); \
			else echo "fuzz: $$fn stopped without a failing input (go.dev/issue/75804): not a failure" >&2; fi; \
		fi; \
	done; \
	if (( $${#failed[@]} > 0 )); then echo "fuzz targets failed: $${failed[*]}" >&2; exit 1; fi
endef

.PHONY: fuzz
fuzz: ## Fuzz every Go fuzz target for FUZZTIME (default 1m) each.
	@$(call run-fuzz,$(FUZZTIME))

.PHONY: fuzz-short
fuzz-short: ## Fuzz every Go fuzz target briefly (FUZZTIME_SHORT, default 10s each). Not part of `make test`: CI stays deterministic, and `go test` runs every seed corpus.
	@$(call run-fuzz,$(FUZZTIME_SHORT))
