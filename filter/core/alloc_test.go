package core

import (
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/state"
)

// reuseStore is shared data that allocates nothing once warm: Get hands out its own buffer
// (Txn decodes it at once and keeps nothing) and Set copies into it. It lets a test see
// Decide's own allocations. Each key has its own version, as in Envoy's shared data, so a
// request that writes one entry does not make its CAS on another lose; mismatches counts
// the sets that lost.
type reuseStore struct {
	vals       map[string]*reuseValue
	mismatches int
}

type reuseValue struct {
	b   []byte
	cas uint32
}

func newReuseStore() *reuseStore { return &reuseStore{vals: map[string]*reuseValue{}} }

func (r *reuseStore) Get(key string) ([]byte, uint32, error) {
	v, ok := r.vals[key]
	if !ok {
		return nil, 0, state.ErrNotFound
	}
	return v.b, v.cas, nil
}

func (r *reuseStore) Set(key string, value []byte, cas uint32) error {
	v, ok := r.vals[key]
	if ok && cas != v.cas && cas != 0 {
		r.mismatches++
		return state.ErrCASMismatch
	}
	if !ok {
		v = &reuseValue{}
		r.vals[key] = v
	}
	v.cas++
	v.b = append(v.b[:0], value...)
	return nil
}

// TestDecideAllocations: once a Decider has served a configuration, Decide allocates
// nothing on any path (in Wasm every allocation feeds a slow GC): store keys, the reasons
// that name a stage and the copies of fired limits are built once per configuration.
func TestDecideAllocations(t *testing.T) {
	cfg := shop(t, `"quota": {"limit": 1000, "period": "MONTH"}`, `"quota": {"limit": 1000000000, "period": "MONTH"}`)
	post := get("/items", k2)
	post.Method = "POST"
	for _, tt := range []struct {
		name    string
		req     Request
		outcome Outcome
		space   time.Duration // between the warm-up requests
	}{
		{"allowed, key and account entries", get("/items", k2), Allow, 0},
		{"allowed, stage-method entry too", post, Allow, 0}, // throttled after its burst of 1: both count
		{"throttled", get("/items/7", k1), Throttled, 0},
		{"quota exceeded", get("/items", k1), QuotaExceeded, 2 * time.Second},
		{"forbidden, unknown key", get("/items", "UnknownKey0000000000000000000000"), Forbidden, 0},
		{"forbidden, key in no plan", get("/items", k4), Forbidden, 0},
		{"no resource", get("/nothing", k1), NoResource, 0},
		{"no key needed", get("/", ""), Allow, 0},
		{"not governed", get("/admin/x", ""), Pass, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newReuseStore()
			var dc Decider
			at := t0
			for range 4 { // spend k1's bucket of 2 or its quota of 3; build the names
				dc.Decide(cfg, tt.req, at, s)
				at = at.Add(tt.space)
			}
			var got Decision
			allocs := testing.AllocsPerRun(100, func() {
				if tt.outcome == Allow {
					at = at.Add(time.Second) // a token back for POST /items's stage limit
				}
				got = dc.Decide(cfg, tt.req, at, s)
			})
			if got.Outcome != tt.outcome {
				t.Fatalf("%v (%s), want %v", got.Outcome, got.Reason, tt.outcome)
			}
			if allocs != 0 {
				t.Fatalf("%v allocations per Decide, want 0", allocs)
			}
		})
	}
}

// TestDecideAcrossConfigurations: a Decider that served one configuration uses the next
// one's store keys, reasons and limits, not what it built for the first.
func TestDecideAcrossConfigurations(t *testing.T) {
	a := shop(t)
	b := shop(t, `"accountThrottle": {"rateLimit": 1000, "burstLimit": 1000}`,
		`"namespace": "other", "accountThrottle": {"rateLimit": 1, "burstLimit": 1}`,
		`"id": "shop", "name": "Shop"`, `"id": "store", "name": "Shop"`,
		`"apiId": "shop", "stage": "prod"}`, `"apiId": "store", "stage": "prod"}`,
		`{"apiId": "shop", "stage": "prod",`, `{"apiId": "store", "stage": "prod",`,
		`{"apiId": "shop", "stage": "prod"}]`, `{"apiId": "store", "stage": "prod"}]`)
	var s state.MemStore
	var dc Decider
	for _, tt := range []struct {
		cfg     *config.Config
		req     Request
		outcome Outcome
		reason  string
	}{
		{a, get("/items", k2), Allow, "within every limit"},
		{a, get("/nothing", k2), NoResource, "no resource and method of stage shop/prod matched"},
		{a, get("/items", k4), Forbidden, "key not in a plan of stage shop/prod"},
		{b, get("/items", k2), Allow, "within every limit"},
		{b, get("/nothing", k2), NoResource, "no resource and method of stage store/prod matched"},
		{b, get("/items", k4), Forbidden, "key not in a plan of stage store/prod"},
		{b, get("/items", k2), Throttled, "throttled by account limit"},
	} {
		d := dc.Decide(tt.cfg, tt.req, t0, &s)
		if d.Outcome != tt.outcome || d.Reason != tt.reason {
			t.Fatalf("%v (%s), want %v (%s)", d.Outcome, d.Reason, tt.outcome, tt.reason)
		}
		if d.Outcome == Throttled && (d.Limit.ID != "account" || d.Limit.Throttle.Rate != 1 || d.Limit.Throttle.Burst != 1) {
			t.Fatalf("fired limit %+v, want the second configuration's account limit", d.Limit)
		}
	}
	for _, key := range []string{"usageplans:key:big:k2", "usageplans:account", "other:key:big:k2", "other:account",
		"usageplans:usage:big:k2", "other:usage:big:k2"} {
		if _, _, err := s.Get(key); err != nil {
			t.Errorf("store key %q: %v", key, err)
		}
	}
	if n := s.Keys(); n != 6 {
		t.Errorf("%d store keys, want 6", n)
	}
}

// TestFiredLimitOutlivesTheNextRequest: the Limit of a throttled Decision still describes
// it after the Decider has served other requests.
func TestFiredLimitOutlivesTheNextRequest(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	var dc Decider
	var first Decision
	for range 3 {
		first = dc.Decide(cfg, get("/items/7", k1), t0, &s) // the override's burst of 1, then throttled
	}
	post := get("/items", k2)
	post.Method = "POST"
	dc.Decide(cfg, post, t0, &s)
	if second := dc.Decide(cfg, post, t0, &s); second.Outcome != Throttled || second.Limit.ID != "stage:shop/prod:/items/POST" {
		t.Fatalf("second throttled decision: %v by %+v", second.Outcome, second.Limit)
	}
	if first.Outcome != Throttled || first.Limit.ID != "plan:basic:shop/prod:/items/{id}/GET" ||
		first.Limit.Level != config.LevelPlanMethod || first.Limit.Throttle.Rate != 0.5 || first.Limit.Throttle.Burst != 1 {
		t.Fatalf("first throttled decision: %v by %+v", first.Outcome, first.Limit)
	}
}

// TestRateLimitOnlyWithHeaders: Decision.RateLimit, which only the RateLimit-* headers read,
// is worked out when the configuration asks for those headers, and left zero otherwise.
func TestRateLimitOnlyWithHeaders(t *testing.T) {
	on := shop(t)
	off := shop(t, `"rateLimitHeaders": true`, `"rateLimitHeaders": false`)
	post := get("/items", k2)
	post.Method = "POST"
	for _, tt := range []struct {
		name    string
		req     Request
		outcome Outcome
		want    RateLimit // with the headers on
	}{
		{"allowed", get("/items", k2), Allow, RateLimit{Set: true, Limit: 100, Remaining: 99, Reset: 1, Window: 1, Name: "plan:big"}},
		{"throttled", post, Throttled, RateLimit{Set: true, Limit: 1, Remaining: 0, Reset: 1, Window: 1, Name: "stage:shop/prod:/items/POST"}},
	} {
		for _, cfg := range []*config.Config{on, off} {
			var s state.MemStore
			var dc Decider
			if tt.outcome == Throttled {
				dc.Decide(cfg, tt.req, t0, &s)
			}
			d := dc.Decide(cfg, tt.req, t0, &s)
			want := tt.want
			if !cfg.RateLimitHeaders {
				want = RateLimit{}
			}
			if d.Outcome != tt.outcome || d.RateLimit != want {
				t.Errorf("%s, headers %v: %v with %+v, want %v with %+v", tt.name, cfg.RateLimitHeaders, d.Outcome, d.RateLimit, tt.outcome, want)
			}
		}
	}
}
