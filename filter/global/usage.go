package global

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/state"
)

// The fleet's usage (AWS's GetUsage in global mode) is counted in RLS, beside the quota:
// one usage descriptor per key and UTC day, (plan, key, usage=dYYYYMMDD) with the limit
// UsageLimit on unit YEAR, which no count reaches, so RLS never refuses it and its
// limit_remaining is UsageLimit minus the day's count. The quota descriptor cannot serve:
// RLS counts refused hits too, and LEASE reserves chunks, so its count is not what was
// admitted. Each proxy adds exactly what it admitted: every admitted request goes into the
// proxy's UsageEntry (shared data, all its workers), and the proxy's next RLS call for the
// key (or the root context's tick, for a key gone quiet) carries it as the hits_addend of
// the day's usage descriptor.
//
// RLS has no idempotency: an answer that does not come back (timeout, reset) leaves
// unknown whether RLS counted the hits. They are not sent again, so a day's count never
// exceeds what the fleet admitted; they are counted as lost (UsageLost, the metric
// usageplans.global.usage_lost). While a proxy's calls fail, nothing is claimed (the
// entry's Failing), so an outage loses at most what one call carried.

// UsageLimit is the limit of a usage descriptor: RLS's largest, never reached.
const UsageLimit = math.MaxUint32

// UsageDays is how many UTC days a UsageEntry holds unsent: today and yesterday, so that a
// request admitted just before midnight is still sent with the day it was admitted on.
const UsageDays = 2

// UsageEntry is what one proxy admitted of one key in one plan and has not yet sent to
// RLS, per UTC day (days since 1970-01-01), newest first.
type UsageEntry struct {
	Day [UsageDays]int64
	N   [UsageDays]int64
	// Failing is 1 while the proxy's last call that carried usage got no usable answer:
	// nothing is claimed until a call is answered.
	Failing int64
}

// UsageEntryVersion is the encoding AppendUsageEntry writes: a version byte, then the
// five counts as unsigned varints (days, counts, Failing).
const UsageEntryVersion = 1

// UsageEntryKey is the shared-data key of one proxy's unsent usage of one key in one plan:
// bounded by the configuration. Its prefix differs from EntryKey's (":global:") and every
// key filter/state and filter/usage write.
func UsageEntryKey(namespace, planID, keyID string) string {
	return namespace + ":global-usage:" + planID + ":" + keyID
}

// AppendUsageEntry appends e's encoding to dst.
func AppendUsageEntry(dst []byte, e *UsageEntry) []byte {
	vs := [...]int64{e.Day[0], e.Day[1], e.N[0], e.N[1], e.Failing}
	return appendCounts(dst, UsageEntryVersion, vs[:])
}

// DecodeUsageEntry reads an entry AppendUsageEntry wrote; another version, a truncated or
// out-of-range count or trailing bytes is an error.
func DecodeUsageEntry(b []byte, e *UsageEntry) error {
	var vs [5]int64
	b, err := decodeCounts(b, UsageEntryVersion, "usage entry", 1<<53, vs[:])
	if err != nil {
		return err
	}
	if len(b) != 0 || vs[4] > 1 {
		return fmt.Errorf("%w: usage entry: %d bytes after the last count, failing %d", ErrEntryCorrupt, len(b), vs[4])
	}
	*e = UsageEntry{Day: [UsageDays]int64{vs[0], vs[1]}, N: [UsageDays]int64{vs[2], vs[3]}, Failing: vs[4]}
	return nil
}

// add counts n admitted requests on day. A day older than the entry holds, or the oldest
// day pushed out while it still held requests, is returned as lost.
func (e *UsageEntry) add(day, n int64) (lost int64) {
	switch {
	case e.N[0] == 0 && e.N[1] == 0:
		e.Day = [UsageDays]int64{day, day - 1}
	case day > e.Day[0]:
		if day-e.Day[0] == 1 {
			lost = e.N[1]
			e.Day[1], e.N[1] = e.Day[0], e.N[0]
		} else {
			lost = e.N[0] + e.N[1]
			e.Day[1], e.N[1] = day-1, 0
		}
		e.Day[0], e.N[0] = day, 0
	}
	for i := range e.Day {
		if e.Day[i] == day {
			e.N[i] += n
			return lost
		}
	}
	return lost + n
}

// UsageClaim is what one call carries of a proxy's unsent usage of one key.
type UsageClaim struct {
	Day [UsageDays]int64
	N   [UsageDays]int64
}

// Total is the requests the claim carries.
func (c *UsageClaim) Total() int64 { return c.N[0] + c.N[1] }

// claim moves the entry's unsent usage into c, unless the proxy's calls are failing.
func (e *UsageEntry) claim(c *UsageClaim) bool {
	*c = UsageClaim{}
	if e.Failing != 0 || e.N[0]+e.N[1] == 0 {
		return false
	}
	c.Day, c.N = e.Day, e.N
	e.N = [UsageDays]int64{}
	return true
}

// UsageDay names a UTC day (days since 1970-01-01) in a usage descriptor: "d20261203".
func UsageDay(day int64) string {
	y, m, d := civilDate(day)
	b := append(make([]byte, 0, 9), 'd')
	b = strconv.AppendInt(b, y, 10)
	return string(two(two(b, m), d))
}

// usageLimit is the limit of every usage descriptor; RLS only reads it.
var usageLimit = rls.Limit{RequestsPerUnit: UsageLimit, Unit: rls.Year}

// UsageDescriptor is the usage descriptor of day for a plan and key (descriptor values, see
// Value), adding hits.
func UsageDescriptor(plan, key string, day int64, hits int64) rls.Descriptor {
	return rls.Descriptor{Entries: []rls.Entry{{Key: "plan", Value: plan}, {Key: "key", Value: key}, {Key: "usage", Value: UsageDay(day)}},
		Limit: &usageLimit, Hits: uint64(hits), HasHits: true}
}

// QuotaDescriptor is the quota descriptor of a plan's quota q for key in window w, adding
// hits: the one Quota.Begin sends, built apart for readers (hits 0).
func QuotaDescriptor(plan, key string, q *limit.Quota, w Window, hits int64) rls.Descriptor {
	return rls.Descriptor{Entries: []rls.Entry{{Key: "plan", Value: plan}, {Key: "key", Value: key}, {Key: "period", Value: PeriodID(q, w)}},
		Limit: &rls.Limit{RequestsPerUnit: uint32(q.Limit), Unit: w.Unit}, Hits: uint64(hits), HasHits: true}
}

// UsedOf is the count a usage descriptor's status says: UsageLimit less its remaining.
func UsedOf(st rls.Status) int64 {
	if st.Code != rls.CodeOK {
		return UsageLimit
	}
	return UsageLimit - int64(st.Remaining)
}

// UsageWindowStart is the first UTC day (days since 1970-01-01) whose usage RLS can still
// answer at Unix second now: usage descriptors live on unit YEAR, whose windows are 365
// days from the epoch, and a read in a window sees only the counts of that window.
func UsageWindowStart(now int64) int64 { return rls.Year.WindowStart(now) / 86400 }

// ReadAnswer checks a call's answer and decodes its statuses into resp: want of them, in
// the order of the request's descriptors.
func ReadAnswer(a Answer, resp *rls.Response, want int) error {
	if a.Failed {
		return errors.New("global: no answer from RLS (timeout or connection failure)")
	}
	if err := rls.CallStatus(a.Headers, a.Trailers); err != nil {
		return err
	}
	msg, err := rls.Unframe(a.Body)
	if err != nil {
		return err
	}
	if err := rls.DecodeResponseMax(msg, resp, max(want, rls.MaxStatuses)); err != nil {
		return err
	}
	if len(resp.Statuses) != want {
		return fmt.Errorf("%w: %d statuses for %d descriptors", ErrNoStatus, len(resp.Statuses), want)
	}
	for _, st := range resp.Statuses {
		if st.Code == rls.CodeUnknown {
			return ErrUnknown
		}
	}
	return nil
}

// The ways a usage entry is settled: after a call RLS answered, after one it did not, or
// without a call (a request served from a lease).
const (
	noCall = iota
	answeredCall
	unansweredCall
)

// countUsage settles the proxy's usage entry of a key: admitted requests are added to
// today; after a call, its claim c (nil: none) is done when RLS answered, and lost (not sent
// again) when it did not, and the entry's Failing follows the call. It returns the
// requests lost.
func (qt *Quota) countUsage(cfg *config.Config, entry string, today, admitted int64, c *UsageClaim, call int, store state.Store) (lost int64, err error) {
	err = updateUsage(store, entry, max(cfg.CASRetries, 16), &qt.ubuf, func(e *UsageEntry) bool {
		lost = 0
		write := false
		switch call {
		case answeredCall:
			write = e.Failing != 0
			e.Failing = 0
		case unansweredCall:
			write = e.Failing != 1
			e.Failing = 1
			if c != nil {
				lost += c.Total()
			}
		}
		if admitted > 0 {
			lost += e.add(today, admitted)
			write = true
		}
		return write
	})
	return lost, err
}

// claimUsage takes the proxy's unsent usage of a key for a call, into c.
func (qt *Quota) claimUsage(cfg *config.Config, entry string, c *UsageClaim, store state.Store) error {
	return updateUsage(store, entry, max(cfg.CASRetries, 16), &qt.ubuf, func(e *UsageEntry) bool { return e.claim(c) })
}

// updateUsage is update for usage entries.
func updateUsage(store state.Store, key string, attempts int, buf *[]byte, decide func(e *UsageEntry) bool) error {
	return readDecideWrite(store, key, attempts, buf, func(*UsageEntry) {}, DecodeUsageEntry, AppendUsageEntry, decide)
}
