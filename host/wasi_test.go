package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// A Go guest that sets fd flags (syscall.SetNonblock) gets ENOSYS under both profiles, as
// from proxy-wasm-cpp-host at both commits.
func TestWASIProfileStrictness(t *testing.T) {
	for _, tt := range []struct {
		profile WASIProfile
		want    string
	}{{WASICppHost20241219, "ENOSYS"}, {WASICppHost20260701, "ENOSYS"}} {
		t.Run(string(tt.profile), func(t *testing.T) {
			rt := newRuntime(t, Options{WASI: tt.profile})
			p := newPlugin(t, rt, "abi", PluginConfig{})
			var up recorder
			if _, err := p.Do(context.Background(), get("fdflags,log"), up.upstream); err != nil {
				t.Fatal(err)
			}
			if got := resultOf(t, up.last(t), "fdflags"); got != tt.want {
				t.Errorf("SetNonblock = %s, want %s", got, tt.want)
			}
			calls := p.VMs()[0].WASICalls()
			if calls["fd_write"] == 0 || calls["fd_fdstat_set_flags"] == 0 || calls["poll_oneoff"] != 0 {
				t.Errorf("WASI calls = %v, want fd_write and fd_fdstat_set_flags counted, poll_oneoff 0", calls)
			}
		})
	}
}

// Requests with forced garbage collections never make the Go runtime sleep: poll_oneoff stays
// at 0 and nothing traps under the oldest profile.
func TestNoPollOneoffUnderGC(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	var up recorder
	for i := 0; i < 200; i++ {
		if _, err := p.Do(context.Background(), get("gc,cas-incr,headers", "x-key", "k"), up.upstream); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := p.VMs()[0].WASICalls()["poll_oneoff"]; n != 0 {
		t.Errorf("poll_oneoff called %d times, want 0", n)
	}
}

// wasiCase is one call of a WASI function through a probe, and what cpp-host answers.
type wasiCase struct {
	fn    string
	args  []uint64
	errno uint64
	at    uint32 // where to check memory (with want)
	want  []byte
}

func u64le(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

// wasiCommonCases answer the same under both profiles: the 17 functions of 2024-12-19 whose
// code did not change (poll_oneoff did; fd_write is tested on its own).
var wasiCommonCases = []wasiCase{
	{"args_sizes_get", []uint64{100, 104}, errnoSuccess, 100, make([]byte, 8)},
	{"args_sizes_get", []uint64{65534, 104}, errnoFault, 0, nil},
	{"args_get", []uint64{100, 104}, errnoSuccess, 0, nil},
	{"environ_sizes_get", []uint64{100, 104}, errnoSuccess, 100, []byte{2, 0, 0, 0, 4 + 11, 0, 0, 0}},
	{"environ_sizes_get", []uint64{100, 65535}, errnoFault, 0, nil},
	{"environ_get", []uint64{100, 200}, errnoSuccess, 200, []byte("A=1\x00LONGER=two\x00")},
	{"environ_get", []uint64{100, 65530}, errnoFault, 0, nil},
	{"clock_time_get", []uint64{0, 1, 300}, errnoSuccess, 300, u64le(1700000000000000005)},
	{"clock_time_get", []uint64{1, 1, 300}, errnoSuccess, 300, u64le(uint64(time.Second))},
	{"clock_time_get", []uint64{2, 1, 300}, errnoNotsup, 0, nil},
	{"clock_time_get", []uint64{3, 1, 300}, errnoNotsup, 0, nil},
	{"clock_time_get", []uint64{0, 1, 65530}, errnoFault, 0, nil},
	{"fd_fdstat_get", []uint64{1, 400}, errnoSuccess, 400, append(make([]byte, 8), append(u64le(64), u64le(0)...)...)},
	{"fd_fdstat_get", []uint64{2, 400}, errnoSuccess, 400, append(make([]byte, 8), append(u64le(64), u64le(0)...)...)},
	{"fd_fdstat_get", []uint64{0, 400}, errnoBadf, 0, nil},
	{"fd_fdstat_get", []uint64{3, 400}, errnoBadf, 0, nil},
	{"fd_fdstat_get", []uint64{1, 65530}, errnoSuccess, 0, nil}, // cpp-host ignores the failed write
	{"fd_fdstat_set_flags", []uint64{1, 4}, errnoNosys, 0, nil},
	{"fd_fdstat_set_flags", []uint64{7, 0}, errnoNosys, 0, nil},
	{"fd_prestat_get", []uint64{3, 400}, errnoBadf, 0, nil},
	{"fd_prestat_dir_name", []uint64{3, 400, 10}, errnoNosys, 0, nil},
	{"fd_read", []uint64{0, 400, 1, 500}, errnoNosys, 0, nil},
	{"path_open", []uint64{3, 0, 400, 1, 0, 0, 0, 0, 500}, errnoNoent, 0, nil},
	{"sched_yield", nil, errnoSuccess, 0, nil},
	{"random_get", []uint64{400, 0}, errnoSuccess, 0, nil},
	{"random_get", []uint64{400, 16}, errnoSuccess, 0, nil},
	{"random_get", []uint64{400, 64 << 10}, errnoFault, 0, nil}, // 64 KiB is allowed; 400+64 KiB is past the page
	{"random_get", []uint64{400, 64<<10 + 1}, errnoInval, 0, nil},
	{"fd_seek", []uint64{1, 0, 0, 500}, errnoSuccess, 0, nil},
	{"fd_close", []uint64{1}, errnoSuccess, 0, nil},
}

// wasiCases2026 are the functions and answers that only the cpp-host of 2026-07-01 has.
// Memory at 800..815 is 0xff before each call, so a write's exact size shows.
var wasiCases2026 = []wasiCase{
	{"poll_oneoff", []uint64{400, 500, 1, 800}, errnoSuccess, 800, []byte{0, 0, 0, 0, 0xff}},
	{"poll_oneoff", []uint64{400, 500, 1, 65534}, errnoFault, 0, nil},
	{"clock_res_get", []uint64{0, 800}, errnoSuccess, 800, append(u64le(1), 0xff)},
	{"clock_res_get", []uint64{1, 800}, errnoSuccess, 800, append(u64le(1), 0xff)},
	{"clock_res_get", []uint64{2, 800}, errnoNotsup, 800, []byte{0xff}},
	{"clock_res_get", []uint64{1, 65530}, errnoFault, 0, nil},
	{"fd_advise", []uint64{9, 0, 10, 0}, errnoSuccess, 0, nil},
	{"fd_allocate", []uint64{1, 0, 10}, errnoSuccess, 0, nil},
	{"fd_allocate", []uint64{0, 0, 10}, errnoBadf, 0, nil},
	{"fd_datasync", []uint64{2}, errnoSuccess, 0, nil},
	{"fd_datasync", []uint64{3}, errnoBadf, 0, nil},
	{"fd_fdstat_set_rights", []uint64{1, 64, 0}, errnoSuccess, 0, nil},
	{"fd_fdstat_set_rights", []uint64{4, 64, 0}, errnoBadf, 0, nil},
	{"fd_filestat_get", []uint64{1, 800}, errnoBadf, 800, []byte{0xff}},
	{"fd_filestat_get", []uint64{3, 800}, errnoBadf, 0, nil},
	{"fd_filestat_set_size", []uint64{2, 5}, errnoSuccess, 0, nil},
	{"fd_filestat_set_size", []uint64{5, 5}, errnoBadf, 0, nil},
	{"fd_filestat_set_times", []uint64{1, 1, 2, 0}, errnoSuccess, 0, nil},
	{"fd_filestat_set_times", []uint64{0, 1, 2, 0}, errnoBadf, 0, nil},
	{"fd_pread", []uint64{1, 400, 1, 0, 800}, errnoNosys, 800, []byte{0xff}},
	{"fd_pwrite", []uint64{0, 700, 2, 0, 800}, errnoBadf, 800, []byte{0xff}},
	{"fd_readdir", []uint64{3, 400, 10, 0, 800}, errnoNotdir, 800, []byte{0, 0, 0, 0, 0xff}},
	{"fd_readdir", []uint64{3, 400, 10, 0, 65534}, errnoFault, 0, nil},
	{"fd_renumber", []uint64{1, 2}, errnoNotsup, 0, nil},
	{"fd_renumber", []uint64{1, 3}, errnoBadf, 0, nil},
	{"fd_renumber", []uint64{0, 2}, errnoBadf, 0, nil},
	{"fd_sync", []uint64{1}, errnoSuccess, 0, nil},
	{"fd_sync", []uint64{0}, errnoBadf, 0, nil},
	{"fd_tell", []uint64{2, 800}, errnoSuccess, 800, append(u64le(0), 0xff)},
	{"fd_tell", []uint64{3, 800}, errnoBadf, 800, []byte{0xff}},
	{"fd_tell", []uint64{1, 65530}, errnoFault, 0, nil},
	{"path_create_directory", []uint64{3, 400, 1}, errnoNotsup, 0, nil},
	{"path_filestat_get", []uint64{3, 0, 400, 1, 800}, errnoNotsup, 800, []byte{0xff}},
	{"path_filestat_set_times", []uint64{3, 0, 400, 1, 1, 2, 0}, errnoNotsup, 0, nil},
	{"path_link", []uint64{3, 0, 400, 1, 3, 410}, errnoNotsup, 0, nil},
	{"path_readlink", []uint64{3, 400, 1, 500, 10, 800}, errnoNotsup, 800, []byte{0, 0, 0, 0, 0xff}},
	{"path_readlink", []uint64{3, 400, 1, 500, 10, 65534}, errnoFault, 0, nil},
	{"path_remove_directory", []uint64{3, 400, 1}, errnoNotsup, 0, nil},
	{"path_rename", []uint64{3, 400, 1, 3, 410, 1}, errnoNotsup, 0, nil},
	{"path_symlink", []uint64{400, 1, 3, 410}, errnoNotsup, 0, nil},
	{"path_unlink_file", []uint64{3, 400, 1}, errnoNotsup, 0, nil},
	{"sock_accept", []uint64{3, 0, 800}, errnoNotsup, 800, append(u64le(0), 0xff)}, // 8 bytes, as cpp-host writes
	{"sock_accept", []uint64{3, 0, 65532}, errnoFault, 0, nil},
	{"sock_recv", []uint64{3, 400, 1, 0, 800, 806}, errnoNotsup, 800, []byte{0, 0, 0, 0, 0xff, 0xff, 0, 0, 0xff}},
	{"sock_recv", []uint64{3, 400, 1, 0, 800, 65535}, errnoFault, 800, []byte{0, 0, 0, 0, 0xff}},
	{"sock_send", []uint64{3, 400, 1, 0, 800}, errnoNotsup, 800, []byte{0, 0, 0, 0, 0xff}},
	{"sock_send", []uint64{3, 400, 1, 0, 65534}, errnoFault, 0, nil},
	{"sock_shutdown", []uint64{3, 0}, errnoNotsup, 0, nil},
}

// Every WASI function of each profile, called through a probe, with cpp-host's answers at
// that profile's commit (src/exports.cc); the log lines and call counts they leave.
func TestWASIFunctionsByProfile(t *testing.T) {
	for _, tt := range []struct {
		profile *wasiProfile
		cases   []wasiCase
	}{
		{cppHost20241219, append(slices.Clone(wasiCommonCases), wasiCase{"poll_oneoff", []uint64{400, 500, 1, 800}, errnoNosys, 800, []byte{0xff, 0xff, 0xff, 0xff}})},
		{cppHost20260701, append(slices.Clone(wasiCommonCases), wasiCases2026...)},
	} {
		t.Run(string(tt.profile.name), func(t *testing.T) {
			clock := NewFakeClock(time.Unix(1700000000, 5))
			rt := newRuntime(t, Options{Clock: clock, WASI: tt.profile.name})
			var imports []wasmImport
			for _, f := range tt.profile.funcs {
				imports = append(imports, wasmImport{module: wasiModuleName, name: f.name, params: f.params, results: f.results})
			}
			v := probeVM(t, rt, PluginConfig{Env: [][2]string{{"A", "1"}, {"LONGER", "two"}}}, imports...)
			tested := map[string]bool{"fd_write": true, "proc_exit": true}
			wantCalls := map[string]uint64{}
			for _, c := range tt.cases {
				tested[c.fn] = true
				wantCalls[c.fn]++
				poke(t, v, 800, bytes.Repeat([]byte{0xff}, 16))
				if got := callIn(t, v, rootContextID, c.fn, c.args...); got != c.errno {
					t.Errorf("%s%v = errno %d, want %d", c.fn, c.args, got, c.errno)
					continue
				}
				if c.want != nil {
					if got := peek(t, v, c.at, uint32(len(c.want))); !bytes.Equal(got, c.want) {
						t.Errorf("%s%v left %v at %d, want %v", c.fn, c.args, got, c.at, c.want)
					}
				}
			}
			for _, f := range tt.profile.funcs {
				if !tested[f.name] {
					t.Errorf("%s is offered but has no case", f.name)
				}
			}
			// fd_write (and fd_pwrite in 2026): two iovecs to stdout make one info line, the
			// trailing newline removed; 13 bytes written, newline included.
			poke(t, v, 600, []byte("hello, world\n"))
			iovs := binary.LittleEndian.AppendUint32(nil, 600)
			iovs = binary.LittleEndian.AppendUint32(iovs, 7)
			iovs = binary.LittleEndian.AppendUint32(iovs, 607)
			iovs = binary.LittleEndian.AppendUint32(iovs, 6)
			poke(t, v, 700, iovs)
			writers := []string{"fd_write"}
			wantLogs := "trace host: wasi_unstable fd_seek\ntrace host: wasi_unstable fd_close\ninfo stdout: hello, world\n"
			if _, ok := tt.profile.function("fd_pwrite"); ok {
				writers = append(writers, "fd_pwrite")
				wantLogs += "info stdout: hello, world\n"
			}
			for _, w := range writers {
				args := []uint64{1, 700, 2, 720}
				if w == "fd_pwrite" {
					args = []uint64{1, 700, 2, 99, 720}
				}
				if got := callIn(t, v, rootContextID, w, args...); got != errnoSuccess || peekU32(t, v, 720) != 13 {
					t.Errorf("%s = errno %d, %d bytes; want 0, 13", w, got, peekU32(t, v, 720))
				}
				wantCalls[w]++
			}
			for _, bad := range [][]uint64{{5, 700, 2, 720}, {1, 65530, 1, 720}, {1, 700, 2, 65534}} {
				if got := callIn(t, v, rootContextID, "fd_write", bad...); got == errnoSuccess {
					t.Errorf("fd_write%v = SUCCESS, want an error", bad)
				}
				wantCalls["fd_write"]++
			}
			if got := callIn(t, v, rootContextID, "fd_write", 5, 700, 2, 720); got != errnoBadf {
				t.Errorf("fd_write to fd 5 = errno %d, want EBADF", got)
			}
			wantCalls["fd_write"]++
			// The last bad call above logged its line before failing on nwritten_ptr.
			wantLogs += "info stdout: hello, world\n"
			// proc_exit returns (the probe does not trap after it) and leaves a trace line.
			callIn(t, v, rootContextID, "proc_exit", 3)
			wantCalls["proc_exit"]++
			wantLogs += "trace host: wasi_unstable proc_exit\n"
			if got := joinLogs(v.Logs()); got != wantLogs {
				t.Errorf("logs\n got %q\nwant %q", got, wantLogs)
			}
			if got := v.WASICalls(); !reflect.DeepEqual(got, wantCalls) {
				t.Errorf("WASICalls\n got %v\nwant %v", got, wantCalls)
			}
		})
	}
}

// cpp-host registers every WASI function under wasi_unstable as well; a call there is the
// same function, counted under its name.
func TestWASIUnstableModule(t *testing.T) {
	rt := newRuntime(t, Options{})
	im := wasiImport("fd_fdstat_get")
	im.module = "wasi_unstable"
	v := probeVM(t, rt, PluginConfig{}, im)
	if got := callIn(t, v, rootContextID, "fd_fdstat_get", 2, 400); got != errnoSuccess {
		t.Fatalf("wasi_unstable.fd_fdstat_get(2) = %d, want SUCCESS", got)
	}
	if got := v.WASICalls(); !reflect.DeepEqual(got, map[string]uint64{"fd_fdstat_get": 1}) {
		t.Errorf("WASICalls = %v", got)
	}
}

// The load test: fd_filestat_get exists only in the cpp-host of 2026. A module that
// imports it loads under that profile and is refused, naming the import, under the older one
// (Envoy 1.33 to early 2026: "Failed to load Wasm module due to a missing import").
func TestImportOnlyTheNewCppHostOffers(t *testing.T) {
	spec := wasmSpec{memory: true, funcs: proxyBasics(), imports: []wasmImport{wasiImport("fd_filestat_get")}}
	wasm := spec.encode()
	rt := newRuntime(t, Options{WASI: WASICppHost20260701})
	if _, err := rt.Compile(context.Background(), wasm); err != nil {
		t.Errorf("cpp-host-2026-07-01 refuses it: %v", err)
	}
	old := newRuntime(t, Options{WASI: WASICppHost20241219})
	_, err := old.Compile(context.Background(), wasm)
	want := "host: compile: module imports wasi_snapshot_preview1.fd_filestat_get, which this host (WASI profile cpp-host-2024-12-19: proxy-wasm-cpp-host of 2024-12-19) does not provide"
	if err == nil || err.Error() != want {
		t.Errorf("cpp-host-2024-12-19: error %v\nwant %s", err, want)
	}
}

// cpp-host declares path_link and path_symlink with fewer words than WASI preview1 (no
// new_path_len), so a module importing them with WASI's signature, as Go's syscall package
// does, fails to load in Envoy with an import type mismatch, and here.
func TestPathLinkSignatureIsCppHosts(t *testing.T) {
	rt := newRuntime(t, Options{WASI: WASICppHost20260701})
	for _, tt := range []struct {
		name string
		wasi int // WASI preview1's parameter count
		want string
	}{
		{"path_link", 7, "module imports wasi_snapshot_preview1.path_link as (i32, i32, i32, i32, i32, i32, i32) -> (i32), want (i32, i32, i32, i32, i32, i32) -> (i32)"},
		{"path_symlink", 5, "module imports wasi_snapshot_preview1.path_symlink as (i32, i32, i32, i32, i32) -> (i32), want (i32, i32, i32, i32) -> (i32)"},
	} {
		spec := wasmSpec{memory: true, funcs: proxyBasics(), imports: []wasmImport{{module: wasiModuleName, name: tt.name, params: i32s(tt.wasi), results: i32s(1)}}}
		_, err := rt.Compile(context.Background(), spec.encode())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v\nwant %s", tt.name, err, tt.want)
		}
	}
}

// The profiles' tables against the counts of cpp-host's FOR_ALL_WASI_FUNCTIONS and allow-lists
// at their commits, so an edit that drops or adds one shows.
func TestWASIProfileTables(t *testing.T) {
	for _, tt := range []struct {
		p                   *wasiProfile
		funcs, start, alloc int
	}{
		// 11 WASI names at start, each under two modules, plus env.proxy_log.
		{cppHost20241219, 18, 11*2 + 1, 2*2 + 1},
		// 11 + 28 WASI names, plus env.proxy_log and env.emscripten_notify_memory_growth.
		{cppHost20260701, 45, 39*2 + 2, 3*2 + 1},
	} {
		if n := len(tt.p.funcs); n != tt.funcs {
			t.Errorf("%s offers %d WASI functions, want %d", tt.p.name, n, tt.funcs)
		}
		if n := len(tt.p.startAllowed); n != tt.start {
			t.Errorf("%s allows %d calls at start, want %d", tt.p.name, n, tt.start)
		}
		if n := len(tt.p.allocAllowed); n != tt.alloc {
			t.Errorf("%s allows %d calls in the allocator, want %d", tt.p.name, n, tt.alloc)
		}
		for name := range tt.p.startAllowed {
			mod, fn, _ := strings.Cut(name, ".")
			if _, ok := tt.p.function(fn); mod != "env" && !ok {
				t.Errorf("%s allows %s at start but does not offer it", tt.p.name, name)
			}
		}
	}
	for _, n := range []string{"fd_read", "fd_seek", "fd_close", "path_open", "proc_exit", "sched_yield"} {
		if cppHost20260701.startAllowed["wasi_snapshot_preview1."+n] {
			t.Errorf("cpp-host-2026-07-01 allows %s at start; cpp-host does not", n)
		}
	}
}
