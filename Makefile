# ocl-pipelines. `make test` is what CI runs (.ci/run); see README.md.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin
PKGS := ./...

.PHONY: all build test unit integration e2e demo up down lint vet fmt generate verify-generated bench bench-build fuzz fuzz-short model model-long clean release images

all: build

## build: compile every binary into bin/
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: lint, check generated files are in step, unit (with the committed fuzz corpora as seeds), the
## model-based test (its `model: seeds=S steps=N violations=V` line),
## a short run of every fuzz target, integration and e2e tests (what CI runs)
test: lint verify-generated unit model fuzz-short integration e2e

## unit: go test of every package (table, golden, example and validation tests)
unit:
	$(GO) test -count=1 -skip '^TestModel$$' $(PKGS)

## model: the model-based test of the PoolImage reconciler (controller/poolimage/model*_test.go):
## MODEL_SEEDS (200) random seeded histories of MODEL_STEPS (60) events of a simulated cluster,
## every invariant checked after every step; prints `model: seeds=S steps=N violations=V` and, per
## violation, its invariant, seed and shrunk trace (a row for TestModelTraces)
model:
	set -o pipefail; $(GO) test -count=1 -run '^TestModel$$' -v ./controller/poolimage/ | grep -v -E '^=== (RUN|PAUSE|CONT)'

## model-long: the model with 2,000 seeds of 500 steps (1,000,000 steps, a few minutes)
model-long:
	set -o pipefail; MODEL_SEEDS=2000 MODEL_STEPS=500 $(GO) test -count=1 -timeout 2h -run '^TestModel$$' -v ./controller/poolimage/ | grep -v -E '^=== (RUN|PAUSE|CONT)'

## integration: the pipeline's stages with the real buildah and a real registry on 127.0.0.1
## (installs the Debian packages it needs, idempotently)
integration:
	hack/install-packages.sh
	$(GO) test -count=1 -tags integration ./test/integration/...

## e2e: the controller against real components started by test/stack (etcd, kube-apiserver,
## Tekton, registry); builds and caches them the first time (~8 minutes on 2 cores)
e2e:
	$(GO) test -count=1 -timeout 50m -tags e2e ./test/e2e/...

## demo: the main job — the controller builds and promotes examples/minimal.yaml on the local stack
demo:
	hack/demo.sh

## up, down: start or stop the local stack of real components
up:
	$(GO) run ./test/stack/cmd up
down:
	$(GO) run ./test/stack/cmd down

## lint: gofmt, go vet, golangci-lint (.golangci.yml, pinned in hack/golangci-lint), shellcheck on
## every script, and no comment pointing at an issue number (hack/lint.sh)
lint: fmt vet
	hack/lint.sh

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags integration ./test/integration/...
	$(GO) vet -tags e2e ./test/e2e/...

## generate: regenerate deepcopy, clients, injection, CRD, tasks/ and pipelines/
generate:
	hack/update-codegen.sh

## verify-generated: fail if `make generate` would change anything
verify-generated:
	hack/verify-codegen.sh

## bench: the performance figures as `bench: name=value goal=goal` lines and a table:
## the month-trace replay, the controller at scale on a real API server (BENCH_POOLS, default 200),
## the generator and reconcile benchmarks
bench:
	hack/bench.sh

## bench-build: on the real stack: the layer cache (cold build vs rebuild after a last-line change)
## and a cluster upgrade with the stand-in MCO (rollouts per node, base change → promotion)
bench-build:
	hack/bench-build.sh

## fuzz-short: every fuzz target for 5,000 new executions after replaying its corpus (CI)
fuzz-short:
	FUZZTIME=5000x FUZZ_SAVE=0 hack/fuzz.sh

## fuzz: every fuzz target for FUZZTIME (default 1,000,000 executions each); grows the committed corpora
fuzz:
	hack/fuzz.sh

## images: the controller and ocl-step images (ko, on the project's static non-root base), for
## linux/amd64 and linux/arm64; REGISTRY=host/path pushes there, else to a registry of this machine
images:
	hack/images.sh $(REGISTRY)

## release: VERSION=v… REGISTRY=host/path: push the images tagged VERSION and write
## dist/release.yaml, the whole install with every image pinned by digest
release:
	@test -n "$(VERSION)" -a -n "$(REGISTRY)" || { echo "make release VERSION=v0.2.0 REGISTRY=quay.io/example/ocl-pipelines"; exit 2; }
	hack/release.sh $(VERSION) $(REGISTRY)

## golden: rewrite the golden files of the generator tests
golden:
	$(GO) test ./pkg/generator/ -run 'TestGolden' -update

clean:
	rm -rf $(BIN) dist
