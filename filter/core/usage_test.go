package core

import (
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/state"
	"github.com/usageplans/usageplans/filter/usage"
)

// countingStore counts the shared-data calls a decision makes: each Get and Set is one host
// call (proxy_get_shared_data, proxy_set_shared_data) in the filter, and the adapter makes
// no other shared-data call.
type countingStore struct {
	state.MemStore
	gets, sets int
}

func (c *countingStore) Get(key string) ([]byte, uint32, error) { c.gets++; return c.MemStore.Get(key) }
func (c *countingStore) Set(key string, v []byte, cas uint32) error {
	c.sets++
	return c.MemStore.Set(key, v, cas)
}

// TestUsageHostCalls: what the usage entry adds per request, with no contention. An
// admitted request of a key in a plan adds one get and one set (the usage entry's CAS; with
// a quota the get comes before deciding, as the grant may change the limit); a request
// denied after reading its key's entry adds one get when its plan has a quota; nothing else
// changes. Before the usage entry: 2+2, 2+0, 2+0, 0, 1+1.
func TestUsageHostCalls(t *testing.T) {
	cfg := shop(t)
	post := get("/items", k1)
	post.Method = "POST"
	for _, tt := range []struct {
		name       string
		req        Request
		warm       int           // requests before the one counted
		space      time.Duration // between them
		outcome    Outcome
		gets, sets int
	}{
		{"admitted, key entry and account", get("/items", k2), 1, 0, Allow, 3, 3},
		{"throttled by the key's bucket", get("/items/7", k1), 1, 0, Throttled, 3, 0},
		{"quota exceeded", get("/items", k1), 3, 2 * time.Second, QuotaExceeded, 3, 0},
		{"forbidden", get("/items", k4), 0, 0, Forbidden, 0, 0},
		{"no key needed", get("/", ""), 0, 0, Allow, 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s countingStore
			var dc Decider
			at := t0
			for range tt.warm {
				dc.Decide(cfg, tt.req, at, &s)
				at = at.Add(tt.space)
			}
			s.gets, s.sets = 0, 0
			d := dc.Decide(cfg, tt.req, at, &s)
			if d.Outcome != tt.outcome || d.UsageErr != nil {
				t.Fatalf("%v (%s) %v, want %v", d.Outcome, d.Reason, d.UsageErr, tt.outcome)
			}
			if s.gets != tt.gets || s.sets != tt.sets {
				t.Fatalf("%d gets and %d sets, want %d and %d", s.gets, s.sets, tt.gets, tt.sets)
			}
		})
	}
}

// TestGrantInDecision: a grant in the usage entry admits past the limit, the RateLimit
// headers count it, and a corrupt usage entry leaves the quota alone to decide, reported.
func TestGrantInDecision(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	var dc Decider
	at := t0
	for range 3 {
		dc.Decide(cfg, get("/items", k1), at, &s)
		at = at.Add(2 * time.Second)
	}
	if d := dc.Decide(cfg, get("/items", k1), at, &s); d.Outcome != QuotaExceeded {
		t.Fatalf("%v, want the quota of 3 spent", d.Outcome)
	}
	err := usage.Local{Store: &s}.SetRemaining(cfg, cfg.PlanByID("basic"), cfg.KeyByID("k1"), at.Unix(), 2, new(usage.View))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if d := dc.Decide(cfg, get("/items", k1), at, &s); d.Outcome != Allow {
			t.Fatalf("request %d after a grant of 2: %v", i, d.Outcome)
		}
		at = at.Add(2 * time.Second)
	}
	d := dc.Decide(cfg, get("/items", k1), at, &s)
	if d.Outcome != QuotaExceeded || d.RateLimit.Name != "quota" || d.RateLimit.Limit != 5 || d.RateLimit.Remaining != 0 {
		t.Fatalf("%v %+v, want the quota's limit 3+2 spent", d.Outcome, d.RateLimit)
	}
	_ = s.Set("usageplans:usage:basic:k1", []byte{9}, 0)
	at = at.Add(2 * time.Second)
	d = dc.Decide(cfg, get("/items", k1), at, &s)
	want := `usage: decode at byte 0: unknown encoding version 9 (this filter reads 1) (key "usageplans:usage:basic:k1")`
	if d.Outcome != QuotaExceeded || d.UsageErr == nil || d.UsageErr.Error() != want {
		t.Fatalf("%v %v, want the quota alone (spent) and %s", d.Outcome, d.UsageErr, want)
	}
}
