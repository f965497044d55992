// Package rls speaks the Rate Limit Service's gRPC API (envoy.service.ratelimit.v3
// ShouldRateLimit) over any HTTP/2 transport: it encodes a RateLimitRequest and decodes a
// RateLimitResponse with protowire, frames them as gRPC messages and reads the gRPC status.
// No generated code (it would multiply the module's size) and no state: one function per
// message, so any caller (the filter's quota, a later usage reader) can use it.
package rls

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Path is the gRPC method ShouldRateLimit as an HTTP/2 :path.
const Path = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"

// Unit is envoy.service.ratelimit.v3.RateLimitResponse.RateLimit.Unit; a descriptor's limit
// override (envoy.extensions.common.ratelimit.v3) uses the same numbers, and RLS converts one
// into the other by value.
type Unit uint8

const (
	UnitUnknown Unit = 0
	Second      Unit = 1
	Minute      Unit = 2
	Hour        Unit = 3
	Day         Unit = 4
	Month       Unit = 5 // RLS: a flat 30 days from the Unix epoch
	Year        Unit = 6 // RLS: a flat 365 days from the Unix epoch
	Week        Unit = 7 // RLS: 7 days from the Unix epoch, so weeks start on Thursday
)

var unitNames = [...]string{"UNKNOWN", "SECOND", "MINUTE", "HOUR", "DAY", "MONTH", "YEAR", "WEEK"}

// String is the unit's name in RLS's YAML configuration.
func (u Unit) String() string {
	if int(u) < len(unitNames) {
		return unitNames[u]
	}
	return fmt.Sprintf("Unit(%d)", uint8(u))
}

// Seconds is the length of RLS's window for the unit (its UnitToDivider); 0 for UNKNOWN.
func (u Unit) Seconds() int64 {
	switch u {
	case Second:
		return 1
	case Minute:
		return 60
	case Hour:
		return 3600
	case Day:
		return 86400
	case Week:
		return 7 * 86400
	case Month:
		return 30 * 86400
	case Year:
		return 365 * 86400
	}
	return 0
}

// WindowStart is the start of RLS's window of unit u that holds the Unix second now: the
// value RLS puts at the end of its Redis key. RLS divides with Go's truncating division;
// so does this, so a pre-1970 instant gives the same (odd) answer RLS would.
func (u Unit) WindowStart(now int64) int64 {
	d := u.Seconds()
	if d == 0 {
		return 0
	}
	return now / d * d
}

// Entry is one key/value pair of a descriptor.
type Entry struct{ Key, Value string }

// Limit is a per-descriptor limit override: RLS applies it without a matching entry in
// its configuration (only the domain must exist there).
type Limit struct {
	RequestsPerUnit uint32
	Unit            Unit
}

// Descriptor is one RateLimitDescriptor.
type Descriptor struct {
	Entries []Entry
	Limit   *Limit // nil: RLS looks the descriptor up in its configuration
	// Hits is the descriptor's own hits_addend when HasHits: it wins over the request's and
	// may be 0 (check only). Without it RLS uses the request's, or 1.
	Hits    uint64
	HasHits bool
}

// Request is one RateLimitRequest.
type Request struct {
	Domain      string
	Descriptors []Descriptor
	HitsAddend  uint32 // 0: RLS counts 1 (unless a descriptor says otherwise)
}

// Field numbers, from envoy/service/ratelimit/v3/rls.proto and
// envoy/extensions/common/ratelimit/v3/ratelimit.proto.
const (
	reqDomain      = 1
	reqDescriptors = 2
	reqHitsAddend  = 3

	descEntries = 1
	descLimit   = 2
	descHits    = 3 // google.protobuf.UInt64Value

	entryKey   = 1
	entryValue = 2

	limitRequests = 1
	limitUnit     = 2

	wrapperValue = 1

	respOverallCode = 1
	respStatuses    = 2

	statusCode      = 1
	statusLimit     = 2
	statusRemaining = 3
	statusReset     = 4 // google.protobuf.Duration

	durationSeconds = 1
	durationNanos   = 2
)

// AppendRequest appends the protobuf encoding of r to dst. Fields at their zero value are
// left out, as proto3 does, so the bytes equal the canonical encoding.
func AppendRequest(dst []byte, r *Request) []byte {
	if r.Domain != "" {
		dst = protowire.AppendTag(dst, reqDomain, protowire.BytesType)
		dst = protowire.AppendString(dst, r.Domain)
	}
	for i := range r.Descriptors {
		d := &r.Descriptors[i]
		dst = protowire.AppendTag(dst, reqDescriptors, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(descriptorSize(d)))
		dst = appendDescriptor(dst, d)
	}
	if r.HitsAddend != 0 {
		dst = protowire.AppendTag(dst, reqHitsAddend, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(r.HitsAddend))
	}
	return dst
}

func appendDescriptor(dst []byte, d *Descriptor) []byte {
	for _, e := range d.Entries {
		dst = protowire.AppendTag(dst, descEntries, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(entrySize(e)))
		dst = appendStringField(dst, entryKey, e.Key)
		dst = appendStringField(dst, entryValue, e.Value)
	}
	if d.Limit != nil {
		dst = protowire.AppendTag(dst, descLimit, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(limitSize(d.Limit)))
		dst = appendVarintField(dst, limitRequests, uint64(d.Limit.RequestsPerUnit))
		dst = appendVarintField(dst, limitUnit, uint64(d.Limit.Unit))
	}
	if d.HasHits {
		dst = protowire.AppendTag(dst, descHits, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(varintFieldSize(wrapperValue, d.Hits)))
		dst = appendVarintField(dst, wrapperValue, d.Hits)
	}
	return dst
}

func appendStringField(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

func appendVarintField(dst []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

func stringFieldSize(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func varintFieldSize(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func entrySize(e Entry) int {
	return stringFieldSize(entryKey, e.Key) + stringFieldSize(entryValue, e.Value)
}

func limitSize(l *Limit) int {
	return varintFieldSize(limitRequests, uint64(l.RequestsPerUnit)) + varintFieldSize(limitUnit, uint64(l.Unit))
}

func descriptorSize(d *Descriptor) int {
	n := 0
	for _, e := range d.Entries {
		n += protowire.SizeTag(descEntries) + protowire.SizeBytes(entrySize(e))
	}
	if d.Limit != nil {
		n += protowire.SizeTag(descLimit) + protowire.SizeBytes(limitSize(d.Limit))
	}
	if d.HasHits {
		n += protowire.SizeTag(descHits) + protowire.SizeBytes(varintFieldSize(wrapperValue, d.Hits))
	}
	return n
}

// Code is RateLimitResponse.Code.
type Code uint8

const (
	CodeUnknown   Code = 0
	CodeOK        Code = 1
	CodeOverLimit Code = 2
)

// Status is one RateLimitResponse.DescriptorStatus, in the order of the request's
// descriptors.
type Status struct {
	Code      Code
	Limit     Limit // zero when the answer had no current_limit
	Remaining uint32
	// ResetSeconds is duration_until_reset rounded up to whole seconds (0 when absent).
	ResetSeconds int64
}

// Response is the part of a RateLimitResponse the filter reads.
type Response struct {
	Overall  Code
	Statuses []Status
}

// MaxStatuses bounds the statuses a response may carry: the filter sends at most a few
// descriptors, and a decoder must not grow a slice without bound on hostile input.
const MaxStatuses = 16

// ErrMalformed is the cause of every decoding error.
var ErrMalformed = errors.New("rls: malformed response")

// DecodeResponse decodes a RateLimitResponse into r, reusing r.Statuses. Unknown fields are
// skipped, as protobuf requires; a known field with the wrong wire type, a truncated field,
// a code out of range or more than MaxStatuses statuses is an error wrapping ErrMalformed.
func DecodeResponse(b []byte, r *Response) error { return DecodeResponseMax(b, r, MaxStatuses) }

// DecodeResponseMax is DecodeResponse for a request of many descriptors (a usage read):
// at most maxStatuses statuses.
func DecodeResponseMax(b []byte, r *Response, maxStatuses int) error {
	r.Overall, r.Statuses = CodeUnknown, r.Statuses[:0]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("response tag", n)
		}
		b = b[n:]
		switch {
		case num == respOverallCode && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed("overall_code", n)
			}
			c, err := code(v)
			if err != nil {
				return err
			}
			r.Overall, b = c, b[n:]
		case num == respStatuses && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("statuses", n)
			}
			if len(r.Statuses) == maxStatuses {
				return fmt.Errorf("%w: more than %d statuses", ErrMalformed, maxStatuses)
			}
			var s Status
			if err := decodeStatus(v, &s); err != nil {
				return err
			}
			r.Statuses, b = append(r.Statuses, s), b[n:]
		case num == respOverallCode || num == respStatuses:
			return fmt.Errorf("%w: field %d has wire type %d", ErrMalformed, num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return malformed("unknown field", n)
			}
			b = b[n:]
		}
	}
	return nil
}

func decodeStatus(b []byte, s *Status) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("status tag", n)
		}
		b = b[n:]
		switch {
		case (num == statusCode || num == statusRemaining) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed("status", n)
			}
			b = b[n:]
			if num == statusRemaining {
				s.Remaining = uint32(v) // proto3 truncates a uint32 that was sent wider
				continue
			}
			c, err := code(v)
			if err != nil {
				return err
			}
			s.Code = c
		case (num == statusLimit || num == statusReset) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("status", n)
			}
			b = b[n:]
			var err error
			if num == statusLimit {
				err = decodeLimit(v, &s.Limit)
			} else {
				s.ResetSeconds, err = decodeDuration(v)
			}
			if err != nil {
				return err
			}
		case num >= statusCode && num <= statusReset:
			return fmt.Errorf("%w: status field %d has wire type %d", ErrMalformed, num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return malformed("unknown status field", n)
			}
			b = b[n:]
		}
	}
	return nil
}

func decodeLimit(b []byte, l *Limit) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("limit tag", n)
		}
		b = b[n:]
		if (num == limitRequests || num == limitUnit) && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed("limit", n)
			}
			b = b[n:]
			if num == limitRequests {
				l.RequestsPerUnit = uint32(v)
			} else {
				if v > uint64(Week) {
					return fmt.Errorf("%w: unit %d", ErrMalformed, v)
				}
				l.Unit = Unit(v)
			}
			continue
		}
		if num == limitRequests || num == limitUnit {
			return fmt.Errorf("%w: limit field %d has wire type %d", ErrMalformed, num, typ)
		}
		n = protowire.ConsumeFieldValue(num, typ, b) // name, unit_multiplier: not needed
		if n < 0 {
			return malformed("unknown limit field", n)
		}
		b = b[n:]
	}
	return nil
}

// decodeDuration reads a google.protobuf.Duration as whole seconds, rounded up; a negative
// duration reads as 0.
func decodeDuration(b []byte) (int64, error) {
	var sec, nanos int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, malformed("duration tag", n)
		}
		b = b[n:]
		if (num == durationSeconds || num == durationNanos) && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, malformed("duration", n)
			}
			b = b[n:]
			if num == durationSeconds {
				sec = int64(v)
			} else {
				nanos = int64(int32(v))
			}
			continue
		}
		if num == durationSeconds || num == durationNanos {
			return 0, fmt.Errorf("%w: duration field %d has wire type %d", ErrMalformed, num, typ)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, malformed("unknown duration field", n)
		}
		b = b[n:]
	}
	if nanos > 0 && sec < 1<<62 {
		sec++
	}
	return max(sec, 0), nil
}

func code(v uint64) (Code, error) {
	if v > uint64(CodeOverLimit) {
		return 0, fmt.Errorf("%w: code %d", ErrMalformed, v)
	}
	return Code(v), nil
}

func malformed(what string, n int) error {
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, protowire.ParseError(n))
}
