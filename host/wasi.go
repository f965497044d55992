package host

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// wasiModuleName is the WASI module Go's toolchain imports from; cpp-host also registers
// every function under "wasi_unstable" (wasiModuleNames).
const wasiModuleName = "wasi_snapshot_preview1"

// wasiFuncCount is len(allWASINames): every WASI function any profile offers.
const wasiFuncCount = 45

var wasiIndex = func() map[string]int {
	if len(allWASINames) != wasiFuncCount {
		panic("host: wasiFuncCount is not the number of WASI functions of the profiles")
	}
	m := map[string]int{}
	for i, n := range allWASINames {
		m[n] = i
	}
	return m
}()

// WASICalls returns how many times the guest called each WASI function, under either module
// name (functions never called are absent). Safe to call at any time.
func (v *VM) WASICalls() map[string]uint64 {
	out := map[string]uint64{}
	for i := range v.wasiCounts {
		if n := v.wasiCounts[i].Load(); n > 0 {
			out[allWASINames[i]] = n
		}
	}
	return out
}

// instantiateWASI instantiates the profile's functions as the host modules
// wasi_snapshot_preview1 and wasi_unstable. Each call is checked against the restricted
// phase (restrict.go) and counted before it runs.
func instantiateWASI(ctx context.Context, wz wazero.Runtime, profile *wasiProfile) error {
	for _, mod := range wasiModuleNames {
		b := wz.NewHostModuleBuilder(mod)
		for _, f := range profile.funcs {
			fn, full, idx := f.fn, mod+"."+f.name, wasiIndex[f.name]
			b.NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
					v := vmFrom(ctx)
					v.checkRestricted(full)
					v.wasiCounts[idx].Add(1)
					fn(v, stack)
				}), f.params, f.results).
				WithName(f.name).
				Export(f.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}
