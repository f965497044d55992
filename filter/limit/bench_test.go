package limit

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// BenchmarkAllow compares one admit decision of Bucket with x/time/rate's Limiter (which
// also locks a mutex); report the ratio, not the absolute time.
func BenchmarkAllow(b *testing.B) {
	th := Throttle{Rate: 1e6, Burst: 1000}
	b.Run("Bucket", func(b *testing.B) {
		var bk Bucket
		at := t0
		for b.Loop() {
			bk, _ = th.AllowN(bk, at, 1)
			at = at.Add(time.Microsecond)
		}
	})
	b.Run("x-time-rate", func(b *testing.B) {
		lim := rate.NewLimiter(rate.Limit(th.Rate), int(th.Burst))
		at := t0
		for b.Loop() {
			lim.AllowN(at, 1)
			at = at.Add(time.Microsecond)
		}
	})
	b.Run("Quota", func(b *testing.B) {
		q := Quota{Limit: 1 << 62, Period: Month}
		var c Counter
		at := t0
		for b.Loop() {
			c, _ = q.AllowN(c, at, 1)
			at = at.Add(time.Microsecond)
		}
	})
}
