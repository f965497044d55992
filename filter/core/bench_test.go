package core

import (
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/state"
)

// BenchmarkDecide measures the paths of one request through the in-memory store: admitted
// (key entry + account entry: two gets, two sets), denied by the key's own bucket (reads
// only), and forbidden (no store access). Compare them as ratios, not absolute times.
func BenchmarkDecide(b *testing.B) {
	big := shop(b, `"throttle": {"rateLimit": 100, "burstLimit": 100}`, `"throttle": {"rateLimit": 1e9, "burstLimit": 1000000000}`,
		`"quota": {"limit": 1000, "period": "MONTH"}`, `"quota": {"limit": 1000000000, "period": "MONTH"}`,
		`"accountThrottle": {"rateLimit": 1000, "burstLimit": 1000}`, `"accountThrottle": {"rateLimit": 1e9, "burstLimit": 1000000000}`)
	for _, bc := range []struct {
		name    string
		req     Request
		outcome Outcome
	}{
		{"allow", get("/items", k2), Allow},
		{"throttled", get("/items", k1), Throttled},
		{"forbidden", get("/items", k4), Forbidden},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := big
			if bc.outcome == Throttled {
				cfg = shop(b)
			}
			var s state.MemStore
			var dc Decider
			at := t0
			for range 3 { // empty k1's bucket of 2
				dc.Decide(cfg, bc.req, at, &s)
			}
			// The clock moves only for admitted requests: a throttled key's bucket would
			// refill after a second of virtual time, which long runs reached.
			tick := time.Microsecond
			if bc.outcome != Allow {
				tick = 0
			}
			b.ReportAllocs()
			for b.Loop() {
				if d := dc.Decide(cfg, bc.req, at, &s); d.Outcome != bc.outcome {
					b.Fatalf("%v (%s), want %v", d.Outcome, d.Reason, bc.outcome)
				}
				at = at.Add(tick)
			}
		})
	}
}
