package host

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// A package-level proxywasm.DefineCounterMetric runs during _initialize. cpp-host's V8 traps
// it (restricted_callback) under both profiles, so the plugin fails at its base VM, naming
// the call; WAMR and Wasmtime do not restrict, so there the plugin starts and the metric
// exists (defined by the base, canary and worker VMs, one stat).
func TestRestrictedCallbackDuringInitialize(t *testing.T) {
	for _, profile := range WASIProfiles() {
		for _, engine := range Engines() {
			t.Run(string(profile)+"/"+string(engine), func(t *testing.T) {
				rt := newRuntime(t, Options{WASI: profile, Engine: engine})
				m := compile(t, rt, "initmetric")
				p, err := rt.NewPlugin(context.Background(), m, PluginConfig{Name: "im", VMID: "im"})
				if engine != EngineV8 {
					if err != nil {
						t.Fatalf("NewPlugin under %s: %v", engine, err)
					}
					defer p.Close(context.Background())
					want := []Metric{{Name: "init_requests", Type: MetricCounter}}
					if got := p.Metrics(); !reflect.DeepEqual(got, want) {
						t.Errorf("metrics = %+v, want %+v", got, want)
					}
					return
				}
				if err == nil {
					p.Close(context.Background())
					t.Fatal("NewPlugin succeeded, want the restricted_callback trap of _initialize")
				}
				for _, want := range []string{
					"host: plugin im: the base VM failed to start (Envoy: \"Failed to initialize Wasm code\"): host: im im#base: _initialize trapped, VM failed",
					"restricted_callback: the guest called env.proxy_define_metric during module start (_initialize, main or _start), where proxy-wasm-cpp-host (" + string(profile) + ", engine v8) allows only env.",
				} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q\ndoes not contain %q", err, want)
					}
				}
			})
		}
	}
}

// Inside proxy_on_memory_allocate cpp-host's V8 allows proxy_log, fd_write and
// clock_time_get only, and from 2026 poll_oneoff too. The module's allocator calls one host
// function; proxy_on_vm_start reads the VM configuration, which makes the host allocate.
func TestRestrictedCallbackDuringAllocate(t *testing.T) {
	imports := []wasmImport{envImport("proxy_get_buffer_bytes"), envImport("proxy_log"), envImport("proxy_get_log_level"), wasiImport("poll_oneoff")}
	drop := []byte{0x1a}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	vmStart := wasmFunc{export: "proxy_on_vm_start", params: i32s(2), results: i32s(1),
		body: cat(i32Const(6), i32Const(0), i32Const(3), i32Const(100), i32Const(104), call(0), drop, i32Const(1))}
	logLevel := cat(i32Const(0), call(2), drop, i32Const(8192))
	poll := cat(i32Const(0), i32Const(0), i32Const(0), i32Const(0), call(3), drop, i32Const(8192))
	tests := []struct {
		name      string
		profile   WASIProfile
		engine    Engine
		allocator []byte
		want      string // "" = the plugin starts
	}{
		{"proxy_log allowed", WASICppHost20241219, EngineV8, cat(i32Const(2), i32Const(0), i32Const(0), call(1), drop, i32Const(8192)), ""},
		{"proxy_get_log_level traps", WASICppHost20241219, EngineV8, logLevel,
			"restricted_callback: the guest called env.proxy_get_log_level during proxy_on_memory_allocate, where proxy-wasm-cpp-host (cpp-host-2024-12-19, engine v8) allows only env.proxy_log, wasi_snapshot_preview1.clock_time_get, wasi_snapshot_preview1.fd_write"},
		{"proxy_get_log_level runs under wamr", WASICppHost20241219, EngineWAMR, logLevel, ""},
		{"proxy_get_log_level runs under wasmtime", WASICppHost20260701, EngineWasmtime, logLevel, ""},
		{"poll_oneoff traps in 2024", WASICppHost20241219, EngineV8, poll,
			"restricted_callback: the guest called wasi_snapshot_preview1.poll_oneoff during proxy_on_memory_allocate, where proxy-wasm-cpp-host (cpp-host-2024-12-19, engine v8)"},
		{"poll_oneoff allowed in 2026", WASICppHost20260701, EngineV8, poll, ""},
		{"proxy_get_log_level traps in 2026", WASICppHost20260701, EngineV8, logLevel,
			"where proxy-wasm-cpp-host (cpp-host-2026-07-01, engine v8) allows only env.proxy_log, wasi_snapshot_preview1.clock_time_get, wasi_snapshot_preview1.fd_write, wasi_snapshot_preview1.poll_oneoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRuntime(t, Options{WASI: tt.profile, Engine: tt.engine})
			spec := wasmSpec{imports: imports, memory: true, funcs: []wasmFunc{
				{export: "proxy_abi_version_0_2_1"},
				{export: "proxy_on_memory_allocate", params: i32s(1), results: i32s(1), body: tt.allocator},
				vmStart,
			}}
			m, err := rt.Compile(context.Background(), spec.encode())
			if err != nil {
				t.Fatal(err)
			}
			p, err := rt.NewPlugin(context.Background(), m, PluginConfig{Name: "a", VMID: "a", VMConfig: []byte("abc")})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close(context.Background())
				if got := peek(t, p.VMs()[0], 8192, 3); string(got) != "abc" {
					t.Fatalf("allocated bytes = %q, want the VM configuration", got)
				}
				return
			}
			if err == nil {
				p.Close(context.Background())
				t.Fatalf("NewPlugin succeeded, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), "proxy_on_vm_start trapped, VM failed") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

// A module without _initialize is a WASI command: cpp-host calls its _start instead, under the
// same restriction. Its _start here calls proxy_get_log_level, which the restriction traps,
// so the error proves both that _start ran and that it ran restricted.
func TestStartOnlyModuleRunsStartRestricted(t *testing.T) {
	rt := newRuntime(t, Options{})
	spec := wasmSpec{imports: []wasmImport{envImport("proxy_get_log_level")}, memory: true, funcs: append(proxyBasics(),
		wasmFunc{export: "_start", body: append(append(i32Const(0), call(0)...), 0x1a)})}
	m, err := rt.Compile(context.Background(), spec.encode())
	if err != nil {
		t.Fatal(err)
	}
	p, err := rt.NewPlugin(context.Background(), m, PluginConfig{Name: "cmd", VMID: "cmd"})
	if err == nil {
		p.Close(context.Background())
		t.Fatal("NewPlugin succeeded, want _start's restricted call to trap")
	}
	want := "host: cmd cmd#base: _start trapped, VM failed: restricted_callback: the guest called env.proxy_get_log_level during module start (_initialize, main or _start)"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q\ndoes not contain %q", err, want)
	}
}
