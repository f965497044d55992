package usage

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// BenchmarkRecordCodec decodes a key's usage entry, counts one request and encodes it, as
// recording an admitted request does: for a record of one day (a key's first day) and of
// StoredDays days (every key after four months), busy (every day counted) and quiet (one
// busy day among days without requests, one byte each), reusing the buffer.
func BenchmarkRecordCodec(b *testing.B) {
	const today = 20000
	full := func(used func(i int) int64) *Record {
		r := &Record{Day: today, N: StoredDays}
		for i := range r.N {
			r.Days[i].Used = used(i)
		}
		r.Days[40].HasGrant, r.Days[40].Grant = true, -250
		return r
	}
	for _, bc := range []struct {
		name string
		r    *Record
	}{
		{"days=1", &Record{Day: today, N: 1, Days: [StoredDays]DayUsage{{Used: 1234}}}},
		{"days=120/busy", full(func(i int) int64 { return int64(1000 + 37*i) })},
		{"days=120/quiet", full(func(i int) int64 {
			if i == 0 {
				return 5000
			}
			return 0
		})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := AppendEncode(nil, bc.r)
			var r Record
			b.ReportAllocs()
			for b.Loop() {
				if err := Decode(buf, &r); err != nil {
					b.Fatal(err)
				}
				r.Count(today, 1)
				buf = AppendEncode(buf[:0], &r)
			}
		})
	}
}

// TestCodecEveryVarintLength: the encoding of days whose varints take one to nine bytes
// (counts and grants at each length boundary, negative grants among them) is byte for byte
// the layout's, written with encoding/binary's varints, and decodes back to the record; the
// days' one- and two-byte varints are written and read without a call, the rest by
// encoding/binary's rules.
func TestCodecEveryVarintLength(t *testing.T) {
	var values []int64
	for bits := 0; bits <= 53; bits++ {
		values = append(values, max(0, int64(1)<<bits-1), int64(1)<<bits)
	}
	values = append(values, maxCount)
	r := &Record{Day: -3, N: StoredDays}
	for i := range r.N {
		v := values[i%len(values)]
		r.Days[i].Used = v
		if i%3 == 1 {
			r.Days[i].HasGrant, r.Days[i].Grant = true, v
			if i%2 == 0 {
				r.Days[i].Grant = -v
			}
		}
	}
	want := []byte{Version}
	want = binary.LittleEndian.AppendUint64(want, uint64(r.Day))
	want = binary.AppendUvarint(want, uint64(r.N))
	for _, d := range r.Days[:r.N] {
		v := uint64(d.Used) << 1
		if d.HasGrant {
			v |= 1
		}
		want = binary.AppendUvarint(want, v)
		if d.HasGrant {
			want = binary.AppendVarint(want, d.Grant)
		}
	}
	got := AppendEncode([]byte("prefix"), r)
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("encoding:\n got %x\nwant prefix+%x", got, want)
	}
	var back Record
	if err := Decode(want, &back); err != nil {
		t.Fatal(err)
	}
	if back != *r {
		t.Fatal("decoding changed the record")
	}
	// A two-byte varint not in its shortest form (a 0 second byte) is still refused.
	bad := append(binary.LittleEndian.AppendUint64([]byte{Version}, 7), 1, 0x80, 0x00)
	if err := Decode(bad, &back); err == nil || err.Error() != "usage: decode at byte 10: corrupt: varint not in its shortest form" {
		t.Fatalf("Decode(%x) = %v", bad, err)
	}
}
