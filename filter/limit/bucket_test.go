package limit

import (
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// t0 is an arbitrary instant; steps are offsets from it.
var t0 = time.Date(2026, time.March, 14, 15, 9, 26, 0, time.UTC)

const ms = time.Millisecond

type bucketStep struct {
	at        time.Duration // offset from t0
	n         int64
	ok        bool
	remaining int64         // whole tokens after the step
	wait      time.Duration // Wait(.., 1) after the step
}

func runBucket(t *testing.T, th Throttle, steps []bucketStep) {
	t.Helper()
	var b Bucket
	for i, s := range steps {
		at := t0.Add(s.at)
		var ok bool
		b, ok = th.AllowN(b, at, s.n)
		if ok != s.ok {
			t.Fatalf("step %d (t0%+v, n=%d): ok = %v, want %v", i, s.at, s.n, ok, s.ok)
		}
		if got := th.Remaining(b, at); got != s.remaining {
			t.Fatalf("step %d (t0%+v): remaining = %d, want %d", i, s.at, got, s.remaining)
		}
		if got := th.Wait(b, at, 1); got != s.wait {
			t.Fatalf("step %d (t0%+v): wait = %v, want %v", i, s.at, got, s.wait)
		}
	}
}

func TestBucketFractionalRate(t *testing.T) {
	runBucket(t, Throttle{Rate: 0.5, Burst: 1}, []bucketStep{
		{0, 1, true, 0, 2 * time.Second},
		{time.Second, 1, false, 0, time.Second},
		{1999 * ms, 1, false, 0, ms},
		{2 * time.Second, 1, true, 0, 2 * time.Second},
		{5 * time.Second, 1, true, 0, 2 * time.Second}, // 1.5 tokens accrued, capped at 1
		{6 * time.Second, 1, false, 0, time.Second},    // the capped half token is gone
		{7 * time.Second, 1, true, 0, 2 * time.Second},
	})
}

func TestBucketBurst(t *testing.T) {
	runBucket(t, Throttle{Rate: 10, Burst: 3}, []bucketStep{
		{0, 1, true, 2, 0},
		{0, 1, true, 1, 0},
		{0, 1, true, 0, 100 * ms},
		{0, 1, false, 0, 100 * ms},
		{50 * ms, 1, false, 0, 50 * ms},
		{100 * ms, 1, true, 0, 100 * ms},
		{time.Hour, 3, true, 0, 100 * ms}, // refilled to the burst, not beyond
		{time.Hour, 1, false, 0, 100 * ms},
		{time.Hour + 250*ms, 2, true, 0, 50 * ms},
		{time.Hour + 250*ms, 4, false, 0, 50 * ms}, // more than the burst: never
	})
}

func TestBucketThirdOfASecond(t *testing.T) {
	// 1/3 s is not a whole number of nanoseconds: the wait rounds up, so AllowN at t+wait
	// succeeds and one nanosecond earlier fails.
	// Burst 2, emptied at once, so the bucket is never full and no fraction is capped away.
	runBucket(t, Throttle{Rate: 3, Burst: 2}, []bucketStep{
		{0, 2, true, 0, 333_333_334},
		{333_333_333, 1, false, 0, 1},
		{333_333_334, 1, true, 0, 333_333_333}, // the 2/3 ns surplus carries over
		{666_666_666, 1, false, 0, 1},
		{666_666_667, 1, true, 0, 333_333_333},
		{time.Second, 1, true, 0, 333_333_334},
	})
}

func TestBucketClockBackwards(t *testing.T) {
	runBucket(t, Throttle{Rate: 1, Burst: 1}, []bucketStep{
		{0, 1, true, 0, time.Second},
		{-10 * time.Second, 1, false, 0, time.Second}, // no refill for going back
		{500 * ms, 1, false, 0, 500 * ms},             // the backwards step did not move Last
		{time.Second, 1, true, 0, time.Second},
		{-time.Hour, 1, false, 0, time.Second},
		{2 * time.Second, 1, true, 0, time.Second},
	})
}

func TestBucketZeroBurstAndZeroRate(t *testing.T) {
	runBucket(t, Throttle{Rate: 5, Burst: 0}, []bucketStep{
		{0, 1, false, 0, MaxWait},
		{time.Hour, 1, false, 0, MaxWait},
		{time.Hour, 0, true, 0, MaxWait},
	})
	runBucket(t, Throttle{Rate: 0, Burst: 2}, []bucketStep{
		{0, 1, true, 1, 0},
		{0, 1, true, 0, MaxWait},
		{1000 * time.Hour, 1, false, 0, MaxWait},
	})
}

func TestBucketGive(t *testing.T) {
	th := Throttle{Rate: 1, Burst: 2}
	var b Bucket
	b, _ = th.AllowN(b, t0, 2)
	b = th.GiveN(b, t0, 1)
	if b.Tokens != 1 || b.Frac != 0 {
		t.Fatalf("after give: %+v, want 1 token", b)
	}
	b = th.GiveN(b, t0.Add(500*ms), 5)
	if b.Tokens != 2 || b.Frac != 0 {
		t.Fatalf("give above burst: %+v, want the burst (2) and no fraction", b)
	}
}

func TestBucketLoweredBurst(t *testing.T) {
	// A new configuration with a smaller burst caps tokens saved under the old one.
	b := Bucket{Tokens: 100, Last: t0.UnixNano()}
	th := Throttle{Rate: 1, Burst: 5}
	if got := th.Remaining(b, t0); got != 5 {
		t.Fatalf("remaining = %d, want 5", got)
	}
}

func TestBucketUntilFull(t *testing.T) {
	th := Throttle{Rate: 4, Burst: 10}
	b, _ := th.AllowN(Bucket{}, t0, 10)
	if got := th.UntilFull(b, t0); got != 2500*ms {
		t.Fatalf("UntilFull = %v, want 2.5s", got)
	}
	if got := Seconds(th.UntilFull(b, t0)); got != 3 {
		t.Fatalf("Seconds = %d, want 3", got)
	}
	for _, tt := range []struct {
		th   Throttle
		want time.Duration
	}{
		{th, 2500 * ms}, {Throttle{Rate: 3, Burst: 1}, 333_333_334}, {Throttle{Rate: 0, Burst: 1}, MaxWait},
		{Throttle{Rate: 1, Burst: 0}, 0},
	} {
		if got := tt.th.FillTime(); got != tt.want {
			t.Errorf("FillTime(%+v) = %v, want %v", tt.th, got, tt.want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0}, {-time.Second, 0}, {1, 1}, {time.Second, 1}, {time.Second + 1, 2},
		{59*time.Second + 999*ms, 60}, {MaxWait, 9223372037},
	} {
		if got := Seconds(tt.d); got != tt.want {
			t.Errorf("Seconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestRateMicro(t *testing.T) {
	for _, tt := range []struct {
		rate float64
		want uint64
	}{
		{0.5, 500_000}, {0.1, 100_000}, {1.0 / 3, 333_333}, {10000, 10_000_000_000},
		{0, 0}, {-1, 0}, {4e-7, 0}, {6e-7, 1},
	} {
		if got := (Throttle{Rate: tt.rate}).RateMicro(); got != tt.want {
			t.Errorf("RateMicro(%v) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}

// TestBucketNoDrift refills a bucket over a month in a million uneven steps: the tokens
// gained equal the whole month's refill to the femto-token, which a float accumulator or
// a per-step rounding would miss.
func TestBucketNoDrift(t *testing.T) {
	th := Throttle{Rate: 0.3, Burst: 1_000_000}
	b, ok := th.AllowN(Bucket{}, t0, 1_000_000)
	if !ok {
		t.Fatal("the first take of the full burst was denied")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	at := t0
	const month = 30 * 24 * time.Hour
	for at.Before(t0.Add(month)) {
		at = at.Add(time.Duration(rng.Int64N(int64(5*time.Second))) + 1)
		b = th.Advance(b, at)
	}
	// femto-tokens gained: elapsed ns × 300,000 micro-tokens/s, computed independently
	total := new(big.Int).Mul(big.NewInt(int64(at.Sub(t0))), big.NewInt(300_000))
	whole, frac := new(big.Int).QuoRem(total, big.NewInt(femto), new(big.Int))
	if got, want := b.Tokens, whole.Int64(); got != want {
		t.Fatalf("tokens = %d, want %d", got, want)
	}
	if got, want := b.Frac, frac.Uint64(); got != want {
		t.Fatalf("fraction = %d, want %d", got, want)
	}
}

// TestBucketMatchesXTimeRate runs seeded random schedules through Bucket and through
// golang.org/x/time/rate's Limiter.AllowN and expects the same admit/deny sequence.
// Tolerance rule: x/time/rate counts in float64 and truncates its wait to the nanosecond,
// so at an exact boundary it may disagree by a rounding error; arrivals where the exact
// token count (from Bucket) is within 1e-5 token of the one needed are moved 1 ms later
// before either limiter sees them, so every compared answer is unambiguous.
func TestBucketMatchesXTimeRate(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int64
	}{
		{0.5, 1}, {1, 1}, {3, 1}, {0.1, 2}, {2.5, 5}, {7, 3}, {100, 20}, {1000, 1}, {0.25, 10},
	} {
		for seed := uint64(1); seed <= 4; seed++ {
			th := Throttle{Rate: tc.rate, Burst: tc.burst}
			lim := rate.NewLimiter(rate.Limit(tc.rate), int(tc.burst))
			rng := rand.New(rand.NewPCG(seed, uint64(tc.burst)))
			// mean gap around one token interval, so both outcomes are frequent
			mean := time.Duration(float64(time.Second) / tc.rate)
			var b Bucket
			at := t0
			admitted := 0
			for i := 0; i < 3000; i++ {
				at = at.Add(time.Duration(rng.Int64N(int64(2 * mean))))
				for nearBoundary(th, b, at) {
					at = at.Add(ms)
				}
				var ok bool
				b, ok = th.AllowN(b, at, 1)
				if want := lim.AllowN(at, 1); ok != want {
					t.Fatalf("rate %v burst %d seed %d step %d (t0%+v): Bucket says %v, x/time/rate says %v",
						tc.rate, tc.burst, seed, i, at.Sub(t0), ok, want)
				}
				if ok {
					admitted++
				}
			}
			if admitted == 0 || admitted == 3000 {
				t.Fatalf("rate %v burst %d seed %d: schedule admitted %d of 3000, not a useful mix",
					tc.rate, tc.burst, seed, admitted)
			}
		}
	}
}

// nearBoundary reports whether the exact number of tokens at t is within 1e-5 token of 1.
func nearBoundary(th Throttle, b Bucket, t time.Time) bool {
	b = th.Advance(b, t)
	const eps = femto / 100_000
	switch b.Tokens {
	case 0:
		return b.Frac >= femto-eps
	case 1:
		return b.Frac <= eps && th.Burst > 1
	}
	return false
}
