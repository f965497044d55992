package host

import (
	"fmt"
	"sort"
	"strings"
)

// restriction is the phase in which proxy-wasm-cpp-host lets a guest call only a few host
// functions (WasmVm::setRestrictedCallback): any other import called then traps the VM with
// "restricted_callback". Both profiles enforce it, for env and WASI functions alike, because
// cpp-host restricts these phases in every version that Envoy 1.33 and later ship.
type restriction uint8

const (
	unrestricted restriction = iota
	// restrictStart: _initialize, main and _start (WasmBase::startVm). The list is cpp-host's
	// at its commit of 2024-12-19, which added fd_fdstat_get and fd_fdstat_set_flags (PR #427)
	// because Go's runtime calls them during initialisation.
	restrictStart
	// restrictAlloc: proxy_on_memory_allocate (WasmBase::allocMemory in wasm.h).
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

var restrictedAllowed = map[restriction]map[string]bool{
	restrictStart: set("env.proxy_log",
		"wasi_snapshot_preview1.fd_write",
		"wasi_snapshot_preview1.args_sizes_get", "wasi_snapshot_preview1.args_get",
		"wasi_snapshot_preview1.environ_sizes_get", "wasi_snapshot_preview1.environ_get",
		"wasi_snapshot_preview1.fd_prestat_get", "wasi_snapshot_preview1.fd_prestat_dir_name",
		"wasi_snapshot_preview1.fd_fdstat_get", "wasi_snapshot_preview1.fd_fdstat_set_flags",
		"wasi_snapshot_preview1.clock_time_get", "wasi_snapshot_preview1.random_get"),
	restrictAlloc: set("env.proxy_log", "wasi_snapshot_preview1.fd_write",
		"wasi_snapshot_preview1.clock_time_get"),
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// checkRestricted traps the running call (a panic that wazero turns into the call's error)
// when the VM is in a restricted phase and full ("module.name") is not allowed in it. It is
// called by every host function before it runs; outside those phases it costs one load.
func (v *VM) checkRestricted(full string) {
	r := v.restricted
	if r == unrestricted || restrictedAllowed[r][full] {
		return
	}
	allowed := make([]string, 0, len(restrictedAllowed[r]))
	for n := range restrictedAllowed[r] {
		allowed = append(allowed, n)
	}
	sort.Strings(allowed)
	panic(fmt.Errorf("restricted_callback: the guest called %s during %s, where proxy-wasm-cpp-host allows only %s",
		full, r, strings.Join(allowed, ", ")))
}
