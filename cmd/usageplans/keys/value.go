package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Key values. AWS accepts 20 to 128 letters and digits; the values it generates are 40 of
// them, and so are ours by default. With a prefix, a value is
//
//	prefix + 30 random characters + 6 characters of checksum
//
// all from the alphabet below (no separator: AWS allows letters and digits only, so
// GitHub's "ghp_" underscore is not available). The checksum is the CRC-32 (IEEE) of
// prefix+random, written in base 62 with 6 digits, most significant first. A secret scanner
// matches `\bPREFIX[0-9A-Za-z]{36}\b` and keeps only candidates whose last 6 characters are
// the checksum of the rest: a leaked key is recognised with few false positives, and a typo
// is caught before a request is sent (`usageplans keys check`).
const (
	alphabet      = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	defaultLength = 40
	randomLength  = 30 // 178 bits: what GitHub's tokens carry
	checksumLen   = 6  // 62^6 > 2^32
	minPrefix     = 2
	maxPrefix     = 32
	minValue      = 20
	maxValue      = 128
)

// generate returns a new key value: defaultLength random characters, or with a prefix the
// checksummed form. Randomness comes from r (crypto/rand in the command).
func generate(r io.Reader, prefix string) (string, error) {
	if prefix == "" {
		b, err := randomChars(r, defaultLength)
		return string(b), err
	}
	if err := checkPrefix(prefix); err != nil {
		return "", err
	}
	b, err := randomChars(r, randomLength)
	if err != nil {
		return "", err
	}
	body := prefix + string(b)
	return body + checksum(body), nil
}

func checkPrefix(p string) error {
	if len(p) < minPrefix || len(p) > maxPrefix || !alnum(p) {
		return fmt.Errorf("--prefix must be %d to %d letters and digits (key values may hold nothing else), got %d characters", minPrefix, maxPrefix, len(p))
	}
	return nil
}

// randomChars draws n characters of alphabet uniformly: bytes of 248 or more are dropped,
// so that every character has the same chance (248 = 4 × 62).
func randomChars(r io.Reader, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("reading random bytes: %w", err)
		}
		for _, c := range buf {
			if c < 248 && len(out) < n {
				out = append(out, alphabet[c%62])
			}
		}
	}
	clear(buf)
	return out, nil
}

// checksum is the base-62 CRC-32 of s, checksumLen characters.
func checksum(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	var b [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		b[i] = alphabet[v%62]
		v /= 62
	}
	return string(b[:])
}

// checkChecksum reports the prefix of a checksummed value, or an error saying why v is not
// one (never showing v).
func checkChecksum(v string) (prefix string, err error) {
	if err := validValue(v); err != nil {
		return "", err
	}
	if len(v) < minPrefix+randomLength+checksumLen {
		return "", fmt.Errorf("%d characters: too short for a prefixed value (a prefix of %d to %d, then %d)", len(v), minPrefix, maxPrefix, randomLength+checksumLen)
	}
	body, sum := v[:len(v)-checksumLen], v[len(v)-checksumLen:]
	if checksum(body) != sum {
		return "", errors.New("the checksum (the last 6 characters) does not match: mistyped, or not a value generated with --prefix")
	}
	return v[:len(v)-randomLength-checksumLen], nil
}

// validValue checks what the filter accepts as a key value; its error never shows v.
func validValue(v string) error {
	if len(v) < minValue || len(v) > maxValue {
		return fmt.Errorf("must be %d to %d letters and digits, got %d characters", minValue, maxValue, len(v))
	}
	if !alnum(v) {
		return fmt.Errorf("must be %d to %d letters and digits, found another character", minValue, maxValue)
	}
	return nil
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// digest is the hex SHA-256 of a value: what plugin.json's valueSha256 holds.
func digest(v string) string {
	d := sha256.Sum256([]byte(v))
	return hex.EncodeToString(d[:])
}
