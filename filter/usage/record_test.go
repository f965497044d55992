package usage

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func sample() *Record {
	r := &Record{Day: 20526, N: 3}
	r.Days[0] = DayUsage{Used: 3}
	r.Days[1] = DayUsage{Used: 200, HasGrant: true, Grant: -2}
	r.Days[2] = DayUsage{}
	return r
}

// TestEncodeExactBytes: the version-1 encoding, byte for byte; a change needs a new Version.
func TestEncodeExactBytes(t *testing.T) {
	want, _ := hex.DecodeString("01" + "2e50000000000000" + "03" + "06" + "9103" + "03" + "00")
	if got := AppendEncode(nil, sample()); !bytes.Equal(got, want) {
		t.Fatalf("encoding:\n got %x\nwant %x", got, want)
	}
	var back Record
	if err := Decode(want, &back); err != nil || back.Day != 20526 || back.N != 3 || back.Days[1] != sample().Days[1] {
		t.Fatalf("decode: %v, %+v", err, back.Days[:3])
	}
}

func TestDecodeErrors(t *testing.T) {
	good := AppendEncode(nil, sample())
	with := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	for _, tt := range []struct {
		name string
		in   []byte
		is   error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "usage: decode at byte 0: truncated: empty value"},
		{"newer version", with(0, 2), ErrVersion, "usage: decode at byte 0: unknown encoding version 2 (this filter reads 1)"},
		{"cut in the day", good[:5], ErrTruncated, "usage: decode at byte 1: truncated: need 8 bytes, have 4"},
		{"no day count", good[:9], ErrTruncated, "usage: decode at byte 9: truncated: varint cut short"},
		{"too many days", with(9, 121), ErrCorrupt, "usage: decode at byte 9: corrupt: 121 days, more than 120"},
		{"cut in a grant", good[:13], ErrTruncated, "usage: decode at byte 13: truncated: varint cut short"},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt, "usage: decode at byte 15: corrupt: bytes after the last day"},
		{"varint not minimal", append(bytes.Clone(good[:10]), 0x80, 0x00), ErrCorrupt, "usage: decode at byte 10: corrupt: varint not in its shortest form"},
		{"count too big", append(append(bytes.Clone(good[:9]), 1), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02), ErrCorrupt, "usage: decode at byte 10: corrupt: count over 2^53"},
	} {
		var r Record
		err := Decode(tt.in, &r)
		if !errors.Is(err, tt.is) || err.Error() != tt.msg {
			t.Errorf("%s: Decode = %v, want %q", tt.name, err, tt.msg)
		}
	}
}

// FuzzDecode: any input either decodes to a record that re-encodes to the same bytes, or is
// an error wrapping one of the three causes; never a panic.
func FuzzDecode(f *testing.F) {
	f.Add(AppendEncode(nil, sample()))
	f.Add(AppendEncode(nil, &Record{}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0x78})
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Record
		err := Decode(in, &r)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode(%x) = %v: not a documented cause", in, err)
			}
			return
		}
		if out := AppendEncode(nil, &r); !bytes.Equal(out, in) {
			t.Fatalf("decode then encode changed the bytes:\n in %x\nout %x", in, out)
		}
	})
}

// TestRecordKeepsStoredDays: counting day after day keeps the newest StoredDays and no more;
// a jump past them starts over; a day older than the record is not counted.
func TestRecordKeepsStoredDays(t *testing.T) {
	var r Record
	for d := int64(1000); d < 1000+StoredDays+10; d++ {
		if !r.Count(d, d-999) {
			t.Fatalf("day %d not counted", d)
		}
	}
	last := int64(1000 + StoredDays + 9)
	if r.N != StoredDays || r.Day != last || r.At(last).Used != last-999 || r.At(last-StoredDays+1).Used != last-StoredDays+1-999 || r.At(last-StoredDays).Used != 0 {
		t.Fatalf("N %d day %d, newest %d, oldest kept %d, dropped %d", r.N, r.Day, r.At(last).Used, r.At(last-StoredDays+1).Used, r.At(last-StoredDays).Used)
	}
	if r.Count(last-StoredDays, 1) {
		t.Fatal("a day older than the kept ones was counted")
	}
	r.Count(last+StoredDays, 7)
	if r.N != 1 || r.At(last+StoredDays).Used != 7 || r.UsedFrom(0, last+StoredDays) != 7 {
		t.Fatalf("after a jump: N %d, used %d", r.N, r.UsedFrom(0, last+StoredDays))
	}
	r.SetGrant(last+StoredDays+2, 40)
	r.Count(last+StoredDays+3, 1)
	if g := r.GrantAt(last+StoredDays, last+StoredDays+3); g != 40 {
		t.Fatalf("grant %d, want 40", g)
	}
	if g := r.GrantAt(last+StoredDays, last+StoredDays+1); g != 0 {
		t.Fatalf("grant before the day it was set: %d, want 0", g)
	}
	if g := r.GrantAt(last+StoredDays+3, last+StoredDays+3); g != 0 {
		t.Fatalf("grant of an earlier period: %d, want 0", g)
	}
}
