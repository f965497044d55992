// Package core is the pure decision of the filter: request, configuration, time and store
// in, one Decision out (allow, forbidden, throttled, quota exceeded), and the one place
// that turns a Decision into a local response.
//
// All or nothing across entries: a request touches up to three kinds of shared-data
// entries (the key's own entry with its per-key buckets and quota, then one entry per
// shared stage-method or account bucket). Decide first reads and checks every entry
// without writing; any denial ends there and nothing is consumed. Then it commits the
// entries one by one, each with its own bounded CAS loop that checks again before taking.
// If a later entry now denies (another worker took the last token in between) or its loop
// gives up, the entries already committed get their token and quota back, so a rejected
// request consumes nothing, up to a give-back that itself loses every CAS attempt.
package core

import (
	"errors"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/state"
)

// Request is what Decide needs of an HTTP request. Host may carry a port; Path may carry
// a query string.
type Request struct {
	Method, Path, Host, RouteName string

	// Key is the API key (or the authorizer's usage identifier) as the client sent it, ""
	// when absent; it is hashed, never kept. When HasDigest is set, KeyDigest is used
	// instead (the caller hashed the value already).
	Key       string
	KeyDigest config.Digest
	HasDigest bool
}

func (r *Request) hasKey() bool { return r.HasDigest || r.Key != "" }

// Outcome is the kind of a Decision.
type Outcome uint8

const (
	Pass          Outcome = iota + 1 // not governed by the filter: no route, a bypass route, or an unmatched resource with PASS
	Allow                            // admitted; tokens and quota were taken
	Forbidden                        // missing, unknown or disabled key, or a key not in a plan for the stage (INVALID_API_KEY)
	NoResource                       // no route or no resource/method matched and the configuration says DENY (MISSING_AUTHENTICATION_TOKEN)
	Throttled                        // a token bucket is empty (THROTTLED)
	QuotaExceeded                    // the plan's quota is used up (QUOTA_EXCEEDED)
	Failure                          // the state could not be read or written; the failure policy decides
)

var outcomeNames = [...]string{"", "pass", "allowed", "forbidden", "no_resource", "throttled", "quota_exceeded", "failure"}

// String is the outcome's name in metrics and logs.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o != 0 {
		return outcomeNames[o]
	}
	return "Outcome(?)"
}

// Decision is the answer for one request, with what logs, metrics and headers need. The
// pointers are into the Config; none of it holds the key value.
type Decision struct {
	Outcome Outcome
	Reason  string // why, for logs: "unknown API key", "key not in a plan of stage petstore/prod", ...

	Route  *config.Route
	Stage  *config.Stage
	Method *config.Method
	Key    *config.Key // nil when absent or unknown
	Plan   *config.Plan

	// Limit is the throttle that fired (Throttled only): the first empty bucket in AWS's
	// precedence.
	Limit *config.Limit
	// RetryAfter is whole seconds until a retry can pass: until every empty bucket has a
	// token (Throttled), until the quota window ends (QuotaExceeded).
	RetryAfter int64
	// Reset is when the quota window ends (QuotaExceeded).
	Reset time.Time

	// RateLimit describes the binding limit for the RateLimit-* headers (Allow,
	// Throttled, QuotaExceeded with limits; zero otherwise).
	RateLimit RateLimit

	// Err is the state failure (Failure): a store error, an entry that does not decode, or
	// state.ErrExhausted when a CAS loop gave up (count it: cas_exhausted).
	Err error
}

// Exhausted reports whether the decision failed because a CAS loop gave up.
func (d *Decision) Exhausted() bool { return errors.Is(d.Err, state.ErrExhausted) }

// RateLimit is the binding limit of a request: among every bucket and the quota that
// apply, the one with the fewest requests left after this one (the first in precedence on
// a tie, the quota last).
type RateLimit struct {
	Set       bool
	Limit     int64  // burst of a bucket, the period's limit of a quota
	Remaining int64  // left after this request
	Reset     int64  // whole seconds until the bucket is full again or the quota window ends
	Window    int64  // seconds of the policy window: burst/rate for a bucket, the period for a quota
	Name      string // the config Limit.ID, or "quota" (the quota of Decision.Plan)
}

// Decider decides requests; it reuses its buffers, so one Decider serves one request at a
// time (one per VM: proxy-wasm VMs are single-threaded).
type Decider struct {
	txn     state.Txn
	limits  [4]config.Limit
	entries [4]entry
	results [4]result
	quota   limit.QuotaAt // the plan's quota at the request's instant: its window worked out once
}

// entry is one shared-data entry a request touches and the limits it holds.
type entry struct {
	snap      state.Snapshot
	first, n  int          // limits[first:first+n] live in this entry
	quota     *limit.Quota // the key entry's quota, or nil
	plan      *config.Plan // the key entry's plan, or nil for a shared entry
	committed bool
	window    int64 // the quota window counted into, for a give-back
}

// result is one limit's answer at now.
type result struct {
	ok        bool
	wait      time.Duration // until a token, when !ok
	remaining int64         // tokens left (after taking, when ok)
	untilFull time.Duration // until full again (after taking, when ok)
}

// quotaResult is the quota's answer at now.
type quotaResult struct {
	ok        bool
	limit     int64
	remaining int64
	end       time.Time
}

// Decide is the one-shot form of Decider.Decide.
func Decide(cfg *config.Config, req Request, now time.Time, store state.Store) Decision {
	var d Decider
	return d.Decide(cfg, req, now, store)
}

// Decide resolves the request (route → stage → resource/method → key → plan → limits) and,
// when it needs a key, checks and takes a token from every bucket and one from the quota,
// all or nothing.
func (dc *Decider) Decide(cfg *config.Config, req Request, now time.Time, store state.Store) Decision {
	m := cfg.Match(req.RouteName, req.Host, req.Path, req.Method)
	d := Decision{Route: m.Route, Stage: m.Stage, Method: m.Method}
	switch {
	case m.Route == nil:
		return unmatched(d, cfg.UnmatchedRoute, "no route matched")
	case m.Route.Bypass:
		d.Outcome, d.Reason = Pass, "route bypasses the filter"
		return d
	case m.Method == nil:
		return unmatched(d, cfg.UnmatchedResource, "no resource and method of stage "+m.Stage.ID+" matched")
	}
	if m.Method.APIKeyRequired {
		switch {
		case !req.hasKey():
			return forbidden(d, "missing API key")
		case req.HasDigest:
			d.Key = cfg.KeyByDigest(req.KeyDigest)
		default:
			d.Key = cfg.KeyByValue(req.Key)
		}
		switch {
		case d.Key == nil:
			return forbidden(d, "unknown API key")
		case !d.Key.Enabled:
			return forbidden(d, "disabled API key")
		}
		if d.Plan = d.Key.Plan(m.Stage); d.Plan == nil {
			return forbidden(d, "key not in a plan of stage "+m.Stage.ID)
		}
	}
	return dc.limit(cfg, d, m, now, store)
}

func unmatched(d Decision, a config.Action, reason string) Decision {
	d.Outcome, d.Reason = Pass, reason
	if a == config.Deny {
		d.Outcome = NoResource
	}
	return d
}

func forbidden(d Decision, reason string) Decision {
	d.Outcome, d.Reason = Forbidden, reason
	return d
}

func failure(d Decision, err error) Decision {
	d.Outcome, d.Reason, d.Err = Failure, "state failure", err
	d.RateLimit = RateLimit{}
	return d
}

// limit checks then commits every limit of the request; see the package doc.
func (dc *Decider) limit(cfg *config.Config, d Decision, m config.Match, now time.Time, store state.Store) Decision {
	lims := cfg.AppendLimits(dc.limits[:0], d.Plan, m)
	var quota *limit.Quota
	if d.Plan != nil {
		quota = d.Plan.Quota
	}
	// Group the limits into entries: AppendLimits puts the per-key ones first.
	ents := dc.entries[:0]
	i := 0
	if d.Plan != nil {
		for i < len(lims) && lims[i].PerKey {
			i++
		}
		if i > 0 || quota != nil {
			ents = dc.push(ents, state.KeyEntry(cfg.Namespace, d.Plan.ID, d.Key.ID), 0, i, quota)
			ents[0].plan = d.Plan
		}
	}
	for ; i < len(lims); i++ {
		ents = dc.push(ents, state.SharedEntry(cfg.Namespace, lims[i].ID), i, 1, nil)
	}
	if len(ents) == 0 {
		d.Outcome, d.Reason = Allow, "no limits"
		return d
	}
	qa := &dc.quota
	if quota != nil {
		*qa = quota.At(now)
	}
	dc.txn.Store, dc.txn.Attempts = store, cfg.CASRetries
	res := dc.results[:len(lims)]

	// Phase 1: read and check everything; write nothing.
	var qr quotaResult
	for k := range ents {
		e := &ents[k]
		if err := dc.txn.Read(e.snap.Key, &e.snap); err != nil {
			return failure(d, err)
		}
		check(&e.snap.Entry, e, lims, res, &qr, qa, now)
	}
	if deny, ok := verdict(d, lims, res, quota, qr, qa, now); !ok {
		// A key's first request marks its quota's initial period even when it is denied
		// (an offset at or above the limit): otherwise that period would never end.
		if e := &ents[0]; quota != nil && !e.snap.Found {
			err := dc.txn.Commit(&e.snap, func(en *state.Entry) bool {
				if en.Quota.Created != 0 {
					return false
				}
				en.Quota = qa.Advance(en.Quota)
				return true
			})
			if err != nil {
				return failure(deny, err)
			}
		}
		return deny
	}

	// Phase 2: commit entry by entry, checking again against what each write replaces.
	for k := range ents {
		e := &ents[k]
		ok := false
		err := dc.txn.Commit(&e.snap, func(en *state.Entry) bool {
			check(en, e, lims, res, &qr, qa, now)
			if ok = passed(e, res, qr); ok {
				take(en, e, lims, qa, now)
			}
			return ok
		})
		if err == nil && ok {
			e.committed = true
			continue
		}
		dc.giveBack(ents[:k], lims, qa, now)
		if err != nil {
			return failure(d, err)
		}
		deny, _ := verdict(d, lims, res, quota, qr, qa, now)
		return deny
	}
	d.Outcome, d.Reason = Allow, "within every limit"
	d.RateLimit = binding(d.Plan, lims, res, qr, qa, now)
	return d
}

// push appends an entry, keeping the storage of the decoded buckets of the previous request.
func (dc *Decider) push(ents []entry, key string, first, n int, quota *limit.Quota) []entry {
	k := len(ents)
	buckets := dc.entries[k].snap.Entry.Buckets[:0]
	return append(ents, entry{first: first, n: n, quota: quota,
		snap: state.Snapshot{Key: key, Entry: state.Entry{Buckets: buckets}}})
}

// check answers every limit of e at now into res (and qr for the quota), without changing
// en; results of passing limits describe the state after taking.
func check(en *state.Entry, e *entry, lims []config.Limit, res []result, qr *quotaResult, qa *limit.QuotaAt, now time.Time) {
	for j := e.first; j < e.first+e.n; j++ {
		th := lims[j].Throttle
		b, ok := th.AllowN(en.Bucket(lims[j].ID), now, 1)
		res[j] = result{ok: ok, remaining: b.Tokens, untilFull: th.UntilFull(b, now)}
		if !ok {
			res[j].wait = th.Wait(b, now, 1)
		}
	}
	if e.quota != nil {
		c, ok := qa.AllowN(en.Quota, 1)
		*qr = quotaResult{ok: ok, limit: e.quota.LimitOf(c), remaining: qa.Remaining(c), end: qa.Reset(c)}
	}
}

func passed(e *entry, res []result, qr quotaResult) bool {
	for j := e.first; j < e.first+e.n; j++ {
		if !res[j].ok {
			return false
		}
	}
	return e.quota == nil || qr.ok
}

// take takes one token from each bucket of e and counts one request in its quota. From a
// key's entry it drops buckets its plan no longer has (a reload removed an override), so
// the entry stays bounded by the current configuration.
func take(en *state.Entry, e *entry, lims []config.Limit, qa *limit.QuotaAt, now time.Time) {
	if e.plan != nil {
		prune(en, e.plan.KeyLimits())
	}
	for j := e.first; j < e.first+e.n; j++ {
		b, _ := lims[j].Throttle.AllowN(en.Bucket(lims[j].ID), now, 1)
		en.SetBucket(lims[j].ID, b)
	}
	if e.quota != nil {
		en.Quota, _ = qa.AllowN(en.Quota, 1)
		e.window = en.Quota.Window
	}
}

func prune(en *state.Entry, keep []*config.Limit) {
	kept := en.Buckets[:0]
	for _, s := range en.Buckets {
		for _, l := range keep {
			if l.ID == s.Name {
				kept = append(kept, s)
				break
			}
		}
	}
	en.Buckets = kept
}

// giveBack returns what the committed entries took; a give-back that loses every CAS
// attempt leaves the request counted (the safe side).
func (dc *Decider) giveBack(ents []entry, lims []config.Limit, qa *limit.QuotaAt, now time.Time) {
	for k := range ents {
		e := &ents[k]
		if !e.committed {
			continue
		}
		_ = dc.txn.Update(e.snap.Key, func(en *state.Entry) bool {
			for j := e.first; j < e.first+e.n; j++ {
				en.SetBucket(lims[j].ID, lims[j].Throttle.GiveN(en.Bucket(lims[j].ID), now, 1))
			}
			if e.quota != nil {
				en.Quota = qa.GiveN(en.Quota, 1, e.window)
			}
			return true
		})
		e.committed = false
	}
}

// verdict turns the results into a denial, or reports ok. The quota wins over a throttle:
// retrying after a throttle's second would not help a key whose quota is spent.
func verdict(d Decision, lims []config.Limit, res []result, quota *limit.Quota, qr quotaResult, qa *limit.QuotaAt, now time.Time) (Decision, bool) {
	if quota != nil && !qr.ok {
		d.Outcome, d.Reason = QuotaExceeded, "quota exceeded"
		d.Reset = qr.end
		d.RetryAfter = limit.Seconds(qr.end.Sub(now))
		d.RateLimit = quotaRateLimit(qr, qa, now)
		return d, false
	}
	var wait time.Duration
	for j := range lims {
		if res[j].ok {
			continue
		}
		if d.Limit == nil {
			d.Limit = &lims[j]
			d.RateLimit = bucketRateLimit(&lims[j], res[j])
		}
		wait = max(wait, res[j].wait)
	}
	if d.Limit == nil {
		return d, true
	}
	// The copy of the limit must outlive the Decider's buffer.
	l := *d.Limit
	d.Limit = &l
	d.Outcome, d.Reason = Throttled, "throttled by "+l.Level.String()+" limit"
	d.RetryAfter = limit.Seconds(wait)
	return d, false
}

// binding picks the limit with the fewest requests left after an admitted request.
func binding(plan *config.Plan, lims []config.Limit, res []result, qr quotaResult, qa *limit.QuotaAt, now time.Time) RateLimit {
	var rl RateLimit
	for j := range lims {
		if !rl.Set || res[j].remaining < rl.Remaining {
			rl = bucketRateLimit(&lims[j], res[j])
		}
	}
	if plan != nil && plan.Quota != nil && (!rl.Set || qr.remaining < rl.Remaining) {
		rl = quotaRateLimit(qr, qa, now)
	}
	return rl
}

func bucketRateLimit(l *config.Limit, r result) RateLimit {
	return RateLimit{Set: true, Limit: l.Throttle.Burst, Remaining: r.remaining,
		Reset: limit.Seconds(r.untilFull), Window: limit.Seconds(l.Throttle.FillTime()), Name: l.ID}
}

// quotaRateLimit describes the plan's quota; qa is that quota at the request's instant.
func quotaRateLimit(qr quotaResult, qa *limit.QuotaAt, now time.Time) RateLimit {
	return RateLimit{Set: true, Limit: qr.limit, Remaining: qr.remaining,
		Reset: limit.Seconds(qr.end.Sub(now)), Window: qa.Seconds(), Name: "quota"}
}
