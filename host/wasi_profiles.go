package host

import (
	"fmt"
	"sort"
)

// WASIProfile names the proxy-wasm-cpp-host whose WASI the host reproduces: which functions a
// module may import (under wasi_snapshot_preview1 and wasi_unstable, as cpp-host registers
// both), how each answers, and which host calls the restricted phases allow (restrict.go).
type WASIProfile string

const (
	// WASICppHost20241219 is proxy-wasm-cpp-host at commit c4d7bb0 of 2024-12-19 (PR 427):
	// the cpp-host of Envoy 1.33 to early 2026. 18 WASI functions; poll_oneoff and
	// fd_fdstat_set_flags answer ENOSYS. It is the default.
	WASICppHost20241219 WASIProfile = "cpp-host-2024-12-19"
	// WASICppHost20260701 is proxy-wasm-cpp-host at commit 52a0291 of 2026-07-01: the
	// cpp-host of Envoy main from mid-2026. 45 WASI functions (PR 533 of 2026-04-06), mostly
	// stubs; poll_oneoff answers 0 events at once.
	WASICppHost20260701 WASIProfile = "cpp-host-2026-07-01"
)

// wasiProfile is one profile's table: everything in it is read from cpp-host at its commit
// (src/exports.cc for the answers, include/proxy-wasm/exports.h's FOR_ALL_WASI_FUNCTIONS for
// the list, src/wasm.cc's WasmBase::startVm and include/proxy-wasm/wasm.h's
// WasmBase::allocMemory for the allow-lists).
type wasiProfile struct {
	name         WASIProfile
	commit, date string
	funcs        []hostFunc
	// startAllowed and allocAllowed are the host calls allowed ("module.name") while the
	// module's start functions, and proxy_on_memory_allocate, run.
	startAllowed, allocAllowed map[string]bool
	// mainVoid: after _initialize, a module without main has its __main_void() -> i32 called
	// (WasmBase::startVm since e55d150 of 2026-03-03, PR 500: how Rust exports main).
	mainVoid bool
	// headersStopKnob: the cpp-host has ContextBase's allow_on_headers_stop_iteration_
	// (7a212bc of 2025-07-13, PR 434; Envoy's PluginConfig.allow_on_headers_stop_iteration
	// from Envoy 1.35). Without it, or with it false, a headers callback's StopIteration is
	// read as StopAllIterationAndWatermark (src/context.cc,
	// convertVmCallResultToFilterHeadersStatus, since 1582711 of 2020-11-11, PR 95).
	headersStopKnob bool
}

// cppHost20241219 is proxy-wasm-cpp-host c4d7bb0fda912e24c64daf2aa749ec54cec99412
// (2024-12-19, "add wasi hostcalls used by the Go SDK", PR 427).
var cppHost20241219 = &wasiProfile{
	name: WASICppHost20241219, commit: "c4d7bb0fda912e24c64daf2aa749ec54cec99412", date: "2024-12-19",
	headersStopKnob: false,
	funcs: []hostFunc{
		wasiFdWrite, wasiFdRead, wasiFdSeek, wasiFdClose, wasiFdFdstatGet, wasiFdFdstatSetFlags,
		wasiEnvironGet, wasiEnvironSizesGet, wasiArgsGet, wasiArgsSizesGet, wasiClockTimeGet,
		wasiRandomGet, wasiSchedYield, wasiPollOneoffNosys, wasiProcExit, wasiPathOpen,
		wasiFdPrestatGet, wasiFdPrestatDirName,
	},
	startAllowed: allowList([]string{"env.proxy_log"},
		"fd_write", "args_sizes_get", "args_get", "environ_sizes_get", "environ_get",
		"fd_prestat_get", "fd_prestat_dir_name", "clock_time_get", "random_get",
		"fd_fdstat_get", "fd_fdstat_set_flags"),
	allocAllowed: allowList([]string{"env.proxy_log"}, "fd_write", "clock_time_get"),
}

// cppHost20260701 is proxy-wasm-cpp-host 52a02917b301c679ff43565064cffd2c3c750f6d
// (2026-07-01). Since c4d7bb0 the start of a module changed in three commits: e55d150
// (2026-03-03, PR 500) calls __main_void (mainVoid); 14fa83a (2025-11-20, PR 461)
// allowed env.emscripten_notify_memory_growth during module start; 94091cd (2026-04-06,
// PR 533) added 27 functions, made poll_oneoff answer 0 events, and allowed poll_oneoff,
// clock_res_get and every new stub during module start, and poll_oneoff in the allocator.
var cppHost20260701 = &wasiProfile{
	name: WASICppHost20260701, commit: "52a02917b301c679ff43565064cffd2c3c750f6d", date: "2026-07-01",
	headersStopKnob: true,
	funcs: []hostFunc{
		wasiFdWrite, wasiFdRead, wasiFdSeek, wasiFdClose, wasiFdFdstatGet, wasiFdFdstatSetFlags,
		wasiFdFdstatSetRights, wasiEnvironGet, wasiEnvironSizesGet, wasiArgsGet, wasiArgsSizesGet,
		wasiClockTimeGet, wasiClockResGet, wasiFdAdvise, wasiFdAllocate, wasiFdDatasync,
		wasiFdFilestatSetSize, wasiFdFilestatSetTimes, wasiFdPread, wasiFdPwrite, wasiFdReaddir,
		wasiFdRenumber, wasiFdSync, wasiFdTell, wasiPathCreateDirectory, wasiPathFilestatSetTimes,
		wasiPathLink, wasiPathReadlink, wasiPathRemoveDirectory, wasiPathRename, wasiPathSymlink,
		wasiPathUnlinkFile, wasiSockAccept, wasiSockRecv, wasiSockSend, wasiSockShutdown,
		wasiRandomGet, wasiSchedYield, wasiPollOneoffNoEvents, wasiProcExit, wasiPathOpen,
		wasiFdPrestatGet, wasiFdPrestatDirName, wasiPathFilestatGet, wasiFdFilestatGet,
	},
	startAllowed: allowList([]string{"env.emscripten_notify_memory_growth", "env.proxy_log"},
		"fd_write", "args_sizes_get", "args_get", "environ_sizes_get", "environ_get",
		"clock_time_get", "clock_res_get", "random_get", "poll_oneoff", "fd_fdstat_get",
		"fd_fdstat_set_flags",
		// "None of the following _should_ be called during initialization", cpp-host says,
		// but Go runs package initialisers in _initialize, so it allows them all.
		"fd_advise", "fd_allocate", "fd_datasync", "fd_fdstat_set_rights", "fd_filestat_get",
		"fd_filestat_set_size", "fd_filestat_set_times", "fd_pread", "fd_prestat_dir_name",
		"fd_prestat_get", "fd_pwrite", "fd_readdir", "fd_renumber", "fd_sync", "fd_tell",
		"path_create_directory", "path_filestat_get", "path_filestat_set_times", "path_link",
		"path_readlink", "path_remove_directory", "path_rename", "path_symlink",
		"path_unlink_file", "sock_accept", "sock_recv", "sock_send", "sock_shutdown"),
	allocAllowed: allowList([]string{"env.proxy_log"}, "fd_write", "clock_time_get", "poll_oneoff"),
	mainVoid:     true,
}

// wasiProfiles are all the profiles, oldest first.
var wasiProfiles = []*wasiProfile{cppHost20241219, cppHost20260701}

// WASIProfiles lists the profile names, oldest first.
func WASIProfiles() []WASIProfile {
	out := make([]WASIProfile, len(wasiProfiles))
	for i, p := range wasiProfiles {
		out[i] = p.name
	}
	return out
}

func lookupWASIProfile(name WASIProfile) (*wasiProfile, error) {
	for _, p := range wasiProfiles {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("host: Options.WASI: unknown profile %q (want one of %v)", name, WASIProfiles())
}

// wasiModuleNames are the modules cpp-host registers every WASI function under.
var wasiModuleNames = [...]string{"wasi_snapshot_preview1", "wasi_unstable"}

// allowList builds an allow-list of env names and WASI functions, each of the latter under
// both WASI module names, as cpp-host lists them.
func allowList(env []string, wasi ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range env {
		m[n] = true
	}
	for _, n := range wasi {
		for _, mod := range wasiModuleNames {
			m[mod+"."+n] = true
		}
	}
	return m
}

// func returns the profile's function name, if it offers it.
func (p *wasiProfile) function(name string) (hostFunc, bool) {
	for _, f := range p.funcs {
		if f.name == name {
			return f, true
		}
	}
	return hostFunc{}, false
}

// allWASINames is the union of every profile's WASI functions, sorted: the index of VM's
// call counters.
var allWASINames = func() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range wasiProfiles {
		for _, f := range p.funcs {
			if !seen[f.name] {
				seen[f.name] = true
				out = append(out, f.name)
			}
		}
	}
	sort.Strings(out)
	return out
}()
