package e2e

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/usageplans/usageplans/host"
)

// cppHost20241219WASI is the WASI that proxy-wasm-cpp-host offered at its commit of 2024-12-19
// (c4d7bb0), the oldest that Envoy (1.33) ships able to load a module built by Go 1.26,
// written out here independently of the host's tables. A module that imports anything else
// is refused by such an Envoy at load time.
var cppHost20241219WASI = []string{
	"args_get", "args_sizes_get", "clock_time_get", "environ_get", "environ_sizes_get",
	"fd_close", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_prestat_dir_name", "fd_prestat_get",
	"fd_read", "fd_seek", "fd_write", "path_open", "poll_oneoff", "proc_exit", "random_get",
	"sched_yield",
}

// proxyHostFunctions are the env.proxy_* functions of ABI 0.2.1 that Envoy provides.
var proxyHostFunctions = []string{
	"proxy_log", "proxy_get_log_level", "proxy_get_status", "proxy_set_tick_period_milliseconds",
	"proxy_get_current_time_nanoseconds", "proxy_get_property", "proxy_set_property",
	"proxy_continue_stream", "proxy_close_stream", "proxy_send_local_response",
	"proxy_get_shared_data", "proxy_set_shared_data", "proxy_register_shared_queue",
	"proxy_resolve_shared_queue", "proxy_dequeue_shared_queue", "proxy_enqueue_shared_queue",
	"proxy_get_header_map_pairs", "proxy_set_header_map_pairs", "proxy_get_header_map_size",
	"proxy_get_header_map_value", "proxy_add_header_map_value", "proxy_replace_header_map_value",
	"proxy_remove_header_map_value", "proxy_get_buffer_bytes", "proxy_set_buffer_bytes",
	"proxy_get_buffer_status", "proxy_http_call", "proxy_grpc_call", "proxy_grpc_stream",
	"proxy_grpc_send", "proxy_grpc_cancel", "proxy_grpc_close", "proxy_define_metric",
	"proxy_increment_metric", "proxy_record_metric", "proxy_get_metric",
	"proxy_set_effective_context", "proxy_done", "proxy_call_foreign_function",
}

// TestModuleLoadsInEnvoy133 checks the built module's imports and exports against what Envoy
// 1.33 offers and expects: this is the test that fails when a Go upgrade or a new dependency
// makes the module import a WASI function older Envoys lack (Envoy issue 44526). Every newer
// profile must provide them too.
func TestModuleLoadsInEnvoy133(t *testing.T) {
	for name, wasm := range map[string][]byte{"filter": filterWasm, "noop": noopWasm} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			mod, err := rt.CompileModule(ctx, wasm)
			if err != nil {
				t.Fatal(err)
			}
			var unknown []string
			for _, f := range mod.ImportedFunctions() {
				modName, fn, _ := f.Import()
				switch {
				case modName == "wasi_snapshot_preview1" && slices.Contains(cppHost20241219WASI, fn):
				case modName == "env" && slices.Contains(proxyHostFunctions, fn):
				default:
					unknown = append(unknown, modName+"."+fn)
				}
			}
			if len(unknown) > 0 {
				t.Errorf("imports Envoy 1.33 does not provide: %s", strings.Join(unknown, ", "))
			}
			exports := map[string]bool{}
			for n := range mod.ExportedFunctions() {
				exports[n] = true
			}
			want := []string{"_initialize", "proxy_on_memory_allocate", "proxy_abi_version_0_2_1",
				"proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure",
				"proxy_on_request_headers", "proxy_on_response_headers", "proxy_on_log",
				"proxy_on_done", "proxy_on_delete"}
			var missing []string
			for _, n := range want {
				if !exports[n] {
					missing = append(missing, n)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("missing exports: %s", strings.Join(missing, ", "))
			}
			if _, ok := mod.ExportedMemories()["memory"]; !ok {
				t.Error("the module exports no memory")
			}
			// The host must agree under every profile: it names any import it lacks.
			for _, profile := range host.WASIProfiles() {
				provided := host.ProvidedImports(profile)
				for _, f := range mod.ImportedFunctions() {
					m, n, _ := f.Import()
					if !slices.Contains(provided, m+"."+n) {
						t.Errorf("the host's %s profile does not provide %s.%s", profile, m, n)
					}
				}
			}
		})
	}
}

// TestModuleServesUnderEveryCppHost runs the built filter under every WASI profile and engine
// the host reproduces, as a user would meet it in those Envoys: it loads (base, canary and two
// worker VMs, under V8's restrictions or without them), answers 403 and 429 exactly, and both
// workers share one token bucket; the Go runtime never reaches poll_oneoff.
func TestModuleServesUnderEveryCppHost(t *testing.T) {
	for _, profile := range host.WASIProfiles() {
		for _, engine := range host.Engines() {
			t.Run(string(profile)+"/"+string(engine), func(t *testing.T) {
				e := startFilter(t, fltSetup{wasi: profile, engine: engine, workers: 2})
				if o := e.rt.Options(); o.WASI != profile || o.Engine != engine {
					t.Fatalf("runtime runs %s/%s", o.WASI, o.Engine)
				}
				wantReply(t, e.get("/pets"), 403, fltForbidden, fltForbiddenBody)
				// Burst 2 shared by the two workers (Do goes round robin): the third is 429.
				e.wantStatuses(t, fltTight, 200, 200)
				wantReply(t, e.get("/pets", apiKey(fltTight)), 429, fltThrottled("2"), fltThrottledBody)
				e.wantPassed(t, e.get("/pets", apiKey(fltGold)), identity("/pets", "gold-key", "gold"), upstreamHeaders)
				e.wantCounters(t, map[string]uint64{"usageplans.requests.allowed": 3, "usageplans.requests.throttled": 1,
					"usageplans.requests.forbidden": 1, "usageplans.requests.failure": 0})
				for _, vm := range e.plugin.VMs() {
					if err := vm.Failed(); err != nil {
						t.Errorf("worker %d failed: %v", vm.Worker(), err)
					}
					if n := vm.WASICalls()["poll_oneoff"]; n != 0 {
						t.Errorf("worker %d called poll_oneoff %d times", vm.Worker(), n)
					}
				}
			})
		}
	}
}
