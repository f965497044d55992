package core

import (
	"bytes"
	"errors"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/state"
)

// Keys of testdata/shop.json: k1 in plan basic, k2 in plan big, k3 disabled, k4 in no plan.
const (
	k1 = "KeyOne00000000000000000000000001"
	k2 = "KeyTwo00000000000000000000000002"
	k3 = "KeyThree000000000000000000000003"
	k4 = "KeyFour0000000000000000000000004"

	host = "shop.example.com"
)

// t0 is a Saturday morning.
var t0 = time.Date(2026, time.March, 14, 10, 0, 0, 0, time.UTC)

// shop parses testdata/shop.json after applying old→new replacements to its text.
func shop(t testing.TB, replacements ...string) *config.Config {
	t.Helper()
	b, err := os.ReadFile("testdata/shop.json")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(s, replacements[i]) {
			t.Fatalf("shop.json has no %q to replace", replacements[i])
		}
		s = strings.Replace(s, replacements[i], replacements[i+1], 1)
	}
	cfg, err := config.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func get(path, key string) Request {
	return Request{Method: "GET", Path: path, Host: host, Key: key}
}

func stored(t *testing.T, s *state.MemStore, key string) state.Entry {
	t.Helper()
	v, _, err := s.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	var e state.Entry
	if err := state.Decode(v, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func raw(s *state.MemStore, key string) []byte {
	v, _, _ := s.Get(key)
	return v
}

func TestResolve(t *testing.T) {
	cfg := shop(t)
	for _, tt := range []struct {
		name    string
		req     Request
		outcome Outcome
		reason  string
		key     string // key id
		plan    string
	}{
		{"no route", Request{Method: "GET", Path: "/items", Host: "other.example.com", Key: k1}, Pass, "no route matched", "", ""},
		{"bypass route", Request{Method: "GET", Path: "/admin/x", Host: host, Key: k1}, Pass, "route bypasses the filter", "", ""},
		{"no resource", get("/nothing", k1), NoResource, "no resource and method of stage shop/prod matched", "", ""},
		{"method not declared", Request{Method: "DELETE", Path: "/items", Host: host, Key: k1}, NoResource, "no resource and method of stage shop/prod matched", "", ""},
		{"missing key", get("/items", ""), Forbidden, "missing API key", "", ""},
		{"unknown key", get("/items", "NotAKey0000000000000000000000000"), Forbidden, "unknown API key", "", ""},
		{"disabled key", get("/items", k3), Forbidden, "disabled API key", "k3", ""},
		{"key in no plan", get("/items", k4), Forbidden, "key not in a plan of stage shop/prod", "k4", ""},
		{"no key needed", get("/", ""), Allow, "within every limit", "", ""},
		{"a key where none is needed is not metered", get("/", k1), Allow, "within every limit", "", ""},
		{"allowed", get("/items", k1), Allow, "within every limit", "k1", "basic"},
		{"port and query string", Request{Method: "GET", Path: "/items/7?x=1", Host: host + ":8443", Key: k2}, Allow, "within every limit", "k2", "big"},
	} {
		var s state.MemStore
		d := Decide(cfg, tt.req, t0, &s)
		var key, plan string
		if d.Key != nil {
			key = d.Key.ID
		}
		if d.Plan != nil {
			plan = d.Plan.ID
		}
		if d.Outcome != tt.outcome || d.Reason != tt.reason || key != tt.key || plan != tt.plan {
			t.Errorf("%s: got %v %q key %q plan %q; want %v %q key %q plan %q",
				tt.name, d.Outcome, d.Reason, key, plan, tt.outcome, tt.reason, tt.key, tt.plan)
		}
		if d.Outcome != Allow && s.Keys() != 0 {
			t.Errorf("%s: a %v request wrote %d store keys", tt.name, d.Outcome, s.Keys())
		}
	}
}

type step struct {
	at        time.Time
	req       Request
	outcome   Outcome
	limit     string // Limit.ID that fired
	retry     int64
	rl        RateLimit
	unchanged bool // the key's stored entry is byte for byte what it was before the step
}

func run(t *testing.T, cfg *config.Config, s *state.MemStore, keyEntry string, steps []step) {
	t.Helper()
	var dc Decider
	for i, st := range steps {
		before := raw(s, keyEntry)
		d := dc.Decide(cfg, st.req, st.at, s)
		var lim string
		if d.Limit != nil {
			lim = d.Limit.ID
		}
		if d.Outcome != st.outcome || lim != st.limit || d.RetryAfter != st.retry || d.RateLimit != st.rl {
			t.Fatalf("step %d (%v %s): got %v limit %q retry %d %+v (%s)\nwant %v limit %q retry %d %+v",
				i, st.at.Format(time.RFC3339Nano), st.req.Path, d.Outcome, lim, d.RetryAfter, d.RateLimit, d.Reason,
				st.outcome, st.limit, st.retry, st.rl)
		}
		if st.unchanged && !bytes.Equal(raw(s, keyEntry), before) {
			t.Fatalf("step %d: the %v request changed the key's entry", i, d.Outcome)
		}
	}
}

func TestThrottleAndQuotaSteps(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	mar15 := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	plan := func(rem, reset int64) RateLimit {
		return RateLimit{Set: true, Limit: 2, Remaining: rem, Reset: reset, Window: 2, Name: "plan:basic"}
	}
	quota := RateLimit{Set: true, Limit: 3, Remaining: 0, Reset: 50390, Window: 86400, Name: "quota"}
	ke := "usageplans:key:basic:k1"
	run(t, cfg, &s, ke, []step{
		{at: t0, req: get("/items", k1), outcome: Allow, rl: plan(1, 1)},
		{at: t0, req: get("/items", k1), outcome: Allow, rl: plan(0, 2)},
		// throttled: 0.5 token; the quota is not counted
		{at: t0.Add(500 * time.Millisecond), req: get("/items", k1), outcome: Throttled, limit: "plan:basic", retry: 1, rl: plan(0, 2), unchanged: true},
		{at: t0.Add(time.Second), req: get("/items", k1), outcome: Allow, rl: plan(0, 2)}, // quota 0 left too: the bucket wins the tie
		// quota spent at 10:00:10, 13h59m50s before midnight; no token is taken
		{at: t0.Add(10 * time.Second), req: get("/items", k1), outcome: QuotaExceeded, retry: 50390, rl: quota, unchanged: true},
		{at: t0.Add(10 * time.Second), req: get("/items/7", k1), outcome: QuotaExceeded, retry: 50390, rl: quota, unchanged: true},
		{at: mar15.Add(-time.Second), req: get("/items", k1), outcome: QuotaExceeded, retry: 1, rl: RateLimit{Set: true, Limit: 3, Reset: 1, Window: 86400, Name: "quota"}, unchanged: true},
		{at: mar15, req: get("/items", k1), outcome: Allow, rl: plan(1, 1)},
	})
	e := stored(t, &s, ke)
	want := state.Entry{
		Quota:   limit.Counter{Window: mar15.Unix(), Used: 1, Created: t0.Unix()},
		Buckets: []state.Slot{{Name: "plan:basic", Bucket: limit.Bucket{Tokens: 1, Last: mar15.UnixNano()}}},
	}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("stored key entry:\n got %+v\nwant %+v", e, want)
	}
	acct := stored(t, &s, "usageplans:account")
	if got := acct.Bucket("account"); got.Tokens != 999 { // full again by midnight, then one taken
		t.Fatalf("account bucket = %+v, want 999 tokens", got)
	}
}

func TestPrecedence(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	pm := "plan:basic:shop/prod:/items/{id}/GET"
	run(t, cfg, &s, "usageplans:key:basic:k1", []step{
		{at: t0, req: get("/items/7", k1), outcome: Allow, rl: RateLimit{Set: true, Limit: 1, Remaining: 0, Reset: 2, Window: 2, Name: pm}},
		{at: t0, req: get("/items", k1), outcome: Allow, rl: RateLimit{Set: true, Limit: 2, Remaining: 0, Reset: 2, Window: 2, Name: "plan:basic"}},
		// Both per-key buckets are empty: the per-method override is named (it comes first),
		// and Retry-After waits for both: 1.9 s for the override, 0.9 s for the plan.
		{at: t0.Add(100 * time.Millisecond), req: get("/items/7", k1), outcome: Throttled, limit: pm, retry: 2,
			rl: RateLimit{Set: true, Limit: 1, Remaining: 0, Reset: 2, Window: 2, Name: pm}, unchanged: true},
		// The override binds /items/{id} only.
		{at: t0.Add(time.Second), req: get("/items", k1), outcome: Allow, rl: RateLimit{Set: true, Limit: 2, Remaining: 0, Reset: 2, Window: 2, Name: "plan:basic"}},
	})
}

func TestSharedStageLimit(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	post := func(key string) Request { r := get("/items", key); r.Method = "POST"; return r }
	sm := "stage:shop/prod:/items/POST"
	run(t, cfg, &s, "usageplans:key:big:k2", []step{
		{at: t0, req: post(k1), outcome: Allow, rl: RateLimit{Set: true, Limit: 1, Remaining: 0, Reset: 1, Window: 1, Name: sm}},
		// k2 has its own plan buckets full, but the stage's method bucket is shared
		{at: t0, req: post(k2), outcome: Throttled, limit: sm, retry: 1, rl: RateLimit{Set: true, Limit: 1, Reset: 1, Window: 1, Name: sm}},
		{at: t0.Add(time.Second), req: post(k2), outcome: Allow, rl: RateLimit{Set: true, Limit: 1, Remaining: 0, Reset: 1, Window: 1, Name: sm}},
	})
	// k2's throttled first request took nothing from its own bucket or quota.
	e := stored(t, &s, "usageplans:key:big:k2")
	if e.Quota.Used != 1 || e.Bucket("plan:big").Tokens != 99 {
		t.Fatalf("k2's entry: %+v, want 1 request counted and 99 tokens", e)
	}
	// The store holds what configuration bounds: two key entries and their two usage
	// entries, the stage method, the account.
	if s.Keys() != 6 {
		t.Fatalf("store keys = %d, want 6", s.Keys())
	}
}

// hookStore runs hook once, just before the first Set of key, as if another worker wrote
// in between this request's check and its commit.
type hookStore struct {
	*state.MemStore
	key  string
	hook func()
}

func (h *hookStore) Set(key string, value []byte, cas uint32) error {
	if key == h.key && h.hook != nil {
		f := h.hook
		h.hook = nil
		f()
	}
	return h.MemStore.Set(key, value, cas)
}

// TestNoFalseQuotaExceeded (issue 3 review): k1 passes every check, then another worker
// takes the account's last token before k1 commits. Meanwhile a second request of k1 must
// not find k1's quota spent by the request that is about to fail: the shared buckets are
// committed before the key's entry, so it sees the account bucket empty, a one-second 429,
// not a quota 429 with a wait of hours.
func TestNoFalseQuotaExceeded(t *testing.T) {
	cfg := shop(t, `"accountThrottle": {"rateLimit": 1000, "burstLimit": 1000}`, `"accountThrottle": {"rateLimit": 1, "burstLimit": 1}`,
		`"quota": {"limit": 3, "offset": 0, "period": "DAY"}`, `"quota": {"limit": 1, "offset": 0, "period": "DAY"}`)
	mem := &state.MemStore{}
	var other, same Decision
	hs := &hookStore{MemStore: mem, key: "usageplans:account", hook: func() {
		other = Decide(cfg, get("/items", k2), t0, mem)
		same = Decide(cfg, get("/items", k1), t0, mem)
	}}
	d := Decide(cfg, get("/items", k1), t0, hs)
	if other.Outcome != Allow {
		t.Fatalf("the other worker's request: %v (%s), want allowed", other.Outcome, other.Reason)
	}
	for name, got := range map[string]Decision{"the racing request": d, "the same key meanwhile": same} {
		if got.Outcome != Throttled || got.Limit.ID != "account" || got.RetryAfter != 1 {
			t.Errorf("%s: %v limit %v retry %d (%s), want throttled by account, retry 1", name, got.Outcome, got.Limit, got.RetryAfter, got.Reason)
		}
	}
	// Neither k1 request counted: the quota holds only the initial period's mark.
	e := stored(t, mem, "usageplans:key:basic:k1")
	want := state.Entry{Quota: limit.Counter{Window: time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC).Unix(), Used: 0, Created: t0.Unix()}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("k1's entry:\n got %+v\nwant %+v", e, want)
	}
}

// TestLateConflictGivesBack: k1 passes every check and takes an account token, then
// another request of k1 takes its last quota before k1's entry is committed. The first
// request gets the quota's 429 and gives its account token back.
func TestLateConflictGivesBack(t *testing.T) {
	cfg := shop(t, `"accountThrottle": {"rateLimit": 1000, "burstLimit": 1000}`, `"accountThrottle": {"rateLimit": 1, "burstLimit": 2}`,
		`"quota": {"limit": 3, "offset": 0, "period": "DAY"}`, `"quota": {"limit": 1, "offset": 0, "period": "DAY"}`)
	mem := &state.MemStore{}
	var other Decision
	hs := &hookStore{MemStore: mem, key: "usageplans:key:basic:k1", hook: func() {
		other = Decide(cfg, get("/items", k1), t0, mem)
	}}
	d := Decide(cfg, get("/items", k1), t0, hs)
	if other.Outcome != Allow {
		t.Fatalf("the other request: %v (%s), want allowed", other.Outcome, other.Reason)
	}
	if d.Outcome != QuotaExceeded || d.RetryAfter != 50400 || d.GiveBackFailed {
		t.Fatalf("got %v retry %d give-back failed %v (%s), want quota exceeded, retry 50400", d.Outcome, d.RetryAfter, d.GiveBackFailed, d.Reason)
	}
	acct := stored(t, mem, "usageplans:account")
	if got := acct.Bucket("account"); got != (limit.Bucket{Tokens: 1, Last: t0.UnixNano()}) {
		t.Fatalf("account bucket after the give-back: %+v, want 1 token (the other request's taken)", got)
	}
	if e := stored(t, mem, "usageplans:key:basic:k1"); e.Quota.Used != 1 || e.Bucket("plan:basic").Tokens != 1 {
		t.Fatalf("k1's entry %+v, want the other request counted once", e)
	}
}

// bumpStore makes every Set of key lose: another writer always got there first.
type bumpStore struct {
	*state.MemStore
	key string
}

func (b *bumpStore) Set(key string, value []byte, cas uint32) error {
	if key == b.key {
		v, _, err := b.MemStore.Get(key)
		if err != nil {
			v = state.AppendEncode(nil, &state.Entry{})
		}
		_ = b.MemStore.Set(key, v, 0)
	}
	return b.MemStore.Set(key, value, cas)
}

func TestCASExhausted(t *testing.T) {
	for _, policy := range []string{"CLOSED", "OPEN"} {
		cfg := shop(t, `"rateLimitHeaders": true`, `"rateLimitHeaders": true, "casRetries": 3, "failurePolicy": "`+policy+`"`)
		mem := &state.MemStore{}
		d := Decide(cfg, get("/items", k1), t0, &bumpStore{MemStore: mem, key: "usageplans:key:basic:k1"})
		want := `state: compare-and-swap attempts exhausted: 3 attempts on "usageplans:key:basic:k1"`
		if d.Outcome != Failure || !d.Exhausted() || d.Err.Error() != want || d.RateLimit.Set || d.Reason != ReasonCASExhausted {
			t.Fatalf("%s: got %v (%q) exhausted %v err %v, want a failure for cas_exhausted: %s", policy, d.Outcome, d.Reason, d.Exhausted(), d.Err, want)
		}
		// The account's token, committed before the key's entry, was given back.
		acct := stored(t, mem, "usageplans:account")
		if got := acct.Bucket("account"); got != (limit.Bucket{Tokens: 1000, Last: t0.UnixNano()}) {
			t.Fatalf("%s: account bucket %+v, want its token given back", policy, got)
		}
		r, reject := Respond(cfg, &d)
		if reject != (policy == "CLOSED") {
			t.Fatalf("%s: reject = %v", policy, reject)
		}
		if reject && (r.Status != 500 || r.Body != `{"message":"Internal server error"}`) {
			t.Fatalf("%s: response %+v, want the 500 failure response", policy, r)
		}
	}
}

// TestSharedCASExhausted (issue 3 review): a shared bucket's CAS loop that gives up does not
// fail the request, whatever the failure policy: it is admitted without that bucket's token
// (Err says so, for the cas_exhausted counter), and the key's own entry counts it as usual.
// With and without a key.
func TestSharedCASExhausted(t *testing.T) {
	for _, policy := range []string{"CLOSED", "OPEN"} {
		cfg := shop(t, `"rateLimitHeaders": true`, `"rateLimitHeaders": true, "casRetries": 3, "failurePolicy": "`+policy+`"`)
		for _, req := range []Request{get("/items", k1), get("/", "")} {
			mem := &state.MemStore{}
			d := Decide(cfg, req, t0, &bumpStore{MemStore: mem, key: "usageplans:account"})
			want := `state: compare-and-swap attempts exhausted: 3 attempts on "usageplans:account"`
			if d.Outcome != Allow || !d.Exhausted() || d.Err.Error() != want || d.Reason != ReasonCASExhausted {
				t.Fatalf("%s %s: got %v (%q) exhausted %v err %v, want allowed for cas_exhausted: %s", policy, req.Path, d.Outcome, d.Reason, d.Exhausted(), d.Err, want)
			}
			if r, reject := Respond(cfg, &d); reject {
				t.Fatalf("%s %s: answered %+v", policy, req.Path, r)
			}
			// bumpStore left the account entry empty: no token taken.
			if acct := stored(t, mem, "usageplans:account"); len(acct.Buckets) != 0 {
				t.Fatalf("%s %s: account entry %+v, want no bucket written", policy, req.Path, acct)
			}
			if req.Key == "" {
				continue
			}
			e := stored(t, mem, "usageplans:key:basic:k1")
			if e.Quota.Used != 1 || e.Bucket("plan:basic").Tokens != 1 {
				t.Fatalf("%s: k1's entry %+v, want the request counted", policy, e)
			}
		}
	}
}

// TestHammerSharedBucket (issue 3 review): 8 workers without keys race through the account
// bucket alone with one CAS attempt each, so loops give up often. None fails; each request
// either took a token or was admitted without one and says so.
func TestHammerSharedBucket(t *testing.T) {
	cfg := shop(t, `"accountThrottle": {"rateLimit": 1000, "burstLimit": 1000}`, `"accountThrottle": {"rateLimit": 0.000001, "burstLimit": 100000}`,
		`"rateLimitHeaders": true`, `"rateLimitHeaders": true, "casRetries": 1`)
	var s state.MemStore
	var exhausted atomic.Int64
	const workers, perWorker = 8, 5000
	got := hammer(t, workers, perWorker, func(dc *Decider) Decision {
		d := dc.Decide(cfg, get("/", ""), t0, &s)
		if d.Exhausted() {
			exhausted.Add(1)
		}
		return d
	})
	acct := stored(t, &s, "usageplans:account")
	taken := 100000 - acct.Bucket("account").Tokens
	if got[Allow] != workers*perWorker || taken+exhausted.Load() != workers*perWorker {
		t.Fatalf("outcomes %v, %d tokens taken, %d admitted without one; want all %d admitted, each counted once",
			got, taken, exhausted.Load(), workers*perWorker)
	}
	t.Logf("%d of %d CAS loops gave up", exhausted.Load(), workers*perWorker)
}

// scriptStore is a MemStore whose Sets can be made to fail: fail gets the key and how many
// Sets of it were tried so far, this one included.
type scriptStore struct {
	*state.MemStore
	sets map[string]int
	fail func(key string, n int) error
}

func (s *scriptStore) Set(key string, value []byte, cas uint32) error {
	s.sets[key]++
	if err := s.fail(key, s.sets[key]); err != nil {
		return err
	}
	return s.MemStore.Set(key, value, cas)
}

// TestGiveBackFailed (issue 3 review): the key's entry loses every CAS attempt, and giving
// the account's token back fails too. The Decision says so, for the adapter to count and
// log, and the token stays taken (the safe side).
func TestGiveBackFailed(t *testing.T) {
	cfg := shop(t)
	mem := &state.MemStore{}
	ss := &scriptStore{MemStore: mem, sets: map[string]int{}, fail: func(key string, n int) error {
		switch {
		case key == "usageplans:key:basic:k1":
			return state.ErrCASMismatch
		case key == "usageplans:account" && n > 1:
			return errors.New("shared data full")
		}
		return nil
	}}
	d := Decide(cfg, get("/items", k1), t0, ss)
	if d.Outcome != Failure || !d.Exhausted() || !d.GiveBackFailed {
		t.Fatalf("got %v exhausted %v give-back failed %v (%v), want a CAS failure with a failed give-back", d.Outcome, d.Exhausted(), d.GiveBackFailed, d.Err)
	}
	acct := stored(t, mem, "usageplans:account")
	if got := acct.Bucket("account"); got != (limit.Bucket{Tokens: 999, Last: t0.UnixNano()}) {
		t.Fatalf("account bucket %+v, want the token still taken", got)
	}
	if want := map[string]int{"usageplans:key:basic:k1": 8, "usageplans:account": 2}; !reflect.DeepEqual(ss.sets, want) {
		t.Fatalf("sets tried %v, want %v", ss.sets, want)
	}
}

func TestUnreadableEntry(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	_ = s.Set("usageplans:account", []byte{7, 0, 0}, 0)
	d := Decide(cfg, get("/items", k1), t0, &s)
	want := `state: decode at byte 0: unknown encoding version 7 (this filter reads 1) (key "usageplans:account")`
	if d.Outcome != Failure || d.Exhausted() || !errors.Is(d.Err, state.ErrVersion) || d.Err.Error() != want {
		t.Fatalf("got %v err %v, want failure %s", d.Outcome, d.Err, want)
	}
	if s.Keys() != 1 {
		t.Fatalf("store keys = %d: a failed check wrote", s.Keys())
	}
}

// TestOffset: offset 3 of limit 3 blocks the key's whole first day; the day of its first
// request stays the initial period although nothing was admitted then.
func TestOffset(t *testing.T) {
	cfg := shop(t, `"quota": {"limit": 3, "offset": 0, "period": "DAY"}`, `"quota": {"limit": 3, "offset": 3, "period": "DAY"}`)
	var s state.MemStore
	mar15 := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	q := func(reset int64) RateLimit { // the initial period's limit: 3 - 3 = 0
		return RateLimit{Set: true, Limit: 0, Remaining: 0, Reset: reset, Window: 86400, Name: "quota"}
	}
	run(t, cfg, &s, "usageplans:key:basic:k1", []step{
		{at: t0, req: get("/items", k1), outcome: QuotaExceeded, retry: 50400, rl: q(50400)},
		{at: t0.Add(time.Hour), req: get("/items", k1), outcome: QuotaExceeded, retry: 46800, rl: q(46800), unchanged: true},
		{at: mar15, req: get("/items", k1), outcome: Allow, rl: RateLimit{Set: true, Limit: 2, Remaining: 1, Reset: 1, Window: 2, Name: "plan:basic"}},
	})
}

// TestOffsetAddedLater (issue 3 review): a reload adds a quota whose offset equals its
// limit to a plan whose key already has an entry (its throttle bucket). The first request
// after it still marks the initial period, so the key is blocked until the end of that day
// only, not forever with a Retry-After that never comes true.
func TestOffsetAddedLater(t *testing.T) {
	cfg := shop(t, `"quota": {"limit": 3, "offset": 0, "period": "DAY"}`, `"quota": {"limit": 3, "offset": 3, "period": "DAY"}`)
	var s state.MemStore
	old := state.Entry{Buckets: []state.Slot{{Name: "plan:basic", Bucket: limit.Bucket{Tokens: 1, Last: t0.Add(-time.Hour).UnixNano()}}}}
	_ = s.Set("usageplans:key:basic:k1", state.AppendEncode(nil, &old), 0)
	mar15 := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	q := func(reset int64) RateLimit {
		return RateLimit{Set: true, Limit: 0, Remaining: 0, Reset: reset, Window: 86400, Name: "quota"}
	}
	run(t, cfg, &s, "usageplans:key:basic:k1", []step{
		{at: t0, req: get("/items", k1), outcome: QuotaExceeded, retry: 50400, rl: q(50400)},
		{at: t0.Add(time.Hour), req: get("/items", k1), outcome: QuotaExceeded, retry: 46800, rl: q(46800), unchanged: true},
		{at: mar15, req: get("/items", k1), outcome: Allow, rl: RateLimit{Set: true, Limit: 2, Remaining: 1, Reset: 1, Window: 2, Name: "plan:basic"}},
	})
	if e := stored(t, &s, "usageplans:key:basic:k1"); e.Quota != (limit.Counter{Window: mar15.Unix(), Used: 1, Created: t0.Unix()}) {
		t.Fatalf("quota counter %+v, want the initial period marked at %d and one request counted on the 15th", e.Quota, t0.Unix())
	}
}

// TestNeverRefills (issue 3 review): a bucket with a rate of 0 never refills once empty, and
// one with a burst of 0 closes its method. Their 429s stay 429s, but Retry-After and
// RateLimit-Reset say a day (NeverSeconds), or less when the key's quota period ends
// sooner, instead of the 9223372037 seconds of an endless wait; RateLimit-Policy gets no
// window.
func TestNeverRefills(t *testing.T) {
	t.Run("rate 0, a daily quota", func(t *testing.T) {
		cfg := shop(t, `"throttle": {"rateLimit": 1, "burstLimit": 2}`, `"throttle": {"rateLimit": 0, "burstLimit": 2}`)
		var s state.MemStore
		// 10:00 UTC: the day's quota ends in 14 h = 50400 s, sooner than a day.
		pl := func(rem, reset int64) RateLimit {
			return RateLimit{Set: true, Limit: 2, Remaining: rem, Reset: reset, Name: "plan:basic"}
		}
		run(t, cfg, &s, "usageplans:key:basic:k1", []step{
			{at: t0, req: get("/items", k1), outcome: Allow, rl: pl(1, 50400)},
			{at: t0, req: get("/items", k1), outcome: Allow, rl: pl(0, 50400)},
			{at: t0.Add(time.Hour), req: get("/items", k1), outcome: Throttled, limit: "plan:basic", retry: 46800, rl: pl(0, 46800), unchanged: true},
			// 40 days on, at 10:00 again: still empty, still until the day's end
			{at: t0.Add(40 * 24 * time.Hour), req: get("/items", k1), outcome: Throttled, limit: "plan:basic", retry: 50400, rl: pl(0, 50400), unchanged: true},
		})
		var dc Decider
		d := dc.Decide(cfg, get("/items", k1), t0, &s)
		r, _ := Respond(cfg, &d)
		want := Response{429, []h{{"content-type", "application/json"}, {"retry-after", "50400"}, {"ratelimit-limit", "2"},
			{"ratelimit-remaining", "0"}, {"ratelimit-reset", "50400"}, {"ratelimit-policy", "2"}}, `{"message":"Too Many Requests"}`}
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("response %+v\nwant     %+v", r, want)
		}
	})
	t.Run("burst 0 closes a stage method, a monthly quota", func(t *testing.T) {
		cfg := shop(t, `"/items/POST": {"throttlingRateLimit": 1, "throttlingBurstLimit": 1}`, `"/items/POST": {"throttlingRateLimit": 1, "throttlingBurstLimit": 0}`)
		var s state.MemStore
		post := get("/items", k2)
		post.Method = "POST"
		closed := RateLimit{Set: true, Limit: 0, Remaining: 0, Reset: NeverSeconds, Name: "stage:shop/prod:/items/POST"}
		run(t, cfg, &s, "usageplans:key:big:k2", []step{
			{at: t0, req: post, outcome: Throttled, limit: "stage:shop/prod:/items/POST", retry: NeverSeconds, rl: closed},
			{at: t0.Add(time.Hour), req: post, outcome: Throttled, limit: "stage:shop/prod:/items/POST", retry: NeverSeconds, rl: closed, unchanged: true},
			{at: t0, req: get("/items", k2), outcome: Allow, rl: RateLimit{Set: true, Limit: 100, Remaining: 99, Reset: 1, Window: 1, Name: "plan:big"}},
		})
	})
	t.Run("rate 0, no quota", func(t *testing.T) {
		cfg := shop(t, `"quota": {"limit": 1000, "period": "MONTH"}`, `"description": "no quota"`,
			`"throttle": {"rateLimit": 100, "burstLimit": 100}`, `"throttle": {"rateLimit": 0, "burstLimit": 1}`)
		var s state.MemStore
		pl := RateLimit{Set: true, Limit: 1, Remaining: 0, Reset: NeverSeconds, Name: "plan:big"}
		run(t, cfg, &s, "usageplans:key:big:k2", []step{
			{at: t0, req: get("/items", k2), outcome: Allow, rl: pl},
			{at: t0.Add(time.Minute), req: get("/items", k2), outcome: Throttled, limit: "plan:big", retry: NeverSeconds, rl: pl, unchanged: true},
		})
	})
}

func TestShadowModeConsumesNothingOnDenial(t *testing.T) {
	cfg := shop(t, `"rateLimitHeaders": true`, `"rateLimitHeaders": true, "shadowMode": true`)
	var s state.MemStore
	run(t, cfg, &s, "usageplans:key:basic:k1", []step{
		{at: t0, req: get("/items", k1), outcome: Allow, rl: RateLimit{Set: true, Limit: 2, Remaining: 1, Reset: 1, Window: 2, Name: "plan:basic"}},
		{at: t0, req: get("/items", k1), outcome: Allow, rl: RateLimit{Set: true, Limit: 2, Remaining: 0, Reset: 2, Window: 2, Name: "plan:basic"}},
		{at: t0, req: get("/items", k1), outcome: Throttled, limit: "plan:basic", retry: 1, rl: RateLimit{Set: true, Limit: 2, Reset: 2, Window: 2, Name: "plan:basic"}, unchanged: true},
	})
}

func TestClockBackwards(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	pl := func(rem, reset int64) RateLimit {
		return RateLimit{Set: true, Limit: 2, Remaining: rem, Reset: reset, Window: 2, Name: "plan:basic"}
	}
	run(t, cfg, &s, "usageplans:key:basic:k1", []step{
		{at: t0, req: get("/items", k1), outcome: Allow, rl: pl(1, 1)},
		{at: t0, req: get("/items", k1), outcome: Allow, rl: pl(0, 2)},
		{at: t0.Add(-time.Hour), req: get("/items", k1), outcome: Throttled, limit: "plan:basic", retry: 1, rl: pl(0, 2), unchanged: true},
		{at: t0.Add(time.Second), req: get("/items", k1), outcome: Allow, rl: pl(0, 2)},
	})
}

func TestLogFields(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	var dc Decider
	dc.Decide(cfg, get("/items/7", k1), t0, &s)
	d := dc.Decide(cfg, get("/items/7", k1), t0, &s)
	want := `outcome=throttled reason="throttled by plan-method limit" route=shop stage=shop/prod resource=/items/{id} method=GET key_id=k1 plan=basic limit=plan:basic:shop/prod:/items/{id}/GET rate=0.5 burst=1 retry_after=2`
	if got := d.LogFields(); got != want {
		t.Fatalf("LogFields:\n got %s\nwant %s", got, want)
	}
	d = Decide(cfg, get("/items", "NotAKey0000000000000000000000000"), t0, &s)
	want = `outcome=forbidden reason="unknown API key" route=shop stage=shop/prod resource=/items method=GET`
	if got := d.LogFields(); got != want {
		t.Fatalf("LogFields:\n got %s\nwant %s", got, want)
	}
	for _, k := range []string{k1, k2, k3, k4} {
		if strings.Contains(d.LogFields(), k) {
			t.Fatal("a key value reached a log line")
		}
	}
}

// TestKeySpaceBounded: two months of traffic from every key on every method write the same
// store keys as the first minute: one entry per (plan, key), per stage-method limit and the
// account, none per day, window or request.
func TestKeySpaceBounded(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	var dc Decider
	reqs := []Request{get("/", ""), get("/items", k1), get("/items/7", k1), get("/items", k2), get("/items", k3), get("/items", k4)}
	post := get("/items", k2)
	post.Method = "POST"
	reqs = append(reqs, post)
	count := func(from time.Time, d time.Duration) int {
		for at := from; at.Before(from.Add(d)); at = at.Add(7 * time.Hour) {
			for _, r := range reqs {
				dc.Decide(cfg, r, at, &s)
			}
		}
		return s.Keys()
	}
	// key:basic:k1, key:big:k2, their usage:basic:k1 and usage:big:k2, stage:shop/prod:/items/POST, account
	if first, all := count(t0, time.Minute), count(t0, 61*24*time.Hour); first != 6 || all != 6 {
		t.Fatalf("store keys: %d after a minute, %d after two months; want 6 and 6", first, all)
	}
}

// TestStaleBucketsDropped: a bucket of an override that a reload removed leaves the key's
// entry at its next admitted request.
func TestStaleBucketsDropped(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	old := state.Entry{Buckets: []state.Slot{
		{Name: "plan:basic:shop/prod:/gone/GET", Bucket: limit.Bucket{Tokens: 1, Last: 1}},
		{Name: "plan:basic", Bucket: limit.Bucket{Tokens: 1, Last: t0.UnixNano()}},
	}}
	_ = s.Set("usageplans:key:basic:k1", state.AppendEncode(nil, &old), 0)
	if d := Decide(cfg, get("/items", k1), t0, &s); d.Outcome != Allow {
		t.Fatalf("%v (%s), want allowed", d.Outcome, d.Reason)
	}
	e := stored(t, &s, "usageplans:key:basic:k1")
	want := []state.Slot{{Name: "plan:basic", Bucket: limit.Bucket{Tokens: 0, Last: t0.UnixNano()}}}
	if !reflect.DeepEqual(e.Buckets, want) {
		t.Fatalf("buckets %+v, want %+v", e.Buckets, want)
	}
}

// TestAppendQuote: the shortcut quotes exactly as strconv.Quote does, around every byte
// where the two could part: the ends of printable ASCII, quotes, backslashes, control and
// non-ASCII bytes, and invalid UTF-8.
func TestAppendQuote(t *testing.T) {
	for _, s := range []string{"", "missing API key", ` !#~`, `a"b`, `a\b`, "tab\there", "\x1f", "\x7f", "é", "\xff", "state: get \"k\": boom"} {
		if got, want := string(appendQuote([]byte("x="), s)), "x="+strconv.Quote(s); got != want {
			t.Errorf("appendQuote(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestAppendRate: the shortcut prints rates exactly as strconv's shortest 'g' does, on both
// sides of where it stops (fractions, a million, exponents).
func TestAppendRate(t *testing.T) {
	for _, r := range []float64{0, 0.5, 1, 2, 10, 100, 999999, 999999.5, 1e6, 1000001, 1e9, 1e21, 0.000001, 123.456, math.MaxFloat64, math.Copysign(0, -1)} {
		if got, want := string(appendRate(nil, r)), strconv.FormatFloat(r, 'g', -1, 64); got != want {
			t.Errorf("appendRate(%v) = %s, want %s", r, got, want)
		}
	}
}
