package core

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/usageplans/usageplans/filter/state"
)

// hammer sends perWorker requests from each of workers goroutines (one Decider each, like
// one VM per worker) at instants from clock, and counts outcomes.
func hammer(t *testing.T, workers, perWorker int, decide func(dc *Decider) Decision) map[Outcome]int64 {
	t.Helper()
	var counts [Failure + 1]atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var dc Decider
			for range perWorker {
				d := decide(&dc)
				counts[d.Outcome].Add(1)
			}
		})
	}
	wg.Wait()
	out := map[Outcome]int64{}
	for o := range counts {
		if n := counts[o].Load(); n > 0 {
			out[Outcome(o)] = n
		}
	}
	return out
}

// TestHammerQuota: 4 workers, one key, a quota of 500: exactly 500 admitted and counted.
func TestHammerQuota(t *testing.T) {
	cfg := shop(t, `"quota": {"limit": 1000, "period": "MONTH"}`, `"quota": {"limit": 500, "period": "MONTH"}`,
		`"throttle": {"rateLimit": 100, "burstLimit": 100}`, `"throttle": {"rateLimit": 100000, "burstLimit": 100000}`,
		`"accountThrottle": {"rateLimit": 1000, "burstLimit": 1000}`, `"accountThrottle": false`)
	var s state.MemStore
	got := hammer(t, 4, 300, func(dc *Decider) Decision {
		return dc.Decide(cfg, get("/items", k2), t0, &s)
	})
	e := stored(t, &s, "usageplans:key:big:k2")
	if got[Allow] != 500 || e.Quota.Used != 500 || got[QuotaExceeded]+got[Failure] != 700 {
		t.Fatalf("outcomes %v, stored used %d; want exactly 500 admitted and counted", got, e.Quota.Used)
	}
}

// TestHammerAllOrNothing: requests race through the key's entry and the shared account
// bucket (burst 300, no refill to speak of). Exactly 300 are admitted, and the key's quota
// and plan bucket count exactly those: every request denied after committing a shared
// entry gave back what it had taken. casRetries is raised so that no account loop gives up
// (which would admit a request without its token).
func TestHammerAllOrNothing(t *testing.T) {
	cfg := shop(t, `"accountThrottle": {"rateLimit": 1000, "burstLimit": 1000}`, `"accountThrottle": {"rateLimit": 0.000001, "burstLimit": 300}`,
		`"throttle": {"rateLimit": 100, "burstLimit": 100}`, `"throttle": {"rateLimit": 100000, "burstLimit": 100000}`,
		`"rateLimitHeaders": true`, `"rateLimitHeaders": true, "casRetries": 1000`)
	var s state.MemStore
	got := hammer(t, 4, 200, func(dc *Decider) Decision {
		return dc.Decide(cfg, get("/items", k2), t0, &s)
	})
	e := stored(t, &s, "usageplans:key:big:k2")
	acct := stored(t, &s, "usageplans:account")
	if got[Allow] != 300 || e.Quota.Used != 300 || acct.Bucket("account").Tokens != 0 {
		t.Fatalf("outcomes %v, used %d, account tokens %d; want 300 admitted, 300 counted, 0 left",
			got, e.Quota.Used, acct.Bucket("account").Tokens)
	}
	if tokens := e.Bucket("plan:big").Tokens; tokens != 100000-300 {
		t.Fatalf("the plan bucket has %d tokens, want %d: denied requests kept tokens", tokens, 100000-300)
	}
}
