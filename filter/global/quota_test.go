package global

import (
	"errors"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/state"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func count(rs []Result) (admitted, exceeded, failed int) {
	for _, r := range rs {
		switch r.Verdict {
		case Admitted:
			admitted++
		case Exceeded:
			exceeded++
		case Failed:
			failed++
		}
	}
	return
}

// SYNC: a quota of 25 across 3 proxies of 2 workers each is admitted exactly 25 times, the
// requests spread over them; RLS's count is every request (a refused one counts too), the
// descriptor names the plan and key ids with '_' encoded, never the key value.
func TestSyncExactAcrossProxies(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 25, "period": "DAY"}`, `{"cluster": "rls", "domain": "up", "proxies": 3}`)
	m := newModel(t)
	ps := newProxies(3, 2)
	var rs []Result
	refused := 0
	for i := range 40 {
		step, r := ps[i%3].request(t, cfg, m, i/3, t0.Add(time.Duration(i)*100*time.Millisecond))
		switch {
		case step == Refuse && i >= 28:
			// After RLS said OVER_LIMIT to a proxy, the proxy refuses without a call for
			// GrantCheckMS: the window's count only grows, and only a grant can raise the
			// limit.
			refused++
		case step != Call:
			t.Fatalf("request %d: step %d, want a call", i, step)
		}
		rs = append(rs, r)
		if r.Verdict == Admitted && r.Remaining != int64(25-i-1) {
			t.Errorf("request %d: remaining %d, want %d", i, r.Remaining, 25-i-1)
		}
		if r.Reset != at(2026, 3, 11, 0, 0, 0) {
			t.Errorf("reset %d", r.Reset)
		}
	}
	if a, e, f := count(rs); a != 25 || e != 15 || f != 0 {
		t.Errorf("admitted %d, exceeded %d, failed %d; want 25, 15, 0", a, e, f)
	}
	key := "up_plan_gold~plan_key_k~1_period_d20260310_" + "1773100800"
	// Each admitted request reached the day's usage count with its proxy's next call.
	usageKey := "up_plan_gold~plan_key_k~1_usage_d20260310_1766016000"
	if got := m.counts[usageKey]; got != 25 {
		t.Errorf("usage count %d, want 25", got)
	}
	nonzero := 0
	for _, n := range m.counts {
		if n > 0 {
			nonzero++
		}
	}
	if got := m.counts[key]; got != 28 || nonzero != 2 || refused != 12 {
		t.Errorf("RLS counts %v, %d refused locally; want %s = 28 (25 and one refusal per proxy), 12", m.counts, refused, key)
	}
}

// Calls of one proxy in flight at the same time (two workers, answers in reverse order)
// are counted once each.
func TestSyncInterleavedWorkers(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 2, "period": "DAY"}`, `{"cluster": "rls", "domain": "up"}`)
	m := newModel(t)
	p := newProxies(1, 3)[0]
	plan, key := cfg.Plans[0], cfg.Keys[0]
	var tks [3]Ticket
	var bodies [3][]byte
	for i := range tks {
		tks[i] = p.workers[i].Begin(cfg, plan, key, t0, p.store)
		bodies[i] = append([]byte(nil), tks[i].Body...)
	}
	var vs []Verdict
	for i := 2; i >= 0; i-- {
		r := p.workers[i].Finish(cfg, &tks[i], m.answer(bodies[i], t0.Unix()), t0, p.store)
		vs = append(vs, r.Verdict)
	}
	if vs[0] != Admitted || vs[1] != Admitted || vs[2] != Exceeded {
		t.Errorf("verdicts %v, want admitted, admitted, exceeded", vs)
	}
}

func TestChunk(t *testing.T) {
	g := &config.Global{MaxChunk: 50, Proxies: 3}
	for _, tc := range []struct{ limit, remaining, want int64 }{
		{1000, -1, 50}, {1000, 1000, 50}, {1000, 300, 50}, {1000, 299, 49}, {1000, 60, 10},
		{1000, 12, 2}, {1000, 11, 1}, {1000, 6, 1}, {1000, 1, 1}, {1000, 0, 1}, {4, -1, 1},
	} {
		if got := Chunk(g, tc.limit, tc.remaining); got != tc.want {
			t.Errorf("Chunk(limit %d, remaining %d) = %d, want %d", tc.limit, tc.remaining, got, tc.want)
		}
	}
}

// LEASE: over-admission 0, under-admission at most proxies × maxChunk in the period, and
// far fewer calls than requests. The requests rotate over 3 proxies of 2 workers.
func TestLeaseBounds(t *testing.T) {
	const limit, proxies, chunk = 1000, 3, 50
	cfg := globalCfg(t, `{"limit": 1000, "period": "MONTH"}`, `{"cluster": "rls", "domain": "up", "mode": "LEASE", "lease": {"maxChunk": 50}, "proxies": 3}`)
	m := newModel(t)
	ps := newProxies(proxies, 2)
	var rs []Result
	calls := 0 // RLS calls until the last admission; after it every request is one refused call
	for i := range 1500 {
		_, r := ps[i%proxies].request(t, cfg, m, i/proxies, t0.Add(time.Duration(i)*time.Second))
		rs = append(rs, r)
		if r.Verdict == Admitted {
			calls = m.calls
		}
	}
	a, _, _ := count(rs)
	if a > limit || a < limit-proxies*chunk {
		t.Errorf("admitted %d, want within [%d, %d]", a, limit-proxies*chunk, limit)
	}
	if calls > 100 {
		t.Errorf("%d calls for %d admitted requests", calls, a)
	}
	t.Logf("LEASE: %d admitted of a quota of %d (bound %d), %d RLS calls for them", a, limit, limit-proxies*chunk, calls)
}

// One lease in flight per key per proxy: while it is, another worker's request goes to RLS
// by itself (hits 1) and takes nothing from the lease; the lease's answer then serves the
// next requests locally.
func TestLeaseOneInFlight(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 100, "period": "DAY"}`, `{"cluster": "rls", "domain": "up", "mode": "LEASE", "lease": {"maxChunk": 10}}`)
	m := newModel(t)
	p := newProxies(1, 2)[0]
	plan, key := cfg.Plans[0], cfg.Keys[0]
	a := p.workers[0].Begin(cfg, plan, key, t0, p.store)
	aBody := append([]byte(nil), a.Body...)
	b := p.workers[1].Begin(cfg, plan, key, t0, p.store)
	if !a.Owned || a.Own != 10 || b.Owned || b.Own != 1 {
		t.Fatalf("tickets a %+v, b %+v: want a owning a lease of 10, b a single request", a, b)
	}
	rb := p.workers[1].Finish(cfg, &b, m.answer(b.Body, t0.Unix()), t0, p.store)
	ra := p.workers[0].Finish(cfg, &a, m.answer(aBody, t0.Unix()), t0, p.store)
	if ra.Verdict != Admitted || rb.Verdict != Admitted {
		t.Fatalf("verdicts %v %v", ra.Verdict, rb.Verdict)
	}
	for i := range 9 {
		if tk := p.workers[i%2].Begin(cfg, plan, key, t0, p.store); tk.StepOf() != Admit {
			t.Fatalf("request %d after the lease: step %d, want served from the lease", i, tk.StepOf())
		}
	}
	if tk := p.workers[0].Begin(cfg, plan, key, t0, p.store); tk.StepOf() != Call || !tk.Owned {
		t.Errorf("lease spent: ticket %+v, want a new owned call", tk)
	}
	if m.total("_period_") != 11 {
		t.Errorf("RLS count %d, want 11", m.total("_period_"))
	}
}

// A refused lease still counts in RLS: the proxy then asks for single requests.
func TestLeaseRefusedShrinks(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 10, "period": "DAY"}`, `{"cluster": "rls", "domain": "up", "mode": "LEASE", "lease": {"maxChunk": 8}}`)
	m := newModel(t)
	p, q := newProxies(2, 1)[0], newProxies(2, 1)[1]
	_, r := p.request(t, cfg, m, 0, t0) // chunk 5 (10/2), 4 left in hand
	if r.Verdict != Admitted || r.Remaining != 5 {
		t.Fatalf("first lease: %+v", r)
	}
	_, r = q.request(t, cfg, m, 0, t0) // q asks 5 too: count 10, remaining 0
	if r.Verdict != Admitted || r.Remaining != 0 {
		t.Fatalf("second lease: %+v", r)
	}
	_, r = q.request(t, cfg, m, 0, t0) // from q's lease
	tk := q.workers[0].Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, q.store)
	for tk.StepOf() == Admit {
		tk = q.workers[0].Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, q.store)
	}
	if tk.Own != 1 {
		t.Errorf("after remaining 0: chunk %d, want 1", tk.Own)
	}
}

// An RLS YEAR window boundary inside a MONTH period (2025-12-18 00:00 UTC): each proxy
// carries over what it admitted before it, once, and the month's quota stays exact.
func TestCarryOverAtYearBoundary(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 10, "period": "MONTH"}`, `{"cluster": "rls", "domain": "up", "proxies": 2}`)
	m := newModel(t)
	ps := newProxies(2, 1)
	before := time.Unix(yearStart-3600, 0)
	for i := range 7 { // 4 on proxy 0, 3 on proxy 1
		if _, r := ps[i%2].request(t, cfg, m, 0, before); r.Verdict != Admitted {
			t.Fatalf("before: request %d %v", i, r.Verdict)
		}
	}
	after := time.Unix(yearStart+60, 0)
	var vs []Verdict
	for i := range 6 {
		_, r := ps[i%2].request(t, cfg, m, 0, after)
		vs = append(vs, r.Verdict)
	}
	want := []Verdict{Admitted, Admitted, Admitted, Exceeded, Exceeded, Exceeded}
	for i := range want {
		if vs[i] != want[i] {
			t.Fatalf("after the boundary: verdicts %v, want %v", vs, want)
		}
	}
	newKey := "up_plan_gold~plan_key_k~1_period_m202512_1766016000"
	// 4 + 3 carried, then 5 calls: 3 admitted, one refused per proxy; the 6th request is
	// refused by its proxy without a call.
	if m.counts[newKey] != 12 {
		t.Errorf("count after the boundary %d, want 12 (7 carried + 5)", m.counts[newKey])
	}
	// Carried once: a later request of the first window's proxies carries nothing again.
	cfg2 := globalCfg(t, `{"limit": 20, "period": "MONTH"}`, `{"cluster": "rls", "domain": "up", "proxies": 2}`)
	ps[0].request(t, cfg2, m, 0, after.Add(time.Hour)) // a raised limit asks RLS again
	if m.counts[newKey] != 13 {
		t.Errorf("count %d, want 13", m.counts[newKey])
	}
}

// Until a proxy that admitted before the boundary has made a call after it, its share is
// not in the new count: the documented window of over-admission.
func TestCarryOverIsLazy(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 10, "period": "MONTH"}`, `{"cluster": "rls", "domain": "up", "proxies": 2}`)
	m := newModel(t)
	ps := newProxies(2, 1)
	for range 6 {
		ps[1].request(t, cfg, m, 0, time.Unix(yearStart-60, 0))
	}
	a := 0
	for range 10 {
		if _, r := ps[0].request(t, cfg, m, 0, time.Unix(yearStart+60, 0)); r.Verdict == Admitted {
			a++
		}
	}
	if a != 10 {
		t.Errorf("proxy 0 admitted %d after the boundary, before proxy 1 carried; the model says 10", a)
	}
	if _, r := ps[1].request(t, cfg, m, 0, time.Unix(yearStart+120, 0)); r.Verdict != Exceeded {
		t.Errorf("proxy 1 after carrying: %v, want exceeded", r.Verdict)
	}
}

// Failure modes, for each way RLS fails to answer: no answer (timeout, connection), a gRPC
// error status (Redis down: RLS answers UNAVAILABLE or UNKNOWN).
func TestFailureModes(t *testing.T) {
	for _, how := range []string{"down", "grpc error"} {
		for _, tc := range []struct {
			mode string
			want []Verdict
		}{
			{"OPEN", []Verdict{Admitted, Admitted, Admitted, Admitted, Admitted}},
			{"CLOSED", []Verdict{Failed, Failed, Failed, Failed, Failed}},
			// limit 10 over 3 proxies: a share of 3 while RLS is away.
			{"LOCAL", []Verdict{Admitted, Admitted, Admitted, Exceeded, Exceeded}},
		} {
			cfg := globalCfg(t, `{"limit": 10, "period": "DAY"}`, `{"cluster": "rls", "domain": "up", "proxies": 3, "failureMode": "`+tc.mode+`"}`)
			m := newModel(t)
			if how == "down" {
				m.down = true
			} else {
				m.status = 14
			}
			p := newProxies(1, 1)[0]
			for i, w := range tc.want {
				_, r := p.request(t, cfg, m, 0, t0)
				if r.Verdict != w || r.Err == nil || (r.Fallback.String() != tc.mode) {
					t.Errorf("%s, %s, request %d: %+v, want %v by fallback", how, tc.mode, i, r, w)
				}
			}
			m.down, m.status = false, 0
			_, r := p.request(t, cfg, m, 0, t0)
			if r.Verdict != Admitted || r.Fallback != 0 {
				t.Errorf("%s, %s: RLS back: %+v", how, tc.mode, r)
			}
			// LOCAL replays what it admitted (3) with the call after the first one RLS
			// answers, once.
			if m.total("_period_") != 1 {
				t.Errorf("%s, %s: RLS count %d after the first answered call, want 1", how, tc.mode, m.total("_period_"))
			}
			want := uint64(2)
			if tc.mode == "LOCAL" {
				want = 5
			}
			p.request(t, cfg, m, 0, t0)
			if m.total("_period_") != want {
				t.Errorf("%s, %s: RLS count %d, want %d", how, tc.mode, m.total("_period_"), want)
			}
			p.request(t, cfg, m, 0, t0)
			if m.total("_period_") != want+1 {
				t.Errorf("%s, %s: replayed twice: count %d", how, tc.mode, m.total("_period_"))
			}
		}
	}
}

// LOCAL's share follows what RLS last said remained: 4 left over 2 proxies is 2 each.
func TestLocalShareFollowsRemaining(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 10, "period": "DAY"}`, `{"cluster": "rls", "domain": "up", "proxies": 2, "failureMode": "LOCAL"}`)
	m := newModel(t)
	p := newProxies(1, 1)[0]
	for range 6 {
		p.request(t, cfg, m, 0, t0)
	}
	m.down = true
	var vs []Verdict
	for range 3 {
		_, r := p.request(t, cfg, m, 0, t0)
		vs = append(vs, r.Verdict)
	}
	if vs[0] != Admitted || vs[1] != Admitted || vs[2] != Exceeded {
		t.Errorf("verdicts %v, want 2 admitted then exceeded", vs)
	}
}

// An owned call whose answer never comes (the request went away first, so Finish never
// ran): past its deadline its claim goes back to Pending and the next call sends it.
func TestLostOwnedCall(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 10, "period": "DAY"}`, `{"cluster": "rls", "domain": "up", "timeoutMs": 100, "failureMode": "LOCAL"}`)
	m := newModel(t)
	p := newProxies(1, 1)[0]
	m.down = true
	p.request(t, cfg, m, 0, t0) // admitted locally: 1 pending
	m.down = false
	// The first call RLS answers carries no replay: the replay waits for it.
	if _, r := p.request(t, cfg, m, 0, t0); r.Fallback != 0 || m.total("_period_") != 1 {
		t.Fatalf("first answered call: %+v, RLS count %d", r, m.total("_period_"))
	}
	lost := p.workers[0].Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, p.store)
	if !lost.Owned || lost.Claimed != 1 {
		t.Fatalf("ticket %+v, want an owned call carrying 1", lost)
	}
	// Within the deadline another request does not own a call.
	if tk := p.workers[0].Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0.Add(time.Second), p.store); tk.Owned {
		t.Errorf("second owned call within the deadline")
	}
	tk := p.workers[0].Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0.Add(1201*time.Millisecond), p.store)
	if !tk.Owned || tk.Claimed != 1 {
		t.Errorf("after the deadline: %+v, want the claim sent again", tk)
	}
}

// A period that ends while the call is in flight: the answer decides the request; the new
// period's entry starts from nothing.
func TestPeriodEndsInFlight(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 10, "period": "DAY"}`, `{"cluster": "rls", "domain": "up", "mode": "LEASE"}`)
	m := newModel(t)
	p := newProxies(1, 1)[0]
	end := time.Unix(at(2026, 3, 11, 0, 0, 0), 0)
	tk := p.workers[0].Begin(cfg, cfg.Plans[0], cfg.Keys[0], end.Add(-time.Millisecond), p.store)
	body := append([]byte(nil), tk.Body...)
	p.workers[0].Begin(cfg, cfg.Plans[0], cfg.Keys[0], end, p.store) // the new day's entry
	r := p.workers[0].Finish(cfg, &tk, m.answer(body, end.Unix()-1), end, p.store)
	if r.Verdict != Admitted {
		t.Errorf("verdict %v", r.Verdict)
	}
	var e Entry
	v, _, _ := p.store.Get(EntryKey("usageplans", "gold_plan", "k_1"))
	if err := Decode(v, &e); err != nil || e.Lease != 0 || e.Period != end.Unix() {
		t.Errorf("entry %+v, %v: want the new day's, without the old lease", e, err)
	}
}

// A store that fails: Begin says Fail with the error (the top-level failure policy decides).
func TestStoreFailure(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 10, "period": "DAY"}`, `{"cluster": "rls", "domain": "up"}`)
	var qt Quota
	tk := qt.Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, badStore{})
	if tk.StepOf() != Fail || !errors.Is(tk.Err, errBroken) {
		t.Errorf("ticket %+v", tk)
	}
	s := &state.MemStore{}
	_ = s.Set(EntryKey("usageplans", "gold_plan", "k_1"), []byte{9}, 0)
	if tk := qt.Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, s); !errors.Is(tk.Err, ErrEntryVersion) {
		t.Errorf("unknown version: %v", tk.Err)
	}
}

var errBroken = errors.New("broken")

type badStore struct{}

func (badStore) Get(string) ([]byte, uint32, error) { return nil, 0, errBroken }
func (badStore) Set(string, []byte, uint32) error   { return errBroken }

// An admitted answer that RLS counted before an OVER_LIMIT one but that arrives after it is
// stale: RLS's count only grows, so the proxy keeps refusing without a call, and keeps the
// refusal's remaining (0), not the stale answer's.
func TestLateAdmittedAnswerKeepsOverLimit(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 1, "period": "DAY"}`, `{"cluster": "rls", "domain": "up"}`)
	m := newModel(t)
	p := newProxies(1, 3)[0]
	plan, key := cfg.Plans[0], cfg.Keys[0]
	first := p.workers[0].Begin(cfg, plan, key, t0, p.store)
	firstAnswer := m.answer(append([]byte(nil), first.Body...), t0.Unix()) // counted first: 1
	second := p.workers[1].Begin(cfg, plan, key, t0, p.store)
	secondAnswer := m.answer(append([]byte(nil), second.Body...), t0.Unix()) // 2: over
	if r := p.workers[1].Finish(cfg, &second, secondAnswer, t0, p.store); r.Verdict != Exceeded {
		t.Fatalf("the second count: %v, want exceeded", r.Verdict)
	}
	if r := p.workers[0].Finish(cfg, &first, firstAnswer, t0, p.store); r.Verdict != Admitted || r.Remaining != 0 {
		t.Fatalf("the first count, answered last: %v remaining %d, want admitted, 0", r.Verdict, r.Remaining)
	}
	next := p.workers[2].Begin(cfg, plan, key, t0.Add(time.Second), p.store)
	if s := next.StepOf(); s != Refuse {
		t.Fatalf("the next request: step %v, want Refuse (no call: RLS said OVER_LIMIT in the window)", s)
	}
	e := readEntry(t, p.store, cfg, plan, key)
	if e.Remaining != 0 || e.Over == 0 {
		t.Errorf("entry Remaining %d Over %d, want 0 and the refusal's limit kept", e.Remaining, e.Over)
	}
}

func readEntry(t *testing.T, store state.Store, cfg *config.Config, plan *config.Plan, key *config.Key) Entry {
	t.Helper()
	v, _, err := store.Get(EntryKey(cfg.Namespace, plan.ID, key.ID))
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := Decode(v, &e); err != nil {
		t.Fatal(err)
	}
	return e
}
