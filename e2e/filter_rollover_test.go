package e2e

import (
	"testing"
	"time"
)

// Quota periods are UTC calendar periods, read from the host's wall clock (WASI
// clock_time_get): each case starts a second or two before a boundary, spends the quota,
// checks the 429's Retry-After counts down to the boundary, and crosses it.
func TestFilterQuotaRollover(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start time.Time
		key   string
		limit int
	}{
		{"end of day", time.Date(2026, 3, 10, 23, 59, 58, 0, time.UTC), fltDaily, 3},
		{"Sunday to Monday", time.Date(2026, 3, 15, 23, 59, 58, 0, time.UTC), fltWeekly, 2},
		{"31 Jan to 1 Feb", time.Date(2026, 1, 31, 23, 59, 58, 0, time.UTC), fltMonthly, 2},
		{"31 Dec to 1 Jan, month", time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC), fltMonthly, 2},
		{"31 Dec to 1 Jan, day", time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC), fltDaily, 3},
		{"28 Feb to 1 Mar", time.Date(2026, 2, 28, 23, 59, 58, 0, time.UTC), fltMonthly, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startFilter(t, fltSetup{start: tt.start})
			ok := make([]int, tt.limit)
			for i := range ok {
				ok[i] = 200
			}
			e.wantStatuses(t, tt.key, ok...)
			wantReply(t, e.get("/pets", apiKey(tt.key)), 429, fltQuota("2"), fltQuotaBody)
			e.clock.Advance(time.Second)
			wantReply(t, e.get("/pets", apiKey(tt.key)), 429, fltQuota("1"), fltQuotaBody)
			e.clock.Advance(time.Second - time.Nanosecond)
			wantReply(t, e.get("/pets", apiKey(tt.key)), 429, fltQuota("1"), fltQuotaBody)
			e.clock.Advance(time.Nanosecond) // the boundary itself belongs to the new period
			e.wantStatuses(t, tt.key, append(ok, 429)...)
		})
	}
}

// A week is not a calendar week for any other weekday: Saturday to Sunday is inside the
// week, and so is the 1st of a month that starts mid-week.
func TestFilterQuotaNoRollover(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start time.Time
		key   string
	}{
		{"Saturday to Sunday, week", time.Date(2026, 3, 14, 23, 59, 59, 0, time.UTC), fltWeekly},
		{"31 Mar to 1 Apr, week (a Tuesday to a Wednesday)", time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC), fltWeekly},
		{"midday, month", time.Date(2026, 3, 10, 11, 59, 59, 0, time.UTC), fltMonthly},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startFilter(t, fltSetup{start: tt.start})
			e.wantStatuses(t, tt.key, 200, 200, 429)
			e.clock.Advance(time.Second)
			e.wantStatuses(t, tt.key, 429)
		})
	}
}
