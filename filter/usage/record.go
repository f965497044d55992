// Package usage keeps per-day usage and quota grants of each API key in each plan, in
// shared-data entries of their own, and answers AWS's GetUsage and UpdateUsage from them.
package usage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// StoredDays is how many UTC days a Record keeps: QueryDays that GetUsage answers for, plus
// the 30 days before them, so that every answerable day's quota period (a calendar month at
// most, 31 days) is kept whole and its remaining quota is exact. The entry's size is bounded
// by this number, never by time or traffic.
const StoredDays = QueryDays + 30

// QueryDays is how far back GetUsage answers: today and the 89 days before it, a quarter,
// the horizon billing and support look at.
const QueryDays = 90

// Version is the encoding of a usage entry this package writes and reads. It is not the
// version of the key entry (filter/state): the two are separate entries.
const Version = 1

// maxCount bounds a day's count and a grant, so that sums over StoredDays cannot overflow.
const maxCount = 1 << 53

// Record is what one usage entry holds: the requests admitted per UTC day, newest first, and
// the quota grants made on those days. Days[0] is day Day (days since 1970-01-01 UTC),
// Days[i] is day Day-i. The zero Record is a key never used.
type Record struct {
	Day  int64
	N    int // days kept in Days[:N]
	Days [StoredDays]DayUsage
}

// DayUsage is one day of a Record.
type DayUsage struct {
	Used int64 // requests admitted that day
	// HasGrant says an UpdateUsage ran that day; Grant is then the grant in force from that
	// day on in its quota period: requests added to (or, below zero, taken from) the
	// period's limit.
	HasGrant bool
	Grant    int64
}

// At returns the usage of day d, the zero DayUsage when it is not kept.
func (r *Record) At(d int64) DayUsage {
	if i := r.Day - d; i >= 0 && i < int64(r.N) {
		return r.Days[i]
	}
	return DayUsage{}
}

// advance makes today the newest day, dropping days that fall out of StoredDays. A today
// older than Day (the clock went backwards) leaves the record as it is; Count and SetGrant
// then write into the day asked for if it is kept.
func (r *Record) advance(today int64) {
	if r.N == 0 {
		r.Day, r.N, r.Days[0] = today, 1, DayUsage{}
		return
	}
	k := today - r.Day
	if k <= 0 {
		return
	}
	if k >= StoredDays {
		r.Day, r.N, r.Days[0] = today, 1, DayUsage{}
		return
	}
	n := min(r.N+int(k), StoredDays)
	copy(r.Days[k:n], r.Days[:n-int(k)])
	clear(r.Days[:k])
	r.Day, r.N = today, n
}

// Count adds n admitted requests to day d (normally today), and reports whether it could:
// a day older than the record keeps is not counted.
func (r *Record) Count(d int64, n int64) bool {
	r.advance(d)
	i := r.Day - d
	if i < 0 || i >= int64(r.N) || r.Days[i].Used > maxCount-n {
		return false
	}
	r.Days[i].Used += n
	return true
}

// SetGrant records that from day d on the grant of d's quota period is g.
func (r *Record) SetGrant(d int64, g int64) bool {
	r.advance(d)
	i := r.Day - d
	if i < 0 || i >= int64(r.N) {
		return false
	}
	r.Days[i].HasGrant, r.Days[i].Grant = true, g
	return true
}

// GrantAt is the grant in force at the end of day d in the quota period that starts on day
// start: the one set last on a day from start to d, or 0.
func (r *Record) GrantAt(start, d int64) int64 {
	for day := min(d, r.Day); day >= start; day-- {
		i := r.Day - day
		if i >= int64(r.N) {
			break
		}
		if r.Days[i].HasGrant {
			return r.Days[i].Grant
		}
	}
	return 0
}

// UsedFrom is the sum of the requests admitted from day start to day d, both included.
func (r *Record) UsedFrom(start, d int64) int64 {
	var sum int64
	for day := min(d, r.Day); day >= start; day-- {
		i := r.Day - day
		if i >= int64(r.N) {
			break
		}
		sum += r.Days[i].Used
	}
	return sum
}

// Errors of Decode; the returned error wraps one of them and says where it stopped.
var (
	ErrTruncated = errors.New("truncated")
	ErrVersion   = errors.New("unknown encoding version")
	ErrCorrupt   = errors.New("corrupt")
)

// Version 1 layout:
//
//	u8      version (1)
//	i64     Day, little-endian (days since 1970-01-01 UTC)
//	uvarint N (0 to StoredDays)
//	N days, newest first: uvarint Used<<1 | HasGrant, then when HasGrant a zig-zag varint
//	        Grant
//
// A quiet day is one byte, so a key's entry is about StoredDays bytes.

// AppendEncode appends the version-1 encoding of r to dst. It grows dst once for the
// longest encoding and writes the days' varints by index, without a call per day: a record
// holds up to StoredDays days, encoded on every admitted request (BenchmarkRecordCodec).
func AppendEncode(dst []byte, r *Record) []byte {
	dst = append(dst, Version)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Day))
	dst = binary.AppendUvarint(dst, uint64(r.N))
	at := len(dst)
	dst = slices.Grow(dst, max(r.N, 0)*2*binary.MaxVarintLen64)
	b := dst[at:cap(dst)]
	o := 0
	for i := range r.N {
		d := &r.Days[i]
		v := uint64(d.Used) << 1
		if d.HasGrant {
			v |= 1
		}
		switch { // the usual one- and two-byte days here: putUvarint is a call
		case v < 1<<7:
			b[o] = byte(v)
			o++
		case v < 1<<14:
			b[o], b[o+1] = byte(v)|0x80, byte(v>>7)
			o += 2
		default:
			o = putUvarint(b, o, v)
		}
		if d.HasGrant {
			g := uint64(d.Grant) << 1 // zig-zag, as binary.AppendVarint
			if d.Grant < 0 {
				g = ^g
			}
			o = putUvarint(b, o, g)
		}
	}
	return dst[:at+o]
}

// putUvarint writes v as a uvarint at b[o:] and returns the offset after it.
func putUvarint(b []byte, o int, v uint64) int {
	for v >= 0x80 {
		b[o] = byte(v) | 0x80
		v >>= 7
		o++
	}
	b[o] = byte(v)
	return o + 1
}

// Decode parses an encoded record into r. Truncated input, an unknown version and values
// Decode would not write back the same way are errors naming the byte offset.
func Decode(b []byte, r *Record) error {
	if len(b) == 0 {
		return fmt.Errorf("usage: decode at byte 0: %w: empty value", ErrTruncated)
	}
	if b[0] != Version {
		return fmt.Errorf("usage: decode at byte 0: %w %d (this filter reads %d)", ErrVersion, b[0], Version)
	}
	if len(b) < 9 {
		return fmt.Errorf("usage: decode at byte 1: %w: need 8 bytes, have %d", ErrTruncated, len(b)-1)
	}
	r.Day = int64(binary.LittleEndian.Uint64(b[1:]))
	off := 9
	n, off, err := uvarint(b, off)
	if err != nil {
		return err
	}
	if n > StoredDays {
		return fmt.Errorf("usage: decode at byte 9: %w: %d days, more than %d", ErrCorrupt, n, StoredDays)
	}
	r.N = int(n)
	days := r.Days[:r.N]
	for i := range days {
		at := off
		var v uint64
		// The usual one- and two-byte days here (uvarint is a call): the second byte
		// neither 0 (not the shortest form) nor continued.
		switch {
		case off < len(b) && b[off] < 0x80:
			v = uint64(b[off])
			off++
		case off+1 < len(b) && b[off+1]-1 < 0x7f:
			v = uint64(b[off]&0x7f) | uint64(b[off+1])<<7
			off += 2
		default:
			if v, off, err = uvarint(b, off); err != nil {
				return err
			}
		}
		d := &days[i]
		d.Used, d.HasGrant, d.Grant = int64(v>>1), v&1 == 1, 0
		if d.Used > maxCount {
			return fmt.Errorf("usage: decode at byte %d: %w: count over 2^53", at, ErrCorrupt)
		}
		if d.HasGrant {
			at = off
			if d.Grant, off, err = varint(b, off); err != nil {
				return err
			}
			if d.Grant > maxCount || d.Grant < -maxCount {
				return fmt.Errorf("usage: decode at byte %d: %w: grant beyond 2^53", at, ErrCorrupt)
			}
		}
	}
	if off != len(b) {
		return fmt.Errorf("usage: decode at byte %d: %w: bytes after the last day", off, ErrCorrupt)
	}
	return nil
}

func uvarint(b []byte, off int) (uint64, int, error) {
	if off < len(b) && b[off] < 0x80 { // one byte: a quiet day
		return uint64(b[off]), off + 1, nil
	}
	v, n := binary.Uvarint(b[off:])
	switch {
	case n == 0:
		return 0, off, fmt.Errorf("usage: decode at byte %d: %w: varint cut short", off, ErrTruncated)
	case n < 0:
		return 0, off, fmt.Errorf("usage: decode at byte %d: %w: varint overflows 64 bits", off, ErrCorrupt)
	case n != uvarintLen(v):
		// one value, one encoding: re-encoding a record must give back its bytes
		return 0, off, fmt.Errorf("usage: decode at byte %d: %w: varint not in its shortest form", off, ErrCorrupt)
	}
	return v, off + n, nil
}

func varint(b []byte, off int) (int64, int, error) {
	u, next, err := uvarint(b, off)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x, next, err
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// DayOf is the UTC day that holds t, in days since 1970-01-01.
func DayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d--
	}
	return d
}

const secondsPerDay = 24 * 60 * 60
