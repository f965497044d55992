# usageplans: AWS API Gateway usage plans and API keys as a proxy-wasm filter.
# `make run` to try it, `make test` before you push.

GO       ?= go
WASM     ?= build/usageplans.wasm
NOOP     ?= build/out/noop.wasm
VERSION  ?= dev
VM_ID    ?= usageplans
ROOT_ID  ?= usageplans
LISTEN   ?= 127.0.0.1:8080
ADMIN    ?= 127.0.0.1:9901
CONFIG   ?= plugin.json
# envoyproxy/ratelimit (RLS) for the global-mode tests: the newest version the module proxy
# serves; `make deps` installs it as $(BIN)/service_cmd.
RLS_VERSION ?= v1.4.1-0.20260122083618-3fb702589d36
BIN      ?= build/out/bin

.PHONY: build deps test bench bench-wasm wasmexec size fuzz run lint check image push manifests clean

## build: the filter module, build/usageplans.wasm (standard Go toolchain, no TinyGo)
build:
	$(GO) run ./build/wasmbuild -o $(WASM) -ldflags "-X main.version=$(VERSION)" ./filter
	$(GO) run ./build/wasmbuild -o $(NOOP) ./host/testdata/noop

## deps: what the tests start besides the module: RLS built from source into $(BIN), and a
## check that redis-server is installed (it comes from apt: apt-get install redis-server)
deps:
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/envoyproxy/ratelimit/src/service_cmd@$(RLS_VERSION)
	@test -n "$$USAGEPLANS_REDIS" || command -v redis-server >/dev/null || test -x $(BIN)/redis-server || \
		{ echo "redis-server not found: apt-get install redis-server (or set USAGEPLANS_REDIS to one)"; exit 1; }

## test: vet, then every test, the end-to-end ones against the module just built and a real
## Redis and RLS (make deps)
test: build deps
	$(GO) vet ./...
	USAGEPLANS_WASM=$(CURDIR)/$(WASM) USAGEPLANS_NOOP_WASM=$(CURDIR)/$(NOOP) USAGEPLANS_REQUIRE_WASM=1 USAGEPLANS_REQUIRE_RLS=1 \
		$(GO) test -count=1 -timeout 15m ./...

## bench: one table of what the filter adds to a request, per path (allow, throttled, quota
## exceeded, forbidden, ...): the median ns of e2e BenchmarkRequest over $(BENCH_COUNT) runs, as a
## multiple of the no-op module's in the same run, host calls and allocation re-entries per
## request, and the decision alone in Wasm (filter/core BenchmarkDecide); the gateway's req/s
## next to httputil.ReverseProxy's in front of the same upstream; then every
## benchmark named .../keys=N of $(BENCH_KEYS_PKGS), in Wasm. Raw output in build/out/bench.txt.
BENCH_COUNT     ?= 6
BENCH_KEYS_PKGS ?= ./filter/config ./filter/core
WASM_PKGS       ?= ./filter/config ./filter/core ./filter/limit ./filter/state ./filter/usage
WASMEXEC        := $(CURDIR)/build/out/wasmexec
GO_WASM_TEST     = GOOS=wasip1 GOARCH=wasm $(GO) test -exec $(WASMEXEC) -run '^$$' -benchmem
bench: build wasmexec
	@{ USAGEPLANS_WASM=$(CURDIR)/$(WASM) USAGEPLANS_NOOP_WASM=$(CURDIR)/$(NOOP) \
		$(GO) test -run '^$$' -bench '^(BenchmarkRequest|BenchmarkGatewayVsReverseProxy|BenchmarkGlobal|BenchmarkConfigureKeys)$$' -benchmem -count $(BENCH_COUNT) ./e2e && \
	  $(GO_WASM_TEST) -bench '^BenchmarkDecide$$' -count $(BENCH_COUNT) ./filter/core && \
	  $(GO_WASM_TEST) -bench '/keys=' -count $(BENCH_COUNT) $(BENCH_KEYS_PKGS); } > build/out/bench.txt || \
		{ cat build/out/bench.txt; exit 1; }
	@$(GO) run ./build/benchtable < build/out/bench.txt

## bench-wasm: every benchmark of the pure packages ($(WASM_PKGS)) compiled for wasip1 and run
## in Wasm under wazero (build/wasmexec), where the filter's code runs: native numbers hide
## what Wasm costs (the key's SHA-256 has no SHA-NI there, for one)
bench-wasm: wasmexec
	$(GO_WASM_TEST) -bench . $(WASM_PKGS)

wasmexec:
	@mkdir -p build/out
	$(GO) build -o $(WASMEXEC) ./build/wasmexec

## size: the module's size as a ratio of the no-op module's, and its code per Go package
## (from a build with the name section, build/out/usageplans-names.wasm)
size: build
	$(GO) run ./build/wasmbuild -o build/out/usageplans-names.wasm -ldflags "-s=false -X main.version=$(VERSION)" ./filter
	$(GO) run ./build/wasmsize -names build/out/usageplans-names.wasm -top 25 $(WASM) $(NOOP)

## run: a local gateway on $(LISTEN) serving the filter with plugin.json and an echo upstream,
## with the path settings of the shipped Envoy bootstraps (build/envoy)
run: build
	$(GO) build -o build/out/usageplans ./cmd/usageplans
	build/out/usageplans serve --wasm $(WASM) --config $(CONFIG) --listen $(LISTEN) --admin $(ADMIN) --upstream echo --routes testdata/routes.json \
		--normalize-path --merge-slashes --path-with-escaped-slashes-action UNESCAPE_AND_REDIRECT --print-demo

## image: the module as a Wasm OCI image (compat variant) in build/out, no Docker needed
image: build
	$(GO) run ./build/oci/cmd/wasmimage -wasm $(WASM) -out build/out

## push: make push IMAGE=registry/repository:tag (credentials from the Docker config)
push: build
	@test -n "$(IMAGE)" || { echo "usage: make push IMAGE=registry/repository:tag"; exit 2; }
	$(GO) run ./build/oci/cmd/wasmimage -wasm $(WASM) -out build/out -push $(IMAGE)

## manifests: copy plugin.json into the Envoy bootstraps and Istio manifests after editing it
## (and build/{envoy,istio}/global/plugin.json, plugin.json plus "global", into the global-mode ones)
manifests:
	$(GO) run ./build/envoy/cmd/embedconfig
	$(GO) run ./build/envoy/cmd/embedconfig -plugin build/envoy/global/plugin.json build/envoy/global/envoy.yaml
	$(GO) run ./build/envoy/cmd/embedconfig -plugin build/istio/global/plugin.json build/istio/global/wasmplugin.yaml

## fuzz: every fuzzer of the repository (each func Fuzz* of a tracked _test.go), $(FUZZTIME) each
FUZZTIME ?= 30s
fuzz:
	@git grep -l '^func Fuzz' -- '*_test.go' | while read -r file; do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
			echo "== ./$$(dirname "$$file") $$name, $(FUZZTIME)"; \
			$(GO) test "./$$(dirname "$$file")" -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) || exit 1; \
		done; \
	done

lint:
	$(GO) vet ./...
	$(GO) run ./build/envoy/cmd/embedconfig -check
	$(GO) run ./build/envoy/cmd/embedconfig -check -plugin build/envoy/global/plugin.json build/envoy/global/envoy.yaml
	$(GO) run ./build/envoy/cmd/embedconfig -check -plugin build/istio/global/plugin.json build/istio/global/wasmplugin.yaml
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

## check: tidy, vet, gofmt and a clean git status
check: lint
	$(GO) mod tidy
	@git diff --exit-code go.mod go.sum || { echo "go.mod/go.sum not tidy"; exit 1; }
	@test -z "$$(git status --porcelain)" || { git status --short; echo "working tree not clean"; exit 1; }

clean:
	rm -rf $(WASM) build/out
