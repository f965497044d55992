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

// envoy133WASI is the WASI that proxy-wasm-cpp-host offered at its commit of 2024-12-19, the
// oldest that Envoy (1.33) ships able to load a module built by Go 1.26. A module that imports
// anything else is refused by such an Envoy at load time.
var envoy133WASI = []string{
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
// makes the module import a WASI function older Envoys lack (Envoy issue 44526).
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
				case modName == "wasi_snapshot_preview1" && slices.Contains(envoy133WASI, fn):
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
			// The host under the strict profile must agree: it offers exactly what Envoy
			// 1.33 offers, and names any import it lacks.
			provided := host.ProvidedImports(host.WASIEnvoy133)
			for _, f := range mod.ImportedFunctions() {
				m, n, _ := f.Import()
				if !slices.Contains(provided, m+"."+n) {
					t.Errorf("the host's envoy-1.33 profile does not provide %s.%s", m, n)
				}
			}
			hrt, err := host.NewRuntime(ctx, host.Options{CompilationCache: compileCache})
			if err != nil {
				t.Fatal(err)
			}
			defer hrt.Close(ctx)
			if _, err := hrt.Compile(ctx, wasm); err != nil {
				t.Errorf("the host refuses the module under its default (envoy-1.33) profile: %v", err)
			}
			// cpp-host restricts what _initialize and proxy_on_memory_allocate may call
			// (restricted_callback): the module must start and serve under that restriction
			// in both profiles (e.g. no package-level proxywasm.Define*Metric).
			for _, profile := range []host.WASIProfile{host.WASIEnvoy133, host.WASICurrent} {
				prt, err := host.NewRuntime(ctx, host.Options{WASI: profile, CompilationCache: compileCache})
				if err != nil {
					t.Fatal(err)
				}
				defer prt.Close(ctx)
				m, err := prt.Compile(ctx, wasm)
				if err != nil {
					t.Fatal(err)
				}
				p, err := prt.NewPlugin(ctx, m, host.PluginConfig{Name: "usageplans", RootID: "usageplans", VMID: "usageplans",
					Configuration: []byte(fltOptions())})
				if err != nil {
					t.Errorf("%s: the module does not start under cpp-host's restrictions: %v", profile, err)
					continue
				}
				if _, err := p.Do(ctx, fltGet("/pets", apiKey(fltGold)), func(context.Context, *host.Request) (*host.Response, error) {
					return &host.Response{Status: 200}, nil
				}); err != nil {
					t.Errorf("%s: a request: %v", profile, err)
				}
			}
		})
	}
}
