package limit

import (
	"math/rand/v2"
	"testing"
	"time"
)

// windowByDate is the calendar window computed with the time package, the way Window did
// before it moved to integer arithmetic: the oracle for span.
func windowByDate(q Quota, t time.Time) (start, end time.Time) {
	t = t.UTC()
	y, m, d := t.Date()
	switch q.Period {
	case Week:
		back := (int(t.Weekday()) - int(q.WeekStart) + 7) % 7
		start = time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 7)
	case Month:
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	default:
		start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	}
}

// TestWindowMatchesDate: the integer calendar gives the time package's windows, to the
// value (location included), around every boundary of random instants between the years
// -3000 and 12000, for every period and week start (an out-of-range one included).
func TestWindowMatchesDate(t *testing.T) {
	quotas := []Quota{{}, {Period: Day}, {Period: Month}}
	for wd := time.Sunday; wd <= time.Saturday+3; wd++ {
		quotas = append(quotas, Quota{Period: Week, WeekStart: wd})
	}
	lo := time.Date(-3000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	rng := rand.New(rand.NewPCG(1, 2))
	instants := []int64{0, -1, 1, 951782400 /* 2000-02-29 */, 4107456000 /* 2100-03-01 */}
	for range 20000 {
		instants = append(instants, lo+rng.Int64N(hi-lo))
	}
	for _, q := range quotas {
		for _, sec := range instants {
			ws, we := windowByDate(q, time.Unix(sec, 0))
			// Both edges of the window and of its neighbours.
			for _, at := range []int64{sec, ws.Unix(), ws.Unix() - 1, we.Unix() - 1, we.Unix()} {
				want0, want1 := windowByDate(q, time.Unix(at, 0))
				got0, got1 := q.Window(time.Unix(at, 0))
				if got0 != want0 || got1 != want1 {
					t.Fatalf("%+v: Window(%v) = [%v, %v), want [%v, %v)", q, time.Unix(at, 0).UTC(), got0, got1, want0, want1)
				}
				a := q.At(time.Unix(at, 500_000_000))
				if s0, s1 := a.Window(); s0 != want0 || s1 != want1 || a.Seconds() != want1.Unix()-want0.Unix() {
					t.Fatalf("%+v: At(%v).Window() = [%v, %v) (%d s), want [%v, %v)", q, time.Unix(at, 0).UTC(), s0, s1, a.Seconds(), want0, want1)
				}
			}
		}
	}
}

// refQuota is the quota arithmetic as it was before QuotaAt, every answer computed from the
// time package's calendar: the oracle for QuotaAt and the Quota methods.
type refQuota struct{ Quota }

func (r refQuota) advance(c Counter, t time.Time) Counter {
	start, _ := windowByDate(r.Quota, t)
	s := start.Unix()
	if c.Created == 0 {
		created := t.Unix()
		if created == 0 {
			created = -1
		}
		return Counter{Window: s, Created: created}
	}
	if s > c.Window {
		c.Window, c.Used = s, 0
	}
	return c
}

func (r refQuota) limitOf(c Counter) int64 {
	lim := r.Limit
	if c.Created != 0 {
		if first, _ := windowByDate(r.Quota, time.Unix(c.Created, 0)); first.Unix() == c.Window {
			lim -= r.Offset
		}
	}
	return max(lim, 0)
}

func (r refQuota) allowN(c Counter, t time.Time, n int64) (Counter, bool) {
	c = r.advance(c, t)
	if n < 0 || n > r.limitOf(c)-c.Used {
		return c, false
	}
	c.Used += n
	return c, true
}

func (r refQuota) giveN(c Counter, t time.Time, n, window int64) Counter {
	c = r.advance(c, t)
	if c.Window != window || n <= 0 {
		return c
	}
	c.Used = max(c.Used-n, 0)
	return c
}

func (r refQuota) remaining(c Counter, t time.Time) int64 {
	c = r.advance(c, t)
	return max(r.limitOf(c)-c.Used, 0)
}

func (r refQuota) reset(c Counter, t time.Time) time.Time {
	c = r.advance(c, t)
	_, end := windowByDate(r.Quota, time.Unix(c.Window, 0))
	return end
}

// TestQuotaAtMatchesReference: QuotaAt and the Quota methods give the reference's answers,
// to the value, over counters in the current, an older and a later (clock gone backwards)
// window, in and out of the initial period with an offset, and a counter never used.
func TestQuotaAtMatchesReference(t *testing.T) {
	at := utc(2026, 3, 14, 10, 0, 0)
	day := 24 * time.Hour
	counters := []Counter{
		{},
		{Window: utc(2026, 3, 14, 0, 0, 0).Unix(), Used: 2, Created: at.Add(-time.Hour).Unix()},
		{Window: utc(2026, 3, 14, 0, 0, 0).Unix(), Used: 1, Created: at.Add(-40 * day).Unix()},
		{Window: utc(2026, 3, 1, 0, 0, 0).Unix(), Used: 3, Created: utc(2026, 3, 1, 0, 0, 0).Unix()},
		{Window: utc(2026, 4, 1, 0, 0, 0).Unix(), Used: 1, Created: utc(2026, 4, 1, 0, 0, 0).Unix()},
		{Window: utc(2026, 3, 16, 0, 0, 0).Unix(), Used: 4, Created: -1},
		{Window: utc(2026, 3, 16, 0, 0, 0).Unix(), Used: 9, Created: utc(2026, 3, 16, 0, 0, 0).Unix()},
	}
	for _, q := range []Quota{
		{Limit: 5, Period: Day}, {Limit: 5, Offset: 2, Period: Day},
		{Limit: 5, Offset: 1, Period: Week, WeekStart: time.Monday}, {Limit: 4, Offset: 9, Period: Month},
		{Limit: 6, Offset: 2, Period: Week, WeekStart: time.Sunday},
	} {
		ref := refQuota{q}
		for _, now := range []time.Time{at, at.Add(2 * day), at.Add(3 * day), at.Add(20 * day), time.Unix(0, 0)} {
			a := q.At(now)
			for i, c := range counters {
				want := ref.advance(c, now)
				if got := a.Advance(c); got != want {
					t.Errorf("%+v at %v, counter %d: QuotaAt.Advance = %+v, want %+v", q, now, i, got, want)
				}
				if got := q.Advance(c, now); got != want {
					t.Errorf("%+v at %v, counter %d: Advance = %+v, want %+v", q, now, i, got, want)
				}
				if got, want := q.LimitOf(c), ref.limitOf(c); got != want {
					t.Errorf("%+v, counter %d: LimitOf = %d, want %d", q, i, got, want)
				}
				for n := int64(-1); n <= 3; n++ {
					w, wok := ref.allowN(c, now, n)
					if g, gok := a.AllowN(c, n); g != w || gok != wok {
						t.Errorf("%+v at %v, counter %d: QuotaAt.AllowN(%d) = %+v %v, want %+v %v", q, now, i, n, g, gok, w, wok)
					}
					if g, gok := q.AllowN(c, now, n); g != w || gok != wok {
						t.Errorf("%+v at %v, counter %d: AllowN(%d) = %+v %v, want %+v %v", q, now, i, n, g, gok, w, wok)
					}
					for _, win := range []int64{c.Window, want.Window} {
						wg := ref.giveN(c, now, n, win)
						if got := a.GiveN(c, n, win); got != wg {
							t.Errorf("%+v at %v, counter %d: QuotaAt.GiveN(%d, %d) = %+v, want %+v", q, now, i, n, win, got, wg)
						}
						if got := q.GiveN(c, now, n, win); got != wg {
							t.Errorf("%+v at %v, counter %d: GiveN(%d, %d) = %+v, want %+v", q, now, i, n, win, got, wg)
						}
					}
				}
				wr := ref.remaining(c, now)
				if got := a.Remaining(c); got != wr {
					t.Errorf("%+v at %v, counter %d: QuotaAt.Remaining = %d, want %d", q, now, i, got, wr)
				}
				if got := q.Remaining(c, now); got != wr {
					t.Errorf("%+v at %v, counter %d: Remaining = %d, want %d", q, now, i, got, wr)
				}
				we := ref.reset(c, now)
				if got := a.Reset(c); got != we {
					t.Errorf("%+v at %v, counter %d: QuotaAt.Reset = %v, want %v", q, now, i, got, we)
				}
				if got := q.Reset(c, now); got != we {
					t.Errorf("%+v at %v, counter %d: Reset = %v, want %v", q, now, i, got, we)
				}
			}
		}
	}
}

// TestDates: DateOf and DaysOf agree with the time package over four centuries of days,
// leap years included, and refuse dates that do not exist.
func TestDates(t *testing.T) {
	for d := int64(-146097); d <= 146097; d += 13 {
		y, m, day := DateOf(d)
		got := time.Date(int(y), time.Month(m), day, 0, 0, 0, 0, time.UTC)
		if got.Unix() != d*86400 {
			t.Fatalf("DateOf(%d) = %d-%d-%d, which is day %d", d, y, m, day, got.Unix()/86400)
		}
		if back, ok := DaysOf(y, m, day); !ok || back != d {
			t.Fatalf("DaysOf(%d, %d, %d) = %d %t, want %d", y, m, day, back, ok, d)
		}
	}
	for _, bad := range [][3]int{{2026, 2, 29}, {2026, 4, 31}, {2026, 13, 1}, {2026, 0, 1}, {2026, 1, 0}, {1900, 2, 29}} {
		if _, ok := DaysOf(int64(bad[0]), bad[1], bad[2]); ok {
			t.Errorf("DaysOf(%v) accepted", bad)
		}
	}
	if _, ok := DaysOf(2028, 2, 29); !ok {
		t.Error("2028-02-29 refused")
	}
}
