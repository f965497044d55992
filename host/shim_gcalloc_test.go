package host

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// A regression test for the shim's stack-move fix (build/wasmbuild/shim/hostcalls.go): the
// host calls proxy_on_memory_allocate while one of the guest's host calls is paused on the
// same goroutine stack, and a collection there may move that stack. With result slots on the
// stack, the host's writes land in the stale copy: the reviewer saw such a shim answer a
// valid key with a wrong 403. The abi guest built with -tags usageplans_gcalloc grows and
// shrinks its stack in every allocation; every value it reads back (headers, properties, shared data, CAS) must be
// exact over 300 requests (checked: a shim with proxy_get_header_map_value's slots on the
// stack fails on the first request). The forced collection waits through poll_oneoff, which
// only the cpp-host of 2026 allows in the allocator (V8 traps it under the older one), so the
// test runs under that profile.
func TestShimSurvivesGCInAllocate(t *testing.T) {
	if bytes.Equal(guest(t, "abi"), guest(t, "abi-gcalloc")) {
		t.Fatal("abi-gcalloc is the plain abi build: wasmbuild -tags did not reach the shim")
	}
	rt := newRuntime(t, Options{WASI: WASICppHost20260701})
	p := newPlugin(t, rt, "abi-gcalloc", PluginConfig{Name: "gc", VMID: "gc"})
	var up recorder
	for i := 1; i <= 300; i++ {
		key := fmt.Sprintf("x-key-value-%03d-%s", i, strings.Repeat("k", i))
		req := get("headers,shared-get,cas-incr,prop", "x-key", "counter", "x-path", "request.path", "x-long", key)
		req.Headers[1][1] = fmt.Sprintf("/pets/%d", i)
		resp, err := p.Do(context.Background(), req, up.upstream)
		if err != nil || resp.Status != 200 {
			t.Fatalf("request %d: %+v, %v", i, resp, err)
		}
		got := up.last(t)
		wantHeaders := fmt.Sprintf(":authority=example.com;:path=/pets/%d;:method=GET;:scheme=http;x-op=headers,shared-get,cas-incr,prop;x-key=counter;x-path=request.path;x-long=%s;ok", i, key)
		for _, c := range []struct{ op, want string }{
			{"headers", wantHeaders},
			{"shared-get", sharedGetWant(i)},
			{"cas-incr", fmt.Sprint(i)},
			{"prop", hex.EncodeToString([]byte(fmt.Sprintf("/pets/%d", i))) + "|ok"},
		} {
			if r := resultOf(t, got, c.op); r != c.want {
				t.Fatalf("request %d, op %s: %q, want %q", i, c.op, r, c.want)
			}
		}
	}
	if v, _, _ := rt.SharedData("gc").Get("counter"); string(v) != "300" {
		t.Errorf("shared data counter = %q, want 300", v)
	}
	if err := p.VMs()[0].Failed(); err != nil {
		t.Fatal(err)
	}
}

// sharedGetWant is the abi guest's shared-get result before request i's increment: NOT_FOUND
// first, then the previous count with the CAS of its set (one set per request, the store's
// counter starting at 1).
func sharedGetWant(i int) string {
	if i == 1 {
		return "|0|not_found"
	}
	return fmt.Sprintf("%d|%d|ok", i-1, i-1)
}
