package host

import (
	"context"
	"encoding/binary"
	"testing"
)

// probeVM starts a one-VM plugin of a probe module (see probe in wasmgen_test.go).
func probeVM(t testing.TB, rt *Runtime, cfg PluginConfig, imports ...wasmImport) *VM {
	t.Helper()
	m, err := rt.Compile(context.Background(), probe(imports...))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name == "" {
		cfg.Name = "probe"
	}
	if cfg.VMID == "" {
		cfg.VMID = "probe"
	}
	p, err := rt.NewPlugin(context.Background(), m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p.VMs()[0]
}

// callIn calls the probe's forwarder of host function name, as if from context ctxID.
func callIn(t testing.TB, v *VM, ctxID uint32, name string, args ...uint64) uint64 {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	fn := v.mod.ExportedFunction("call_" + name)
	if fn == nil {
		t.Fatalf("probe does not import %s", name)
	}
	res, err := v.call(fn, name, ctxID, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func poke(t testing.TB, v *VM, off uint32, b []byte) {
	t.Helper()
	if !v.mem.Write(off, b) {
		t.Fatalf("write %d bytes at %d: out of range", len(b), off)
	}
}

func peek(t testing.TB, v *VM, off, n uint32) []byte {
	t.Helper()
	b, ok := v.mem.Read(off, n)
	if !ok {
		t.Fatalf("read %d bytes at %d: out of range", n, off)
	}
	return append([]byte(nil), b...)
}

func peekU32(t testing.TB, v *VM, off uint32) uint32 {
	return binary.LittleEndian.Uint32(peek(t, v, off, 4))
}

func peekU64(t testing.TB, v *VM, off uint32) uint64 {
	return binary.LittleEndian.Uint64(peek(t, v, off, 8))
}

// outBytes reads the (address, size) pair a host function stored at ptrPtr and sizePtr and
// returns the bytes it points to.
func outBytes(t testing.TB, v *VM, ptrPtr, sizePtr uint32) []byte {
	t.Helper()
	return peek(t, v, peekU32(t, v, ptrPtr), peekU32(t, v, sizePtr))
}
