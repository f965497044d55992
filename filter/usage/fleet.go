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

// FleetRead is a usage API request to be answered from RLS: send Body to RLS
// (global.cluster), give Step what came back, and repeat while Step says it is not done.
// It holds no time.Time (the filter keeps it in an http context, which is held in an
// interface).
type FleetRead struct {
	cfg        *config.Config
	plan       *config.Plan
	keys       []*config.Key
	start, end int64  // the days asked for
	from, to   int64  // the days read, per key
	next       string // the next page's position
	now        int64  // Unix seconds
	body       []byte
	stage      int
	w          global.Window // the quota's window now (plans with a quota)
	views      []View
	latest     []int64   // per key: its grant's generation counter
	gens       [][]int64 // per key with a grant: the generations whose values are read
	// UpdateUsage: the key's remaining asked for, the generation taken and its limit.
	remaining, gen, limit int64
}

// The stages of a FleetRead.
const (
	stageRead   = iota // counts, grant generations and usage of the page's keys
	stageGrants        // the values of the keys' latest grant generations
	stageTake          // UpdateUsage: take a generation, read the quota's count
	stageWrite         // UpdateUsage: write the generation's limit
)

// grantDepth is how many generations back a read looks for a written value (an admin
// that took one and has not written it yet, or never will).
const grantDepth = 3

// Body is the framed ShouldRateLimit request of the read's current call.
func (f *FleetRead) Body() []byte { return f.body }

// HandleFleet is Handle in global mode: a bad request gets its answer now (FleetRead nil);
// a good one gets the calls to make.
func HandleFleet(cfg *config.Config, now time.Time, method, target string, body []byte) (*FleetRead, Response) {
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
		plan, key, bad := lookup(cfg, segs[0], segs[2])
		if bad != nil {
			return nil, *bad
		}
		n, bad := parsePatch(body)
		if bad != nil {
			return nil, *bad
		}
		if plan.Quota == nil {
			return nil, badRequest("Usage plan " + quote(plan.ID) + " has no quota: there is no remaining quota to extend")
		}
		// The answer: the key's days of the current quota period, as in local mode.
		ws, _ := plan.Quota.Window(now)
		today := DayOf(now)
		q := usageQuery{plan: plan, keys: []*config.Key{key}, limit: 1,
			start: max(DayOf(ws), today-(QueryDays-1), global.UsageWindowStart(now.Unix())), end: today}
		f, r := fleetRead(cfg, now, q)
		if f == nil {
			return nil, r
		}
		f.remaining, f.stage = n, stageTake
		pv, kv := global.Value(plan.ID), global.Value(key.ID)
		descs := global.GrantDescriptors(nil, pv, kv, plan.Quota, f.w, 1)
		descs = append(descs, global.CountDescriptor(pv, kv, plan.Quota, f.w))
		f.body = rls.AppendRequestFrame(nil, &rls.Request{Domain: cfg.Global.Domain, Descriptors: descs})
		return f, Response{}
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
		f.w = global.WindowAt(q.plan.Quota, now.Unix())
	}
	perKey := f.perKey()
	f.keys, f.next = q.page(min(q.limit, max(MaxFleetDescriptors/perKey, 1)))
	if len(f.keys) == 0 { // a plan without keys: nothing to ask RLS (it refuses an empty request)
		return nil, answer(cfg, fleetStore{}, now, q.plan, nil, q.start, q.end, f.next)
	}
	descs := make([]rls.Descriptor, 0, perKey*len(f.keys))
	for _, k := range f.keys {
		pv, kv := global.Value(q.plan.ID), global.Value(k.ID)
		if q.plan.Quota != nil {
			descs = append(descs, global.CountDescriptor(pv, kv, q.plan.Quota, f.w))
			descs = global.GrantDescriptors(descs, pv, kv, q.plan.Quota, f.w, 0)
		}
		for d := f.from; d <= f.to; d++ {
			descs = append(descs, global.UsageDescriptor(pv, kv, d, 0))
		}
	}
	f.body = rls.AppendRequestFrame(nil, &rls.Request{Domain: cfg.Global.Domain, Descriptors: descs})
	return f, Response{}
}

// perKey is how many descriptors the read stage sends a key: its quota's count and grant
// generation counter (plans with a quota), then its days.
func (f *FleetRead) perKey() int {
	n := int(f.to - f.from + 1)
	if f.plan.Quota != nil {
		n += 2
	}
	return n
}

// Step takes the answer to Body's call: done, and the response, or not done, and Body is
// the next call to make. RLS not answering is AWS's 503 shape.
func (f *FleetRead) Step(a global.Answer) (Response, bool) {
	var resp rls.Response
	want := 0
	switch f.stage {
	case stageRead:
		want = f.perKey() * len(f.keys)
	case stageGrants:
		for _, g := range f.latest {
			if g > 0 {
				want += 1 + grantDepth
			}
		}
	case stageTake:
		want = 2
	case stageWrite:
		want = 1
	}
	if err := global.ReadAnswer(a, &resp, want); err != nil {
		if f.stage == stageWrite {
			return fail(503, "ServiceUnavailableException", "The grant was not confirmed by the Rate Limit Service ("+err.Error()+
				"): it may or may not be in force; read the usage (GetUsage) before retrying"), true
		}
		return fail(503, "ServiceUnavailableException", "The usage could not be read from the Rate Limit Service: "+err.Error()), true
	}
	pv := global.Value(f.plan.ID)
	switch f.stage {
	case stageTake:
		// The generation this admin owns, and RLS's count of the period: the key may make
		// remaining more requests from now, so the effective limit is count + remaining.
		f.gen, f.limit = global.UsedOf(resp.Statuses[0]), min(global.UsedOf(resp.Statuses[1])+f.remaining, global.UsageLimit-1)
		f.stage = stageWrite
		d := global.GrantValue(pv, global.Value(f.keys[0].ID), f.plan.Quota, f.w, f.gen, f.limit)
		f.body = rls.AppendRequestFrame(nil, &rls.Request{Domain: f.cfg.Global.Domain, Descriptors: []rls.Descriptor{d}})
		return Response{}, false
	case stageWrite:
		return f.start0()
	case stageRead:
		f.readViews(resp.Statuses)
		var descs []rls.Descriptor
		f.gens = make([][]int64, len(f.keys))
		for i, k := range f.keys {
			if g := f.latest[i]; g > 0 {
				// The last grantDepth generations (0 and below are never written).
				for j := g - grantDepth + 1; j <= g; j++ {
					f.gens[i] = append(f.gens[i], j)
				}
				descs = global.GrantDescriptors(descs, pv, global.Value(k.ID), f.plan.Quota, f.w, 0, f.gens[i]...)
			}
		}
		if len(descs) > 0 {
			f.stage = stageGrants
			f.body = rls.AppendRequestFrame(nil, &rls.Request{Domain: f.cfg.Global.Domain, Descriptors: descs})
			return Response{}, false
		}
	case stageGrants:
		sts := resp.Statuses
		for i := range f.keys {
			if f.latest[i] == 0 {
				continue
			}
			if _, _, l, ok := global.LatestGrant(sts[:1+grantDepth], f.gens[i]); ok {
				f.views[i].QuotaLimit = l
			}
			sts = sts[1+grantDepth:]
		}
	}
	st := fleetStore{views: make(map[*config.Key]*View, len(f.keys))}
	for i, k := range f.keys {
		st.views[k] = &f.views[i]
	}
	return answer(f.cfg, st, time.Unix(f.now, 0), f.plan, f.keys, f.start, f.end, f.next), true
}

// start0 starts the read stage (after an UpdateUsage's write).
func (f *FleetRead) start0() (Response, bool) {
	g, r := fleetRead(f.cfg, time.Unix(f.now, 0), usageQuery{plan: f.plan, keys: f.keys, limit: 1, start: f.start, end: f.end})
	if g == nil {
		return r, true
	}
	*f = *g
	return Response{}, false
}

// readViews fills the views of the page's keys from the read stage's statuses.
func (f *FleetRead) readViews(all []rls.Status) {
	perKey := f.perKey()
	f.views, f.latest = make([]View, len(f.keys)), make([]int64, len(f.keys))
	for i := range f.keys {
		sts := all[i*perKey : (i+1)*perKey]
		v := &f.views[i]
		*v = View{Fleet: true, FleetFrom: f.from, QuotaCount: -1}
		if f.plan.Quota != nil {
			v.QuotaCount, v.QuotaLimit = global.UsedOf(sts[0]), f.plan.Quota.Limit
			f.latest[i] = global.UsedOf(sts[1])
			sts = sts[2:]
		}
		r := &v.Record
		r.Day, r.N = f.to, len(sts)
		for j := range sts {
			r.Days[int(f.to-f.from)-j].Used = global.UsedOf(sts[j])
		}
	}
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
// RLS will still admit, the effective limit (the grant in force, or the quota's) less RLS's
// count; another day's is the period's limit less what the fleet used in the period up to
// that day (the days RLS still answers for; grants are not kept per day).
func fleetRemaining(q *limit.Quota, v *View, d int64, now time.Time) int64 {
	ws, _ := q.Window(time.Unix(d*secondsPerDay, 0))
	cur, _ := q.Window(now)
	if d == DayOf(now) && ws.Equal(cur) && v.QuotaCount >= 0 {
		return max(v.QuotaLimit-v.QuotaCount, 0)
	}
	return max(q.Limit-v.Record.UsedFrom(max(DayOf(ws), v.FleetFrom), d), 0)
}
