package host

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"
)

// Bad input must fail with an error that names the cause, never with a panic.
func TestCompileRejectsBadInput(t *testing.T) {
	rt := newRuntime(t, Options{})
	noAlloc := wasmSpec{memory: true, funcs: []wasmFunc{{export: "proxy_abi_version_0_2_1"}}}
	noABI := wasmSpec{memory: true, funcs: []wasmFunc{{export: "proxy_on_memory_allocate", params: []api.ValueType{i32}, results: []api.ValueType{i32}, body: i32Const(8)}}}
	noMemory := wasmSpec{funcs: proxyBasics()}
	unknownEnv := wasmSpec{memory: true, funcs: proxyBasics(), imports: []wasmImport{{module: "env", name: "foo"}}}
	unknownWASI := wasmSpec{memory: true, funcs: proxyBasics(), imports: []wasmImport{{module: "wasi_snapshot_preview1", name: "fd_readdir", params: i32s(5), results: i32s(1)}}}
	unknownModule := wasmSpec{memory: true, funcs: proxyBasics(), imports: []wasmImport{{module: "go", name: "debug"}}}
	badSignature := wasmSpec{memory: true, funcs: proxyBasics(), imports: []wasmImport{{module: "env", name: "proxy_log", params: i32s(2), results: i32s(1)}}}
	tests := []struct {
		name string
		wasm []byte
		want string
	}{
		{"empty", nil, `not a WebAssembly binary (first bytes "", want "\x00asm")`},
		{"text", []byte("(module)\n"), `not a WebAssembly binary (first bytes "(mod", want "\x00asm")`},
		{"truncated", []byte("\x00asm\x01\x00\x00\x00\x01\x05"), "host: compile: "},
		{"no allocator", noAlloc.encode(), "not a proxy-wasm module: no export proxy_on_memory_allocate"},
		{"no ABI version", noABI.encode(), "not a proxy-wasm 0.2 module: no export proxy_abi_version_0_2_* (exports: proxy_on_memory_allocate)"},
		{"no memory", noMemory.encode(), `no exported memory named "memory"`},
		{"unknown env function", unknownEnv.encode(), "module imports env.foo, which this host (WASI profile cpp-host-2024-12-19: proxy-wasm-cpp-host of 2024-12-19) does not provide"},
		{"WASI function outside the profile", unknownWASI.encode(), "module imports wasi_snapshot_preview1.fd_readdir, which this host"},
		{"unknown module", unknownModule.encode(), "module imports go.debug, which"},
		{"wrong signature", badSignature.encode(), "module imports env.proxy_log as (i32, i32) -> (i32), want (i32, i32, i32) -> (i32)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := rt.Compile(context.Background(), tt.wasm)
			if err == nil {
				t.Fatalf("Compile succeeded (exports %v), want an error containing %q", m.Exports(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestProvidedImports(t *testing.T) {
	for _, tt := range []struct {
		profile WASIProfile
		wasi    int
		has     []string
		hasNot  []string
	}{
		{WASICppHost20241219, 18, []string{"wasi_snapshot_preview1.poll_oneoff", "wasi_unstable.fd_write"}, []string{"wasi_snapshot_preview1.fd_filestat_get", "wasi_snapshot_preview1.clock_res_get"}},
		{WASICppHost20260701, 45, []string{"wasi_snapshot_preview1.fd_filestat_get", "wasi_unstable.sock_shutdown", "wasi_snapshot_preview1.clock_res_get"}, nil},
	} {
		got := ProvidedImports(tt.profile)
		if len(got) != len(envFuncs)+2*tt.wasi {
			t.Errorf("%s: %d imports, want %d env functions and %d WASI functions under two modules", tt.profile, len(got), len(envFuncs), tt.wasi)
		}
		for _, want := range append([]string{"env.proxy_get_shared_data", "env.pthread_equal", "env.emscripten_notify_memory_growth", "wasi_snapshot_preview1.fd_fdstat_set_flags"}, tt.has...) {
			if !slices.Contains(got, want) {
				t.Errorf("%s: %s missing", tt.profile, want)
			}
		}
		for _, not := range tt.hasNot {
			if slices.Contains(got, not) {
				t.Errorf("%s: provides %s", tt.profile, not)
			}
		}
	}
	if got := ProvidedImports("envoy-1.33"); got != nil {
		t.Errorf("an unknown profile provides %v", got)
	}
}

func TestCompileDescribesModule(t *testing.T) {
	rt := newRuntime(t, Options{})
	m := compile(t, rt, "abi")
	if got := m.ABIVersion(); got != "0_2_1" {
		t.Errorf("ABIVersion = %q, want 0_2_1", got)
	}
	if len(m.Digest()) != 64 {
		t.Errorf("Digest = %q, want 64 hex digits", m.Digest())
	}
	// Every import is an env.proxy_* function the host provides or a WASI function of the
	// cpp-host-2024-12-19 list: the compatibility promise of the oldest profile.
	for _, imp := range m.Imports() {
		mod, name, _ := strings.Cut(imp, ".")
		switch {
		case mod == "env" && strings.HasPrefix(name, "proxy_"):
			if _, ok := envFuncs[name]; !ok {
				t.Errorf("import %s is not provided", imp)
			}
		case mod == "wasi_snapshot_preview1":
			if _, ok := cppHost20241219.function(name); !ok {
				t.Errorf("import %s is outside the cpp-host-2024-12-19 surface", imp)
			}
		default:
			t.Errorf("import %s is outside the cpp-host-2024-12-19 surface", imp)
		}
	}
}

// A panic in init traps _initialize of the base VM, and how it reads depends on the cpp-host:
// the Go runtime's panic path first sleeps (freezetheworld calls usleep, i.e. poll_oneoff).
//   - 2024-12-19 under V8: poll_oneoff is not allowed during module start, so the VM dies
//     with restricted_callback before the panic value is printed, as Envoy reports it
//     ("Function: _initialize failed: Uncaught Error: restricted_callback").
//   - 2024-12-19 under WAMR or Wasmtime: poll_oneoff runs and answers ENOSYS, which the
//     runtime cannot survive ("panic during panic"), still without the value.
//   - 2026-07-01, any engine: poll_oneoff is allowed and answers 0 events, so the panic value
//     and its trace are printed, then the runtime traps (unreachable).
func TestInitializeTrap(t *testing.T) {
	const head = "host: plugin bad: the base VM failed to start (Envoy: \"Failed to initialize Wasm code\"): host: bad bad#base: _initialize trapped, VM failed: "
	restricted := head + "restricted_callback: the guest called wasi_snapshot_preview1.poll_oneoff during module start (_initialize, main or _start)"
	enosys := []string{head + "wasm error: unreachable", "fatal error: wasi_snapshot_preview1.poll_oneoff\npanic during panic"}
	printed := []string{head + "wasm error: unreachable", "panic: badinit: init fails on purpose\n\ngoroutine 1 [running]:\nmain.init.0()"}
	for _, tt := range []struct {
		profile WASIProfile
		engine  Engine
		want    []string
	}{
		{WASICppHost20241219, EngineV8, []string{restricted}},
		{WASICppHost20241219, EngineWAMR, enosys},
		{WASICppHost20241219, EngineWasmtime, enosys},
		{WASICppHost20260701, EngineV8, printed},
		{WASICppHost20260701, EngineWAMR, printed},
		{WASICppHost20260701, EngineWasmtime, printed},
	} {
		t.Run(string(tt.profile)+"/"+string(tt.engine), func(t *testing.T) {
			rt := newRuntime(t, Options{WASI: tt.profile, Engine: tt.engine})
			m := compile(t, rt, "badinit")
			_, err := rt.NewPlugin(context.Background(), m, PluginConfig{Name: "bad", VMID: "bad"})
			if err == nil {
				t.Fatal("NewPlugin succeeded, want the _initialize trap")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
			if tt.profile == WASICppHost20241219 && strings.Contains(err.Error(), "init fails on purpose") {
				t.Errorf("the panic value was printed under %s: %v", tt.profile, err)
			}
			if keys := rt.SharedData("bad").Keys(); len(keys) != 0 {
				t.Errorf("shared data of the failed vm_id = %v, want none", keys)
			}
		})
	}
}

// Every callback cpp-host looks up must have its ABI 0.2.1 type: Envoy refuses the module
// ("Bad function signature for: ...") even for a callback it would never call, where this
// host used to accept it and pass leftover stack values as the missing arguments.
func TestCompileRejectsBadCallbackSignatures(t *testing.T) {
	rt := newRuntime(t, Options{})
	one := i32s(1)
	tests := []struct {
		name string
		fn   wasmFunc
		want string
	}{
		{"request headers with two params", wasmFunc{export: "proxy_on_request_headers", params: i32s(2), results: one, body: i32Const(0)},
			"bad function signature for proxy_on_request_headers: want (i32,i32,i32)->i32, got (i32,i32)->i32"},
		{"done without result", wasmFunc{export: "proxy_on_done", params: one},
			"bad function signature for proxy_on_done: want (i32)->i32, got (i32)->()"},
		{"context create with five params", wasmFunc{export: "proxy_on_context_create", params: i32s(5)},
			"bad function signature for proxy_on_context_create: want (i32,i32)->(), got (i32,i32,i32,i32,i32)->()"},
		{"unused callback still checked", wasmFunc{export: "proxy_on_grpc_close", params: i32s(2)},
			"bad function signature for proxy_on_grpc_close: want (i32,i32,i32)->(), got (i32,i32)->()"},
		{"_initialize with a result", wasmFunc{export: "_initialize", results: one, body: i32Const(0)},
			"bad function signature for _initialize: want ()->(), got ()->i32"},
		{"i64 context id", wasmFunc{export: "proxy_on_log", params: []api.ValueType{i64}},
			"bad function signature for proxy_on_log: want (i32)->(), got (i64)->()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := wasmSpec{memory: true, funcs: append(proxyBasics(), tt.fn)}
			m, err := rt.Compile(context.Background(), spec.encode())
			if err == nil {
				t.Fatalf("Compile succeeded (exports %v), want %q", m.Exports(), tt.want)
			}
			if got := err.Error(); got != "host: compile: "+tt.want {
				t.Fatalf("error %q\nwant    %q", got, "host: compile: "+tt.want)
			}
		})
	}
	t.Run("allocator", func(t *testing.T) {
		spec := wasmSpec{memory: true, funcs: []wasmFunc{{export: "proxy_abi_version_0_2_1"},
			{export: "proxy_on_memory_allocate", params: []api.ValueType{i64}, results: one, body: i32Const(8)}}}
		_, err := rt.Compile(context.Background(), spec.encode())
		want := "host: compile: bad function signature for proxy_on_memory_allocate: want (i32)->i32, got (i64)->i32"
		if err == nil || err.Error() != want {
			t.Fatalf("error %v, want %q", err, want)
		}
	})
}
