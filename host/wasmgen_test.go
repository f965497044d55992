package host

import (
	"github.com/tetratelabs/wazero/api"
)

// A tiny WebAssembly encoder for hand-made modules: the bad-input tests need modules that no
// Go toolchain would produce, and the ABI tests call single host functions directly.

type wasmImport struct {
	module, name    string
	params, results []api.ValueType
}

type wasmFunc struct {
	export          string // "" = not exported
	params, results []api.ValueType
	body            []byte // instructions, without the final end
}

type wasmSpec struct {
	imports []wasmImport
	funcs   []wasmFunc
	memory  bool       // one exported page named "memory"
	data    []wasmData // active segments of that memory
}

// wasmData is bytes the module's memory starts with at an offset.
type wasmData struct {
	offset int32
	bytes  []byte
}

func uleb(n uint64) []byte {
	var out []byte
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func sleb(n int64) []byte {
	var out []byte
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if (n == 0 && b&0x40 == 0) || (n == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func wasmName(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func wasmVec(items [][]byte) []byte {
	out := uleb(uint64(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
}

func funcType(params, results []api.ValueType) []byte {
	out := append([]byte{0x60}, uleb(uint64(len(params)))...)
	out = append(out, params...)
	out = append(out, uleb(uint64(len(results)))...)
	return append(out, results...)
}

func (s wasmSpec) encode() []byte {
	var types, imports, funcs, exports, codes [][]byte
	for i, im := range s.imports {
		types = append(types, funcType(im.params, im.results))
		imports = append(imports, append(append(append(wasmName(im.module), wasmName(im.name)...), 0x00), uleb(uint64(i))...))
	}
	for i, f := range s.funcs {
		ti := len(types)
		types = append(types, funcType(f.params, f.results))
		funcs = append(funcs, uleb(uint64(ti)))
		if f.export != "" {
			exports = append(exports, append(append(wasmName(f.export), 0x00), uleb(uint64(len(s.imports)+i))...))
		}
		body := append([]byte{0x00}, f.body...) // no locals
		body = append(body, 0x0b)
		codes = append(codes, append(uleb(uint64(len(body))), body...))
	}
	if s.memory {
		exports = append(exports, append(wasmName("memory"), 0x02, 0x00))
	}
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(1, wasmVec(types))...)
	if len(imports) > 0 {
		out = append(out, section(2, wasmVec(imports))...)
	}
	out = append(out, section(3, wasmVec(funcs))...)
	if s.memory {
		out = append(out, section(5, wasmVec([][]byte{{0x00, 0x01}}))...)
	}
	out = append(out, section(7, wasmVec(exports))...)
	out = append(out, section(10, wasmVec(codes))...)
	if len(s.data) > 0 {
		var segs [][]byte
		for _, d := range s.data {
			seg := append([]byte{0x00}, i32Const(d.offset)...) // memory 0, offset expression
			seg = append(seg, 0x0b)
			seg = append(seg, uleb(uint64(len(d.bytes)))...)
			segs = append(segs, append(seg, d.bytes...))
		}
		out = append(out, section(11, wasmVec(segs))...)
	}
	return out
}

// Instructions.
func localGet(i int) []byte   { return append([]byte{0x20}, uleb(uint64(i))...) }
func call(i int) []byte       { return append([]byte{0x10}, uleb(uint64(i))...) }
func i32Const(n int32) []byte { return append([]byte{0x41}, sleb(int64(n))...) }

// proxyBasics are the exports that make a module proxy-wasm: the ABI version and an
// allocator that bumps a pointer from 8192 (the module has one 64 KiB page).
func proxyBasics() []wasmFunc {
	return []wasmFunc{
		{export: "proxy_abi_version_0_2_1"},
		{export: "proxy_on_memory_allocate", params: []api.ValueType{i32}, results: []api.ValueType{i32}, body: i32Const(8192)},
	}
}

// probe is a module that imports the given functions and exports "call_<name>" for each,
// forwarding its parameters, so a test can call one host function with chosen arguments.
func probe(imports ...wasmImport) []byte {
	s := wasmSpec{imports: imports, memory: true, funcs: proxyBasics()}
	for i, im := range imports {
		var body []byte
		for p := range im.params {
			body = append(body, localGet(p)...)
		}
		body = append(body, call(i)...)
		s.funcs = append(s.funcs, wasmFunc{export: "call_" + im.name, params: im.params, results: im.results, body: body})
	}
	return s.encode()
}

// envImport and wasiImport describe imports by name from the host's own tables.
func envImport(name string) wasmImport {
	f := envFuncs[name]
	return wasmImport{module: "env", name: name, params: f.params, results: f.results}
}

// wasiImport takes the signature from the newest profile, which offers every function.
func wasiImport(name string) wasmImport {
	f, ok := cppHost20260701.function(name)
	if !ok {
		panic("no WASI function " + name)
	}
	return wasmImport{module: wasiModuleName, name: name, params: f.params, results: f.results}
}
