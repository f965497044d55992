// Package state keeps per-key limiter state in proxy-wasm shared data: a versioned binary
// encoding of one entry, store keys bounded by configuration, and a bounded CAS loop.
//
// Rollout rule: a VM that finds an entry of a version it does not know fails that key's
// requests by the failure policy (CLOSED by default), so while old and new VMs share the
// data during a hot swap, the new one must still write a version the old one reads. A new
// encoding ships in two releases: first one that reads it but still writes the old
// version, then, once no older VM runs, one that writes it.
package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/usageplans/usageplans/filter/limit"
)

// Version is the encoding this package writes. A later filter must keep decoding every
// version it finds in shared data, because old and new VMs share it during a hot swap, and
// may write a new one only after a release that reads it (see the package doc).
const Version = 1

// MaxName bounds the length of a bucket name; configuration ids are far shorter.
const MaxName = 1024

// Entry is what one shared-data key holds: the token buckets it carries, by name (the
// config's Limit.ID), and a quota counter (zero when the entry has no quota).
type Entry struct {
	Buckets []Slot
	Quota   limit.Counter
}

// Slot is one named token bucket of an Entry.
type Slot struct {
	Name   string
	Bucket limit.Bucket
}

// Bucket returns the bucket named name, or the zero (full) bucket when the entry has none.
func (e *Entry) Bucket(name string) limit.Bucket {
	for i := range e.Buckets {
		if e.Buckets[i].Name == name {
			return e.Buckets[i].Bucket
		}
	}
	return limit.Bucket{}
}

// SetBucket stores b under name, adding a slot the first time the name is used.
func (e *Entry) SetBucket(name string, b limit.Bucket) {
	for i := range e.Buckets {
		if e.Buckets[i].Name == name {
			e.Buckets[i].Bucket = b
			return
		}
	}
	e.Buckets = append(e.Buckets, Slot{Name: name, Bucket: b})
}

// Errors of Decode; the returned error wraps one of them and says where it stopped.
var (
	ErrTruncated  = errors.New("truncated")
	ErrVersion    = errors.New("unknown encoding version")
	ErrCorrupt    = errors.New("corrupt")
	errTrailing   = fmt.Errorf("%w: bytes after the last field", ErrCorrupt)
	errFrac       = fmt.Errorf("%w: bucket fraction of a token out of range", ErrCorrupt)
	errNegative   = fmt.Errorf("%w: negative count", ErrCorrupt)
	errNameLength = fmt.Errorf("%w: bucket name longer than %d bytes", ErrCorrupt, MaxName)
)

// Version 1 layout, integers little-endian:
//
//	u8      version (1)
//	i64×3   quota: window start (Unix s), used, created (Unix s)
//	uvarint number of buckets
//	per bucket: uvarint name length, name bytes, i64 tokens, u64 fraction (femto-tokens),
//	            i64 last update (Unix ns)
const (
	quotaSize  = 3 * 8
	bucketSize = 3 * 8
)

// ErrInvalid is the cause of Check's errors: an entry Decode would refuse.
var ErrInvalid = errors.New("invalid entry")

// Check reports why e cannot be encoded so that Decode reads it back (a bucket name longer
// than MaxName or used twice, a negative count, a fraction of a token out of range), or
// nil. Commit checks before it writes: an entry no filter can read would fail every later
// request of its key.
func (e *Entry) Check() error {
	if e.Quota.Used < 0 {
		return fmt.Errorf("state: %w: negative quota count %d", ErrInvalid, e.Quota.Used)
	}
	for i := range e.Buckets {
		s := &e.Buckets[i]
		switch {
		case len(s.Name) > MaxName:
			return fmt.Errorf("state: %w: bucket %d has a name of %d bytes, longer than %d", ErrInvalid, i, len(s.Name), MaxName)
		case s.Bucket.Tokens < 0:
			return fmt.Errorf("state: %w: bucket %q has %d tokens", ErrInvalid, s.Name, s.Bucket.Tokens)
		case s.Bucket.Frac >= 1e15:
			return fmt.Errorf("state: %w: bucket %q has a fraction of a token out of range", ErrInvalid, s.Name)
		}
		for j := range i {
			if e.Buckets[j].Name == s.Name {
				return fmt.Errorf("state: %w: bucket %q twice", ErrInvalid, s.Name)
			}
		}
	}
	return nil
}

// AppendEncode appends the version-1 encoding of e to dst. It encodes whatever it is
// given; Check says whether Decode will read it back. It sizes the encoding first and
// writes into it by index: an append per field cost a capacity check and a call each,
// which Wasm feels (BenchmarkCodec).
func AppendEncode(dst []byte, e *Entry) []byte {
	size := 1 + quotaSize + uvarintLen(uint64(len(e.Buckets)))
	for i := range e.Buckets {
		n := len(e.Buckets[i].Name)
		size += uvarintLen(uint64(n)) + n + bucketSize
	}
	at := len(dst)
	dst = slices.Grow(dst, size)[:at+size]
	b := dst[at:]
	b[0] = Version
	le := binary.LittleEndian
	le.PutUint64(b[1:9], uint64(e.Quota.Window))
	le.PutUint64(b[9:17], uint64(e.Quota.Used))
	le.PutUint64(b[17:25], uint64(e.Quota.Created))
	off := 1 + quotaSize + binary.PutUvarint(b[1+quotaSize:], uint64(len(e.Buckets)))
	for i := range e.Buckets {
		s := &e.Buckets[i]
		off += binary.PutUvarint(b[off:], uint64(len(s.Name)))
		off += copy(b[off:], s.Name)
		f := b[off : off+bucketSize]
		le.PutUint64(f[0:8], uint64(s.Bucket.Tokens))
		le.PutUint64(f[8:16], s.Bucket.Frac)
		le.PutUint64(f[16:24], uint64(s.Bucket.Last))
		off += bucketSize
	}
	return dst
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Decode parses an encoded entry into e, reusing e.Buckets' storage. Truncated input, an
// unknown (newer) version and impossible values are errors naming the byte offset.
func Decode(b []byte, e *Entry) error {
	if decodeUsual(b, e) {
		return nil
	}
	return decodeAny(b, e)
}

// decodeAny is Decode for any input, the error's cause and offset among what it says.
func decodeAny(b []byte, e *Entry) error {
	if len(b) == 0 {
		return fmt.Errorf("state: decode at byte 0: %w: empty value", ErrTruncated)
	}
	if b[0] != Version {
		return fmt.Errorf("state: decode at byte 0: %w %d (this filter reads %d)", ErrVersion, b[0], Version)
	}
	d := decoder{b: b, off: 1}
	e.Buckets = e.Buckets[:0]
	e.Quota.Window = d.int64()
	e.Quota.Used = d.int64()
	e.Quota.Created = d.int64()
	if d.err == nil && e.Quota.Used < 0 {
		d.fail(d.off-16, errNegative)
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(b)-d.off)/(bucketSize+1) {
		d.fail(d.off, fmt.Errorf("%w: %d buckets cannot fit in %d bytes", ErrTruncated, n, len(b)-d.off))
	}
	old := e.Buckets[:cap(e.Buckets)]
	for i := uint64(0); i < n && d.err == nil; i++ {
		var s Slot
		at := d.off
		var reuse string
		if i < uint64(len(old)) {
			reuse = old[i].Name
		}
		s.Name = d.name(reuse)
		for _, prev := range e.Buckets {
			if d.err == nil && prev.Name == s.Name {
				d.fail(at, fmt.Errorf("%w: bucket %q twice", ErrCorrupt, s.Name))
			}
		}
		s.Bucket.Tokens = d.int64()
		at = d.off
		s.Bucket.Frac = d.uint64()
		s.Bucket.Last = d.int64()
		if d.err == nil && s.Bucket.Tokens < 0 {
			d.fail(at-8, errNegative)
		}
		if d.err == nil && s.Bucket.Frac >= 1e15 {
			d.fail(at, errFrac)
		}
		e.Buckets = append(e.Buckets, s)
	}
	if d.err == nil && d.off != len(b) {
		d.fail(d.off, errTrailing)
	}
	return d.err
}

// decodeUsual decodes the usual entry, whose bucket count and name lengths are one varint
// byte each, in one pass without the decoder's per-field error checks, and reports whether
// it did. Anything else (an error among them) it leaves to decodeAny, which reads
// the same input again and names the cause, so it decodes exactly what the decoder
// accepts, into the same Entry (TestDecodeUsualAgrees).
func decodeUsual(b []byte, e *Entry) bool {
	if len(b) < 2+quotaSize || b[0] != Version || b[1+quotaSize] >= 0x80 {
		return false
	}
	le := binary.LittleEndian
	q := limit.Counter{Window: int64(le.Uint64(b[1:9])), Used: int64(le.Uint64(b[9:17])), Created: int64(le.Uint64(b[17:25]))}
	if q.Used < 0 {
		return false
	}
	n := int(b[1+quotaSize])
	old := e.Buckets[:cap(e.Buckets)]
	bs := e.Buckets[:0]
	off := 2 + quotaSize
	for i := range n {
		if off >= len(b) {
			return false
		}
		l := int(b[off])
		off++
		if l >= 0x80 || len(b)-off < l+bucketSize {
			return false
		}
		raw := b[off : off+l]
		f := b[off+l : off+l+bucketSize]
		off += l + bucketSize
		var s Slot
		if i < len(old) && old[i].Name == string(raw) {
			s.Name = old[i].Name
		} else {
			s.Name = string(raw)
		}
		for j := range bs {
			if bs[j].Name == s.Name {
				return false
			}
		}
		s.Bucket.Tokens = int64(le.Uint64(f[0:8]))
		s.Bucket.Frac = le.Uint64(f[8:16])
		s.Bucket.Last = int64(le.Uint64(f[16:24]))
		if s.Bucket.Tokens < 0 || s.Bucket.Frac >= 1e15 {
			return false
		}
		bs = append(bs, s)
	}
	if off != len(b) {
		return false
	}
	e.Buckets, e.Quota = bs, q
	return true
}

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(at int, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("state: decode at byte %d: %w", at, err)
	}
}

func (d *decoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail(d.off, fmt.Errorf("%w: need 8 bytes, have %d", ErrTruncated, len(d.b)-d.off))
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *decoder) int64() int64 { return int64(d.uint64()) }

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	if d.off < len(d.b) && d.b[d.off] < 0x80 { // one byte, the usual count or name length
		v := uint64(d.b[d.off])
		d.off++
		return v
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n == 0 {
		d.fail(d.off, fmt.Errorf("%w: varint cut short", ErrTruncated))
		return 0
	}
	if n < 0 {
		d.fail(d.off, fmt.Errorf("%w: varint overflows 64 bits", ErrCorrupt))
		return 0
	}
	if n != uvarintLen(v) {
		// one value, one encoding: re-encoding an entry must give back its bytes
		d.fail(d.off, fmt.Errorf("%w: varint not in its shortest form", ErrCorrupt))
		return 0
	}
	d.off += n
	return v
}

// name reads a bucket name; reuse is the name this slot held before, kept without
// allocating when it is the same.
func (d *decoder) name(reuse string) string {
	at := d.off
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > MaxName {
		d.fail(at, errNameLength)
		return ""
	}
	if uint64(len(d.b)-d.off) < n {
		d.fail(d.off, fmt.Errorf("%w: name of %d bytes, have %d", ErrTruncated, n, len(d.b)-d.off))
		return ""
	}
	raw := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	if reuse == string(raw) { // the same names come back request after request
		return reuse
	}
	return string(raw)
}
