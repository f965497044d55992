package global

import (
	"errors"
	"testing"

	"github.com/usageplans/usageplans/filter/rls"
)

func TestGrantEntryRoundTrip(t *testing.T) {
	for _, e := range []GrantEntry{{}, {Period: 1773100800, Gen: 3, Limit: 4294967294, Checked: 1773100800123}} {
		b := AppendGrantEntry(nil, &e)
		var got GrantEntry
		if err := DecodeGrantEntry(b, &got); err != nil || got != e {
			t.Errorf("round trip %+v: %+v, %v", e, got, err)
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrEntryCorrupt},
		{"version 2", []byte{2, 0, 0, 0, 0}, ErrEntryVersion},
		{"truncated", []byte{1, 0, 0}, ErrEntryCorrupt},
		{"trailing", []byte{1, 0, 0, 0, 0, 0}, ErrEntryCorrupt},
		{"limit over uint32", []byte{1, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0}, ErrEntryCorrupt},
	} {
		var e GrantEntry
		if err := DecodeGrantEntry(tc.b, &e); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// The grant in force is the highest generation with a value, at most the counter's; a
// generation taken and not written (value 0) hides nothing.
func TestLatestGrant(t *testing.T) {
	st := func(count uint32) rls.Status { return rls.Status{Code: rls.CodeOK, Remaining: UsageLimit - count} }
	for _, tc := range []struct {
		counter  uint32
		values   []uint32
		gens     []int64
		gen, lim int64
		ok       bool
	}{
		{0, []uint32{0, 0}, []int64{1, 2}, 0, 0, false},
		{1, []uint32{9, 0}, []int64{1, 2}, 1, 8, true},
		{2, []uint32{9, 0}, []int64{1, 2}, 1, 8, true},   // 2 taken, not written
		{2, []uint32{9, 13}, []int64{1, 2}, 2, 12, true}, // the higher wins, written second or first
		{2, []uint32{1, 0}, []int64{1, 2}, 1, 0, true},   // a limit of 0
		{5, []uint32{0, 0, 7}, []int64{3, 4, 5}, 5, 6, true},
	} {
		sts := []rls.Status{st(tc.counter)}
		for _, v := range tc.values {
			sts = append(sts, st(v))
		}
		latest, gen, lim, ok := LatestGrant(sts, tc.gens)
		if latest != int64(tc.counter) || gen != tc.gen || lim != tc.lim || ok != tc.ok {
			t.Errorf("%+v: %d %d %d %t", tc, latest, gen, lim, ok)
		}
	}
}
