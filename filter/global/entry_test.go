package global

import (
	"errors"
	"testing"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		{Remaining: -1},
		{Period: 1773100800, Engine: 1766016000, Admitted: 12, Pending: 3, Outage: 2, Remaining: 0, Lease: 7, FlightUntil: 1773100800123, FlightPending: 4, Failing: 1, Over: 11},
	} {
		b := AppendEncode(nil, &e)
		var got Entry
		if err := Decode(b, &got); err != nil || got != e {
			t.Errorf("round trip %+v: %+v, %v", e, got, err)
		}
	}
	if got := AppendEncode(nil, &Entry{Remaining: -1}); string(got) != "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("encoding %x", got)
	}
}

func TestEntryDecodeErrors(t *testing.T) {
	full := AppendEncode(nil, &Entry{Period: 5})
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrEntryCorrupt},
		{"version 2", []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrEntryVersion},
		{"truncated", full[:5], ErrEntryCorrupt},
		{"trailing", append(append([]byte(nil), full...), 0), ErrEntryCorrupt},
		{"count out of range", append([]byte{1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), ErrEntryCorrupt},
	} {
		var e Entry
		if err := Decode(tc.b, &e); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(AppendEncode(nil, &Entry{Period: 1773100800, Lease: 3, Remaining: -1}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if err := Decode(b, &e); err != nil {
			if !errors.Is(err, ErrEntryCorrupt) && !errors.Is(err, ErrEntryVersion) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if e.Remaining < -1 || e.Period < 0 || e.Admitted < 0 || e.Pending < 0 || e.Lease < 0 {
			t.Fatalf("negative count in %+v", e)
		}
		var again Entry
		if err := Decode(AppendEncode(nil, &e), &again); err != nil || again != e {
			t.Fatalf("round trip %+v: %+v %v", e, again, err)
		}
	})
}
