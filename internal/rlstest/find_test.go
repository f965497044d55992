package rlstest

import (
	"fmt"
	"strings"
	"testing"
)

// recordTB records what find reports instead of ending the test.
type recordTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordTB) Helper()                      {}
func (r *recordTB) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }
func (r *recordTB) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...) }

// A binary that is not there skips the test with the way to get it, or fails it in CI.
func TestMissingBinary(t *testing.T) {
	for _, c := range []struct {
		ci, require string
		fails       bool
	}{{"", "", false}, {"true", "", true}, {"", "1", true}} {
		t.Setenv("CI", c.ci)
		t.Setenv("USAGEPLANS_REQUIRE_RLS", c.require)
		t.Setenv("USAGEPLANS_RLS", "/nonexistent/service_cmd")
		r := &recordTB{TB: t}
		find(r, "USAGEPLANS_RLS", "service_cmd")
		msg := r.skip
		if c.fails {
			msg = r.fatal
		}
		if (r.fatal != "") != c.fails || (r.skip != "") == c.fails ||
			!strings.Contains(msg, "USAGEPLANS_RLS=/nonexistent/service_cmd") || !strings.Contains(msg, "make deps") {
			t.Errorf("CI=%q REQUIRE=%q: fatal %q, skip %q; want %s naming the path and make deps", c.ci, c.require, r.fatal, r.skip,
				map[bool]string{true: "a failure", false: "a skip"}[c.fails])
		}
	}
}
