package config

import (
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
)

// TestSum256MatchesCryptoSHA256: every length around the block and padding boundaries.
func TestSum256MatchesCryptoSHA256(t *testing.T) {
	data := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. 0123456789", 6))
	for n := 0; n <= len(data); n++ {
		want := Digest(sha256.Sum256(data[:n]))
		if got := sum256(data[:n]); got != want {
			t.Fatalf("length %d: sum256 = %x, crypto/sha256 = %x", n, got, want)
		}
		if got := sum256(string(data[:n])); got != want {
			t.Fatalf("length %d: sum256 of a string = %x, crypto/sha256 = %x", n, got, want)
		}
	}
}

func FuzzSum256(f *testing.F) {
	f.Add([]byte("GeneratedKeyValue000000000001"))
	f.Add(make([]byte, 55))
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := sum256(data), Digest(sha256.Sum256(data)); got != want {
			t.Fatalf("%q: sum256 = %x, crypto/sha256 = %x", data, got, want)
		}
	})
}

// TestSHA256Constants derives the constants from their definition (FIPS 180-4, 4.2.2 and
// 5.3.3): the first 32 bits of the fractional parts of roots of the first primes.
func TestSHA256Constants(t *testing.T) {
	var primes []int64
	for n := int64(2); len(primes) < 64; n++ {
		prime := true
		for _, p := range primes {
			prime = prime && n%p != 0
		}
		if prime {
			primes = append(primes, n)
		}
	}
	for i, p := range primes[:8] {
		if got := rootFraction32(p, 2); got != sha256Init[i] {
			t.Errorf("sha256Init[%d] = %#08x, the square root of %d gives %#08x", i, sha256Init[i], p, got)
		}
	}
	for i, p := range primes {
		if got := rootFraction32(p, 3); got != sha256K[i] {
			t.Errorf("sha256K[%d] = %#08x, the cube root of %d gives %#08x", i, sha256K[i], p, got)
		}
	}
}

// rootFraction32 is the first 32 bits of the fractional part of p^(1/root), by bisection.
func rootFraction32(p int64, root int) uint32 {
	const prec = 200
	num := func(x int64) *big.Float { return new(big.Float).SetPrec(prec).SetInt64(x) }
	lo, hi, target := num(0), num(p), num(p)
	for range 190 {
		mid := new(big.Float).SetPrec(prec).Add(lo, hi)
		mid.Quo(mid, num(2))
		pow := new(big.Float).SetPrec(prec).Set(mid)
		for range root - 1 {
			pow.Mul(pow, mid)
		}
		if pow.Cmp(target) > 0 {
			hi = mid
		} else {
			lo = mid
		}
	}
	whole, _ := lo.Int(nil)
	frac := new(big.Float).SetPrec(prec).Sub(lo, new(big.Float).SetPrec(prec).SetInt(whole))
	frac.Mul(frac, num(1<<32))
	v, _ := frac.Int(nil)
	return uint32(v.Uint64())
}

// BenchmarkSum256 hashes a key value of the usual length (one block), as KeyByValue does
// for every request with a key.
func BenchmarkSum256(b *testing.B) {
	key := "GeneratedKeyValue000000000001abcdefghijk"
	var d Digest
	for b.Loop() {
		d = sum256(key)
	}
	if d != Digest(sha256.Sum256([]byte(key))) {
		b.Fatal("sum256 differs from crypto/sha256")
	}
}
