package global

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/state"
)

// Step is what Begin decided.
type Step uint8

const (
	Admit  Step = iota + 1 // admitted from the proxy's lease: no call
	Call                   // send Ticket.Body to RLS, then Finish with its answer
	Refuse                 // RLS already said OVER_LIMIT in this window: quota exceeded, no call
	Fail                   // the proxy's own entry could not be read or written: Ticket.Err
)

// Ticket is one request's exchange with RLS, from Begin to Finish.
type Ticket struct {
	Plan   *config.Plan
	Key    *config.Key
	Window Window
	// Body is the framed gRPC request (Call); it is the Quota's buffer, valid until the
	// next Begin.
	Body []byte
	// Own is what the call asks for this request: 1, or a lease's chunk. Claimed is the
	// Pending it carries along; Owned says it is the proxy's owned call (see
	// Entry.FlightUntil).
	Own, Claimed int64
	Owned        bool
	Refused      bool // Refuse: the window's count is known to be over the limit
	Err          error
	// UsageErr is the proxy's usage entry (UsageEntry) not read or written, or its grant
	// entry (GrantEntry) not read: the request is decided as usual (by the quota's limit
	// when the grant is unknown), and its usage may miss the fleet's count.
	UsageErr  error
	UsageLost int64 // see Result.UsageLost
	// Usage is the proxy's unsent usage of the key the call carries (see UsageEntry);
	// descs is how many descriptors the call sends.
	Usage UsageClaim
	descs int
	// grant is the proxy's view of the key's grant when the call was prepared, limit the
	// effective limit it sent, gens the generations whose values the call reads.
	grant GrantEntry
	limit int64
	gens  [2]int64
}

// Answer is what came back from the call: the HTTP-call response, or Failed when there was
// none (timeout, reset, unknown cluster at dispatch).
type Answer struct {
	Failed            bool
	Headers, Trailers [][2]string
	Body              []byte
}

// Verdict is Finish's decision.
type Verdict uint8

const (
	Admitted Verdict = iota + 1
	Exceeded         // RLS said OVER_LIMIT, or LOCAL's share is spent
	Failed           // CLOSED: answer with the failure response
)

// Result is the outcome of a request that needed the global quota.
type Result struct {
	Verdict Verdict
	// Fallback is the failure mode that decided (RLS gave no usable answer), 0 when RLS did.
	Fallback config.GlobalFailure
	// Remaining is what RLS said is left of the period's limit (-1 unknown); Reset is the
	// end of the period, Unix seconds.
	Remaining, Reset int64
	// Err is why RLS's answer was not used (Fallback set), or a state write that failed
	// after the decision (then a lease or a carry-over may be lost: log it).
	Err      error
	StateErr error
	// UsageLost is admitted requests that will never be in the fleet's per-day usage: a
	// call that carried them got no answer (see UsageEntry).
	UsageLost int64
}

// Quota runs global-mode decisions; it reuses its buffers, so one Quota serves one request
// at a time (one per VM).
type Quota struct {
	buf, ubuf, gbuf, body []byte
	resp                  rls.Response
	descs                 [maxDescs]rls.Descriptor
	entries               [3 * maxDescs]rls.Entry
	limit, countLimit     rls.Limit

	namesOf *config.Config
	names   map[pair]*names
}

type pair struct {
	plan *config.Plan
	key  *config.Key
}

// names are built once per configuration: the entry key and the descriptor values.
type names struct{ entry, usage, grant, plan, key string }

// maxDescs is the most descriptors a request's call sends: the quota, its count, the grant's
// generation counter and two values, and the usage of two days.
const maxDescs = 5 + UsageDays

// The descriptor of the filter's configure-time check (hits_addend 0). RLS's
// configuration (usageplans ratelimit-config) gives it a limit, so that an answer with a
// current_limit proves RLS loaded the domain: for a domain it does not have, RLS answers OK
// without a limit, and ignores the limits the filter sends, admitting everything.
const (
	CheckKey   = "usageplans-check"
	CheckValue = "domain"
)

// Errors of Finish that say what RLS answered.
var (
	ErrNoStatus = errors.New("global: RLS answered without one status per descriptor")
	ErrUnknown  = errors.New("global: RLS answered code UNKNOWN")
)

// Begin starts the global quota check of an admitted request of key in plan: it settles
// the proxy's entry at now (a new period, an RLS window boundary, an owned call whose
// answer was lost) and then serves the request from the lease or prepares the call.
func (qt *Quota) Begin(cfg *config.Config, plan *config.Plan, key *config.Key, now time.Time, store state.Store) Ticket {
	g := cfg.Global
	n := qt.namesFor(cfg, plan, key)
	nowS, nowMS := now.Unix(), now.UnixMilli()
	t := Ticket{Plan: plan, Key: key, Window: WindowAt(plan.Quota, nowS)}
	t.UsageErr = qt.readGrant(store, n.grant, &t.grant)
	if t.grant.Period != t.Window.Start {
		t.grant = GrantEntry{Period: t.Window.Start}
	}
	t.limit = t.grant.limitOf(plan.Quota, t.Window.Start)
	leased := false
	err := update(store, n.entry, cfg.CASRetries, &qt.buf, func(e *Entry) bool {
		t.Own, t.Claimed, t.Owned, t.Refused, leased = 1, 0, false, false, false
		settle(e, t.Window, nowMS)
		// Refused by RLS in this window: refuse without a call, but ask again GrantCheckMS
		// after the last refusal (a grant may have raised the limit). No refusal time yet
		// is a refusal just now (the time is written after the quota entry).
		if e.Over > 0 && t.limit <= e.Over-1 && (t.grant.Checked == 0 || nowMS < t.grant.Checked+GrantCheckMS) {
			t.Refused = true
			return true // settle may have changed the entry
		}
		if g.Mode == config.Lease && e.Lease > 0 {
			e.Lease--
			leased = true
			return true
		}
		if e.FlightUntil == 0 && (g.Mode == config.Lease || e.Pending > 0 && e.Failing == 0) {
			t.Owned = true
			if e.Failing == 0 {
				t.Claimed = e.Pending
			}
			if g.Mode == config.Lease {
				t.Own = Chunk(g, t.limit, e.Remaining)
			}
			e.Pending, e.FlightPending = 0, t.Claimed
			e.FlightUntil = nowMS + flightMS(g)
		}
		return true
	})
	if err != nil {
		t.Err = err
		return t
	}
	if t.Refused {
		t.Body = nil
		return t
	}
	if leased {
		t.Body = nil
		var uerr error
		t.UsageLost, uerr = qt.countUsage(cfg, n.usage, floorDiv(nowS, 86400), 1, nil, noCall, store)
		t.UsageErr = errors.Join(t.UsageErr, uerr)
		return t
	}
	if err := qt.claimUsage(cfg, n.usage, &t.Usage, store); err != nil {
		t.UsageErr = errors.Join(t.UsageErr, err) // sent later, with another call
	}
	qt.limit = rls.Limit{RequestsPerUnit: uint32(t.limit), Unit: t.Window.Unit}
	qt.countLimit = rls.Limit{RequestsPerUnit: UsageLimit, Unit: t.Window.Unit}
	period := PeriodID(plan.Quota, t.Window)
	t.descs = 0
	qt.desc(&t, n, "period", period, &qt.limit, t.Own+t.Claimed)
	qt.desc(&t, n, "period", period, &qt.countLimit, 0) // the count after the hits above
	qt.desc(&t, n, "grant", period, &qt.countLimit, 0)
	for i := range t.gens {
		t.gens[i] = t.grant.Gen + 1 + int64(i)
		qt.desc(&t, n, "grant", period+"."+strconv.FormatInt(t.gens[i], 10), &qt.countLimit, 0)
	}
	for i := range t.Usage.N {
		if t.Usage.N[i] > 0 {
			qt.desc(&t, n, "usage", UsageDay(t.Usage.Day[i]), &usageLimit, t.Usage.N[i])
		}
	}
	qt.body = rls.AppendRequestFrame(qt.body[:0], &rls.Request{Domain: g.Domain, Descriptors: qt.descs[:t.descs]})
	t.Body = qt.body
	return t
}

// StepOf says what the adapter does with a Ticket from Begin.
func (t *Ticket) StepOf() Step {
	switch {
	case t.Err != nil:
		return Fail
	case t.Refused:
		return Refuse
	case t.Body == nil:
		return Admit
	}
	return Call
}

// settle brings e to now: a new period starts from nothing (what the proxy owed the old
// one is dropped with it: RLS's count of that period no longer matters), an RLS window
// boundary inside the period moves what the proxy admitted so far into Pending (the
// carry-over, once per boundary), and an owned call past its deadline gives its claim back.
func settle(e *Entry, w Window, nowMS int64) {
	if e.Period != w.Start {
		*e = Entry{Period: w.Start, Engine: w.Engine, Remaining: -1}
		return
	}
	if w.Engine > e.Engine {
		// The new RLS window needs everything this proxy admitted in the period; what it
		// still owed the old window (carry or replay) no longer matters there.
		e.Pending, e.FlightPending = e.Admitted, 0
		e.Engine, e.Over = w.Engine, 0
	}
	if e.FlightUntil != 0 && nowMS >= e.FlightUntil {
		e.Pending += e.FlightPending
		e.FlightUntil, e.FlightPending = 0, 0
	}
}

// flightMS is how long an owned call may stay unanswered before the proxy takes its answer
// as lost: the host answers (or fails) every call within its timeout, so twice that and a
// second is past any answer that can still come.
func flightMS(g *config.Global) int64 { return 2*int64(g.TimeoutMS) + 1000 }

// Chunk is the lease a proxy asks for, given RLS's last remaining count (-1 unknown): a
// share of what is left, remaining / (2 × proxies), at least 1 and at most MaxChunk, so
// that near the limit leases shrink to single requests.
func Chunk(g *config.Global, limit, remaining int64) int64 {
	r := remaining
	if r < 0 {
		r = limit
	}
	return min(max(r/(2*g.Proxies), 1), g.MaxChunk)
}

// Finish decides the request from the call's answer and settles the proxy's entry.
func (qt *Quota) Finish(cfg *config.Config, t *Ticket, a Answer, now time.Time, store state.Store) Result {
	g := cfg.Global
	r := Result{Remaining: -1, Reset: t.Window.End}
	err := qt.read(a, t.descs)
	n := qt.namesFor(cfg, t.Plan, t.Key)
	nowS, nowMS := now.Unix(), now.UnixMilli()
	w := WindowAt(t.Plan.Quota, nowS)
	limit, newGrant := t.limit, false
	var gen int64
	if err == nil {
		// RLS's count after this call's hits, against the freshest grant the call read: a
		// request refused under a stale grant is admitted by a raise, and the other way round.
		sts := qt.resp.Statuses
		count := UsedOf(sts[1])
		if _, g, l, ok := LatestGrant(sts[2:5], t.gens[:]); ok && g > t.grant.Gen {
			gen, limit, newGrant = g, l, true
		}
		r.Verdict, r.Remaining = Exceeded, 0
		if count <= limit {
			r.Verdict, r.Remaining = Admitted, limit-count
		}
	} else {
		r.Err, r.Fallback = err, g.FailureMode
		switch g.FailureMode {
		case config.GlobalOpen:
			r.Verdict = Admitted
		case config.GlobalClosed:
			r.Verdict = Failed
		}
	}
	r.StateErr = update(store, n.entry, max(cfg.CASRetries, 16), &qt.buf, func(e *Entry) bool {
		if e.Period != t.Window.Start {
			// The period ended while the call was in flight: the answer decides this
			// request, the new period's entry owes nothing for it. Under LOCAL the request
			// is refused: the old period's local share cannot be counted any more.
			if r.Fallback == config.GlobalLocal {
				r.Verdict = Exceeded
			}
			return false
		}
		settle(e, w, nowMS)
		if t.Owned && e.FlightUntil != 0 {
			e.FlightUntil, e.FlightPending = 0, 0
			if err != nil && t.Window.Engine == e.Engine {
				e.Pending += t.Claimed // it may have been counted: sent again, on the safe side
			}
		}
		if err == nil {
			e.Outage, e.Failing = 0, 0
			// An admitted answer under a limit RLS already refused in this window was
			// counted before that refusal (RLS's count only grows) and arrives late: it
			// decides its own request but neither lifts the refusal nor brings back its
			// older remaining.
			stale := r.Verdict == Admitted && t.Window.Engine == e.Engine && e.Over > 0 && limit <= e.Over-1
			if !stale {
				e.Remaining = r.Remaining
			}
			if t.Window.Engine == e.Engine && !stale {
				e.Over = 0
				if r.Verdict == Exceeded {
					e.Over = limit + 1
				}
			}
			if r.Verdict == Admitted {
				e.Admitted += t.Own
				if t.Owned && g.Mode == config.Lease {
					e.Lease += t.Own - 1
				}
			}
			return true
		}
		e.Failing = 1
		if g.FailureMode == config.GlobalLocal {
			if e.Outage < Share(g, t.Plan.Quota.Limit, e.Remaining) {
				e.Outage++
				e.Admitted++
				e.Pending++
				r.Verdict = Admitted
			} else {
				r.Verdict = Exceeded
			}
		}
		return true
	})
	admitted := int64(0)
	if r.Verdict == Admitted {
		admitted = 1
	}
	if newGrant || r.Verdict == Exceeded && err == nil {
		gerr := qt.writeGrant(cfg, n.grant, t.Window.Start, gen, limit, newGrant, nowMS, store)
		if r.StateErr == nil {
			r.StateErr = gerr
		}
	}
	call := answeredCall
	if err != nil {
		call = unansweredCall
	}
	var uerr error
	r.UsageLost, uerr = qt.countUsage(cfg, n.usage, floorDiv(nowS, 86400), admitted, &t.Usage, call, store)
	if r.StateErr == nil {
		r.StateErr = uerr
	}
	return r
}

// Share is what LOCAL admits of one key on one proxy while RLS cannot answer: RLS's last
// remaining count as this proxy saw it (the period's limit when it saw none), divided by
// the number of proxies.
func Share(g *config.Global, limit, remaining int64) int64 {
	r := remaining
	if r < 0 {
		r = limit
	}
	return r / g.Proxies
}

// read checks the answer to a call Begin prepared (descs descriptors: the quota, its count,
// the grant's counter and two values, then usage) and decodes its statuses into qt.resp.
func (qt *Quota) read(a Answer, descs int) error {
	if descs < 5 {
		return fmt.Errorf("global: a ticket of %d descriptors, not one of Begin's calls", descs)
	}
	return ReadAnswer(a, &qt.resp, descs)
}

func (qt *Quota) namesFor(cfg *config.Config, plan *config.Plan, key *config.Key) *names {
	if qt.namesOf != cfg {
		qt.namesOf, qt.names = cfg, make(map[pair]*names)
	}
	n := qt.names[pair{plan, key}]
	if n == nil {
		n = &names{entry: EntryKey(cfg.Namespace, plan.ID, key.ID), usage: UsageEntryKey(cfg.Namespace, plan.ID, key.ID),
			grant: GrantEntryKey(cfg.Namespace, plan.ID, key.ID),
			plan:  Value(plan.ID), key: Value(key.ID)}
		qt.names[pair{plan, key}] = n
	}
	return n
}

// Value is a configuration id as a descriptor value: ids hold letters, digits, '-', '.'
// and '_'; RLS joins its Redis keys with '_' without escaping, so '_' becomes '~', which no
// id holds (the mapping stays one to one).
func Value(id string) string { return strings.ReplaceAll(id, "_", "~") }

// desc appends the descriptor (plan, key, k=v) with limit l and hits to the call of t.
func (qt *Quota) desc(t *Ticket, n *names, k, v string, l *rls.Limit, hits int64) {
	e := qt.entries[3*t.descs : 3*t.descs+3]
	e[0], e[1], e[2] = rls.Entry{Key: "plan", Value: n.plan}, rls.Entry{Key: "key", Value: n.key}, rls.Entry{Key: k, Value: v}
	qt.descs[t.descs] = rls.Descriptor{Entries: e, Limit: l, Hits: uint64(hits), HasHits: true}
	t.descs++
}

// readGrant reads the proxy's view of a key's grant; none (the zero entry) when there is
// no entry or it does not read.
func (qt *Quota) readGrant(store state.Store, key string, e *GrantEntry) error {
	*e = GrantEntry{}
	return readDecideWrite(store, key, 1, &qt.gbuf, func(*GrantEntry) {}, DecodeGrantEntry, AppendGrantEntry,
		func(g *GrantEntry) bool { *e = *g; return false })
}

// writeGrant records a newer grant the proxy saw (newGrant: generation gen, limit), and
// when RLS refused the key, the time (nowMS) it last asked.
func (qt *Quota) writeGrant(cfg *config.Config, key string, period, gen, limit int64, newGrant bool, nowMS int64, store state.Store) error {
	return readDecideWrite(store, key, max(cfg.CASRetries, 16), &qt.gbuf, func(*GrantEntry) {}, DecodeGrantEntry, AppendGrantEntry,
		func(e *GrantEntry) bool {
			if e.Period != period {
				*e = GrantEntry{Period: period}
			}
			if newGrant && gen > e.Gen {
				e.Gen, e.Limit = gen, limit
			}
			e.Checked = nowMS
			return true
		})
}
