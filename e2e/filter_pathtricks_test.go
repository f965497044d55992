package e2e

import (
	"testing"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/host"
)

// TestFilterPathTricks (issue 8, finding 1) sets each path of pathTricks as :path on the
// host, the bypass route first and then last: every trick is metered (403 without a key,
// 200 with one, counted once), every control is bypassed when the bypass route comes first
// (the upstream sees it untouched, the key kept, nothing counted) and metered when it comes
// last. On main before the bypass rule, the encoded-slash, double-encoding and ';' tricks
// reached the upstream through the bypass with no key.
func TestFilterPathTricks(t *testing.T) {
	for _, first := range []bool{true, false} {
		name := "bypass route last"
		if first {
			name = "bypass route first"
		}
		t.Run(name, func(t *testing.T) {
			e := startFilter(t, fltSetup{config: pathTricksConfig(first)})
			metered := uint64(0)
			for _, tt := range pathTricks {
				t.Run(tt.name, func(t *testing.T) {
					if got := config.NormalPath(tt.path); got != tt.normal {
						t.Errorf("normal form of %q = %q, table says %q", tt.path, got, tt.normal)
					}
					base := host.Headers{{":method", "GET"}, {":path", tt.path}, {":authority", "api.example.com"}, {":scheme", "http"}}
					withKey := &host.Request{Headers: append(base.Clone(), apiKey(pathTricksKey))}
					if tt.control && first {
						e.wantPassed(t, e.do(&host.Request{Headers: base.Clone()}), base, upstreamHeaders)
						e.wantPassed(t, e.do(withKey), append(base.Clone(), apiKey(pathTricksKey)), upstreamHeaders)
						return
					}
					wantReply(t, e.do(&host.Request{Headers: base.Clone()}), 403, fltForbidden, fltForbiddenBody)
					e.wantPassed(t, e.do(withKey), append(base.Clone(),
						[2]string{"x-usageplans-key-id", "tricks-key"}, [2]string{"x-usageplans-plan-id", "tricks"}), upstreamHeaders)
					metered++
				})
			}
			e.wantCounters(t, map[string]uint64{"usageplans.requests.forbidden": metered,
				"usageplans.requests.allowed": metered, "usageplans.plan.tricks.allowed": metered})
		})
	}
}
