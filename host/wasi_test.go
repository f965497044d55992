package host

import (
	"context"
	"encoding/binary"
	"reflect"
	"testing"
	"time"
)

// Under envoy-1.33 a guest that sets fd flags gets ENOSYS, as from proxy-wasm-cpp-host; the
// current profile implements it.
func TestWASIProfileStrictness(t *testing.T) {
	for _, tt := range []struct {
		profile WASIProfile
		want    string
	}{{WASIEnvoy133, "ENOSYS"}, {WASICurrent, "ok"}} {
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
// at 0 and nothing traps under the strict profile.
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

// The envoy-1.33 functions one by one, with cpp-host's answers.
func TestEnvoyWASIFunctions(t *testing.T) {
	clock := NewFakeClock(time.Unix(1700000000, 5))
	rt := newRuntime(t, Options{Clock: clock})
	var imports []wasmImport
	for _, n := range wasiNames {
		imports = append(imports, wasiImport(n))
	}
	v := probeVM(t, rt, PluginConfig{Env: [][2]string{{"A", "1"}, {"LONGER", "two"}}}, imports...)
	u64 := func(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }
	tests := []struct {
		fn    string
		args  []uint64
		errno uint64
		at    uint32 // where to check memory
		want  []byte
	}{
		{"args_sizes_get", []uint64{100, 104}, errnoSuccess, 100, make([]byte, 8)},
		{"args_get", []uint64{100, 104}, errnoSuccess, 0, nil},
		{"environ_sizes_get", []uint64{100, 104}, errnoSuccess, 100, []byte{2, 0, 0, 0, 4 + 11, 0, 0, 0}},
		{"environ_get", []uint64{100, 200}, errnoSuccess, 200, []byte("A=1\x00LONGER=two\x00")},
		{"clock_time_get", []uint64{0, 1, 300}, errnoSuccess, 300, u64(1700000000000000005)},
		{"clock_time_get", []uint64{1, 1, 300}, errnoSuccess, 300, u64(uint64(time.Second))},
		{"clock_time_get", []uint64{2, 1, 300}, errnoNotsup, 0, nil},
		{"fd_fdstat_get", []uint64{1, 400}, errnoSuccess, 400, append(make([]byte, 8), append(u64(64), u64(0)...)...)},
		{"fd_fdstat_get", []uint64{0, 400}, errnoBadf, 0, nil},
		{"fd_fdstat_get", []uint64{3, 400}, errnoBadf, 0, nil},
		{"fd_fdstat_set_flags", []uint64{1, 4}, errnoNosys, 0, nil},
		{"fd_prestat_get", []uint64{3, 400}, errnoBadf, 0, nil},
		{"fd_prestat_dir_name", []uint64{3, 400, 10}, errnoNosys, 0, nil},
		{"fd_read", []uint64{0, 400, 1, 500}, errnoNosys, 0, nil},
		{"path_open", []uint64{3, 0, 400, 1, 0, 0, 0, 0, 500}, errnoNoent, 0, nil},
		{"poll_oneoff", []uint64{400, 500, 1, 600}, errnoNosys, 0, nil},
		{"sched_yield", nil, errnoSuccess, 0, nil},
		{"random_get", []uint64{400, 16}, errnoSuccess, 0, nil},
		{"random_get", []uint64{400, 64<<10 + 1}, errnoInval, 0, nil},
		{"fd_seek", []uint64{1, 0, 0, 500}, errnoSuccess, 0, nil},
		{"fd_close", []uint64{1}, errnoSuccess, 0, nil},
	}
	for _, tt := range tests {
		if got := callIn(t, v, rootContextID, tt.fn, tt.args...); got != tt.errno {
			t.Errorf("%s%v = errno %d, want %d", tt.fn, tt.args, got, tt.errno)
			continue
		}
		if tt.want != nil {
			if got := peek(t, v, tt.at, uint32(len(tt.want))); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s%v wrote %v at %d, want %v", tt.fn, tt.args, got, tt.at, tt.want)
			}
		}
	}
	// fd_write: two iovecs to stdout make one info line, the trailing newline removed.
	poke(t, v, 600, []byte("hello, world\n"))
	iovs := binary.LittleEndian.AppendUint32(nil, 600)
	iovs = binary.LittleEndian.AppendUint32(iovs, 7)
	iovs = binary.LittleEndian.AppendUint32(iovs, 607)
	iovs = binary.LittleEndian.AppendUint32(iovs, 6)
	poke(t, v, 700, iovs)
	if got := callIn(t, v, rootContextID, "fd_write", 1, 700, 2, 720); got != errnoSuccess || peekU32(t, v, 720) != 13 {
		t.Errorf("fd_write = errno %d, %d bytes; want 0, 13", got, peekU32(t, v, 720))
	}
	if got := callIn(t, v, rootContextID, "fd_write", 5, 700, 2, 720); got != errnoBadf {
		t.Errorf("fd_write to fd 5 = errno %d, want EBADF", got)
	}
	want := "error host: wasi_unstable fd_seek\nerror host: wasi_unstable fd_close\ninfo stdout: hello, world\n"
	if got := joinLogs(v.Logs()); got != want {
		t.Errorf("logs\n got %q\nwant %q", got, want)
	}
	wantCalls := map[string]uint64{"args_sizes_get": 1, "args_get": 1, "environ_sizes_get": 1, "environ_get": 1,
		"clock_time_get": 3, "fd_fdstat_get": 3, "fd_fdstat_set_flags": 1, "fd_prestat_get": 1, "fd_prestat_dir_name": 1,
		"fd_read": 1, "path_open": 1, "poll_oneoff": 1, "sched_yield": 1, "random_get": 2, "fd_seek": 1, "fd_close": 1, "fd_write": 2}
	if got := v.WASICalls(); !reflect.DeepEqual(got, wantCalls) {
		t.Errorf("WASICalls\n got %v\nwant %v", got, wantCalls)
	}
}
