package global

import (
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/state"
	"github.com/usageplans/usageplans/internal/rlstest"
)

// What the fleet's usage costs a SYNC request: BenchmarkSyncRequest is a whole request's
// global step (Begin, then Finish on an answer with the quota's and a usage descriptor's
// statuses); BenchmarkSyncUsageShare is the part of it that is usage accounting (the claim
// in Begin and the count in Finish, on the same shared data). Their ratio is the share.
func BenchmarkSyncRequest(b *testing.B) {
	cfg := globalCfg(b, `{"limit": 1000000000, "period": "DAY"}`, `{"cluster": "rls", "domain": "up"}`)
	m := newModel(b)
	store := &state.MemStore{}
	qt := &Quota{}
	tk := qt.Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, store)
	qt.Finish(cfg, &tk, m.answer(tk.Body, t0.Unix()), t0, store)
	tk = qt.Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, store) // carries the first's usage
	a := m.answer(tk.Body, t0.Unix())
	qt.Finish(cfg, &tk, a, t0, store)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tk := qt.Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, store)
		if r := qt.Finish(cfg, &tk, a, t0, store); r.Verdict != Admitted {
			b.Fatalf("%+v", r)
		}
	}
}

func BenchmarkSyncUsageShare(b *testing.B) {
	cfg := globalCfg(b, `{"limit": 1000000000, "period": "DAY"}`, `{"cluster": "rls", "domain": "up"}`)
	store := &state.MemStore{}
	qt := &Quota{}
	n := qt.namesFor(cfg, cfg.Plans[0], cfg.Keys[0])
	day := floorDiv(t0.Unix(), 86400)
	if _, err := qt.countUsage(cfg, n.usage, day, 1, nil, noCall, store); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var c UsageClaim
		if err := qt.claimUsage(cfg, n.usage, &c, store); err != nil || c.Total() != 1 {
			b.Fatalf("claim %+v, %v", c, err)
		}
		if _, err := qt.countUsage(cfg, n.usage, day, 1, &c, answeredCall, store); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRealRLSCall: one SYNC call to the real RLS and Redis, as the filter sends it now
// (the quota, its count, the grant's counter and two values, one day's usage) against the
// quota descriptor alone, the call before usage and grants (the baseline, same run). The
// ratio is what they add to RLS's round trip.
func BenchmarkRealRLSCall(b *testing.B) {
	env := rlstest.Start(b, rlstest.Options{Domain: "up"})
	cc := dial(b, env.RLS.GRPCAddr)
	cfg := globalCfg(b, `{"limit": 4000000000, "period": "DAY"}`, `{"cluster": "rls", "domain": "up"}`)
	now := time.Now()
	w := WindowAt(cfg.Plans[0].Quota, now.Unix())
	alone := rls.AppendRequestFrame(nil, &rls.Request{Domain: "up", Descriptors: []rls.Descriptor{
		QuotaDescriptor(Value("gold_plan"), Value("k_1"), cfg.Plans[0].Quota, w, 1)}})
	b.Run("quota-alone", func(b *testing.B) {
		for range b.N {
			if a := realCall(b, cc, alone); ReadAnswer(a, &rls.Response{}, 1) != nil {
				b.Fatal("no answer")
			}
		}
	})
	b.Run("filter-call", func(b *testing.B) {
		store := &state.MemStore{}
		qt := &Quota{}
		for range b.N {
			tk := qt.Begin(cfg, cfg.Plans[0], cfg.Keys[0], now, store)
			if tk.StepOf() != Call {
				b.Fatalf("step %d", tk.StepOf())
			}
			if r := qt.Finish(cfg, &tk, realCall(b, cc, tk.Body), now, store); r.Verdict != Admitted {
				b.Fatalf("%+v", r)
			}
		}
	})
}
