package e2e

import (
	"testing"

	"github.com/usageplans/usageplans/host"
)

// A client must not skip metering, or reach the bypassed /admin route, by writing the same
// path or host another way (issue 3 review: routes once matched the raw :path and
// :authority). The filter matches on the normal form; the upstream still receives the
// request as the client wrote it, as Envoy without normalize_path would forward it.
func TestFilterMatchesNormalisedPathAndHost(t *testing.T) {
	e := startFilter(t, fltSetup{})
	for _, path := range []string{"//pets", "/./pets", "/admin/../pets", "/admin/%2e%2e/pets", "/admin/%2E%2E/pets/7", "/../pets", `/admin/..\pets`} {
		t.Run(path, func(t *testing.T) {
			wantReply(t, e.get(path), 403, fltForbidden, fltForbiddenBody)
		})
	}
	t.Run("the bypass still bypasses", func(t *testing.T) {
		e.wantPassed(t, e.get("/admin/./users"), host.Headers{{":method", "GET"}, {":path", "/admin/./users"},
			{":authority", "api.example.com"}, {":scheme", "http"}}, upstreamHeaders)
	})
	t.Run("trailing dot and port on the host", func(t *testing.T) {
		for _, authority := range []string{"api.example.com.", "API.example.com:8443"} {
			req := &host.Request{Headers: host.Headers{{":method", "GET"}, {":path", "/pets"}, {":authority", authority}, {":scheme", "http"}}}
			wantReply(t, e.do(req), 403, fltForbidden, fltForbiddenBody)
			req = &host.Request{Headers: host.Headers{{":method", "GET"}, {":path", "//pets"}, {":authority", authority}, {":scheme", "http"}, apiKey(fltGold)}}
			e.wantPassed(t, e.do(req), host.Headers{{":method", "GET"}, {":path", "//pets"}, {":authority", authority}, {":scheme", "http"},
				{"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}}, upstreamHeaders)
		}
	})
	e.wantCounters(t, map[string]uint64{"usageplans.requests.forbidden": 9, "usageplans.plan.gold.allowed": 2})
}
