package host

import (
	"fmt"
	"sort"
	"strings"
)

// restriction is a phase in which proxy-wasm-cpp-host lets a guest call only a few host
// functions (WasmVm::setRestrictedCallback): under V8 any other import called then traps the
// VM with "restricted_callback". The allow-lists are the WASI profile's (wasi_profiles.go);
// only EngineV8 enforces them (engine.go), so under the other engines a VM never enters a
// restricted phase.
type restriction uint8

const (
	unrestricted restriction = iota
	// restrictStart: _initialize, main and _start (WasmBase::startVm, src/wasm.cc).
	restrictStart
	// restrictAlloc: proxy_on_memory_allocate (WasmBase::allocMemory,
	// include/proxy-wasm/wasm.h).
	restrictAlloc
)

func (r restriction) String() string {
	switch r {
	case restrictStart:
		return "module start (_initialize, main or _start)"
	case restrictAlloc:
		return "proxy_on_memory_allocate"
	}
	return "no restriction"
}

// allowed returns the allow-list of phase r under the runtime's profile.
func (rt *Runtime) allowed(r restriction) map[string]bool {
	if r == restrictAlloc {
		return rt.profile.allocAllowed
	}
	return rt.profile.startAllowed
}

// enter puts the VM in phase r when the engine restricts, and returns the phase to restore.
func (v *VM) enter(r restriction) restriction {
	saved := v.restricted
	if v.rt.opts.Engine.restricts() {
		v.restricted = r
	}
	return saved
}

// checkRestricted traps the running call (a panic that wazero turns into the call's error)
// when the VM is in a restricted phase and full ("module.name") is not allowed in it. It is
// called by every host function before it runs; outside those phases it costs one load.
func (v *VM) checkRestricted(full string) {
	r := v.restricted
	if r == unrestricted {
		return
	}
	allowed := v.rt.allowed(r)
	if allowed[full] {
		return
	}
	// The message lists the allow-list under env and wasi_snapshot_preview1 (cpp-host lists
	// every WASI name under wasi_unstable too).
	names := make([]string, 0, len(allowed))
	for n := range allowed {
		if !strings.HasPrefix(n, "wasi_unstable.") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	panic(fmt.Errorf("restricted_callback: the guest called %s during %s, where proxy-wasm-cpp-host (%s, engine %s) allows only %s",
		full, r, v.rt.profile.name, v.rt.opts.Engine, strings.Join(names, ", ")))
}
