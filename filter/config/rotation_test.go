package config

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

func hexDigest(v string) string {
	d := sha256.Sum256([]byte(v))
	return hex.EncodeToString(d[:])
}

// A rotated key is found by its current value at any time, and by each previous value
// strictly before that value's until; the same values of a configuration without
// previousValues are found only by the current one.
func TestKeyByValueAtPreviousValues(t *testing.T) {
	const (
		cur   = "RotatedCurValue000000000001"
		old1  = "RotatedOldValue000000000001"
		old2  = "RotatedOldValue000000000002"
		other = "OtherKeyValue0000000000001"
	)
	until1 := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	c := mustParse(t, `{"apiKeys": [
	  {"id": "rotated", "value": "`+cur+`", "previousValues": [
	    {"valueSha256": "`+hexDigest(old1)+`", "until": "2026-12-06T18:00:00Z"},
	    {"valueSha256": "`+hexDigest(old2)+`", "until": "2026-12-06T20:00:00+01:00"}]},
	  {"id": "other", "value": "`+other+`", "enabled": false}]}`)
	for _, tt := range []struct {
		name  string
		value string
		at    time.Time
		want  string // key id, "" for none
	}{
		{"current value, long before", cur, until1.Add(-1000 * time.Hour), "rotated"},
		{"current value, long after", cur, until1.Add(1000 * time.Hour), "rotated"},
		{"previous value, before until", old1, until1.Add(-time.Nanosecond), "rotated"},
		{"previous value, at until", old1, until1, ""},
		{"previous value, after until", old1, until1.Add(time.Second), ""},
		{"second previous value, zone offset read", old2, until1.Add(time.Hour - time.Nanosecond), "rotated"},
		{"second previous value, at its until", old2, until1.Add(time.Hour), ""},
		{"another key, disabled, still found", other, until1, "other"},
		{"unknown value", "UnknownValue00000000000001", until1.Add(-time.Hour), ""},
		{"too short to hash", "short", until1.Add(-time.Hour), ""},
	} {
		var got string
		if k := c.KeyByValueAt(tt.value, tt.at); k != nil {
			got = k.ID
		}
		if got != tt.want {
			t.Errorf("%s: KeyByValueAt = %q, want %q", tt.name, got, tt.want)
		}
	}
	if k := c.KeyByValue(old1); k != nil {
		t.Errorf("KeyByValue found %q by a previous value: only KeyByValueAt accepts one", k.ID)
	}
	k, until, ok := c.PreviousUntil(Digest(sha256.Sum256([]byte(old2))))
	if !ok || k.ID != "rotated" || !until.Equal(until1.Add(time.Hour)) {
		t.Errorf("PreviousUntil(old2) = %v %v %t, want rotated %v true", k, until, ok, until1.Add(time.Hour))
	}
	if c := mustParse(t, `{"apiKeys": [{"id": "plain", "value": "`+cur+`"}]}`); c.previous != nil {
		t.Errorf("a configuration without previousValues has a previous-value table")
	}
}

// The request path's key lookup: KeyByValueAt against KeyByValue in the same run, for a
// configuration without previous values (which must cost the same) and a hit on a previous
// value (one more map lookup). Compare the ns/op of the sub-benchmarks.
func BenchmarkKeyLookup(b *testing.B) {
	const cur, old = "RotatedCurValue000000000001", "RotatedOldValue000000000001"
	plain := mustParse(b, `{"apiKeys": [{"id": "k", "value": "`+cur+`"}]}`)
	rotated := mustParse(b, `{"apiKeys": [{"id": "k", "value": "`+cur+`", "previousValues": [
	  {"valueSha256": "`+hexDigest(old)+`", "until": "2030-01-01T00:00:00Z"}]}]}`)
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for _, bb := range []struct {
		name string
		f    func() *Key
	}{
		{"KeyByValue", func() *Key { return plain.KeyByValue(cur) }},
		{"KeyByValueAt", func() *Key { return plain.KeyByValueAt(cur, now) }},
		{"KeyByValueAt-unknown", func() *Key { return plain.KeyByValueAt(old, now) }},
		{"KeyByValueAt-previous", func() *Key { return rotated.KeyByValueAt(old, now) }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				if bb.f() == nil && bb.name != "KeyByValueAt-unknown" {
					b.Fatal("not found")
				}
			}
		})
	}
}
