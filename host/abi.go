package host

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostFunc is one host function (env or WASI): its wasm signature and its implementation, which
// runs with the VM's lock held (it is only ever reached from a guest call).
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(v *VM, stack []uint64)
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// i32s returns n i32 value types, the common shape of proxy-wasm signatures.
func i32s(n int) []api.ValueType {
	t := make([]api.ValueType, n)
	for i := range t {
		t[i] = i32
	}
	return t
}

// statusResult is the single i32 result of every env.proxy_* function.
var statusResult = []api.ValueType{i32}

// envFuncs are all the env functions the host offers, by name, gathered from the per-area
// tables.
var envFuncs = func() map[string]hostFunc {
	m := map[string]hostFunc{}
	for _, table := range [][]hostFunc{lifecycleFuncs, headerFuncs, bufferFuncs, propertyFuncs,
		sharedDataFuncs, metricFuncs, logFuncs, httpCallFuncs, tickFuncs, unsupportedFuncs, cppHostEnvFuncs} {
		for _, f := range table {
			if _, dup := m[f.name]; dup {
				panic("host: duplicate host function " + f.name)
			}
			m[f.name] = f
		}
	}
	return m
}()

type vmKey struct{}

// vmFrom returns the VM whose call is running: every call into a guest carries its VM in the
// context, and wazero hands that context to the host functions the guest calls.
func vmFrom(ctx context.Context) *VM { return ctx.Value(vmKey{}).(*VM) }

func instantiateEnv(ctx context.Context, wz wazero.Runtime) (api.Module, error) {
	b := wz.NewHostModuleBuilder("env")
	for _, f := range envFuncs {
		fn, full, idx := f.fn, "env."+f.name, envIndex[f.name]
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
				v := vmFrom(ctx)
				v.checkRestricted(full)
				v.calls.env[idx].Add(1)
				fn(v, stack)
			}), f.params, f.results).
			WithName(f.name).
			Export(f.name)
	}
	return b.Instantiate(ctx)
}

// Memory helpers. They follow proxy-wasm-cpp-host: an out-of-range pointer is
// INVALID_MEMORY_ACCESS, never a trap.

// read returns a copy of guest memory [ptr, ptr+size).
func (v *VM) read(ptr, size uint32) ([]byte, bool) {
	b, ok := v.mem.Read(ptr, size)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func (v *VM) readString(ptr, size uint32) (string, bool) {
	b, ok := v.mem.Read(ptr, size)
	if !ok {
		return "", false
	}
	return string(b), true
}

func (v *VM) writeU32(ptr, x uint32) bool { return v.mem.WriteUint32Le(ptr, x) }

func (v *VM) writeU64(ptr uint32, x uint64) bool { return v.mem.WriteUint64Le(ptr, x) }

// copyOut allocates len(data) bytes in the guest with proxy_on_memory_allocate, copies data
// there and stores the address and size at ptrPtr and sizePtr (cpp-host's copyToPointerSize).
// Empty data is stored as address 0, size 0 without calling the allocator.
func (v *VM) copyOut(data []byte, ptrPtr, sizePtr uint32) Status {
	var addr uint32
	if len(data) > 0 {
		var ok bool
		if addr, ok = v.alloc(uint32(len(data))); !ok {
			return StatusInvalidMemoryAccess
		}
		if !v.mem.Write(addr, data) {
			return StatusInvalidMemoryAccess
		}
	}
	if !v.writeU32(ptrPtr, addr) || !v.writeU32(sizePtr, uint32(len(data))) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// alloc calls the guest's proxy_on_memory_allocate, restricted to the host calls cpp-host
// allows there (see restrictAlloc). A trap inside it is recorded and ends the outer call (the
// panic is recovered by wazero as that call's error).
func (v *VM) alloc(size uint32) (uint32, bool) {
	stack := v.allocStack[:]
	stack[0] = uint64(size)
	saved := v.enter(restrictAlloc)
	v.calls.alloc.Add(1)
	err := v.fns.alloc.CallWithStack(v.ctx, stack)
	v.restricted = saved
	if err != nil {
		panic(err)
	}
	addr := uint32(stack[0])
	return addr, addr != 0
}

// Pairs serialisation (proxy-wasm header maps): a little-endian u32 count, then count pairs of
// u32 (key size, value size), then each key and value followed by a NUL byte.

func pairsSize(h Headers) int {
	n := 4
	for _, p := range h {
		n += 8 + len(p[0]) + 1 + len(p[1]) + 1
	}
	return n
}

func marshalPairs(h Headers) []byte {
	buf := make([]byte, pairsSize(h))
	binary.LittleEndian.PutUint32(buf, uint32(len(h)))
	off := 4
	for _, p := range h {
		binary.LittleEndian.PutUint32(buf[off:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(buf[off+4:], uint32(len(p[1])))
		off += 8
	}
	for _, p := range h {
		off += copy(buf[off:], p[0]) + 1
		off += copy(buf[off:], p[1]) + 1
	}
	return buf
}

// unmarshalPairs parses the pairs serialisation. Like cpp-host's toPairs, a buffer too short
// for its own count yields no pairs; it also rejects sizes that run past the end, where
// cpp-host would read out of bounds.
func unmarshalPairs(buf []byte) (Headers, bool) {
	if len(buf) < 4 {
		return nil, len(buf) == 0
	}
	n := binary.LittleEndian.Uint32(buf)
	if uint64(4)+uint64(n)*8 > uint64(len(buf)) {
		return nil, false
	}
	h := make(Headers, n)
	sizes := buf[4:]
	data := 4 + int(n)*8
	for i := range h {
		ks := int(binary.LittleEndian.Uint32(sizes[i*8:]))
		vs := int(binary.LittleEndian.Uint32(sizes[i*8+4:]))
		if data+ks+1+vs+1 > len(buf) || ks < 0 || vs < 0 {
			return nil, false
		}
		h[i][0] = string(buf[data : data+ks])
		data += ks + 1
		h[i][1] = string(buf[data : data+vs])
		data += vs + 1
	}
	return h, true
}
