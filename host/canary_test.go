package host

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// lifecycleModule logs each lifecycle callback it gets ("init", "create", "start",
// "configure", "done", "delete") and rejects a configuration of 6 bytes ("reject").
func lifecycleModule() []byte {
	logAt := func(off, n int32) []byte {
		return append(append(append(append(i32Const(2), i32Const(off)...), i32Const(n)...), call(0)...), 0x1a)
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	i32Ne := []byte{0x47}
	spec := wasmSpec{
		imports: []wasmImport{envImport("proxy_log")},
		memory:  true,
		data:    []wasmData{{0, []byte("init\x00\x00\x00\x00create\x00\x00start\x00\x00\x00configure\x00\x00\x00\x00\x00\x00\x00done\x00\x00\x00\x00delete")}},
		funcs: append(proxyBasics(),
			wasmFunc{export: "_initialize", body: logAt(0, 4)},
			wasmFunc{export: "proxy_on_context_create", params: i32s(2), body: logAt(8, 6)},
			wasmFunc{export: "proxy_on_vm_start", params: i32s(2), results: i32s(1), body: cat(logAt(16, 5), i32Const(1))},
			wasmFunc{export: "proxy_on_configure", params: i32s(2), results: i32s(1), body: cat(logAt(24, 9), localGet(1), i32Const(6), i32Ne)},
			wasmFunc{export: "proxy_on_done", params: i32s(1), results: i32s(1), body: cat(logAt(40, 4), i32Const(1))},
			wasmFunc{export: "proxy_on_delete", params: i32s(1), body: logAt(48, 6)},
		),
	}
	return spec.encode()
}

// callbackCounter counts the lifecycle module's lines by VM ("base", "canary", "0", ...).
type callbackCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *callbackCounter) sink(e LogEntry) {
	if e.Source != SourceProxyLog {
		return
	}
	who := fmt.Sprint(e.Worker)
	switch e.Worker {
	case WorkerBase:
		who = "base"
	case WorkerCanary:
		who = "canary"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[who+" "+e.Message]++
}

// take returns the counts since the last take.
func (c *callbackCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

// totals sums counts by callback.
func totals(counts map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range counts {
		_, cb, _ := strings.Cut(k, " ")
		out[cb] += n
	}
	return out
}

// startSeq is what one VM logs for the whole start sequence.
func startSeq(who string, into map[string]int) {
	for _, cb := range []string{"init", "create", "start", "configure"} {
		into[who+" "+cb]++
	}
}

// cpp-host's createWasm, canary and getOrCreateThreadLocalPlugin, counted callback by
// callback and VM by VM for 3 workers: the first configuration costs N+2 _initialize and
// N+1 vm starts and configures; a second plugin of the same vm_key and configuration
// reuses the base and the canary's verdict; a new configuration runs one canary on the
// same base; a rejected one reaches no worker, and is refused again without a canary.
func TestCanaryCallbackCounts(t *testing.T) {
	const n = 3
	c := &callbackCounter{counts: map[string]int{}}
	rt := newRuntime(t, Options{LogSink: c.sink})
	ctx := context.Background()
	m, err := rt.Compile(ctx, lifecycleModule())
	if err != nil {
		t.Fatal(err)
	}
	cfg := PluginConfig{Name: "lc", VMID: "lc", Workers: n, Configuration: []byte("first")}

	p1, err := rt.NewPlugin(ctx, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"base init": 1}
	startSeq("canary", want)
	for i := range n {
		startSeq(fmt.Sprint(i), want)
	}
	got := c.take()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("first plugin: callbacks\n got %v\nwant %v", got, want)
	}
	if tot := totals(got); tot["init"] != n+2 || tot["start"] != n+1 || tot["configure"] != n+1 || tot["done"] != 0 {
		t.Errorf("first plugin: totals %v, want init %d, start and configure %d, no done", tot, n+2, n+1)
	}

	// Same vm_key (vm_id, VM configuration, code) and plugin key: the base VM and the
	// canary's verdict are shared, so only the workers start.
	p2, err := rt.NewPlugin(ctx, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]int{}
	for i := range n {
		startSeq(fmt.Sprint(i), want)
	}
	if got := c.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("second plugin, same key: callbacks\n got %v\nwant %v", got, want)
	}

	// A new configuration: one canary on the same base, then the new workers; the old
	// workers end (done, delete) once retired.
	if err := p1.Swap(ctx, nil, []byte("later")); err != nil {
		t.Fatal(err)
	}
	p1.WaitRetired()
	want = map[string]int{}
	startSeq("canary", want)
	for i := range n {
		startSeq(fmt.Sprint(i), want)
		want[fmt.Sprint(i)+" done"]++
		want[fmt.Sprint(i)+" delete"]++
	}
	if got := c.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("swap to a new configuration: callbacks\n got %v\nwant %v", got, want)
	}

	// A configuration the canary rejects: no worker starts, the canary gets no done or
	// delete, the running version stays.
	before := p1.VMs()
	err = p1.Swap(ctx, nil, []byte("reject"))
	if err == nil || !strings.Contains(err.Error(), "host: plugin lc: the canary VM rejected the configuration, no worker VM was started: host: lc lc#canary: proxy_on_configure returned false") {
		t.Fatalf("Swap to a rejected configuration: %v", err)
	}
	want = map[string]int{}
	startSeq("canary", want)
	if got := c.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("rejected configuration: callbacks\n got %v\nwant %v", got, want)
	}
	if !reflect.DeepEqual(p1.VMs(), before) || string(p1.Configuration()) != "later" {
		t.Errorf("the rejected configuration replaced the running version")
	}
	// The verdict is kept: the same configuration is refused without a canary.
	err = p1.Swap(ctx, nil, []byte("reject"))
	if err == nil || !strings.Contains(err.Error(), "the canary VM rejected this configuration before") {
		t.Fatalf("second Swap to the rejected configuration: %v", err)
	}
	if got := c.take(); len(got) != 0 {
		t.Errorf("second rejection ran callbacks %v, want none", got)
	}

	// Closing ends the workers' root contexts; the base VM has none to end.
	p1.Close(ctx)
	p2.Close(ctx)
	want = map[string]int{}
	for i := range n {
		want[fmt.Sprint(i)+" done"] += 2
		want[fmt.Sprint(i)+" delete"] += 2
	}
	if got := c.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("close: callbacks\n got %v\nwant %v", got, want)
	}
	rt.basesMu.Lock()
	left := len(rt.bases)
	rt.basesMu.Unlock()
	if left != 0 {
		t.Errorf("%d base VMs left after their plugins closed", left)
	}
}

// The canary's shared-data writes and metrics stay: the abi guest counts its configurations
// in shared data and in a counter when told to, so with 2 workers both read 3 (the canary's
// and the workers'), as in Envoy.
func TestCanaryWritesPersist(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{Name: "cw", VMID: "cw", Workers: 2, Configuration: []byte("count-configures")})
	if v, _, ok := rt.SharedData("cw").Get("configures"); !ok || string(v) != "3" {
		t.Errorf("shared data configures = %q (found %v), want 3", v, ok)
	}
	var got uint64
	for _, m := range p.Metrics() {
		if m.Name == "abi_configures" {
			got = m.Value
		}
	}
	if got != 3 {
		t.Errorf("abi_configures = %d, want 3 (canary and two workers)", got)
	}
}

// A reactor that exports __main_void and no main: the cpp-host of 2026 calls it after
// _initialize (PR 500), the one of 2024 does not; with a wrong signature the newer one
// refuses the module, as cpp-host's getFunction fails the load.
func TestMainVoidByProfile(t *testing.T) {
	logAt := append(append(append(append(i32Const(2), i32Const(0)...), i32Const(9)...), call(0)...), 0x1a)
	for _, tt := range []struct {
		profile WASIProfile
		want    int // "main_void" lines: the canary's and the worker's and the base's
	}{{WASICppHost20241219, 0}, {WASICppHost20260701, 3}} {
		var mu sync.Mutex
		n := 0
		rt := newRuntime(t, Options{WASI: tt.profile, LogSink: func(e LogEntry) {
			if e.Message == "main_void" {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}})
		spec := wasmSpec{imports: []wasmImport{envImport("proxy_log")}, memory: true,
			data: []wasmData{{0, []byte("main_void")}},
			funcs: append(proxyBasics(), wasmFunc{export: "_initialize"},
				wasmFunc{export: "__main_void", results: i32s(1), body: append(logAt, i32Const(0)...)})}
		m, err := rt.Compile(context.Background(), spec.encode())
		if err != nil {
			t.Fatal(err)
		}
		p, err := rt.NewPlugin(context.Background(), m, PluginConfig{Name: "mv", VMID: "mv"})
		if err != nil {
			t.Fatal(err)
		}
		p.Close(context.Background())
		if n != tt.want {
			t.Errorf("%s: __main_void ran %d times, want %d", tt.profile, n, tt.want)
		}
	}
	rt := newRuntime(t, Options{WASI: WASICppHost20260701})
	bad := wasmSpec{memory: true, funcs: append(proxyBasics(), wasmFunc{export: "_initialize"}, wasmFunc{export: "__main_void"})}
	if _, err := rt.Compile(context.Background(), bad.encode()); err == nil || !strings.Contains(err.Error(), "bad function signature for __main_void: want ()->i32, got ()->()") {
		t.Errorf("a __main_void of the wrong type: %v", err)
	}
}
