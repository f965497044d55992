// Package global is the pure logic of global mode: a plan's quota counted once per key
// across the fleet by the Rate Limit Service (RLS). It builds the descriptors, maps UTC
// calendar periods onto RLS's epoch-aligned windows, keeps each proxy's share of the count
// in shared data (leases, carry-over, local fallback) and turns RLS's answers into
// decisions. Time is an argument; nothing here talks to the proxy.
package global

import (
	"strconv"

	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/rls"
)

// Window is where one quota period lives in RLS at one instant.
//
// RLS counts in windows that start at floor(now / unit) × unit Unix seconds: a DAY window is
// a UTC day, a WEEK starts on Thursday, a MONTH is a flat 30 days and a YEAR 365 days. A
// calendar period maps onto them like this:
//
//   - DAY: unit DAY; the RLS window is the period.
//   - WEEK starting on Thursday: unit WEEK; the RLS window is the period.
//   - any other WEEK, and MONTH: unit YEAR, with the period's id in the descriptor, so that
//     two periods never share a count. A YEAR window boundary falls inside such a period
//     about once a year (a boundary every 365 days; see YearBoundaries): from it on, RLS
//     counts in a new key, and each proxy carries over, once, what it admitted itself in the
//     period before the boundary (Entry.Admitted, sent as hits_addend).
type Window struct {
	Start, End int64    // the calendar period, Unix seconds, [Start, End)
	Unit       rls.Unit // the RLS unit its count lives on
	Engine     int64    // the start of RLS's window of Unit that holds the instant
}

// WindowAt is the window of q at Unix second now.
func WindowAt(q *limit.Quota, now int64) Window {
	a := q.At(unixTime(now))
	s, e := a.Window()
	w := Window{Start: s.Unix(), End: e.Unix(), Unit: unitOf(q)}
	w.Engine = w.Unit.WindowStart(now)
	return w
}

func unitOf(q *limit.Quota) rls.Unit {
	switch {
	case q.Period == limit.Week && q.WeekStart == thursday:
		return rls.Week
	case q.Period == limit.Week || q.Period == limit.Month:
		return rls.Year
	}
	return rls.Day
}

// Exact reports whether the RLS window is the calendar period itself: no engine boundary
// can fall inside it, and the count needs no carry-over.
func (w Window) Exact() bool { return w.Unit != rls.Year }

// Splits reports whether an RLS window boundary falls strictly inside the period: then the
// count is carried over at that boundary (see Window).
func (w Window) Splits() bool {
	if w.Exact() {
		return false
	}
	d := w.Unit.Seconds()
	next := (w.Start/d + 1) * d
	return next < w.End
}

// PeriodID names the period in a descriptor: "d20261203" (a day), "w20261130" (the week
// starting that day), "m202612" (a month). Ids hold no '_', which RLS uses to join its
// Redis keys.
func PeriodID(q *limit.Quota, w Window) string {
	y, m, d := civilDate(floorDiv(w.Start, 86400))
	b := make([]byte, 0, 9)
	switch q.Period {
	case limit.Month:
		b = append(b, 'm')
		b = strconv.AppendInt(b, y, 10)
		return string(two(b, m))
	case limit.Week:
		b = append(b, 'w')
	default:
		b = append(b, 'd')
	}
	b = strconv.AppendInt(b, y, 10)
	return string(two(two(b, m), d))
}

// civilDate is the proleptic Gregorian date of the day that is days after 1970-01-01, by
// integer arithmetic: time.Time.Date would link the time zone code into the module. Years
// are counted from March, which puts the leap day last; a 400-year era has 146097 days.
func civilDate(days int64) (year int64, month, day int) {
	z := days + 719468 // days from 0000-03-01
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = int(doy - (153*mp+2)/5 + 1)
	year = era*400 + yoe
	if mp >= 10 {
		return year + 1, int(mp) - 9, day
	}
	return year, int(mp) + 3, day
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func two(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// YearBoundaries lists the starts of RLS YEAR windows in [from, to) (Unix seconds): the
// instants at which a WEEK or MONTH count that lives on unit YEAR is carried over.
func YearBoundaries(from, to int64) []int64 {
	d := rls.Year.Seconds()
	var out []int64
	for b := (from + d - 1) / d * d; b < to; b += d {
		out = append(out, b)
	}
	return out
}
