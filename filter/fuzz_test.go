package main

import (
	"testing"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// Whatever a client sends, the filter decides without panicking (a recovered panic would
// answer 500 and count usageplans.panics_recovered) and either answers or continues.
func FuzzRequest(f *testing.F) {
	f.Add("GET", "/pets?api_key=x", "api.example.com", goldKey)
	f.Add("DELETE", "//pets/%zz/../?&&=&api_key", "API.EXAMPLE.COM:8080", "")
	f.Add("", "", "", "\x00")
	f.Fuzz(func(t *testing.T, method, path, authority, key string) {
		h := start(t, withOptions(`"apiKeyQueryParameter": "api_key"`, `"rateLimitHeaders": true`, `"unmatchedRoute": "DENY"`), types.OnPluginStartStatusOK)
		o := h.request([2]string{":method", method}, [2]string{":path", path}, [2]string{":authority", authority},
			[2]string{"x-api-key", key})
		if n := h.counter("usageplans.panics_recovered"); n != 0 {
			t.Fatalf("a panic was recovered: %q", h.host.GetErrorLogs())
		}
		if (o.local == nil) != (o.action == types.ActionContinue) {
			t.Fatalf("action %v with local reply %+v", o.action, o.local)
		}
	})
}
