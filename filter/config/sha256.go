package config

import "math/bits"

// sum256 is SHA-256 (FIPS 180-4, section 6.2), written here because crypto/sha256 brings
// its FIPS 140 module into the Wasm module, about 165 KB (self-tests, DRBG, AES, SHA-3,
// SHA-512, HMAC), for a hash of a short key. TestSum256MatchesCryptoSHA256 and
// FuzzSum256 pin it to crypto/sha256.
func sum256[T string | []byte](data T) Digest {
	h := sha256Init
	n := len(data)
	var block [64]byte
	for len(data) >= 64 {
		copy(block[:], data[:64])
		sha256Block(&h, &block)
		data = data[64:]
	}
	// The padding: 0x80, zeros, the message length in bits as 64 bits big-endian.
	var last [128]byte
	copy(last[:], data)
	last[len(data)] = 0x80
	tail := last[:64]
	if len(data) >= 56 {
		tail = last[:128]
	}
	bitLen := uint64(n) << 3
	for i := 0; i < 8; i++ {
		tail[len(tail)-1-i] = byte(bitLen >> (8 * i))
	}
	for len(tail) > 0 {
		sha256Block(&h, (*[64]byte)(tail))
		tail = tail[64:]
	}
	var d Digest
	for i, x := range h {
		d[4*i], d[4*i+1], d[4*i+2], d[4*i+3] = byte(x>>24), byte(x>>16), byte(x>>8), byte(x)
	}
	return d
}

// sha256Block runs the compression function on one 64-byte block. The rounds go eight at
// a time, each naming the working variables in their turn, so the variables are not
// shifted along after every round: in Wasm those moves cost more than the round's own
// arithmetic (BenchmarkSum256).
func sha256Block(h *[8]uint32, p *[64]byte) {
	var w [64]uint32
	for i := 0; i < 16; i++ {
		j := 4 * i
		w[i] = uint32(p[j])<<24 | uint32(p[j+1])<<16 | uint32(p[j+2])<<8 | uint32(p[j+3])
	}
	for i := 16; i < 64; i++ {
		v1, v2 := w[i-15], w[i-2]
		s0 := bits.RotateLeft32(v1, -7) ^ bits.RotateLeft32(v1, -18) ^ v1>>3
		s1 := bits.RotateLeft32(v2, -17) ^ bits.RotateLeft32(v2, -19) ^ v2>>10
		w[i] = w[i-16] + s0 + w[i-7] + s1
	}
	a, b, c, d, e, f, g, hh := h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
	for i := 0; i < 64; i += 8 {
		k := (*[8]uint32)(sha256K[i : i+8])
		x := (*[8]uint32)(w[i : i+8])
		d, hh = sha256Round(a, b, c, d, e, f, g, hh, k[0]+x[0])
		c, g = sha256Round(hh, a, b, c, d, e, f, g, k[1]+x[1])
		b, f = sha256Round(g, hh, a, b, c, d, e, f, k[2]+x[2])
		a, e = sha256Round(f, g, hh, a, b, c, d, e, k[3]+x[3])
		hh, d = sha256Round(e, f, g, hh, a, b, c, d, k[4]+x[4])
		g, c = sha256Round(d, e, f, g, hh, a, b, c, k[5]+x[5])
		f, b = sha256Round(c, d, e, f, g, hh, a, b, k[6]+x[6])
		e, a = sha256Round(b, c, d, e, f, g, hh, a, k[7]+x[7])
	}
	h[0] += a
	h[1] += b
	h[2] += c
	h[3] += d
	h[4] += e
	h[5] += f
	h[6] += g
	h[7] += hh
}

// sha256Round is one round on the working variables a to h, kw the round's constant plus
// its message word: it returns the new d (d+T1) and the new h (T1+T2), which become the
// next round's e and a.
func sha256Round(a, b, c, d, e, f, g, h, kw uint32) (uint32, uint32) {
	t1 := h + (bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)) + (e&f ^ ^e&g) + kw
	t2 := (bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)) + (a&b ^ a&c ^ b&c)
	return d + t1, t1 + t2
}

// sha256Init is the initial hash value: the first 32 bits of the fractional parts of the
// square roots of the first 8 primes; sha256K, of the cube roots of the first 64 primes
// (TestSHA256Constants derives both).
var sha256Init = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

var sha256K = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
