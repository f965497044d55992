package config

import (
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzParseDigest: parseDigest accepts exactly what hex.DecodeString decodes to 32 bytes,
// and gives the same bytes.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{strings.Repeat("ab", 32), strings.Repeat("AF09", 16), strings.Repeat("0", 63) + "g",
		strings.Repeat("0", 62), strings.Repeat("0", 66), "", strings.Repeat("0", 63) + "G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseDigest(s)
		b, err := hex.DecodeString(s)
		wantOK := err == nil && len(b) == len(got)
		if ok != wantOK || ok && string(got[:]) != string(b) {
			t.Fatalf("parseDigest(%q) = %x, %t; hex.DecodeString = %x, %v", s, got, ok, b, err)
		}
	})
}
