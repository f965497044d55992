package limit

import (
	"math"
	"math/bits"
	"time"
)

// femto is the number of femto-tokens in one token. Refill is elapsed nanoseconds times the
// rate in micro-tokens per second, which is exactly a number of femto-tokens (1e-9 × 1e-6),
// so no rounding happens between two updates and none accumulates over months.
const femto = 1_000_000_000_000_000

// MaxWait is what Wait returns when tokens never come: a rate of zero, or more tokens than
// the burst.
const MaxWait = time.Duration(math.MaxInt64)

// Bucket is the state of one token bucket: Tokens whole tokens plus Frac femto-tokens,
// as of Last (Unix nanoseconds). The zero value is a bucket never used, which is full.
// A Bucket is a value: the functions return the next state and never keep it.
type Bucket struct {
	Tokens int64  // whole tokens, 0 <= Tokens <= Burst
	Frac   uint64 // fraction of the next token in femto-tokens, < 1e15
	Last   int64  // Unix nanoseconds of the state; 0 = never used (full)
}

// RateMicro is the rate in micro-tokens per second that the arithmetic uses: Rate rounded to
// the nearest millionth of a token per second (0 for a rate that is not positive or finite).
func (th Throttle) RateMicro() uint64 {
	if !(th.Rate > 0) || math.IsInf(th.Rate, 1) {
		return 0
	}
	r := math.Round(th.Rate * 1e6)
	if r >= 1<<63 {
		return 1 << 63
	}
	return uint64(r)
}

// Advance returns b refilled up to t. A t before b.Last (the clock went backwards) adds
// nothing and leaves Last alone, so the lost interval is not counted twice later.
func (th Throttle) Advance(b Bucket, t time.Time) Bucket {
	now := t.UnixNano()
	burst := th.burst()
	if b.Last == 0 {
		if now == 0 { // keep the state distinguishable from "never used"
			now = -1
		}
		return Bucket{Tokens: burst, Last: now}
	}
	if b.Tokens > burst { // the burst was lowered by a new configuration
		b.Tokens, b.Frac = burst, 0
	}
	if now <= b.Last {
		return b
	}
	elapsed := uint64(now - b.Last)
	b.Last = now
	if b.Tokens == burst {
		b.Frac = 0
		return b
	}
	hi, lo := bits.Mul64(elapsed, th.RateMicro())
	if hi >= femto { // more than 2^64 tokens: full whatever the burst
		b.Tokens, b.Frac = burst, 0
		return b
	}
	whole, rem := bits.Div64(hi, lo, femto)
	if whole >= uint64(burst-b.Tokens) {
		b.Tokens, b.Frac = burst, 0
		return b
	}
	b.Tokens += int64(whole)
	b.Frac += rem
	if b.Frac >= femto {
		b.Frac -= femto
		b.Tokens++
	}
	if b.Tokens >= burst {
		b.Tokens, b.Frac = burst, 0
	}
	return b
}

// AllowN reports whether n tokens are available at t and, if so, returns the bucket with
// them taken. When they are not, the returned bucket is only refilled: a denied request
// consumes nothing.
func (th Throttle) AllowN(b Bucket, t time.Time, n int64) (Bucket, bool) {
	b = th.Advance(b, t)
	if n < 0 || b.Tokens < n {
		return b, false
	}
	b.Tokens -= n
	return b, true
}

// GiveN returns n tokens taken earlier (a later level denied the request), never above the
// burst.
func (th Throttle) GiveN(b Bucket, t time.Time, n int64) Bucket {
	b = th.Advance(b, t)
	burst := th.burst()
	if n <= 0 {
		return b
	}
	if n >= burst-b.Tokens {
		b.Tokens, b.Frac = burst, 0
		return b
	}
	b.Tokens += n
	return b
}

// Remaining is the number of whole tokens available at t.
func (th Throttle) Remaining(b Bucket, t time.Time) int64 {
	return th.Advance(b, t).Tokens
}

// Wait is how long after t the bucket holds n tokens: 0 if it does now, MaxWait if it never
// will (n above the burst, or a zero rate). Rounded up to the nanosecond, so AllowN at
// t+Wait succeeds.
func (th Throttle) Wait(b Bucket, t time.Time, n int64) time.Duration {
	b = th.Advance(b, t)
	return th.wait(b.Tokens, b.Frac, n)
}

// FillTime is how long an empty bucket takes to fill: Burst/Rate, rounded up to the
// nanosecond (MaxWait at rate zero).
func (th Throttle) FillTime() time.Duration {
	return th.wait(0, 0, th.burst())
}

// wait is the time until tokens+frac femto-tokens grow to n tokens.
func (th Throttle) wait(tokens int64, frac uint64, n int64) time.Duration {
	if tokens >= n {
		return 0
	}
	r := th.RateMicro()
	if n > th.burst() || r == 0 {
		return MaxWait
	}
	// deficit = (n-tokens)·1e15 − frac femto-tokens, in 128 bits.
	hi, lo := bits.Mul64(uint64(n-tokens), femto)
	var borrow uint64
	lo, borrow = bits.Sub64(lo, frac, 0)
	hi -= borrow
	if hi >= r {
		return MaxWait
	}
	ns, rem := bits.Div64(hi, lo, r)
	if rem > 0 {
		ns++
	}
	if ns > math.MaxInt64 {
		return MaxWait
	}
	return time.Duration(ns)
}

// UntilFull is how long after t the bucket is full again (0 if it is; MaxWait at rate zero).
func (th Throttle) UntilFull(b Bucket, t time.Time) time.Duration {
	return th.Wait(b, t, th.burst())
}

func (th Throttle) burst() int64 {
	if th.Burst < 0 {
		return 0
	}
	return th.Burst
}

// Seconds rounds d up to whole seconds, as Retry-After and RateLimit-Reset need: any wait
// is at least one second, and MaxWait stays very large instead of overflowing.
func Seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}
