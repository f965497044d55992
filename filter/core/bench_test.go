package core

import (
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
)

// BenchmarkDecide measures the decision alone on the paths of e2e BenchmarkRequest (same
// sub-benchmark names, so make bench puts them in one table): admitted (key entry, account
// entry and usage entry: three gets, three sets), throttled by the key's bucket and over its
// quota (reads only), and forbidden (no store access). The store hands out its own buffer,
// as reuseStore does for TestDecideAllocations, so allocs/op are Decide's own; its versions
// are per key, as Envoy's, so no set loses its CAS (a store-wide version made two sets of
// every admitted request lose and retry: five gets and sets, not three). Compare them as
// ratios, not absolute times; make bench-wasm runs them in Wasm, where the filter runs.
func BenchmarkDecide(b *testing.B) {
	big := shop(b, `"throttle": {"rateLimit": 100, "burstLimit": 100}`, `"throttle": {"rateLimit": 1e9, "burstLimit": 1000000000}`,
		`"quota": {"limit": 1000, "period": "MONTH"}`, `"quota": {"limit": 1000000000, "period": "MONTH"}`,
		`"accountThrottle": {"rateLimit": 1000, "burstLimit": 1000}`, `"accountThrottle": {"rateLimit": 1e9, "burstLimit": 1000000000}`)
	basic := shop(b)
	for _, bc := range []struct {
		name    string
		cfg     *config.Config
		req     Request
		outcome Outcome
		space   time.Duration // between the warm-up requests that spend k1's bucket of 2 or its quota of 3
	}{
		{"allow", big, get("/items", k2), Allow, 0},
		{"throttled", basic, get("/items", k1), Throttled, 0},
		{"quota_exceeded", basic, get("/items", k1), QuotaExceeded, 2 * time.Second},
		{"forbidden_unknown_key", big, get("/items", "UnknownKey0000000000000000000000"), Forbidden, 0},
		{"forbidden_no_key", big, get("/items", ""), Forbidden, 0},
		{"forbidden_not_in_plan", big, get("/items", k4), Forbidden, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newReuseStore()
			var dc Decider
			at := t0
			for range 4 {
				dc.Decide(bc.cfg, bc.req, at, s)
				at = at.Add(bc.space)
			}
			// The clock moves only for admitted requests: a throttled key's bucket would
			// refill after a second of virtual time, which long runs reached.
			tick := time.Microsecond
			if bc.outcome != Allow {
				tick = 0
			}
			b.ReportAllocs()
			for b.Loop() {
				if d := dc.Decide(bc.cfg, bc.req, at, s); d.Outcome != bc.outcome {
					b.Fatalf("%v (%s), want %v", d.Outcome, d.Reason, bc.outcome)
				}
				at = at.Add(tick)
			}
			if s.mismatches != 0 {
				b.Fatalf("%d sets lost their CAS: the benchmark would time retries", s.mismatches)
			}
		})
	}
}
