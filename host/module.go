package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Module is a compiled proxy-wasm module, ready to be instantiated by any number of VMs.
type Module struct {
	rt         *Runtime
	compiled   wazero.CompiledModule
	digest     string
	abiVersion string
	imports    []string
	exports    []string

	mu      sync.Mutex
	vms     int  // VMs of this module not yet closed
	closing bool // Close was called: the code goes with the last VM
	closed  bool // the compiled code was released
}

var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// Compile validates and compiles a proxy-wasm module. It fails, naming the cause, when the
// bytes are not Wasm, when the module is not proxy-wasm (no proxy_abi_version_0_2_* export,
// no proxy_on_memory_allocate, no memory), or when it imports a function this host does
// not offer under its WASI profile (the error names it, e.g. "env.foo"). A module without
// _initialize is accepted, as by cpp-host: its VMs call _start instead (VM.startModule).
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], wasmMagic) {
		n := min(len(wasm), 4)
		return nil, fmt.Errorf("host: compile: not a WebAssembly binary (first bytes %q, want \"\\x00asm\")", wasm[:n])
	}
	cm, err := r.wz.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("host: compile: %w", err)
	}
	sum := sha256.Sum256(wasm)
	m := &Module{rt: r, compiled: cm, digest: hex.EncodeToString(sum[:])}
	fail := func(format string, a ...any) (*Module, error) {
		cm.Close(ctx)
		return nil, fmt.Errorf("host: compile: "+format, a...)
	}
	var unknown, mismatched []string
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		full := mod + "." + name
		m.imports = append(m.imports, full)
		var want hostFunc
		var ok bool
		switch mod {
		case "env":
			want, ok = envFuncs[name]
		case wasiModuleNames[0], wasiModuleNames[1]:
			want, ok = r.profile.function(name)
		}
		if !ok {
			unknown = append(unknown, full)
			continue
		}
		if !sameTypes(imp.ParamTypes(), want.params) || !sameTypes(imp.ResultTypes(), want.results) {
			mismatched = append(mismatched, fmt.Sprintf("%s as %s, want %s", full,
				signature(imp.ParamTypes(), imp.ResultTypes()), signature(want.params, want.results)))
		}
	}
	if len(unknown) > 0 {
		// Envoy: "Failed to load Wasm module due to a missing import".
		return fail("module imports %s, which this host (WASI profile %s: proxy-wasm-cpp-host of %s) does not provide",
			quoteList(unknown), r.profile.name, r.profile.date)
	}
	if len(mismatched) > 0 {
		// Envoy: "Failed to load Wasm module due to an import type mismatch".
		return fail("module imports %s", quoteList(mismatched))
	}
	for _, imp := range cm.ImportedMemories() {
		mod, name, _ := imp.Import()
		return fail("module imports memory %s.%s; a proxy-wasm module must export its own", mod, name)
	}
	exported := cm.ExportedFunctions()
	for name := range exported {
		m.exports = append(m.exports, name)
		if strings.HasPrefix(name, "proxy_abi_version_0_2_") {
			m.abiVersion = strings.TrimPrefix(name, "proxy_abi_version_")
		}
	}
	sort.Strings(m.exports)
	if m.abiVersion == "" {
		return fail("not a proxy-wasm 0.2 module: no export proxy_abi_version_0_2_* (exports: %s)", quoteList(m.exports))
	}
	if _, ok := exported["proxy_on_memory_allocate"]; !ok {
		return fail("not a proxy-wasm module: no export proxy_on_memory_allocate")
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return fail("not a proxy-wasm module: no exported memory named \"memory\"")
	}
	var bad []string
	for _, name := range m.exports {
		want, known := guestExports[name]
		if name == "__main_void" && r.profile.mainVoid {
			// Looked up by the cpp-host of 2026 only, and only beside _initialize.
			_, reactor := exported["_initialize"]
			want, known = struct{ params, results []api.ValueType }{nil, i32s(1)}, reactor
		}
		if !known {
			continue
		}
		def := exported[name]
		if !sameTypes(def.ParamTypes(), want.params) || !sameTypes(def.ResultTypes(), want.results) {
			bad = append(bad, fmt.Sprintf("bad function signature for %s: want %s, got %s", name,
				compactSignature(want.params, want.results), compactSignature(def.ParamTypes(), def.ResultTypes())))
		}
	}
	if len(bad) > 0 {
		return fail("%s", strings.Join(bad, "; "))
	}
	return m, nil
}

func sameTypes(a, b []api.ValueType) bool { return bytes.Equal(a, b) }

// guestExports are the signatures of every function cpp-host looks up in a module
// (WasmBase::getFunctions: the start functions, the allocator and FOR_ALL_MODULE_FUNCTIONS of
// ABI 0.2.x, all with 32-bit words). cpp-host fails the load with "Bad function signature
// for: <name>" when an export of one of these names has another type, even a callback it
// would never call; so does Compile, for every such export at once.
var guestExports = func() map[string]struct{ params, results []api.ValueType } {
	type sig = struct{ params, results []api.ValueType }
	none := []api.ValueType(nil)
	one := i32s(1)
	m := map[string]sig{
		"_initialize":                  {none, none},
		"_start":                       {none, none},
		"main":                         {i32s(2), one},
		"malloc":                       {one, one},
		"proxy_on_memory_allocate":     {one, one},
		"proxy_validate_configuration": {i32s(2), one}, // ABI 0.1.0's; still looked up
	}
	for name, s := range map[string]sig{
		"context_create": {i32s(2), none}, "vm_start": {i32s(2), one}, "configure": {i32s(2), one},
		"tick": {one, none}, "done": {one, one},
		"log": {one, none}, "delete": {one, none}, "queue_ready": {i32s(2), none},
		"foreign_function": {i32s(3), none},
		"request_headers":  {i32s(3), one}, "request_body": {i32s(3), one},
		"request_trailers": {i32s(2), one}, "request_metadata": {i32s(2), one},
		"response_headers": {i32s(3), one}, "response_body": {i32s(3), one},
		"response_trailers": {i32s(2), one}, "response_metadata": {i32s(2), one},
		"http_call_response": {i32s(5), none},
		"new_connection":     {one, one}, "downstream_data": {i32s(3), one}, "upstream_data": {i32s(3), one},
		"downstream_connection_close": {i32s(2), none}, "upstream_connection_close": {i32s(2), none},
		"grpc_receive_initial_metadata": {i32s(3), none}, "grpc_receive_trailing_metadata": {i32s(3), none},
		"grpc_receive": {i32s(3), none}, "grpc_close": {i32s(3), none},
	} {
		m["proxy_on_"+name] = s
	}
	return m
}()

// compactSignature writes a function type as "(i32,i32,i32)->i32", "(i32)->()".
func compactSignature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return strings.Join(out, ",")
	}
	r := names(results)
	if len(results) != 1 {
		r = "(" + r + ")"
	}
	return "(" + names(params) + ")->" + r
}

// signature writes a function type as "(i32, i64) -> i32".
func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return strings.Join(out, ", ")
	}
	return "(" + names(params) + ") -> (" + names(results) + ")"
}

func quoteList(names []string) string {
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + fmt.Sprintf(" and %d more", len(names)-8)
	}
	return strings.Join(names, ", ")
}

// Digest is the hex SHA-256 of the module's bytes.
func (m *Module) Digest() string { return m.digest }

// ABIVersion is the version from the module's proxy_abi_version_* export, e.g. "0_2_1".
func (m *Module) ABIVersion() string { return m.abiVersion }

// Imports lists the module's imported functions as "module.name", in import order.
func (m *Module) Imports() []string { return append([]string(nil), m.imports...) }

// Exports lists the module's exported functions, sorted.
func (m *Module) Exports() []string { return append([]string(nil), m.exports...) }

// Close releases the compiled code once no VM runs it: at once when none does, else when
// the last one closes (e.g. the VMs a Plugin.Swap retired, after their last stream). wazero
// unmaps the code of a closed compiled module, so releasing it under a running VM would
// crash that VM. No VM can start from a closed module. Closing twice is a no-op.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closing = true
	return m.releaseLocked(ctx)
}

func (m *Module) releaseLocked(ctx context.Context) error {
	if !m.closing || m.closed || m.vms > 0 {
		return nil
	}
	m.closed = true
	return m.compiled.Close(ctx)
}

// Closed reports whether the compiled code was released (Close was called and no VM of the
// module runs any more).
func (m *Module) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// acquireVM counts a VM about to be instantiated; false once Close was called.
func (m *Module) acquireVM() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return false
	}
	m.vms++
	return true
}

// releaseVM counts a VM out, and releases the code if it was the last after a Close.
func (m *Module) releaseVM(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vms--
	m.releaseLocked(ctx)
}

// ProvidedImports lists every function a module may import from this host under profile, as
// "module.name", sorted: the env functions (the same for every profile) and the profile's
// WASI functions under wasi_snapshot_preview1 and wasi_unstable. An unknown profile provides
// nothing.
func ProvidedImports(profile WASIProfile) []string {
	p, err := lookupWASIProfile(profile)
	if err != nil {
		return nil
	}
	var out []string
	for name := range envFuncs {
		out = append(out, "env."+name)
	}
	for _, mod := range wasiModuleNames {
		for _, f := range p.funcs {
			out = append(out, mod+"."+f.name)
		}
	}
	sort.Strings(out)
	return out
}
