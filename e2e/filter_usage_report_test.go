package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUsageReport: with usageLogSeconds, one worker's VM logs, once per interval, one line
// per key that made requests today with its used and remaining: ids and counts, no values.
func TestUsageReport(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"usageLogSeconds": 60`), workers: 3})
	for _, v := range e.plugin.VMs() {
		if v.TickPeriod() != time.Minute {
			t.Fatalf("tick period %v, want a minute", v.TickPeriod())
		}
	}
	e.wantStatuses(t, fltDaily, 200, 200, 200, 429)
	e.wantStatuses(t, fltGold, 200)
	report := func() []string {
		t.Helper()
		if err := e.plugin.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range e.plugin.Logs() {
			if strings.HasPrefix(l.Message, "usageplans: usage on ") {
				lines = append(lines, l.Message)
			}
		}
		return lines
	}
	want := []string{
		"usageplans: usage on 2026-03-10 (UTC): plan=gold key=gold-key used=1 remaining=-1",
		"usageplans: usage on 2026-03-10 (UTC): plan=daily key=daily-key used=3 remaining=0",
	}
	if got := report(); !slices.Equal(got, want) {
		t.Fatalf("report:\n%s\nwant (one worker of three, once):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := report(); len(got) != 2 {
		t.Fatalf("the same interval reported again: %d lines", len(got))
	}
	e.clock.Advance(time.Minute)
	if got := report(); len(got) != 4 {
		t.Fatalf("the next interval: %d lines in all, want 4", len(got))
	}
}
