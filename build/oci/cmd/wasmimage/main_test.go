package main

import (
	"testing"
	"time"

	"github.com/usageplans/usageplans/build/oci"
)

func TestSourceDateEpoch(t *testing.T) {
	for _, c := range []struct {
		env  string
		want time.Time
		err  string
	}{
		{"", oci.Epoch, ""},
		{"0", oci.Epoch, ""},
		{"1764028800", time.Date(2025, 11, 25, 0, 0, 0, 0, time.UTC), ""},
		{"-1", time.Time{}, `SOURCE_DATE_EPOCH="-1": want a non-negative number of seconds`},
		{"2025-11-25", time.Time{}, `SOURCE_DATE_EPOCH="2025-11-25": want a non-negative number of seconds`},
	} {
		t.Setenv("SOURCE_DATE_EPOCH", c.env)
		got, err := sourceDateEpoch()
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("SOURCE_DATE_EPOCH=%q: error %v, want %q", c.env, err, c.err)
			}
			continue
		}
		if err != nil || !got.Equal(c.want) {
			t.Errorf("SOURCE_DATE_EPOCH=%q: %v, %v; want %v", c.env, got, err, c.want)
		}
	}
}
