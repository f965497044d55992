// Package core is the pure decision of the filter: request, configuration, time and store
// in, one Decision out (allow, forbidden, throttled, quota exceeded), and the one place
// that turns a Decision into a local response.
//
// All or nothing across entries: a request touches up to three kinds of shared-data
// entries (the key's own entry with its per-key buckets and quota, then one entry per
// shared stage-method or account bucket). Decide first reads and checks every entry
// without writing; any denial ends there and nothing is consumed. Then it commits the
// entries one by one, each with its own bounded CAS loop that checks again before taking:
// the shared entries first, the key's entry last. If a later entry now denies (another
// worker took the last token in between) or its loop gives up, the entries already
// committed get their token back, so a rejected request consumes nothing, up to a
// give-back that itself loses every CAS attempt. The key's entry goes last because it holds
// the quota: were it committed first, a request of the same key arriving before the
// give-back would see the quota spent and be told to wait hours; this way it can only find
// a shared bucket one token short, a wait of a second or so.
//
// Contention on a shared entry is not a failure: when the CAS loop of a stage-method or
// account bucket gives up, the request goes on without taking that bucket's token, whatever
// the failure policy, and if admitted its Decision.Err says so (count it: cas_exhausted).
// A shared bucket guards the upstream as a whole and promises nothing to one key; failing
// there turned load into 500s exactly when the bucket was busiest. The failure policy
// decides only when the key's own entry (its buckets and quota, the per-key promise) cannot
// be read or written.
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
	// when absent; it is hashed, never kept.
	Key string
}

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

var outcomeNames = [...]string{"", "pass", "allowed", "forbidden", "unmatched", "throttled", "quota_exceeded", "failure"}

// String is the outcome's name in metrics, filter state and logs (NoResource is
// "unmatched", as its counter usageplans.requests.unmatched).
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
	// Throttled, QuotaExceeded with limits; zero otherwise, and zero when the
	// configuration turns the headers off: nothing else reads it).
	RateLimit RateLimit

	// Err is the state failure (Failure): a store error, an entry that does not decode, or
	// state.ErrExhausted when a CAS loop gave up (Reason is then ReasonCASExhausted: count
	// it beside the outcome). On an Allow it is the state.ErrExhausted of a shared bucket
	// the request was admitted without (Reason ReasonCASExhausted too; see the package doc).
	Err error

	// UsageErr is set when the key's usage entry (filter/usage) could not be read or written:
	// the request was decided without its grant, or admitted without being counted in its
	// day's used. The outcome stands; count it (usage_failed).
	UsageErr error

	// GiveBackFailed is set when a request denied (or failed) after committing a shared
	// entry could not give that entry's token back: the bucket stays one token short until
	// it refills. Count it and warn; the outcome stands.
	GiveBackFailed bool
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

// NeverSeconds is what Retry-After and RateLimit-Reset say of a bucket that never gives a
// token again (a rate of 0 once it is empty, a burst of 0): a day, or less when the key's
// quota period ends sooner. No wait would be true; a client told a day comes back after a
// configuration change may have opened the bucket, where 2^63 ns would keep it away.
const NeverSeconds = 24 * 60 * 60

// Decider decides requests; it reuses its buffers, so one Decider serves one request at a
// time (one per VM: proxy-wasm VMs are single-threaded).
type Decider struct {
	txn     state.Txn
	limits  [4]config.Limit
	entries [4]entry
	results [4]result
	quota   limit.QuotaAt // the plan's quota at the request's instant: its window worked out once
	headers bool          // the configuration wants RateLimit-* headers: Decision.RateLimit is filled

	// Store keys of the configuration in use, built once each: building one per request was
	// an allocation, and every allocation feeds the GC, which is slow in Wasm. Bounded by
	// the configuration (keys × plans, shared limits); dropped when the configuration changes.
	namesOf    *config.Config
	keyNames   map[keyName]string
	limitNames map[string]string
	// Per stage, the reasons naming it: no resource matched, key not in a plan of it.
	stageReasons map[*config.Stage]*[2]string
	usageNames   map[keyName]string // usage.EntryKey per plan and key, like keyNames
	meter        meter

	// Copies of the limits that fired, handed out in Decisions: unlike the Decider's
	// buffer, a copy is never overwritten, so it outlives the next request.
	fired map[string]*config.Limit
}

type keyName struct {
	plan *config.Plan
	key  *config.Key
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

// result is one limit's answer at now: the bucket refilled to now, and with the token taken
// when ok. What logs and headers need of it (wait, time until full) is worked out from the
// bucket only for the limits they describe.
type result struct {
	ok     bool
	bucket limit.Bucket
}

func (r *result) remaining() int64 { return r.bucket.Tokens }

// quotaResult is the quota's answer at now: the counter advanced to now's window, and with
// the request counted when ok.
type quotaResult struct {
	ok      bool
	counter limit.Counter
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
	dc.forConfig(cfg)
	m := cfg.Match(req.RouteName, req.Host, req.Path, req.Method)
	d := Decision{Route: m.Route, Stage: m.Stage, Method: m.Method}
	switch {
	case m.Route == nil:
		return unmatched(d, cfg.UnmatchedRoute, "no route matched")
	case m.Route.Bypass:
		d.Outcome, d.Reason = Pass, "route bypasses the filter"
		return d
	case m.Method == nil:
		return unmatched(d, cfg.UnmatchedResource, dc.stageReason(m.Stage, noResource))
	}
	if m.Method.APIKeyRequired {
		if req.Key == "" {
			return forbidden(d, "missing API key")
		}
		d.Key = cfg.KeyByValueAt(req.Key, now) // a rotated key's previous value counts until its time
		switch {
		case d.Key == nil:
			return forbidden(d, "unknown API key")
		case !d.Key.Enabled:
			return forbidden(d, "disabled API key")
		}
		if d.Plan = d.Key.Plan(m.Stage); d.Plan == nil {
			return forbidden(d, dc.stageReason(m.Stage, notInPlan))
		}
	}
	return dc.limit(cfg, d, m, now, store)
}

// The reasons that name a stage, by index in Decider.stageReasons.
const (
	noResource = iota // "no resource and method of stage <id> matched"
	notInPlan         // "key not in a plan of stage <id>"
)

// stageReason is the reason of kind about stage s, built once per configuration.
func (dc *Decider) stageReason(s *config.Stage, kind int) string {
	r := dc.stageReasons[s]
	if r == nil {
		r = &[2]string{"no resource and method of stage " + s.ID + " matched", "key not in a plan of stage " + s.ID}
		dc.stageReasons[s] = r
	}
	return r[kind]
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

// ReasonCASExhausted is the Reason of a decision on which a CAS loop gave up: a Failure
// (the key's own entry) or an Allow (a shared bucket, admitted without its token). It is a
// cause, not an outcome: the filter counts it beside the outcome, under this name.
const ReasonCASExhausted = "cas_exhausted"

func failure(d Decision, err error) Decision {
	d.Outcome, d.Reason, d.Err = Failure, "state failure", err
	if errors.Is(err, state.ErrExhausted) {
		d.Reason = ReasonCASExhausted
	}
	d.RateLimit = RateLimit{}
	return d
}

// limit checks then commits every limit of the request; see the package doc.
func (dc *Decider) limit(cfg *config.Config, d Decision, m config.Match, now time.Time, store state.Store) Decision {
	lims := cfg.AppendLimits(dc.limits[:0], d.Plan, m)
	quota := localQuota(cfg, d.Plan)
	// Group the limits into entries: AppendLimits puts the per-key ones first.
	ents := dc.entries[:0]
	i := 0
	if d.Plan != nil {
		for i < len(lims) && lims[i].PerKey {
			i++
		}
		if i > 0 || quota != nil {
			ents = dc.push(ents, dc.keyEntry(cfg, d.Plan, d.Key), 0, i, quota)
			ents[0].plan = d.Plan
		}
	}
	for ; i < len(lims); i++ {
		ents = dc.push(ents, dc.sharedEntry(cfg, lims[i].ID), i, 1, nil)
	}
	dc.meter.read, dc.meter.err = false, nil
	if len(ents) == 0 {
		d.Outcome, d.Reason = Allow, "no limits"
		dc.recordUsage(cfg, &d, now, store)
		return d
	}
	qa := &dc.quota
	if quota != nil {
		*qa = quota.At(now)
		dc.readUsage(cfg, &d, store)
		d.UsageErr = dc.meter.err
		qa.SetGrant(dc.grant(now))
	}
	dc.txn.Store, dc.txn.Attempts = store, cfg.CASRetries
	dc.headers = cfg.RateLimitHeaders
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
	if deny, ok := dc.verdict(d, lims, res, quota, qr, qa, now); !ok {
		// A quota's first request marks its initial period even when it is denied (an
		// offset at or above the limit): otherwise that period would never end. The
		// entry may exist already, with buckets, when a reload added the quota.
		if e := &ents[0]; quota != nil && e.snap.Entry.Quota.Created == 0 {
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

	// Phase 2: commit entry by entry, checking again against what each write replaces: the
	// shared entries first, the key's entry (ents[0] when there is one) last.
	first := 0
	if ents[0].plan != nil {
		first = 1
	}
	var skipped error // a shared entry's loop that gave up: admitted without its token
	for n := range ents {
		e := &ents[(first+n)%len(ents)]
		ok := false
		// The first attempt writes over the very entry phase 1 checked, so its results
		// stand; an attempt after a CAS mismatch decides on the entry read again.
		fresh := true
		err := dc.txn.Commit(&e.snap, func(en *state.Entry) bool {
			if !fresh {
				check(en, e, lims, res, &qr, qa, now)
			}
			fresh = false
			if ok = passed(e, res, qr); ok {
				take(en, e, lims, res, qr)
			}
			return ok
		})
		if err == nil && ok {
			e.committed = true
			continue
		}
		if e.plan == nil && errors.Is(err, state.ErrExhausted) {
			skipped = err
			continue
		}
		d.GiveBackFailed = !dc.giveBack(ents, lims, qa, now)
		if err != nil {
			return failure(d, err)
		}
		deny, _ := dc.verdict(d, lims, res, quota, qr, qa, now)
		return deny
	}
	d.Outcome, d.Reason, d.Err = Allow, "within every limit", skipped
	if skipped != nil {
		d.Reason = ReasonCASExhausted
	}
	dc.recordUsage(cfg, &d, now, store)
	if dc.headers {
		d.RateLimit = binding(quota, lims, res, qr, qa, now)
	}
	return d
}

// keyEntry is state.KeyEntry of the plan and key, built once per configuration.
func (dc *Decider) keyEntry(cfg *config.Config, plan *config.Plan, key *config.Key) string {
	name, ok := dc.keyNames[keyName{plan, key}]
	if !ok {
		name = state.KeyEntry(cfg.Namespace, plan.ID, key.ID)
		dc.keyNames[keyName{plan, key}] = name
	}
	return name
}

// sharedEntry is state.SharedEntry of the limit, built once per configuration.
func (dc *Decider) sharedEntry(cfg *config.Config, limitID string) string {
	name, ok := dc.limitNames[limitID]
	if !ok {
		name = state.SharedEntry(cfg.Namespace, limitID)
		dc.limitNames[limitID] = name
	}
	return name
}

// forConfig drops what was built for a previous configuration: its keys, plans, stages,
// limits and namespace may be gone.
func (dc *Decider) forConfig(cfg *config.Config) {
	if dc.namesOf == cfg {
		return
	}
	dc.namesOf = cfg
	dc.keyNames = make(map[keyName]string)
	dc.limitNames = make(map[string]string)
	dc.usageNames = make(map[keyName]string)
	dc.stageReasons = make(map[*config.Stage]*[2]string)
	dc.fired = make(map[string]*config.Limit)
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
		res[j].bucket, res[j].ok = lims[j].Throttle.AllowN(en.Bucket(lims[j].ID), now, 1)
	}
	if e.quota != nil {
		qr.counter, qr.ok = qa.AllowN(en.Quota, 1)
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

// take takes one token from each bucket of e and counts one request in its quota: it
// stores what check found for en, which passed. From a key's entry it drops buckets its
// plan no longer has (a reload removed an override), so the entry stays bounded by the
// current configuration; the plan's own buckets are all kept.
func take(en *state.Entry, e *entry, lims []config.Limit, res []result, qr quotaResult) {
	if e.plan != nil {
		prune(en, e.plan.KeyLimits())
	}
	for j := e.first; j < e.first+e.n; j++ {
		en.SetBucket(lims[j].ID, res[j].bucket)
	}
	if e.quota != nil {
		en.Quota = qr.counter
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

// giveBack returns what the committed entries of ents took, and reports whether every
// give-back was written; one that fails (a store error, every CAS attempt lost) leaves the
// token taken (the safe side).
func (dc *Decider) giveBack(ents []entry, lims []config.Limit, qa *limit.QuotaAt, now time.Time) (ok bool) {
	ok = true
	for k := range ents {
		e := &ents[k]
		if !e.committed {
			continue
		}
		err := dc.txn.Update(e.snap.Key, func(en *state.Entry) bool {
			for j := e.first; j < e.first+e.n; j++ {
				en.SetBucket(lims[j].ID, lims[j].Throttle.GiveN(en.Bucket(lims[j].ID), now, 1))
			}
			if e.quota != nil {
				en.Quota = qa.GiveN(en.Quota, 1, e.window)
			}
			return true
		})
		ok = ok && err == nil
		e.committed = false
	}
	return ok
}

// verdict turns the results into a denial, or reports ok. The quota wins over a throttle:
// retrying after a throttle's second would not help a key whose quota is spent.
func (dc *Decider) verdict(d Decision, lims []config.Limit, res []result, quota *limit.Quota, qr quotaResult, qa *limit.QuotaAt, now time.Time) (Decision, bool) {
	if quota != nil && !qr.ok {
		d.Outcome, d.Reason = QuotaExceeded, "quota exceeded"
		if dc.headers {
			d.RateLimit = quotaRateLimit(quota, qr, qa, now)
		}
		d.Reset = qa.Reset(qr.counter)
		d.RetryAfter = limit.Seconds(d.Reset.Sub(now))
		return d, false
	}
	var wait time.Duration
	for j := range lims {
		if res[j].ok {
			continue
		}
		if d.Limit == nil {
			d.Limit = &lims[j]
			if dc.headers {
				d.RateLimit = bucketRateLimit(&lims[j], res[j], quota, qr, qa, now)
			}
		}
		wait = max(wait, lims[j].Throttle.Wait(res[j].bucket, now, 1))
	}
	if d.Limit == nil {
		return d, true
	}
	d.Limit = dc.firedLimit(d.Limit)
	d.Outcome, d.Reason = Throttled, throttledReason(d.Limit.Level)
	d.RetryAfter = limit.Seconds(wait)
	if wait == limit.MaxWait {
		d.RetryAfter = neverSeconds(quota, qr, qa, now)
	}
	return d, false
}

// firedLimit is a copy of l that outlives the Decider's buffer, made once per limit and
// configuration. A limit's ID names its numbers within one configuration.
func (dc *Decider) firedLimit(l *config.Limit) *config.Limit {
	c := dc.fired[l.ID]
	if c == nil || *c != *l {
		c = new(config.Limit)
		*c = *l
		dc.fired[l.ID] = c
	}
	return c
}

var throttledReasons = [...]string{
	config.LevelPlanMethod:  "throttled by " + config.LevelPlanMethod.String() + " limit",
	config.LevelPlan:        "throttled by " + config.LevelPlan.String() + " limit",
	config.LevelStageMethod: "throttled by " + config.LevelStageMethod.String() + " limit",
	config.LevelAccount:     "throttled by " + config.LevelAccount.String() + " limit",
}

// throttledReason is "throttled by <level> limit", without building it per request.
func throttledReason(l config.Level) string {
	if int(l) < len(throttledReasons) && throttledReasons[l] != "" {
		return throttledReasons[l]
	}
	return "throttled by " + l.String() + " limit"
}

// binding picks the limit with the fewest requests left after an admitted request; quota
// is the one counted here (nil in global mode or without one).
func binding(quota *limit.Quota, lims []config.Limit, res []result, qr quotaResult, qa *limit.QuotaAt, now time.Time) RateLimit {
	b := -1 // the binding bucket
	for j := range lims {
		if b < 0 || res[j].remaining() < res[b].remaining() {
			b = j
		}
	}
	if quota != nil && (b < 0 || qa.Remaining(qr.counter) < res[b].remaining()) {
		return quotaRateLimit(quota, qr, qa, now)
	}
	if b < 0 {
		return RateLimit{}
	}
	return bucketRateLimit(&lims[b], res[b], quota, qr, qa, now)
}

// bucketRateLimit describes the bucket of l; quota (nil when none) is the key's, which
// bounds what the headers say of a bucket that never refills.
func bucketRateLimit(l *config.Limit, r result, quota *limit.Quota, qr quotaResult, qa *limit.QuotaAt, now time.Time) RateLimit {
	rl := RateLimit{Set: true, Limit: l.Throttle.Burst, Remaining: r.remaining(), Name: l.ID}
	full := l.Throttle.UntilFull(r.bucket, now)
	if full == limit.MaxWait || l.Throttle.Burst <= 0 {
		// Never full, or never a token: no reset to tell, and no window for the policy.
		rl.Reset = neverSeconds(quota, qr, qa, now)
		return rl
	}
	rl.Reset = limit.Seconds(full)
	if fill := l.Throttle.FillTime(); fill != limit.MaxWait {
		rl.Window = limit.Seconds(fill)
	}
	return rl
}

// neverSeconds is NeverSeconds, or the seconds until the quota period ends when that is
// sooner; quota is nil when the key has none.
func neverSeconds(quota *limit.Quota, qr quotaResult, qa *limit.QuotaAt, now time.Time) int64 {
	if quota == nil {
		return NeverSeconds
	}
	return min(NeverSeconds, limit.Seconds(qa.Reset(qr.counter).Sub(now)))
}

// quotaRateLimit describes the plan's quota q; qa is q at the request's instant.
func quotaRateLimit(q *limit.Quota, qr quotaResult, qa *limit.QuotaAt, now time.Time) RateLimit {
	return RateLimit{Set: true, Limit: qa.LimitOf(qr.counter), Remaining: qa.Remaining(qr.counter),
		Reset: limit.Seconds(qa.Reset(qr.counter).Sub(now)), Window: qa.Seconds(), Name: "quota"}
}
