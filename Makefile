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

# As root, `test` builds the e2e tests' Kubernetes binaries (cached) before
# any test runs: on a cold machine that takes tens of minutes, more than a
# test binary's timeout leaves the build the e2e tests would start otherwise.
define build-e2e-tools
	if [[ "$$(id -u)" == 0 && -z "$${LOCALDISK_E2E_TOOLS:-}" ]]; then hack/build-e2e-tools.sh >/dev/null; fi
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
test: ## Vet, check gofmt, and run every test with -race, then test-compat (run as root).
	@$(install-test-deps)
	@$(build-e2e-tools)
	$(GO) vet ./...
	@$(MAKE) --no-print-directory fmt-check
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	@$(MAKE) --no-print-directory test-compat

# The suites that run again with the plugin under the seccomp launcher
# (test/seccomp/launcher), which makes the new mount API and quotactl_fd(2)
# fail: with ENOSYS (a kernel without them) and with EPERM (a container
# runtime's profile that denies them). test/compat checks read-only publishes
# under both filters as part of ./... .
COMPAT_ENOSYS_PKGS := ./test/mesos/... ./test/crash/... ./test/hostile/...
COMPAT_EPERM_PKGS := ./test/mesos/... ./test/hostile/...

# compat-sanity runs csi-sanity (every pool kind) with the plugin under the
# seccomp launcher in mode $(1); the whole output goes to
# _output/sanity-$(1).log, and the Ginkgo summary of each kind is shown.
define compat-sanity
	mkdir -p $(OUTPUT); log=$(OUTPUT)/sanity-$(1).log; rc=0; \
	echo "csi-sanity, LOCALDISK_TEST_SECCOMP=$(1) (log: $$log)"; \
	GINKGO_NO_COLOR=TRUE LOCALDISK_TEST_SECCOMP=$(1) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v \
		./test/sanity/... >"$$log" 2>&1 || rc=$$?; \
	grep -E '^(ok|FAIL|---) |^Ran [0-9]+ of [0-9]+ Specs|[0-9]+ Passed \| [0-9]+ Failed' "$$log" || true; \
	if (( rc != 0 )); then tail -n 300 "$$log" >&2; echo "csi-sanity under seccomp $(1) failed: see $$log" >&2; exit "$$rc"; fi
endef

.PHONY: test-compat
test-compat: ## Run csi-sanity, the Mesos and hostile suites (ENOSYS and EPERM) and the crash suite (ENOSYS) with the plugin under a seccomp filter (as root).
	@$(install-test-deps)
	@$(call compat-sanity,enosys)
	LOCALDISK_TEST_SECCOMP=enosys $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(COMPAT_ENOSYS_PKGS)
	@$(call compat-sanity,eperm)
	LOCALDISK_TEST_SECCOMP=eperm $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(COMPAT_EPERM_PKGS)

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

REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

.PHONY: image
image: ## Build the container image (IMAGE, default localdisk:VERSION).
	$(DOCKER) build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) .

# A release: VERSION must be vMAJOR.MINOR.PATCH[-PRE]. The tarballs hold the
# static binary, LICENSE, README.md and CHANGELOG.md; localdisk-VERSION.yaml is
# the kustomize build of deploy/kubernetes with the image tag VERSION, and the
# chart is packaged with appVersion VERSION (and version VERSION without its
# v). The image is built for both platforms with docker buildx, pushed to
# RELEASE_IMAGE:VERSION with RELEASE_PUSH=1, else written as an OCI archive
# next to the release; without buildx that step is skipped, saying so.
RELEASE_DIR = $(OUTPUT)/release
RELEASE_ARCHES := amd64 arm64
RELEASE_IMAGE ?= ghcr.io/localdisk-csi/localdisk
RELEASE_PUSH ?=
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: release
release: ## Build a release into _output/release (VERSION=vX.Y.Z): linux/amd64 and linux/arm64 tarballs, manifest, chart, SHA256SUMS, and the multi-arch image with docker buildx.
	@if [[ ! "$(VERSION)" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$ ]]; then \
		echo "make release: VERSION=$(VERSION) is not vMAJOR.MINOR.PATCH[-PRE]" >&2; exit 1; fi
	rm -rf $(RELEASE_DIR)
	mkdir -p $(RELEASE_DIR)
	@set -x; for arch in $(RELEASE_ARCHES); do \
		name=localdisk-$(VERSION)-linux-$$arch; stage=$(RELEASE_DIR)/.stage/$$name; mkdir -p $$stage; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" \
			-o $$stage/localdisk ./cmd/localdisk; \
		cp LICENSE README.md CHANGELOG.md $$stage/; \
		tar -C $(RELEASE_DIR)/.stage --sort=name --owner=0 --group=0 --numeric-owner \
			--mtime=@$(SOURCE_DATE_EPOCH) -cf - $$name | gzip -9n > $(RELEASE_DIR)/$$name.tar.gz; \
	done
	rm -rf $(RELEASE_DIR)/.stage
	$(GO) run ./hack/release-manifests -image-tag $(VERSION) > $(RELEASE_DIR)/localdisk-$(VERSION).yaml
	helm="$$(hack/build-helm.sh)"; v="$(VERSION)"; \
		"$$helm" package deploy/helm/localdisk --version "$${v#v}" --app-version "$(VERSION)" -d $(RELEASE_DIR)
	cd $(RELEASE_DIR) && sha256sum localdisk-* > SHA256SUMS
	@if $(DOCKER) buildx version >/dev/null 2>&1; then \
		out="--output type=oci,dest=$(RELEASE_DIR)/../localdisk-$(VERSION)-image.oci.tar"; \
		if [[ -n "$(RELEASE_PUSH)" ]]; then out=--push; fi; \
		set -x; $(DOCKER) buildx build --platform linux/amd64,linux/arm64 \
			--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
			-t $(RELEASE_IMAGE):$(VERSION) $$out .; \
	else \
		echo "make release: docker buildx is not available: the multi-arch image ($(RELEASE_IMAGE):$(VERSION)) was NOT built" >&2; \
	fi
	@echo "release $(VERSION) in $(RELEASE_DIR):"; cat $(RELEASE_DIR)/SHA256SUMS

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(OUTPUT)

.PHONY: mesos-examples
mesos-examples: ## Regenerate deploy/mesos's profiles, provider and isolator configs.
	$(GO) test -count=1 -run '^TestMesosExamples$$' ./cmd/localdisk -args -update

.PHONY: bench
bench: bench-cycle bench-snapshots ## Run every measurement of hack/bench (as root; not part of test; about 14 min).

.PHONY: bench-cycle
bench-cycle: ## Measure the volume cycle against the syscall limit (hack/bench; as root).
	$(GO) run ./hack/bench $(BENCH_ARGS)

.PHONY: bench-snapshots
bench-snapshots: ## Measure snapshots and restores of 1 GiB and 8 GiB on btrfs, XFS (reflink) and ext4 (copy) (hack/bench --snapshots; as root).
	$(GO) run ./hack/bench --snapshots $(BENCH_SNAPSHOT_ARGS)

.PHONY: e2e-tools
e2e-tools: ## Build kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, csi-provisioner, csi-snapshotter and snapshot-controller (and take the VolumeSnapshot CRDs) for the e2e tests (cached).
	hack/build-e2e-tools.sh

.PHONY: helm
helm: ## Build the pinned helm (hack/tools/helm) that lints and renders deploy/helm/localdisk (cached); prints its path.
	@hack/build-helm.sh

.PHONY: chart
chart: ## Lint the Helm chart and compare its renders with the kustomize builds (go test ./deploy/...).
	$(GO) test -count=1 -v ./deploy/...

.PHONY: e2e-kubernetes
e2e-kubernetes: ## Run the Kubernetes e2e test (as root; `make test` runs it too).
	@$(install-test-deps)
	@$(build-e2e-tools)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./test/e2e/kubernetes/...

.PHONY: e2e-node
e2e-node: ## Run the Kubernetes node e2e test: kubelet, containerd and kube-scheduler run pods on localdisk volumes (as root; `make test` runs it too).
	@$(install-test-deps)
	@$(build-e2e-tools)
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
