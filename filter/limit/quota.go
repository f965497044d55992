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
	s, e := q.span(t.Unix())
	return unixUTC(s), unixUTC(e)
}

// QuotaAt is q as of one instant, with the calendar window that holds the instant worked
// out once: a decision asks the quota several questions at the same instant (allowed?
// remaining? reset? window?), and in Wasm the calendar arithmetic repeated for each one was
// the costliest part of a request. Its methods answer exactly as the Quota methods of the
// same names do at that instant.
type QuotaAt struct {
	q          Quota
	now        int64 // Unix seconds
	start, end int64 // the window that holds now, Unix seconds
	grant      int64 // added to the limit of the window that holds now (SetGrant)
}

// SetGrant adds g requests (fewer when g < 0) to what the window that holds the instant
// allows: an UpdateUsage grant, which ends with its window.
func (a *QuotaAt) SetGrant(g int64) { a.grant = g }

// LimitOf is Quota.LimitOf with the grant when c counts in the window that holds the
// instant; never below zero.
func (a *QuotaAt) LimitOf(c Counter) int64 {
	lim := a.q.LimitOf(c)
	if a.grant != 0 && c.Window == a.start {
		lim += a.grant
	}
	return max(lim, 0)
}

// At returns q as of t.
func (q Quota) At(t time.Time) QuotaAt {
	now := t.Unix()
	start, end := q.span(now)
	return QuotaAt{q: q, now: now, start: start, end: end}
}

// Window is the calendar period that holds the instant: [start, end).
func (a *QuotaAt) Window() (start, end time.Time) { return unixUTC(a.start), unixUTC(a.end) }

// Seconds is the length of the window that holds the instant, in seconds.
func (a *QuotaAt) Seconds() int64 { return a.end - a.start }

// Advance returns c as of t: a counter never used starts its initial period at t, and a
// window that has ended starts over at zero. A t earlier than the counter's window (the
// clock went backwards over a boundary) keeps counting in the current window.
func (q Quota) Advance(c Counter, t time.Time) Counter {
	a := q.At(t)
	return a.Advance(c)
}

// Advance is Quota.Advance at the instant.
func (a *QuotaAt) Advance(c Counter) Counter {
	if c.Created == 0 {
		created := a.now
		if created == 0 {
			created = -1 // keep the state distinguishable from "never used"
		}
		return Counter{Window: a.start, Created: created}
	}
	if a.start > c.Window {
		c.Window, c.Used = a.start, 0
	}
	return c
}

// LimitOf is the number of requests c's window allows: Limit, less Offset in the initial
// period (the window that holds c.Created), never below zero.
func (q Quota) LimitOf(c Counter) int64 {
	lim := q.Limit
	if c.Created != 0 && q.Offset != 0 {
		if first, _ := q.span(c.Created); first == c.Window {
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
	a := q.At(t)
	return a.AllowN(c, n)
}

// AllowN is Quota.AllowN at the instant.
func (a *QuotaAt) AllowN(c Counter, n int64) (Counter, bool) {
	c = a.Advance(c)
	if n < 0 || n > a.LimitOf(c)-c.Used {
		return c, false
	}
	c.Used += n
	return c, true
}

// GiveN uncounts n requests counted earlier in the same window (a later level denied the
// request). Requests of a window that has ended are gone with it.
func (q Quota) GiveN(c Counter, t time.Time, n int64, window int64) Counter {
	a := q.At(t)
	return a.GiveN(c, n, window)
}

// GiveN is Quota.GiveN at the instant.
func (a *QuotaAt) GiveN(c Counter, n int64, window int64) Counter {
	c = a.Advance(c)
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
	a := q.At(t)
	return a.Remaining(c)
}

// Remaining is Quota.Remaining at the instant.
func (a *QuotaAt) Remaining(c Counter) int64 {
	c = a.Advance(c)
	if r := a.LimitOf(c) - c.Used; r > 0 {
		return r
	}
	return 0
}

// Reset is the end of c's current window as of t: when the counter starts over.
func (q Quota) Reset(c Counter, t time.Time) time.Time {
	a := q.At(t)
	return a.Reset(c)
}

// Reset is Quota.Reset at the instant.
func (a *QuotaAt) Reset(c Counter) time.Time {
	c = a.Advance(c)
	if c.Window == a.start {
		return unixUTC(a.end)
	}
	// The clock went backwards over a boundary: c counts in a later window than now's.
	_, end := a.q.span(c.Window)
	return unixUTC(end)
}

// unixUTC is the instant sec in UTC, the same value time.Date(..., time.UTC) gives.
func unixUTC(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

const secondsPerDay = 24 * 60 * 60

// span is Window in Unix seconds, by integer arithmetic on days: time.Date and AddDate cost
// several hundred nanoseconds each in Wasm.
func (q Quota) span(sec int64) (start, end int64) {
	days := floorDiv(sec, secondsPerDay)
	switch q.Period {
	case Week:
		// 1970-01-01 was a Thursday. The same expression as a time.Weekday would give, so a
		// WeekStart outside Sunday..Saturday behaves as it always did.
		wd := int(floorMod(days+int64(time.Thursday), 7))
		back := (wd - int(q.WeekStart) + 7) % 7
		start = (days - int64(back)) * secondsPerDay
		return start, start + 7*secondsPerDay
	case Month:
		y, m := civil(days)
		start = daysFromCivil(y, m) * secondsPerDay
		if m == 12 {
			y, m = y+1, 1
		} else {
			m++
		}
		return start, daysFromCivil(y, m) * secondsPerDay
	default: // Day, and an unset Period: the shortest window is the safe reading
		start = days * secondsPerDay
		return start, start + secondsPerDay
	}
}

// The proleptic Gregorian calendar repeats every 400 years (an era) of 146097 days. Counting
// years from March makes the leap day the last day of a year, so a month's first day is a
// linear function of its index: March = 0 starts at day 0, each month of 30.6 days.
const (
	daysPerEra        = 146097
	daysFromMarch0000 = 719468 // from 0000-03-01 to 1970-01-01
)

// civil is the year and month (1 to 12) of the day that is days after 1970-01-01.
func civil(days int64) (year int64, month int) {
	z := days + daysFromMarch0000
	era := floorDiv(z, daysPerEra)
	doe := z - era*daysPerEra                                      // day of the era, 0..146096
	yoe := (doe - doe/1460 + doe/36524 - doe/(daysPerEra-1)) / 365 // year of the era, 0..399
	doy := doe - (365*yoe + yoe/4 - yoe/100)                       // day of the March-based year, 0..365
	mp := (5*doy + 2) / 153                                        // month from March, 0..11
	year = era*400 + yoe
	if mp >= 10 { // January and February belong to the next calendar year
		return year + 1, int(mp) - 9
	}
	return year, int(mp) + 3
}

// daysFromCivil is the number of days from 1970-01-01 to the 1st of month in year.
func daysFromCivil(year int64, month int) int64 {
	mp := int64(month) - 3 // month from March
	if month <= 2 {
		year--
		mp += 12
	}
	era := floorDiv(year, 400)
	yoe := year - era*400
	doy := (153*mp + 2) / 5 // the 1st of the month
	doe := 365*yoe + yoe/4 - yoe/100 + doy
	return era*daysPerEra + doe - daysFromMarch0000
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }
