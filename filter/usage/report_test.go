package usage_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/state"
	"github.com/usageplans/usageplans/filter/usage"
)

// failingReads is a usage store whose reads of the keys in bad fail.
type failingReads struct {
	usage.Local
	bad map[string]bool
}

func (f failingReads) Read(cfg *config.Config, plan *config.Plan, key *config.Key, v *usage.View) error {
	if f.bad[key.ID] {
		return errors.New("usage: decode at byte 0: unknown encoding version 9")
	}
	return f.Local.Read(cfg, plan, key, v)
}

// TestReportSkipsUnreadable: an entry the report cannot read costs its own line only: the
// keys after it are still reported, and the error names the plan and key ids (never values).
func TestReportSkipsUnreadable(t *testing.T) {
	cfg := plans(t)
	s := &state.MemStore{}
	for _, k := range []string{k1, k2, k3, k4} {
		if n := traffic(t, cfg, s, k, day1, 2); n != 2 {
			t.Fatalf("%d admitted, want 2", n)
		}
	}
	for _, tt := range []struct {
		bad  []string
		err  string
		want []string
	}{
		{[]string{"k1"}, "plan daily key k1: usage: decode at byte 0: unknown encoding version 9", []string{
			"usageplans: usage on 2026-03-10 (UTC): plan=monthly key=k2 used=2 remaining=88",
			"usageplans: usage on 2026-03-10 (UTC): plan=monthly key=k3 used=2 remaining=88",
			"usageplans: usage on 2026-03-10 (UTC): plan=open key=k4 used=2 remaining=-1",
		}},
		{[]string{"k1", "k3"}, "2 usage entries not read, the first: plan daily key k1: usage: decode at byte 0: unknown encoding version 9", []string{
			"usageplans: usage on 2026-03-10 (UTC): plan=monthly key=k2 used=2 remaining=88",
			"usageplans: usage on 2026-03-10 (UTC): plan=open key=k4 used=2 remaining=-1",
		}},
	} {
		bad := map[string]bool{}
		for _, id := range tt.bad {
			bad[id] = true
		}
		var lines []string
		err := usage.Report(cfg, failingReads{usage.Local{Store: s}, bad}, day1, func(l string) { lines = append(lines, l) })
		if err == nil || err.Error() != tt.err {
			t.Errorf("bad %v: error %v, want %q", tt.bad, err, tt.err)
		}
		if !slices.Equal(lines, tt.want) {
			t.Errorf("bad %v: lines %q, want %q", tt.bad, lines, tt.want)
		}
	}
}
