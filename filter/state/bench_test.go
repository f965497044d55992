package state

import "testing"

// BenchmarkCodec encodes and decodes a key's entry with three buckets, reusing buffers as
// the filter does.
func BenchmarkCodec(b *testing.B) {
	e := sample
	e.Buckets = append(e.Buckets, Slot{Name: "plan:pro:petstore/prod:/pets/{petId}/DELETE"})
	buf := AppendEncode(nil, &e)
	var out Entry
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEncode(buf[:0], &e)
		if err := Decode(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}
