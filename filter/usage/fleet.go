package usage

import (
	"errors"
	"strings"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/rls"
)

// In global mode the usage API answers from RLS, the fleet's counts, not from one proxy's
// shared data: each key's per-day usage descriptors (filter/global's UsageDescriptor:
// what every proxy admitted, added by the proxies' own calls) and its quota descriptor,
// all read in one ShouldRateLimit call with hits_addend 0 (check only, counting nothing).
// A day's used is UsageLimit less its descriptor's limit_remaining; today's remaining in
// the current period is the quota descriptor's limit_remaining, what RLS will still admit;
// a past day's is the limit less what the period used up to that day.
//
// Usage descriptors live on RLS's unit YEAR, epoch-aligned 365-day windows: a read sees the
// counts of the current window only, so a day before its start cannot be answered (see
// global.UsageWindowStart).

// MaxFleetDescriptors bounds the descriptors of one usage read: a page holds as many keys
// as fit (at least one), and says where the next page starts, as AWS's paging allows.
const MaxFleetDescriptors = 4096

// FleetRead is a usage API request to be answered from RLS: send Body to RLS (global.cluster),
// then Answer with what came back. It holds no time.Time (the filter keeps it in an
// http context, which is held in an interface).
type FleetRead struct {
	cfg        *config.Config
	plan       *config.Plan
	keys       []*config.Key
	start, end int64  // the days asked for
	from, to   int64  // the days read, per key
	next       string // the next page's position
	now        int64  // Unix seconds
	body       []byte
}

// Body is the framed ShouldRateLimit request of the read.
func (f *FleetRead) Body() []byte { return f.body }

// HandleFleet is Handle in global mode: a bad request gets its answer now (FleetRead nil);
// a good one gets the read to make.
func HandleFleet(cfg *config.Config, now time.Time, method, target string) (*FleetRead, Response) {
	path, query, _ := strings.Cut(target, "?")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(segs) == 2 && segs[0] != "" && segs[1] == "usage":
		if method != "GET" {
			return nil, notAllowed("GET")
		}
		q, bad := parseGetUsage(cfg, now, segs[0], query)
		if bad != nil {
			return nil, *bad
		}
		return fleetRead(cfg, now, q)
	case len(segs) == 4 && segs[0] != "" && segs[1] == "keys" && segs[2] != "" && segs[3] == "usage":
		if method != "PATCH" {
			return nil, notAllowed("PATCH")
		}
		if _, _, bad := lookup(cfg, segs[0], segs[2]); bad != nil {
			return nil, *bad
		}
		return nil, badRequest("UpdateUsage is not available in global mode: a grant must reach every proxy of the fleet through RLS, which this version does not do; change the plan's quota instead")
	}
	return nil, Handle(cfg, nil, now, method, target, nil) // the same 404
}

func fleetRead(cfg *config.Config, now time.Time, q usageQuery) (*FleetRead, Response) {
	today := DayOf(now)
	first := global.UsageWindowStart(now.Unix())
	if q.start < first {
		return nil, badRequest("startDate " + dateString(q.start) + " is before " + dateString(first) +
			": in global mode per-day usage lives in RLS's current 365-day window (unit YEAR, from the Unix epoch), which began on " +
			dateString(first) + "; the next begins on " + dateString(first+365))
	}
	f := &FleetRead{cfg: cfg, plan: q.plan, start: q.start, end: q.end, now: now.Unix(), to: min(q.end, today)}
	f.from = q.start
	if q.plan.Quota != nil { // a past day's remaining needs its period's days before it
		ws, _ := q.plan.Quota.Window(time.Unix(q.start*secondsPerDay, 0))
		f.from = max(min(DayOf(ws), q.start), first)
	}
	perKey := int(f.to-f.from+1) + 1
	f.keys, f.next = q.page(min(q.limit, max(MaxFleetDescriptors/perKey, 1)))
	if len(f.keys) == 0 { // a plan without keys: nothing to ask RLS (it refuses an empty request)
		return nil, answer(cfg, fleetStore{}, now, q.plan, nil, q.start, q.end, f.next)
	}
	descs := make([]rls.Descriptor, 0, perKey*len(f.keys))
	var w global.Window
	if q.plan.Quota != nil {
		w = global.WindowAt(q.plan.Quota, now.Unix())
	}
	for _, k := range f.keys {
		pv, kv := global.Value(q.plan.ID), global.Value(k.ID)
		if q.plan.Quota != nil {
			descs = append(descs, global.QuotaDescriptor(pv, kv, q.plan.Quota, w, 0))
		}
		for d := f.from; d <= f.to; d++ {
			descs = append(descs, global.UsageDescriptor(pv, kv, d, 0))
		}
	}
	f.body = rls.AppendRequestFrame(nil, &rls.Request{Domain: cfg.Global.Domain, Descriptors: descs})
	return f, Response{}
}

// Answer is the usage document from RLS's answer, or AWS's 503 shape when RLS gave none.
func (f *FleetRead) Answer(a global.Answer) Response {
	perKey := int(f.to - f.from + 1)
	if f.plan.Quota != nil {
		perKey++
	}
	var resp rls.Response
	if err := global.ReadAnswer(a, &resp, perKey*len(f.keys)); err != nil {
		return fail(503, "ServiceUnavailableException", "The usage could not be read from the Rate Limit Service: "+err.Error())
	}
	st := fleetStore{views: make(map[*config.Key]*View, len(f.keys))}
	for i, k := range f.keys {
		sts := resp.Statuses[i*perKey : (i+1)*perKey]
		v := &View{Fleet: true, FleetFrom: f.from, QuotaRemaining: -1}
		if f.plan.Quota != nil {
			v.QuotaRemaining = 0
			if sts[0].Code == rls.CodeOK {
				v.QuotaRemaining = int64(sts[0].Remaining)
			}
			sts = sts[1:]
		}
		r := &v.Record
		r.Day, r.N = f.to, len(sts)
		for j := range sts {
			r.Days[int(f.to-f.from)-j].Used = global.UsedOf(sts[j])
		}
		st.views[k] = v
	}
	return answer(f.cfg, st, time.Unix(f.now, 0), f.plan, f.keys, f.start, f.end, f.next)
}

// fleetStore serves answer the views read from RLS.
type fleetStore struct{ views map[*config.Key]*View }

func (s fleetStore) Read(_ *config.Config, _ *config.Plan, key *config.Key, v *View) error {
	*v = *s.views[key]
	return nil
}

func (fleetStore) SetRemaining(*config.Config, *config.Plan, *config.Key, int64, int64, *View) error {
	return errFleetGrant
}

var errFleetGrant = errors.New("usage: grants in global mode go through RLS")

// fleetRemaining is remaining for the fleet's usage: today's in the current period is what
// RLS will still admit; another day's is the period's limit less what the fleet used in
// the period up to that day (the days RLS still answers for).
func fleetRemaining(q *limit.Quota, v *View, d int64, now time.Time) int64 {
	ws, _ := q.Window(time.Unix(d*secondsPerDay, 0))
	cur, _ := q.Window(now)
	if d == DayOf(now) && ws.Equal(cur) && v.QuotaRemaining >= 0 {
		return v.QuotaRemaining
	}
	return max(q.Limit-v.Record.UsedFrom(max(DayOf(ws), v.FleetFrom), d), 0)
}
