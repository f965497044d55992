package main

import (
	"slices"
	"testing"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// A panic after the outcome was counted, or after the reply was sent, is not counted again
// as a failure, and an answered request is not answered twice (issue 3 review).
func TestPanicAfterDecision(t *testing.T) {
	counters := []string{"usageplans.requests.allowed", "usageplans.requests.forbidden",
		"usageplans.requests.failure", "usageplans.panics_recovered"}
	tests := []struct {
		name, where string
		headers     [2]string
		// A recorded admission not yet let through goes by the failure policy (CLOSED
		// here): the failure response, uncounted.
		status   uint32
		headers2 [][2]string
		body     string
		want     map[string]int64
	}{
		{"allowed, then a panic", "recorded", key(goldKey), 500, failureHeaders, failureBody,
			map[string]int64{"usageplans.requests.allowed": 1, "usageplans.requests.forbidden": 0,
				"usageplans.requests.failure": 0, "usageplans.panics_recovered": 1}},
		{"forbidden, then a panic before the reply", "recorded", key(unknownKey), 500, failureHeaders, failureBody,
			map[string]int64{"usageplans.requests.allowed": 0, "usageplans.requests.forbidden": 1,
				"usageplans.requests.failure": 0, "usageplans.panics_recovered": 1}},
		{"forbidden, then a panic after the reply", "replied", key(unknownKey), 403, forbiddenHeaders, forbiddenBody,
			map[string]int64{"usageplans.requests.allowed": 0, "usageplans.requests.forbidden": 1,
				"usageplans.requests.failure": 0, "usageplans.panics_recovered": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, baseConfig, types.OnPluginStartStatusOK)
			fired := false
			decidedHook = func(where string) {
				if where == tt.where && !fired {
					fired = true
					panic("after " + where)
				}
			}
			t.Cleanup(func() { decidedHook = nil })
			id := h.host.InitializeHttpContext()
			action := h.host.CallOnRequestHeaders(id, [][2]string{{":method", "GET"}, {":path", "/pets"},
				{":authority", "api.example.com"}, tt.headers}, true)
			o := result{action: action, local: h.host.GetSentLocalResponse(id)}
			wantLocal(t, o, tt.status, tt.headers2, tt.body)
			if got := h.counters(counters...); !equalMaps(got, tt.want) {
				t.Errorf("counters = %v, want %v", got, tt.want)
			}
			if logs := h.host.GetErrorLogs(); !slices.Equal(logs, []string{"usageplans: panic in request headers: after " + tt.where}) {
				t.Errorf("error logs = %q", logs)
			}
		})
	}
}
