package global

import (
	"fmt"
	"strconv"

	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/rls"
)

// Grants (AWS's UpdateUsage, "replace /remaining N") in global mode live in RLS, beside the
// quota, in the quota's period and RLS unit, so that a grant ends with its period and
// reaches every proxy:
//
//   - the generation counter (plan, key, grant=<period id>): an admin adds 1 and reads its
//     own generation G from the answer (UsageLimit less limit_remaining): two racing admins
//     never share one;
//   - the value of generation G (plan, key, grant=<period id>.<G>): the admin that owns G adds
//     E + 1 to it, once, where E is the quota's new effective limit, RLS's count of the
//     period when the admin read it plus N; 0 is "not written yet".
//
// The grant in force is the value of the highest generation that has one: replace, never
// add, so a grant is applied once however admins race (the higher generation wins). Each
// proxy keeps the generation and limit it last saw (GrantEntry), sends the limit E with its
// quota descriptor, and in the same call reads the generation counter, the values of the
// next two generations and RLS's count of the period after its own hits (the quota's
// entries with limit UsageLimit and hits 0, read after the increment): the request is
// admitted when that count is at most the freshest E, whatever RLS said under the limit the
// proxy sent, so a request refused under a stale grant is decided by the new one.

// GrantEntry is what one proxy last saw of one key's grant in one period.
type GrantEntry struct {
	Period int64 // the period's start (Unix s); another period has no grant
	Gen    int64 // the generation Limit was read from; 0: none
	Limit  int64 // the effective limit E of generation Gen
	// Checked is when (Unix ms) RLS last said OVER_LIMIT to the proxy for the key: a
	// refused key is asked again once every GrantCheckMS, to see a grant. 0 (not written:
	// the proxy's quota entry is written first, or the write failed) refuses until the
	// RLS window ends, as without grants.
	Checked int64
}

// GrantCheckMS is how often a proxy that RLS refused for a key asks again, to see a grant.
const GrantCheckMS = 10000

// GrantEntryVersion is the encoding AppendGrantEntry writes: a version byte, then the four
// counts as unsigned varints.
const GrantEntryVersion = 1

// GrantEntryKey is the shared-data key of one proxy's view of one key's grant.
func GrantEntryKey(namespace, planID, keyID string) string {
	return namespace + ":global-grant:" + planID + ":" + keyID
}

// AppendGrantEntry appends e's encoding to dst.
func AppendGrantEntry(dst []byte, e *GrantEntry) []byte {
	vs := [...]int64{e.Period, e.Gen, e.Limit, e.Checked}
	return appendCounts(dst, GrantEntryVersion, vs[:])
}

// DecodeGrantEntry reads an entry AppendGrantEntry wrote.
func DecodeGrantEntry(b []byte, e *GrantEntry) error {
	var vs [4]int64
	b, err := decodeCounts(b, GrantEntryVersion, "grant entry", 1<<62, vs[:])
	if err != nil {
		return err
	}
	if len(b) != 0 || vs[2] > UsageLimit {
		return fmt.Errorf("%w: grant entry: %d bytes after the last count, limit %d", ErrEntryCorrupt, len(b), vs[2])
	}
	*e = GrantEntry{Period: vs[0], Gen: vs[1], Limit: vs[2], Checked: vs[3]}
	return nil
}

// limitOf is the effective limit of q in the period starting at period, by what the proxy
// last saw.
func (e *GrantEntry) limitOf(q *limit.Quota, period int64) int64 {
	if e.Period == period && e.Gen > 0 {
		return e.Limit
	}
	return q.Limit
}

// GrantDescriptors are the descriptors of a key's grant in window w, all with hits (1 for
// an admin taking a generation, else 0): the generation counter, and the values of gens.
func GrantDescriptors(dst []rls.Descriptor, plan, key string, q *limit.Quota, w Window, hits int64, gens ...int64) []rls.Descriptor {
	l := &rls.Limit{RequestsPerUnit: UsageLimit, Unit: w.Unit}
	p := PeriodID(q, w)
	dst = append(dst, rls.Descriptor{Entries: []rls.Entry{{Key: "plan", Value: plan}, {Key: "key", Value: key}, {Key: "grant", Value: p}},
		Limit: l, Hits: uint64(hits), HasHits: true})
	for _, g := range gens {
		dst = append(dst, rls.Descriptor{Entries: []rls.Entry{{Key: "plan", Value: plan}, {Key: "key", Value: key}, {Key: "grant", Value: p + "." + strconv.FormatInt(g, 10)}},
			Limit: l, HasHits: true})
	}
	return dst
}

// GrantValue is the descriptor an admin owning generation gen writes its effective limit
// into: hits limit + 1.
func GrantValue(plan, key string, q *limit.Quota, w Window, gen, limit int64) rls.Descriptor {
	return rls.Descriptor{Entries: []rls.Entry{{Key: "plan", Value: plan}, {Key: "key", Value: key}, {Key: "grant", Value: PeriodID(q, w) + "." + strconv.FormatInt(gen, 10)}},
		Limit: &rls.Limit{RequestsPerUnit: UsageLimit, Unit: w.Unit}, Hits: uint64(limit + 1), HasHits: true}
}

// CountDescriptor reads RLS's count of a key's quota in window w (hits 0): the quota's
// entries with the limit UsageLimit, which no count reaches (RLS's Redis key does not hold
// the limit, so it is the quota's count). After the quota descriptor in one request it is
// read after that descriptor's hits.
func CountDescriptor(plan, key string, q *limit.Quota, w Window) rls.Descriptor {
	return rls.Descriptor{Entries: []rls.Entry{{Key: "plan", Value: plan}, {Key: "key", Value: key}, {Key: "period", Value: PeriodID(q, w)}},
		Limit: &rls.Limit{RequestsPerUnit: UsageLimit, Unit: w.Unit}, HasHits: true}
}

// LatestGrant reads the grant in force from the statuses of a generation counter and the
// values of gens (in GrantDescriptors' order): the generation and effective limit of the
// highest gen with a value, ok false when none has one. latest is the counter's value.
func LatestGrant(sts []rls.Status, gens []int64) (latest, gen, limit int64, ok bool) {
	latest = UsedOf(sts[0])
	for i := len(gens) - 1; i >= 0; i-- {
		if v := UsedOf(sts[1+i]); v > 0 && gens[i] <= latest {
			return latest, gens[i], v - 1, true
		}
	}
	return latest, 0, 0, false
}
