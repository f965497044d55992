package limit

import "time"

// Counter is the state of one key's quota: Used requests counted in the window that starts
// at Window, and Created, the instant the counter was first used, which marks the initial
// period for Quota.Offset. Both instants are Unix seconds. The zero value is a counter never
// used.
type Counter struct {
	Window  int64 // Unix seconds of the start of the window Used belongs to
	Used    int64 // requests admitted in that window
	Created int64 // Unix seconds of the first request seen; 0 = never used
}

// Window returns the UTC calendar period that holds t: [start, end). A Day starts at 00:00
// UTC, a Week at 00:00 UTC of q.WeekStart, a Month at 00:00 UTC of its 1st.
func (q Quota) Window(t time.Time) (start, end time.Time) {
	t = t.UTC()
	y, m, d := t.Date()
	switch q.Period {
	case Week:
		back := (int(t.Weekday()) - int(q.WeekStart) + 7) % 7
		start = time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 7)
	case Month:
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	default: // Day, and an unset Period: the shortest window is the safe reading
		start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	}
}

// Advance returns c as of t: a counter never used starts its initial period at t, and a
// window that has ended starts over at zero. A t earlier than the counter's window (the
// clock went backwards over a boundary) keeps counting in the current window.
func (q Quota) Advance(c Counter, t time.Time) Counter {
	start, _ := q.Window(t)
	s := start.Unix()
	if c.Created == 0 {
		created := t.Unix()
		if created == 0 {
			created = -1 // keep the state distinguishable from "never used"
		}
		return Counter{Window: s, Created: created}
	}
	if s > c.Window {
		c.Window, c.Used = s, 0
	}
	return c
}

// LimitOf is the number of requests c's window allows: Limit, less Offset in the initial
// period (the window that holds c.Created), never below zero.
func (q Quota) LimitOf(c Counter) int64 {
	lim := q.Limit
	if c.Created != 0 {
		first, _ := q.Window(time.Unix(c.Created, 0))
		if first.Unix() == c.Window {
			lim -= q.Offset
		}
	}
	if lim < 0 {
		return 0
	}
	return lim
}

// AllowN reports whether n more requests fit in the window that holds t and, if so, returns
// the counter with them counted. A denied request is not counted.
func (q Quota) AllowN(c Counter, t time.Time, n int64) (Counter, bool) {
	c = q.Advance(c, t)
	if n < 0 || n > q.LimitOf(c)-c.Used {
		return c, false
	}
	c.Used += n
	return c, true
}

// GiveN uncounts n requests counted earlier in the same window (a later level denied the
// request). Requests of a window that has ended are gone with it.
func (q Quota) GiveN(c Counter, t time.Time, n int64, window int64) Counter {
	c = q.Advance(c, t)
	if c.Window != window || n <= 0 {
		return c
	}
	c.Used -= n
	if c.Used < 0 {
		c.Used = 0
	}
	return c
}

// Remaining is the number of requests left in the window that holds t.
func (q Quota) Remaining(c Counter, t time.Time) int64 {
	c = q.Advance(c, t)
	if r := q.LimitOf(c) - c.Used; r > 0 {
		return r
	}
	return 0
}

// Reset is the end of c's current window as of t: when the counter starts over.
func (q Quota) Reset(c Counter, t time.Time) time.Time {
	c = q.Advance(c, t)
	_, end := q.Window(time.Unix(c.Window, 0))
	return end
}
