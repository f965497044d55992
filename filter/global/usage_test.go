package global

import (
	"errors"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/state"
)

func TestUsageEntryRoundTrip(t *testing.T) {
	for _, e := range []UsageEntry{{}, {Day: [2]int64{20791, 20790}, N: [2]int64{3, 130}, Failing: 1}} {
		b := AppendUsageEntry(nil, &e)
		var got UsageEntry
		if err := DecodeUsageEntry(b, &got); err != nil || got != e {
			t.Errorf("round trip %+v: %+v, %v", e, got, err)
		}
	}
	if got := AppendUsageEntry(nil, &UsageEntry{}); string(got) != "\x01\x00\x00\x00\x00\x00" {
		t.Errorf("encoding %x", got)
	}
	full := AppendUsageEntry(nil, &UsageEntry{Day: [2]int64{5, 4}})
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrEntryCorrupt},
		{"version 2", []byte{2, 0, 0, 0, 0, 0}, ErrEntryVersion},
		{"truncated", full[:3], ErrEntryCorrupt},
		{"trailing", append(append([]byte(nil), full...), 0), ErrEntryCorrupt},
		{"failing 2", []byte{1, 0, 0, 0, 0, 2}, ErrEntryCorrupt},
		{"count over 2^53", []byte{1, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0}, ErrEntryCorrupt},
	} {
		var e UsageEntry
		if err := DecodeUsageEntry(tc.b, &e); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// A day's unsent usage stays with its day: yesterday's is kept beside today's, an older
// one is pushed out as lost, and so is a request of a day before the entry's.
func TestUsageEntryAdd(t *testing.T) {
	var e UsageEntry
	for _, tc := range []struct {
		day, n, lost int64
		want         UsageEntry
	}{
		{100, 2, 0, UsageEntry{Day: [2]int64{100, 99}, N: [2]int64{2, 0}}},
		{100, 1, 0, UsageEntry{Day: [2]int64{100, 99}, N: [2]int64{3, 0}}},
		{101, 1, 0, UsageEntry{Day: [2]int64{101, 100}, N: [2]int64{1, 3}}},
		{102, 1, 3, UsageEntry{Day: [2]int64{102, 101}, N: [2]int64{1, 1}}},
		{100, 4, 4, UsageEntry{Day: [2]int64{102, 101}, N: [2]int64{1, 1}}}, // the clock went back two days
		{105, 1, 2, UsageEntry{Day: [2]int64{105, 104}, N: [2]int64{1, 0}}},
	} {
		if lost := e.add(tc.day, tc.n); lost != tc.lost || e != tc.want {
			t.Errorf("add(%d, %d): lost %d, entry %+v; want %d, %+v", tc.day, tc.n, lost, e, tc.lost, tc.want)
		}
	}
	var c UsageClaim
	if !e.claim(&c) || c.Total() != 1 || e.N != [2]int64{} || e.claim(&c) {
		t.Errorf("claim: %+v, entry %+v", c, e)
	}
}

// usageCount is the model's per-day usage of the test key.
func usageCount(m *model, day string) uint64 { return m.total("_usage_" + day + "_") }

// SYNC and LEASE across 3 proxies of 2 workers each over three days on a fake clock: after
// each proxy's flush, RLS's usage descriptor of each day holds exactly what the fleet
// admitted that day (served from leases included, reserved but unserved leases not, refused
// requests not), whatever RLS's quota count says.
func TestUsageCountsAdmittedPerDay(t *testing.T) {
	for _, global := range []string{
		`{"cluster": "rls", "domain": "up", "proxies": 3}`,
		`{"cluster": "rls", "domain": "up", "proxies": 3, "mode": "LEASE", "lease": {"maxChunk": 4}}`,
	} {
		cfg := globalCfg(t, `{"limit": 30, "period": "DAY"}`, global)
		m := newModel(t)
		ps := newProxies(3, 2)
		days := []string{"d20260310", "d20260311", "d20260312"}
		sent := []int{40, 7, 0}
		for day, n := range sent {
			admitted := 0
			for i := range n {
				now := t0.Add(time.Duration(day)*24*time.Hour + time.Duration(i)*time.Second)
				if _, r := ps[i%3].request(t, cfg, m, i/3, now); r.Verdict == Admitted {
					admitted++
				}
			}
			for _, p := range ps { // the tick of each proxy
				qt := p.workers[0]
				f, err := qt.BeginFlush(cfg, p.store)
				if err != nil {
					t.Fatal(err)
				}
				if f == nil {
					continue
				}
				if lost, err := qt.FinishFlush(cfg, f, m.answer(f.Body, t0.Unix()), p.store); lost != 0 || err != nil {
					t.Fatalf("flush: lost %d, %v", lost, err)
				}
			}
			if got := usageCount(m, days[day]); got != uint64(admitted) {
				t.Errorf("%s, %s: usage %d, admitted %d", global, days[day], got, admitted)
			}
			if lease := cfg.Global.Mode == config.Lease; day == 0 && (admitted > 30 || !lease && admitted != 30 || admitted < 30-3*4) {
				t.Errorf("%s: admitted %d of a quota of 30", global, admitted)
			}
		}
		if quota := m.total("_period_d20260310_"); quota <= 30 {
			t.Errorf("%s: RLS's quota count %d: want the refused calls (or unserved leases) in it too", global, quota)
		}
	}
}

// A call whose answer is lost may or may not have been counted: its usage is not sent
// again (a day's count never exceeds what was admitted), it is reported lost, and while the
// calls fail nothing more is claimed; the first answered call ends that, and the next
// carries what was admitted meanwhile.
func TestUsageLostAnswer(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 100, "period": "DAY"}`, `{"cluster": "rls", "domain": "up", "failureMode": "OPEN"}`)
	m := newModel(t)
	p := newProxies(1, 1)[0]
	p.request(t, cfg, m, 0, t0) // admitted: 1 unsent
	m.down = true
	if _, r := p.request(t, cfg, m, 0, t0); r.UsageLost != 1 || r.Verdict != Admitted {
		t.Fatalf("lost call: %+v, want 1 lost and admitted (OPEN)", r)
	}
	// Failing: this call claims nothing (its own admission stays unsent).
	if tk := p.workers[0].Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, p.store); tk.Usage.Total() != 0 {
		t.Fatalf("claimed %d while failing", tk.Usage.Total())
	} else if r := p.workers[0].Finish(cfg, &tk, m.answer(tk.Body, t0.Unix()), t0, p.store); r.UsageLost != 0 {
		t.Fatalf("a call without a claim lost %d", r.UsageLost)
	}
	m.down = false
	p.request(t, cfg, m, 0, t0) // answered: failing ends, nothing carried yet
	if got := usageCount(m, "d20260310"); got != 0 {
		t.Fatalf("usage %d, want 0", got)
	}
	p.request(t, cfg, m, 0, t0) // carries the 3 admitted since the lost call
	if got := usageCount(m, "d20260310"); got != 3 {
		t.Errorf("usage %d, want 3 (5 admitted, 1 lost, 1 unsent)", got)
	}
}

// A flush claims every key's unsent usage at once, so neither a request's call nor another
// flush carries it again; nothing unsent, no flush; a flush whose answer is lost loses it.
func TestFlushClaims(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 100, "period": "DAY"}`, `{"cluster": "rls", "domain": "up"}`)
	m := newModel(t)
	p := newProxies(1, 2)[0]
	for i := range 3 {
		p.request(t, cfg, m, i, t0)
	}
	a, _ := p.workers[0].BeginFlush(cfg, p.store)
	if a == nil || a.Requests() != 1 {
		t.Fatalf("flush %+v, want 1 request (the 2 before rode on calls)", a)
	}
	if b, err := p.workers[1].BeginFlush(cfg, p.store); b != nil || err != nil {
		t.Fatalf("second flush %+v, %v: want nothing to send", b, err)
	}
	if tk := p.workers[1].Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, p.store); tk.Usage.Total() != 0 {
		t.Fatalf("a request's call claimed %d already flushed", tk.Usage.Total())
	}
	if lost, err := p.workers[0].FinishFlush(cfg, a, Answer{Failed: true}, p.store); lost != 1 || err != nil {
		t.Errorf("lost flush: %d, %v", lost, err)
	}
	var e UsageEntry
	v, _, _ := p.store.Get(UsageEntryKey(cfg.Namespace, "gold_plan", "k_1"))
	if err := DecodeUsageEntry(v, &e); err != nil || e.Failing != 1 {
		t.Errorf("entry after a lost flush %+v, %v: want failing", e, err)
	}
}

// A usage entry that does not decode fails the usage, not the request.
func TestUsageEntryCorrupt(t *testing.T) {
	cfg := globalCfg(t, `{"limit": 100, "period": "DAY"}`, `{"cluster": "rls", "domain": "up"}`)
	m := newModel(t)
	store := &state.MemStore{}
	if err := store.Set(UsageEntryKey(cfg.Namespace, "gold_plan", "k_1"), []byte{9}, state.CreateCAS); err != nil {
		t.Fatal(err)
	}
	qt := &Quota{}
	tk := qt.Begin(cfg, cfg.Plans[0], cfg.Keys[0], t0, store)
	if tk.StepOf() != Call || !errors.Is(tk.UsageErr, ErrEntryVersion) {
		t.Fatalf("step %d, usage error %v", tk.StepOf(), tk.UsageErr)
	}
	r := qt.Finish(cfg, &tk, m.answer(tk.Body, t0.Unix()), t0, store)
	if r.Verdict != Admitted || !errors.Is(r.StateErr, ErrEntryVersion) {
		t.Errorf("%+v", r)
	}
}
