// Package limit holds the arithmetic of usage plans: exact fixed-point token buckets and
// quotas over UTC calendar periods; it is pure, and every function takes the time as an
// argument.
//
// Quota.Offset follows the AWS API reference: it is subtracted from the limit in the
// initial period, which here is the period that holds the first request the key's counter
// saw, admitted or not (Counter.Created, kept in the state).
package limit

import "time"

// Throttle is a token bucket as AWS describes it: Rate tokens are added per second to a
// bucket that holds at most Burst tokens; one request takes one token.
type Throttle struct {
	Rate  float64 // tokens per second, > 0 (fractional rates such as 0.5 are allowed)
	Burst int64   // capacity in tokens, >= 0
}

// Period is the length of a quota window, aligned to UTC calendar boundaries.
type Period uint8

const (
	Day Period = iota + 1
	Week
	Month
)

// Quota is the number of requests a key may make in one calendar period.
type Quota struct {
	Limit     int64        // requests per period, >= 0
	Offset    int64        // requests subtracted from Limit in the initial period (AWS API reference)
	Period    Period       // Day, Week or Month
	WeekStart time.Weekday // first day of a Week period; time.Monday unless configured
}
