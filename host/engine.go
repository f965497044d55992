package host

import "fmt"

// Engine names the Wasm engine cpp-host runs the module on in Envoy (vm_config.runtime
// "envoy.wasm.runtime.<engine>"). The engines differ for a module in one respect this host
// reproduces: only V8 enforces the restricted phases (restrict.go). cpp-host's check,
// WasmVm::isHostFunctionAllowed, is called from src/v8/v8.cc's host-function trampolines
// alone; src/wamr/wamr.cc and src/wasmtime/wasmtime.cc register host functions that run
// whatever phase the VM is in (both at commits c4d7bb0 of 2024-12-19 and 52a0291 of
// 2026-07-01).
type Engine string

const (
	// EngineV8 restricts host calls during module start and proxy_on_memory_allocate: a call
	// outside the allow-list traps with "restricted_callback". Envoy's default; this host's.
	EngineV8 Engine = "v8"
	// EngineWAMR runs every host call in every phase: the calls answer as usual.
	EngineWAMR Engine = "wamr"
	// EngineWasmtime runs every host call in every phase, as EngineWAMR.
	EngineWasmtime Engine = "wasmtime"
)

// Engines lists the engines, V8 first.
func Engines() []Engine { return []Engine{EngineV8, EngineWAMR, EngineWasmtime} }

// restricts reports whether the engine enforces cpp-host's restricted phases.
func (e Engine) restricts() bool { return e == EngineV8 }

func checkEngine(e Engine) error {
	for _, k := range Engines() {
		if e == k {
			return nil
		}
	}
	return fmt.Errorf("host: Options.Engine: unknown engine %q (want one of %v)", e, Engines())
}
