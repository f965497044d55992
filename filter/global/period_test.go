package global

import (
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/rls"
)

func at(y int, m time.Month, d, h, min, s int) int64 {
	return time.Date(y, m, d, h, min, s, 0, time.UTC).Unix()
}

var (
	dayQ      = &limit.Quota{Limit: 10, Period: limit.Day}
	weekQ     = &limit.Quota{Limit: 10, Period: limit.Week, WeekStart: time.Monday}
	thuWeekQ  = &limit.Quota{Limit: 10, Period: limit.Week, WeekStart: time.Thursday}
	sunWeekQ  = &limit.Quota{Limit: 10, Period: limit.Week, WeekStart: time.Sunday}
	monthQ    = &limit.Quota{Limit: 10, Period: limit.Month}
	yearStart = at(2025, 12, 18, 0, 0, 0) // day 20440 = 56 × 365: an RLS YEAR window starts
)

// Every boundary, with fixed instants: the calendar period, the RLS unit and window, and the
// descriptor's period id, on both sides of each period start and end and of RLS YEAR, MONTH
// and WEEK window starts that fall inside a period.
func TestWindowAt(t *testing.T) {
	for _, tc := range []struct {
		name       string
		q          *limit.Quota
		now        int64
		start, end int64
		unit       rls.Unit
		engine     int64
		id         string
		splits     bool
	}{
		{"day, first second", dayQ, at(2026, 3, 10, 0, 0, 0), at(2026, 3, 10, 0, 0, 0), at(2026, 3, 11, 0, 0, 0), rls.Day, at(2026, 3, 10, 0, 0, 0), "d20260310", false},
		{"day, last second", dayQ, at(2026, 3, 10, 23, 59, 59), at(2026, 3, 10, 0, 0, 0), at(2026, 3, 11, 0, 0, 0), rls.Day, at(2026, 3, 10, 0, 0, 0), "d20260310", false},
		{"day, next", dayQ, at(2026, 3, 11, 0, 0, 0), at(2026, 3, 11, 0, 0, 0), at(2026, 3, 12, 0, 0, 0), rls.Day, at(2026, 3, 11, 0, 0, 0), "d20260311", false},
		{"day, leap day", dayQ, at(2028, 2, 29, 12, 0, 0), at(2028, 2, 29, 0, 0, 0), at(2028, 3, 1, 0, 0, 0), rls.Day, at(2028, 2, 29, 0, 0, 0), "d20280229", false},

		{"Monday week, last second of Sunday", weekQ, at(2026, 3, 8, 23, 59, 59), at(2026, 3, 2, 0, 0, 0), at(2026, 3, 9, 0, 0, 0), rls.Year, at(2025, 12, 18, 0, 0, 0), "w20260302", false},
		{"Monday week, Monday", weekQ, at(2026, 3, 9, 0, 0, 0), at(2026, 3, 9, 0, 0, 0), at(2026, 3, 16, 0, 0, 0), rls.Year, at(2025, 12, 18, 0, 0, 0), "w20260309", false},
		{"Monday week, across an RLS WEEK start (Thursday) stays one count", weekQ, at(2026, 3, 12, 0, 0, 0), at(2026, 3, 9, 0, 0, 0), at(2026, 3, 16, 0, 0, 0), rls.Year, at(2025, 12, 18, 0, 0, 0), "w20260309", false},
		{"Monday week holding an RLS YEAR start, before it", weekQ, yearStart - 1, at(2025, 12, 15, 0, 0, 0), at(2025, 12, 22, 0, 0, 0), rls.Year, yearStart - 365*86400, "w20251215", true},
		{"Monday week holding an RLS YEAR start, at it", weekQ, yearStart, at(2025, 12, 15, 0, 0, 0), at(2025, 12, 22, 0, 0, 0), rls.Year, yearStart, "w20251215", true},
		{"Sunday week across the year", sunWeekQ, at(2027, 1, 1, 0, 0, 0), at(2026, 12, 27, 0, 0, 0), at(2027, 1, 3, 0, 0, 0), rls.Year, yearStart + 365*86400, "w20261227", false},
		{"Thursday week is an RLS WEEK", thuWeekQ, at(2026, 12, 9, 23, 59, 59), at(2026, 12, 3, 0, 0, 0), at(2026, 12, 10, 0, 0, 0), rls.Week, at(2026, 12, 3, 0, 0, 0), "w20261203", false},
		{"Thursday week, next", thuWeekQ, at(2026, 12, 10, 0, 0, 0), at(2026, 12, 10, 0, 0, 0), at(2026, 12, 17, 0, 0, 0), rls.Week, at(2026, 12, 10, 0, 0, 0), "w20261210", false},

		{"month, first second", monthQ, at(2026, 2, 1, 0, 0, 0), at(2026, 2, 1, 0, 0, 0), at(2026, 3, 1, 0, 0, 0), rls.Year, yearStart, "m202602", false},
		{"month, last second of February", monthQ, at(2026, 2, 28, 23, 59, 59), at(2026, 2, 1, 0, 0, 0), at(2026, 3, 1, 0, 0, 0), rls.Year, yearStart, "m202602", false},
		{"month across an RLS MONTH (30-day) start stays one count", monthQ, at(2026, 3, 20, 0, 0, 0), at(2026, 3, 1, 0, 0, 0), at(2026, 4, 1, 0, 0, 0), rls.Year, yearStart, "m202603", false},
		{"December 2025 holds an RLS YEAR start, before it", monthQ, yearStart - 1, at(2025, 12, 1, 0, 0, 0), at(2026, 1, 1, 0, 0, 0), rls.Year, yearStart - 365*86400, "m202512", true},
		{"December 2025, at the RLS YEAR start", monthQ, yearStart, at(2025, 12, 1, 0, 0, 0), at(2026, 1, 1, 0, 0, 0), rls.Year, yearStart, "m202512", true},
		{"December 2025, last second", monthQ, at(2025, 12, 31, 23, 59, 59), at(2025, 12, 1, 0, 0, 0), at(2026, 1, 1, 0, 0, 0), rls.Year, yearStart, "m202512", true},
		{"January 2026", monthQ, at(2026, 1, 1, 0, 0, 0), at(2026, 1, 1, 0, 0, 0), at(2026, 2, 1, 0, 0, 0), rls.Year, yearStart, "m202601", false},
	} {
		w := WindowAt(tc.q, tc.now)
		want := Window{Start: tc.start, End: tc.end, Unit: tc.unit, Engine: tc.engine}
		if w != want {
			t.Errorf("%s: window %+v, want %+v", tc.name, w, want)
		}
		if id := PeriodID(tc.q, w); id != tc.id {
			t.Errorf("%s: period id %q, want %q", tc.name, id, tc.id)
		}
		if w.Splits() != tc.splits {
			t.Errorf("%s: Splits() = %v, want %v", tc.name, w.Splits(), tc.splits)
		}
	}
}

// The RLS YEAR windows that fall inside calendar months, 2025 to 2030: the months whose
// counts are carried over once (December, and a November once the leap days add up).
func TestYearBoundaries(t *testing.T) {
	got := YearBoundaries(at(2025, 1, 1, 0, 0, 0), at(2031, 1, 1, 0, 0, 0))
	want := []int64{at(2025, 12, 18, 0, 0, 0), at(2026, 12, 18, 0, 0, 0), at(2027, 12, 18, 0, 0, 0),
		at(2028, 12, 17, 0, 0, 0), at(2029, 12, 17, 0, 0, 0), at(2030, 12, 17, 0, 0, 0)}
	if len(got) != len(want) {
		t.Fatalf("boundaries %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("boundary %d: %v, want %v", i, time.Unix(got[i], 0).UTC(), time.Unix(want[i], 0).UTC())
		}
	}
}

func TestValue(t *testing.T) {
	for in, want := range map[string]string{"gold": "gold", "gold_plan": "gold~plan", "a_b_c": "a~b~c", "k-1.x": "k-1.x"} {
		if got := Value(in); got != want {
			t.Errorf("Value(%q) = %q, want %q", in, got, want)
		}
	}
}

// civilDate agrees with package time on every day from 1900 to 2300.
func TestCivilDate(t *testing.T) {
	for d := int64(-25567); d < 120000; d++ {
		y, m, dd := civilDate(d)
		ty, tm, td := time.Unix(d*86400, 0).UTC().Date()
		if y != int64(ty) || m != int(tm) || dd != td {
			t.Fatalf("day %d: %d-%d-%d, want %v", d, y, m, dd, time.Unix(d*86400, 0).UTC())
		}
	}
}
