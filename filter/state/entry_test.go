package state

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/filter/limit"
)

var sample = Entry{
	Quota: limit.Counter{Window: 1773446400, Used: 42, Created: 1773000000},
	Buckets: []Slot{
		{Name: "plan:pro", Bucket: limit.Bucket{Tokens: 3, Frac: 5e14, Last: 1773500000123456789}},
		{Name: "plan:pro:petstore/prod:/pets/GET", Bucket: limit.Bucket{Tokens: 0, Frac: 1, Last: -1}},
	},
}

// sampleBytes is the version-1 encoding of sample, byte for byte: a change to it breaks
// every entry already in shared data, so it needs a new Version instead.
func sampleBytes(t *testing.T) []byte {
	t.Helper()
	want, err := hex.DecodeString("01" +
		"00a5b46900000000" + "2a00000000000000" + "40d5ad6900000000" + // quota
		"02" + // two buckets
		"08" + hex.EncodeToString([]byte("plan:pro")) +
		"0300000000000000" + "00406352bfc60100" + "158d838cdabc9c18" +
		"20" + hex.EncodeToString([]byte("plan:pro:petstore/prod:/pets/GET")) +
		"0000000000000000" + "0100000000000000" + "ffffffffffffffff")
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func TestEncodeExactBytes(t *testing.T) {
	got := AppendEncode(nil, &sample)
	if want := sampleBytes(t); !bytes.Equal(got, want) {
		t.Fatalf("encoding:\n got %x\nwant %x", got, want)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for _, e := range []Entry{{}, sample, {Buckets: []Slot{{Name: "account"}}}} {
		var got Entry
		if err := Decode(AppendEncode(nil, &e), &got); err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if len(e.Buckets) == 0 {
			e.Buckets = got.Buckets[:0:0]
			got.Buckets = got.Buckets[:0:0]
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := sampleBytes(t)
	withByte := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	for _, tt := range []struct {
		name string
		in   []byte
		is   error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "state: decode at byte 0: truncated: empty value"},
		{"newer version", withByte(0, 2), ErrVersion, "state: decode at byte 0: unknown encoding version 2 (this filter reads 1)"},
		{"version 0", withByte(0, 0), ErrVersion, "state: decode at byte 0: unknown encoding version 0 (this filter reads 1)"},
		{"cut in the quota", good[:10], ErrTruncated, "state: decode at byte 9: truncated: need 8 bytes, have 1"},
		{"no bucket count", good[:25], ErrTruncated, "state: decode at byte 25: truncated: varint cut short"},
		{"too few bytes for the buckets", good[:40], ErrTruncated, "state: decode at byte 26: truncated: 2 buckets cannot fit in 14 bytes"},
		{"cut in the last field", good[:len(good)-3], ErrTruncated, "state: decode at byte 108: truncated: need 8 bytes, have 5"},
		{"cut in a name", append(good[:25:25], 0x01, 0x20, 'p', 'l', 'a', 'n', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), ErrTruncated, "state: decode at byte 27: truncated: name of 32 bytes, have 25"},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt, "state: decode at byte 116: corrupt: bytes after the last field"},
		{"negative used", withByte(16, 0xff), ErrCorrupt, "state: decode at byte 9: corrupt: negative count"},
		{"fraction out of range", withByte(50, 0xff), ErrCorrupt, "state: decode at byte 43: corrupt: bucket fraction of a token out of range"},
		{"name too long", append(append(good[:25:25], 0x01, 0x81, 0x08), make([]byte, 30)...), ErrCorrupt, "state: decode at byte 26: corrupt: bucket name longer than 1024 bytes"},
		{"varint not minimal", append(good[:25:25], 0x80, 0x00), ErrCorrupt, "state: decode at byte 25: corrupt: varint not in its shortest form"},
		{"varint overflow", append(good[:25:25], bytes.Repeat([]byte{0xff}, 11)...), ErrCorrupt, "state: decode at byte 25: corrupt: varint overflows 64 bits"},
	} {
		var e Entry
		err := Decode(tt.in, &e)
		if !errors.Is(err, tt.is) || err.Error() != tt.msg {
			t.Errorf("%s: Decode = %v, want %q (is %v)", tt.name, err, tt.msg, tt.is)
		}
	}
}

func TestDecodeDuplicateBucket(t *testing.T) {
	e := Entry{Buckets: []Slot{{Name: "account"}, {Name: "account"}}}
	err := Decode(AppendEncode(nil, &e), new(Entry))
	want := `state: decode at byte 58: corrupt: bucket "account" twice`
	if !errors.Is(err, ErrCorrupt) || err.Error() != want {
		t.Fatalf("Decode = %v, want %q", err, want)
	}
}

func TestEntryBuckets(t *testing.T) {
	var e Entry
	if got := e.Bucket("plan:free"); got != (limit.Bucket{}) {
		t.Fatalf("missing bucket = %+v, want the zero bucket", got)
	}
	e.SetBucket("plan:free", limit.Bucket{Tokens: 1, Last: 5})
	e.SetBucket("account", limit.Bucket{Tokens: 2, Last: 6})
	e.SetBucket("plan:free", limit.Bucket{Tokens: 7, Last: 8})
	want := []Slot{{"plan:free", limit.Bucket{Tokens: 7, Last: 8}}, {"account", limit.Bucket{Tokens: 2, Last: 6}}}
	if !reflect.DeepEqual(e.Buckets, want) {
		t.Fatalf("buckets = %+v, want %+v", e.Buckets, want)
	}
}

// FuzzDecode: any input either decodes to an entry that re-encodes to the same bytes, or is
// an error wrapping one of the three causes; never a panic.
func FuzzDecode(f *testing.F) {
	f.Add(AppendEncode(nil, &sample))
	f.Add(AppendEncode(nil, &Entry{}))
	f.Add([]byte{})
	f.Add([]byte{2})
	f.Add([]byte(strings.Repeat("\x01", 40)))
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Entry
		err := Decode(in, &e)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode(%x) = %v: not one of the documented causes", in, err)
			}
			return
		}
		if out := AppendEncode(nil, &e); !bytes.Equal(out, in) {
			t.Fatalf("Decode then encode changed the bytes:\n in %x\nout %x", in, out)
		}
	})
}

// TestDecodeMultiByteVarints: counts and name lengths of two varint bytes (130 buckets, a
// 200-byte name) decode as well as the usual one-byte ones, which take a shortcut.
func TestDecodeMultiByteVarints(t *testing.T) {
	var e Entry
	for i := range 130 {
		name := fmt.Sprintf("stage:api/prod:/r%d/GET", i)
		if i == 7 {
			name = strings.Repeat("n", 200)
		}
		e.Buckets = append(e.Buckets, Slot{Name: name, Bucket: limit.Bucket{Tokens: int64(i), Last: int64(i) + 1}})
	}
	in := AppendEncode(nil, &e)
	var got Entry
	if err := Decode(in, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip of 130 buckets changed the entry")
	}
	if out := AppendEncode(nil, &got); !bytes.Equal(out, in) {
		t.Fatalf("re-encoding changed the bytes")
	}
}

// TestDecodeUsualAgrees: Decode's shortcut for the usual entry decodes exactly what the
// full decoder accepts, into the same Entry, and leaves everything else to it: the sample,
// every truncation of it and every one of its bytes changed to 0x00, 0x01, 0x7f, 0x80, 0xff
// and itself plus one. The valid ones must take the shortcut.
func TestDecodeUsualAgrees(t *testing.T) {
	in := sampleBytes(t)
	var inputs [][]byte
	for n := range len(in) + 1 {
		inputs = append(inputs, in[:n])
	}
	for i := range in {
		for _, c := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff, in[i] + 1} {
			b := bytes.Clone(in)
			b[i] = c
			inputs = append(inputs, b)
		}
	}
	dup := sample
	dup.Buckets = []Slot{sample.Buckets[0], sample.Buckets[0]}
	inputs = append(inputs, AppendEncode(nil, &dup), AppendEncode(nil, &Entry{}), append(bytes.Clone(in), 0))
	took := 0
	for _, b := range inputs {
		var usual, full Entry
		ok := decodeUsual(b, &usual)
		err := decodeAny(b, &full)
		if !ok {
			continue
		}
		took++
		if err != nil {
			t.Fatalf("%x: the shortcut decoded what the decoder refuses: %v", b, err)
		}
		if !reflect.DeepEqual(usual, full) {
			t.Fatalf("%x: the shortcut decoded %+v, the decoder %+v", b, usual, full)
		}
	}
	var e Entry
	if !decodeUsual(in, &e) || !decodeUsual(AppendEncode(nil, &Entry{}), &e) {
		t.Fatal("the sample and the empty entry do not take the shortcut")
	}
	if took < 50 {
		t.Fatalf("only %d inputs took the shortcut", took)
	}
}
