package limit

import (
	"testing"
	"time"
)

func utc(y int, m time.Month, d, h, min, s int) time.Time {
	return time.Date(y, m, d, h, min, s, 0, time.UTC)
}

func TestQuotaWindow(t *testing.T) {
	day := Quota{Period: Day}
	monday := Quota{Period: Week, WeekStart: time.Monday}
	sunday := Quota{Period: Week, WeekStart: time.Sunday}
	month := Quota{Period: Month}
	for _, tt := range []struct {
		name       string
		q          Quota
		at         time.Time
		start, end time.Time
	}{
		{"day, last second", day, utc(2026, 3, 14, 23, 59, 59), utc(2026, 3, 14, 0, 0, 0), utc(2026, 3, 15, 0, 0, 0)},
		{"day, midnight", day, utc(2026, 3, 15, 0, 0, 0), utc(2026, 3, 15, 0, 0, 0), utc(2026, 3, 16, 0, 0, 0)},
		{"day, non-UTC input", day, time.Date(2026, 3, 14, 20, 0, 0, 0, time.FixedZone("EST", -5*3600)), utc(2026, 3, 15, 0, 0, 0), utc(2026, 3, 16, 0, 0, 0)},
		{"day, 31 Dec", day, utc(2026, 12, 31, 12, 0, 0), utc(2026, 12, 31, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0)},
		// 2026-03-15 is a Sunday, 2026-03-16 a Monday.
		{"week, Sunday night", monday, utc(2026, 3, 15, 23, 59, 59), utc(2026, 3, 9, 0, 0, 0), utc(2026, 3, 16, 0, 0, 0)},
		{"week, Monday 00:00", monday, utc(2026, 3, 16, 0, 0, 0), utc(2026, 3, 16, 0, 0, 0), utc(2026, 3, 23, 0, 0, 0)},
		{"week from Sunday, Sunday", sunday, utc(2026, 3, 15, 0, 0, 0), utc(2026, 3, 15, 0, 0, 0), utc(2026, 3, 22, 0, 0, 0)},
		{"week from Sunday, Saturday", sunday, utc(2026, 3, 21, 23, 0, 0), utc(2026, 3, 15, 0, 0, 0), utc(2026, 3, 22, 0, 0, 0)},
		{"week across the year", monday, utc(2027, 1, 1, 9, 0, 0), utc(2026, 12, 28, 0, 0, 0), utc(2027, 1, 4, 0, 0, 0)},
		{"month, 31 Jan", month, utc(2026, 1, 31, 23, 59, 59), utc(2026, 1, 1, 0, 0, 0), utc(2026, 2, 1, 0, 0, 0)},
		{"month, 1 Feb", month, utc(2026, 2, 1, 0, 0, 0), utc(2026, 2, 1, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0)},
		{"month, 28 Feb non-leap", month, utc(2026, 2, 28, 23, 0, 0), utc(2026, 2, 1, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0)},
		{"month, 29 Feb leap", month, utc(2028, 2, 29, 23, 0, 0), utc(2028, 2, 1, 0, 0, 0), utc(2028, 3, 1, 0, 0, 0)},
		{"month, 31 Dec", month, utc(2026, 12, 31, 23, 59, 59), utc(2026, 12, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0)},
		{"month, 1 Jan", month, utc(2027, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0), utc(2027, 2, 1, 0, 0, 0)},
	} {
		start, end := tt.q.Window(tt.at)
		if !start.Equal(tt.start) || !end.Equal(tt.end) {
			t.Errorf("%s: Window(%v) = [%v, %v), want [%v, %v)", tt.name, tt.at, start, end, tt.start, tt.end)
		}
	}
}

type quotaStep struct {
	at        time.Time
	ok        bool
	remaining int64     // after the step
	reset     time.Time // after the step
}

func runQuota(t *testing.T, q Quota, steps []quotaStep) {
	t.Helper()
	var c Counter
	for i, s := range steps {
		var ok bool
		c, ok = q.AllowN(c, s.at, 1)
		if ok != s.ok {
			t.Fatalf("step %d (%v): ok = %v, want %v", i, s.at, ok, s.ok)
		}
		if got := q.Remaining(c, s.at); got != s.remaining {
			t.Fatalf("step %d (%v): remaining = %d, want %d", i, s.at, got, s.remaining)
		}
		if got := q.Reset(c, s.at); !got.Equal(s.reset) {
			t.Fatalf("step %d (%v): reset = %v, want %v", i, s.at, got, s.reset)
		}
	}
}

func TestQuotaDayRollover(t *testing.T) {
	mar15 := utc(2026, 3, 15, 0, 0, 0)
	runQuota(t, Quota{Limit: 2, Period: Day}, []quotaStep{
		{utc(2026, 3, 14, 10, 0, 0), true, 1, mar15},
		{utc(2026, 3, 14, 23, 59, 58), true, 0, mar15},
		{utc(2026, 3, 14, 23, 59, 59), false, 0, mar15},
		{mar15, true, 1, utc(2026, 3, 16, 0, 0, 0)},
	})
}

func TestQuotaWeekRollover(t *testing.T) {
	mon := utc(2026, 3, 16, 0, 0, 0)
	runQuota(t, Quota{Limit: 1, Period: Week, WeekStart: time.Monday}, []quotaStep{
		{utc(2026, 3, 10, 8, 0, 0), true, 0, mon}, // Tuesday
		{utc(2026, 3, 15, 23, 59, 59), false, 0, mon},
		{mon, true, 0, utc(2026, 3, 23, 0, 0, 0)},
		{mon.Add(time.Hour), false, 0, utc(2026, 3, 23, 0, 0, 0)},
	})
}

func TestQuotaMonthRollover(t *testing.T) {
	for _, tt := range []struct {
		name      string
		last, new time.Time // last instant of a month, first of the next
		nextReset time.Time
	}{
		{"31 Jan", utc(2026, 1, 31, 23, 59, 59), utc(2026, 2, 1, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0)},
		{"28 Feb", utc(2026, 2, 28, 23, 59, 59), utc(2026, 3, 1, 0, 0, 0), utc(2026, 4, 1, 0, 0, 0)},
		{"29 Feb leap", utc(2028, 2, 29, 23, 59, 59), utc(2028, 3, 1, 0, 0, 0), utc(2028, 4, 1, 0, 0, 0)},
		{"31 Dec", utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1, 0, 0, 0), utc(2027, 2, 1, 0, 0, 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runQuota(t, Quota{Limit: 1, Period: Month}, []quotaStep{
				{tt.last.Add(-time.Hour), true, 0, tt.new},
				{tt.last, false, 0, tt.new},
				{tt.new, true, 0, tt.nextReset},
				{tt.new.Add(time.Second), false, 0, tt.nextReset},
			})
		})
	}
	// 28 Feb is not the end of February in a leap year.
	runQuota(t, Quota{Limit: 1, Period: Month}, []quotaStep{
		{utc(2028, 2, 28, 23, 59, 59), true, 0, utc(2028, 3, 1, 0, 0, 0)},
		{utc(2028, 2, 29, 0, 0, 0), false, 0, utc(2028, 3, 1, 0, 0, 0)},
	})
}

func TestQuotaOffset(t *testing.T) {
	// Limit 3, offset 2: the initial period (the one of the first request) allows 1.
	q := Quota{Limit: 3, Offset: 2, Period: Day}
	d2, d3 := utc(2026, 3, 15, 0, 0, 0), utc(2026, 3, 16, 0, 0, 0)
	runQuota(t, q, []quotaStep{
		{utc(2026, 3, 14, 18, 0, 0), true, 0, d2},
		{utc(2026, 3, 14, 19, 0, 0), false, 0, d2},
		{d2, true, 2, d3},
		{d2.Add(time.Minute), true, 1, d3},
		{d2.Add(time.Hour), true, 0, d3},
		{d2.Add(2 * time.Hour), false, 0, d3},
	})
	// An offset at or above the limit blocks the whole initial period.
	runQuota(t, Quota{Limit: 3, Offset: 5, Period: Day}, []quotaStep{
		{utc(2026, 3, 14, 18, 0, 0), false, 0, d2},
		{d2, true, 2, d3},
	})
}

func TestQuotaClockBackwards(t *testing.T) {
	// Going back over midnight keeps counting in the newer window: no second allowance.
	d2 := utc(2026, 3, 15, 0, 0, 0)
	d3 := utc(2026, 3, 16, 0, 0, 0)
	runQuota(t, Quota{Limit: 2, Period: Day}, []quotaStep{
		{d2.Add(time.Second), true, 1, d3},
		{d2.Add(-time.Second), true, 0, d3},
		{d2.Add(-time.Hour), false, 0, d3},
		{d3, true, 1, utc(2026, 3, 17, 0, 0, 0)},
	})
}

func TestQuotaGive(t *testing.T) {
	q := Quota{Limit: 2, Period: Day}
	at := utc(2026, 3, 14, 10, 0, 0)
	c, _ := q.AllowN(Counter{}, at, 1)
	c, _ = q.AllowN(c, at, 1)
	w := c.Window
	c = q.GiveN(c, at, 1, w)
	if c.Used != 1 {
		t.Fatalf("used after give = %d, want 1", c.Used)
	}
	// Giving back into a window that has ended does nothing to the new one.
	c, _ = q.AllowN(c, at.Add(24*time.Hour), 1)
	c = q.GiveN(c, at.Add(24*time.Hour), 1, w)
	if c.Used != 1 {
		t.Fatalf("used after a give for an old window = %d, want 1", c.Used)
	}
}

func TestQuotaZeroLimit(t *testing.T) {
	runQuota(t, Quota{Limit: 0, Period: Month}, []quotaStep{
		{utc(2026, 3, 14, 10, 0, 0), false, 0, utc(2026, 4, 1, 0, 0, 0)},
	})
}
