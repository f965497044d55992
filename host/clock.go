package host

import (
	"sync"
	"time"
)

// Clock is the time source of a Runtime: the wall clock (proxy_get_current_time_nanoseconds,
// WASI clock_time_get realtime, the request.time property) and the monotonic clock (WASI
// clock_time_get monotonic). Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the wall-clock time.
	Now() time.Time
	// Nanotime returns monotonic nanoseconds from an arbitrary origin; it never decreases.
	Nanotime() int64
}

// SystemClock is the real clock; its monotonic clock reads one second when it is created
// (never 0: the Go runtime in the guest aborts on a zero monotonic clock).
type SystemClock struct{ start time.Time }

// NewSystemClock returns the real clock.
func NewSystemClock() *SystemClock { return &SystemClock{start: time.Now()} }

// Now implements Clock.
func (c *SystemClock) Now() time.Time { return time.Now() }

// Nanotime implements Clock.
func (c *SystemClock) Nanotime() int64 { return int64(time.Since(c.start) + time.Second) }

// FakeClock is a Clock that moves only when told to, so tests can cross a second, a day or a
// month without sleeping. The zero value is not usable; use NewFakeClock. Safe for concurrent
// use.
type FakeClock struct {
	mu   sync.Mutex
	wall time.Time
	mono int64
}

// NewFakeClock returns a FakeClock reading wall-clock time t and monotonic time one second:
// never 0, since the Go runtime in the guest aborts when its monotonic clock reads 0.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{wall: t, mono: int64(time.Second)} }

// Now implements Clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

// Nanotime implements Clock.
func (c *FakeClock) Nanotime() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Advance moves both clocks forward by d; a negative d moves only the wall clock back (a
// monotonic clock never goes backwards, a wall clock may).
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
	if d > 0 {
		c.mono += int64(d)
	}
}

// Set sets the wall clock to t and leaves the monotonic clock where it is, as an NTP step does.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = t
}
