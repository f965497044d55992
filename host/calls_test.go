package host

import (
	"reflect"
	"testing"
)

// TestHostCalls: every env call is counted under its name, a refused one too, and each value
// handed to the guest counts one proxy_on_memory_allocate re-entry; a lookup that finds
// nothing allocates nothing.
func TestHostCalls(t *testing.T) {
	rt := newRuntime(t, Options{})
	v := probeVM(t, rt, PluginConfig{Name: "calls"}, envImport("proxy_log"), envImport("proxy_get_property"))
	if got := v.HostCalls(); len(got) != 0 {
		t.Fatalf("HostCalls before any call = %v, want none", got)
	}
	allocs := v.GuestAllocations()
	poke(t, v, 1000, []byte("plugin_name"))
	poke(t, v, 1100, []byte("no_such_property"))
	for range 2 {
		if st := Status(callIn(t, v, rootContextID, "proxy_get_property", 1000, 11, 2000, 2004)); st != StatusOK {
			t.Fatalf("proxy_get_property(plugin_name) = %v", st)
		}
	}
	if got := string(outBytes(t, v, 2000, 2004)); got != "calls" {
		t.Fatalf("plugin_name = %q", got)
	}
	if st := Status(callIn(t, v, rootContextID, "proxy_get_property", 1100, 16, 2000, 2004)); st != StatusNotFound {
		t.Fatalf("proxy_get_property(no_such_property) = %v, want NOT_FOUND", st)
	}
	if st := Status(callIn(t, v, rootContextID, "proxy_log", 2, 1000, 11)); st != StatusOK {
		t.Fatalf("proxy_log = %v", st)
	}
	if st := Status(callIn(t, v, rootContextID, "proxy_log", 9, 1000, 11)); st != StatusBadArgument {
		t.Fatalf("proxy_log at level 9 = %v, want BAD_ARGUMENT", st)
	}
	if got, want := v.HostCalls(), map[string]uint64{"proxy_get_property": 3, "proxy_log": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("HostCalls = %v, want %v", got, want)
	}
	if got := v.GuestAllocations() - allocs; got != 2 {
		t.Errorf("%d allocation re-entries, want 2 (one per value found)", got)
	}
	if got := v.WASICalls(); len(got) != 0 {
		t.Errorf("WASICalls = %v: env calls counted as WASI", got)
	}
}
