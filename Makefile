# hxds — two commands: `make run` and `make test`.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PKGS      := ./...
RUN_ARGS  ?=

.PHONY: all build run test testdeps test-short bench lint fmt vet golden fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/hxds ./cmd/hxds
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/hxds-agent ./cmd/hxds-agent

# Serve the bundled example: ADS on 127.0.0.1:15010, admin on 127.0.0.1:8888.
run: build
	$(BIN)/hxds serve --config-dir examples/quickstart $(RUN_ARGS)

# Everything CI checks: formatting, vet, and every test with the race detector.
test: lint testdeps
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# Real servers the tests run, built once and cached under .cache/bin
# (git-ignored). The Consul agent: ~4 min and ~3.2 GB cold, then skipped.
testdeps:
	GO=$(GO) scripts/build-consul.sh

test-short:
	$(GO) test -count=1 -short $(PKGS)

# Benchmarks (translation, endpoint path, push fan-out). BENCH narrows, e.g. BENCH=FanOut.
BENCH ?= .
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=1 -timeout 60m $(PKGS)

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Regenerate golden files after an intended output change; review the diff.
golden:
	$(GO) test ./translate/... -update

# Fuzz the translators for FUZZTIME each (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./translate/ -run '^$$' -fuzz FuzzTranslate -fuzztime $(FUZZTIME)
	$(GO) test ./internal/source/file/ -run '^$$' -fuzz FuzzLoadDocument -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN) .cache
