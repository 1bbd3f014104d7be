# ferry — the two commands are `make run` and `make test`.
# Everything else here is a helper they (or you) can call.

GO        ?= go
BIN       := bin
FERRY     := $(BIN)/ferry
LDFLAGS   := -s -w
GOFLAGS_BUILD := -trimpath -buildvcs=false
TEST_TIMEOUT ?= 45m
BENCH_REPORT ?= bench/report.txt
FUZZTIME ?= 5m
# Packages run again under the race detector: those with concurrent code,
# and cmd/..., where the end-to-end tests run the agent, ferry up and real
# ferry-host processes together (about 8 minutes of both cores on a 2-core
# machine).
RACE_PKGS := ./sync/... ./registry/... ./builder/... ./targets/host/... ./cmd/...
# Skipped in the race pass only (they run in the first pass): the two tests
# that build and push the multi-arch ferry-host image. Their time is go build
# subprocesses and qemu, and the image code they drive runs no goroutines, so
# the race detector has nothing to watch; under it they took 396 s and 176 s
# of a fresh machine's make test.
RACE_SKIP := ^(TestBuildPushReadBack|TestImagePush)$$

.PHONY: all build run test bench check testdata clean

all: build

build: ## build ferry (and ferry-host once it exists) into ./bin
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

run: build ## the main job on the embedded default (see README)
	@./scripts/run.sh

test: ## every test, with the real services they need (built once, cached)
	@./scripts/testdeps.sh
	@./scripts/testtools.sh
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) run ./cmd/ferry fmt -check -r .
	$(GO) test -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -race -timeout $(TEST_TIMEOUT) -skip '$(RACE_SKIP)' $(RACE_PKGS)

bench: ## benchmarks, compared in one run against native baselines; writes $(BENCH_REPORT)
	@BENCH_REPORT=$(BENCH_REPORT) ./scripts/bench.sh

# make image REPO=registry.example.com/ferry/host[:TAG] [KEY=cosign.key] [NO_SIGN=1]
KEY ?= cosign.key
.PHONY: image
image: ## build the multi-arch ferry-host image (linux/amd64, arm64, arm/v7) without Docker, push it to REPO and sign its digest with KEY
	@test -n "$(REPO)" || { echo "usage: make image REPO=registry.example.com/ferry/host[:TAG] [KEY=cosign.key] [NO_SIGN=1]" >&2; exit 2; }
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)} \
	  $(GO) run ./cmd/ferry image push $(if $(NO_SIGN),--no-sign,--key $(KEY)) $(REPO)

.PHONY: chaos
chaos: ## the long reliability suites: faults, 50 SIGKILL trials, a 10-minute soak (scripts/chaos.sh; report in chaos-report.txt)
	@./scripts/chaos.sh

.PHONY: fuzz
fuzz: ## every native Go fuzz target, one after another, FUZZTIME each (default 5m)
	@FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

check: ## cross-build ferry-host for the edge architectures and every example guest for wasip1
	@./scripts/check.sh

testdata: ## rebuild committed Wasm fixtures from their sources (needs wat2wasm from wabt)
	@./scripts/testdata.sh

clean:
	rm -rf $(BIN)
