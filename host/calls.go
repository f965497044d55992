package host

import (
	"slices"
	"sync/atomic"
)

// Call counters: how often the guest called each env.proxy_* host function, and how often
// the host called back into the guest's proxy_on_memory_allocate (each host function that
// hands the guest a value, a header or shared data, re-enters the guest once to allocate the
// buffer). They are what a per-request cost is made of beside the guest's own code, so a test
// can pin them per path and a regression fails.

// envNames are the names of envFuncs, sorted; a function's index in it is its counter's.
var envNames = func() []string {
	names := make([]string, 0, len(envFuncs))
	for n := range envFuncs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}()

var envIndex = func() map[string]int {
	m := make(map[string]int, len(envNames))
	for i, n := range envNames {
		m[n] = i
	}
	return m
}()

// callCounts are one VM's counters; each is written by the VM's own calls and may be read at
// any time.
type callCounts struct {
	env   []atomic.Uint64 // by envIndex
	alloc atomic.Uint64
}

func newCallCounts() callCounts { return callCounts{env: make([]atomic.Uint64, len(envNames))} }

// HostCalls returns how many times the guest called each env host function ("proxy_get_header_map_value",
// ...), by name without the module; functions never called are absent. WASI calls are counted
// apart ([VM.WASICalls]). Safe to call at any time.
func (v *VM) HostCalls() map[string]uint64 {
	out := map[string]uint64{}
	for i := range v.calls.env {
		if n := v.calls.env[i].Load(); n > 0 {
			out[envNames[i]] = n
		}
	}
	return out
}

// GuestAllocations returns how many times the host called the guest's
// proxy_on_memory_allocate to hand it a value. Safe to call at any time.
func (v *VM) GuestAllocations() uint64 { return v.calls.alloc.Load() }
