package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/host"
)

// noopNsPerOp is the floor measured by BenchmarkRequest/noop in this run; the other
// sub-benchmarks report their cost as a multiple of it ("x-noop"), so the ratio is what the
// filter adds to a request whatever the machine.
var noopNsPerOp float64

// benchPath is one path of a request through the filter (or the no-op module), as
// BenchmarkRequest times it and TestHostCallsPerPath pins its host calls.
type benchPath struct {
	name   string
	wasm   []byte
	req    *host.Request
	status int
	warmup int           // requests before timing (to spend a bucket or a quota)
	tick   time.Duration // clock advance per request
}

func benchPaths() []benchPath {
	return []benchPath{
		{"noop", noopWasm, fltGet("/pets", apiKey(fltBench)), 200, 0, 0},
		{"allow", nil, fltGet("/pets", apiKey(fltBench)), 200, 0, time.Millisecond},
		{"forbidden_unknown_key", nil, fltGet("/pets", apiKey(fltUnknown)), 403, 0, 0},
		{"forbidden_no_key", nil, fltGet("/pets"), 403, 0, 0},
		{"throttled", nil, fltGet("/pets", apiKey(fltTight)), 429, 2, 0},
		{"quota_exceeded", nil, fltGet("/pets", apiKey(fltDaily)), 429, 3, 0},
		{"not_governed", nil, fltGet("/admin/users", apiKey(fltBench)), 200, 0, 0},
	}
}

// start runs the path's module on one VM at info level (Envoy's default, so the rejections'
// log lines are part of their cost) and spends its warm-up requests.
func (bc benchPath) start(t testing.TB) (*host.VM, func() *host.Response) {
	e := startFilter(t, fltSetup{wasm: bc.wasm, logLevel: host.LogInfo, start: time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)})
	vm := e.plugin.VMs()[0]
	ctx := context.Background()
	up := func(context.Context, *host.Request) (*host.Response, error) {
		return &host.Response{Status: 200, Headers: host.Headers{{"server", "upstream"}}}, nil
	}
	do := func() *host.Response {
		if bc.tick > 0 {
			e.clock.Advance(bc.tick)
		}
		resp, err := vm.Do(ctx, bc.req, up)
		if err != nil || resp.Status != bc.status {
			t.Fatalf("%s: %v %+v, want %d", bc.name, err, resp, bc.status)
		}
		return resp
	}
	for range bc.warmup {
		vm.Do(ctx, bc.req, up)
	}
	return vm, do
}

// BenchmarkRequest is one whole request through the host on one VM (context create, request
// headers, the upstream unless the filter answered, response headers, log, done, delete),
// for the no-op module and for the filter's paths. Beside ns/op it reports x-noop, the
// env host calls per request (host-calls/op) and the host's proxy_on_memory_allocate
// re-entries per request (guest-allocs/op).
func BenchmarkRequest(b *testing.B) {
	for _, bc := range benchPaths() {
		b.Run(bc.name, func(b *testing.B) {
			vm, do := bc.start(b)
			calls, allocs := totalCalls(vm), vm.GuestAllocations()
			for b.Loop() {
				do()
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if bc.wasm != nil {
				noopNsPerOp = ns
			} else if noopNsPerOp > 0 {
				b.ReportMetric(ns/noopNsPerOp, "x-noop")
			}
			b.ReportMetric(float64(totalCalls(vm)-calls)/float64(b.N), "host-calls/op")
			b.ReportMetric(float64(vm.GuestAllocations()-allocs)/float64(b.N), "guest-allocs/op")
		})
	}
}

func totalCalls(vm *host.VM) (n uint64) {
	for _, c := range vm.HostCalls() {
		n += c
	}
	return n
}

// hostCallsPerPath are the env host calls of one request on each path, with the
// proxy_on_memory_allocate re-entries as "alloc" and the WASI calls as "wasi.<name>": what a
// path costs besides the guest's own code. A change that adds one fails TestHostCallsPerPath; one that removes some updates this
// table.
var hostCallsPerPath = map[string]string{
	"noop": "",
	// The request headers in one read; the key entry and the usage entry, each read and
	// written; the outcome and plan counters; the key stripped; the identity headers set;
	// the outcome in the filter state; the clock, once (time.Now would read it twice).
	"allow":                 "get_header_map_pairs=1 get_shared_data=2 increment_metric=2 remove_header_map_value=1 replace_header_map_value=2 set_property=1 set_shared_data=2 wasi.clock_time_get=1 alloc=3",
	"forbidden_unknown_key": "get_header_map_pairs=1 increment_metric=1 log=1 remove_header_map_value=1 send_local_response=1 set_property=1 wasi.clock_time_get=1 alloc=1",
	"forbidden_no_key":      "get_header_map_pairs=1 increment_metric=1 log=1 send_local_response=1 set_property=1 wasi.clock_time_get=1 alloc=1",
	// Reads only: a denial writes nothing. The filter state names the outcome, key and plan.
	"throttled":      "get_header_map_pairs=1 get_shared_data=1 increment_metric=2 log=1 remove_header_map_value=1 send_local_response=1 set_property=3 wasi.clock_time_get=1 alloc=2",
	"quota_exceeded": "get_header_map_pairs=1 get_shared_data=2 increment_metric=2 log=1 remove_header_map_value=1 send_local_response=1 set_property=3 wasi.clock_time_get=1 alloc=3",
	"not_governed":   "get_header_map_pairs=1 wasi.clock_time_get=1 alloc=1",
}

// TestHostCallsPerPath pins the host calls of one request on each path of BenchmarkRequest
// (after its warm-up and one request more, so one-time work such as defining metrics is
// done).
func TestHostCallsPerPath(t *testing.T) {
	for _, bc := range benchPaths() {
		t.Run(bc.name, func(t *testing.T) {
			vm, do := bc.start(t)
			do()
			before, wasi, allocs := vm.HostCalls(), vm.WASICalls(), vm.GuestAllocations()
			do()
			got := diffCalls(vm.HostCalls(), before, "")
			got = append(got, diffCalls(vm.WASICalls(), wasi, "wasi.")...)
			if n := vm.GuestAllocations() - allocs; n > 0 {
				got = append(got, fmt.Sprintf("alloc=%d", n))
			}
			if g := strings.Join(got, " "); g != hostCallsPerPath[bc.name] {
				t.Errorf("host calls of one request\n got %q\nwant %q", g, hostCallsPerPath[bc.name])
			}
		})
	}
}

// diffCalls lists after-before as "<prefix>name=n", names sorted and without their proxy_
// prefix.
func diffCalls(after, before map[string]uint64, prefix string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if n := after[name] - before[name]; n > 0 {
			out = append(out, fmt.Sprintf("%s%s=%d", prefix, strings.TrimPrefix(name, "proxy_"), n))
		}
	}
	return out
}
