package main

import (
	"fmt"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/core"
	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/rls"
)

// The adapter of global mode: a request that needs quota is paused, its RLS call made with
// proxy_http_call, and it is resumed (or answered) from proxy_on_http_call_response. It is
// never blocked; the host answers every call by its timeout (global.timeoutMs).

// globalRequest is what a paused request keeps until RLS answers: the ticket, and the
// local decision (Allow) waiting for the quota. The decision is kept as its parts, without
// core.Decision's time.Time: httpContext is held in an interface, and a time.Time reachable
// from it links time's formatting and parsing into the module (about 300 KB).
type globalRequest struct {
	ticket  global.Ticket
	held    heldDecision
	waiting bool // the request is paused on its call
}

type heldDecision struct {
	reason    string
	route     *config.Route
	stage     *config.Stage
	method    *config.Method
	rateLimit core.RateLimit
	err       error
}

func hold(d *core.Decision) heldDecision {
	return heldDecision{reason: d.Reason, route: d.Route, stage: d.Stage, method: d.Method, rateLimit: d.RateLimit, err: d.Err}
}

// decision is the held Allow again, for the request's ticket.
func (g *globalRequest) decision() core.Decision {
	h := &g.held
	return core.Decision{Outcome: core.Allow, Reason: h.reason, Route: h.route, Stage: h.stage, Method: h.method,
		Key: g.ticket.Key, Plan: g.ticket.Plan, RateLimit: h.rateLimit, Err: h.err}
}

// needsGlobal reports whether an admitted request still needs the fleet's quota.
func needsGlobal(cfg *config.Config, d *core.Decision) bool {
	return cfg.Global != nil && d.Outcome == core.Allow && d.Plan != nil && d.Plan.Quota != nil && d.Key != nil
}

// globalQuota runs the global step of an admitted request: served from the proxy's lease,
// or paused on an RLS call.
func (h *httpContext) globalQuota(d *core.Decision) types.Action {
	p := h.plugin
	g := h.cfg.Global
	t := p.quota.Begin(h.cfg, d.Plan, d.Key, now(), sharedData{})
	switch t.StepOf() {
	case global.Fail:
		// The proxy's own entry cannot be read or written: a state failure, decided by the
		// failure policy as in local mode.
		d.Outcome, d.Reason, d.Err = core.Failure, "state failure", t.Err
		d.RateLimit = core.RateLimit{}
		return h.act(d)
	case global.Admit:
		p.gm.inc(p.gm.leaseServed)
		h.usageState(d, t.UsageErr, t.UsageLost)
		return h.act(d)
	case global.Refuse:
		p.gm.inc(p.gm.refusedLocal)
		h.global = globalRequest{ticket: t, held: hold(d)}
		return h.finishExceeded(d, now(), 0)
	}
	h.global = globalRequest{ticket: t, held: hold(d)}
	h.global.ticket.Body = nil // the Quota's buffer; the host copies it at the call
	p.gm.inc(p.gm.calls)
	if t.UsageErr != nil {
		h.usageState(d, t.UsageErr, 0)
	}
	if _, err := proxywasm.DispatchHttpCall(g.Cluster, rls.Headers(g.Cluster), t.Body, nil, g.TimeoutMS, h.onRLSAnswer); err != nil {
		proxywasm.LogErrorf("usageplans: RLS call to cluster %q not sent: %v", g.Cluster, err)
		return h.finishGlobal(global.Answer{Failed: true})
	}
	h.global.waiting = true
	return types.ActionPause
}

// OnHttpRequestTrailers holds the trailers back while the request waits, for the same
// reason.
func (h *httpContext) OnHttpRequestTrailers(int) types.Action {
	if h.global.waiting {
		return types.ActionPause
	}
	return types.ActionContinue
}

// onRLSAnswer is proxy_on_http_call_response for a paused request: decide, then resume
// the request or answer it. A panic here still ends the request: by the failure policy.
func (h *httpContext) onRLSAnswer(numHeaders, bodySize, numTrailers int) {
	h.global.waiting = false
	action := types.ActionPause
	defer func() {
		if r := recover(); r != nil {
			if h.metrics != nil {
				h.metrics.panicRecovered()
			}
			action = h.failGlobal(r)
		}
		if action == types.ActionContinue {
			_ = proxywasm.ResumeHttpRequest()
		}
	}()
	action = h.finishGlobal(readAnswer(bodySize))
}

func (h *httpContext) failGlobal(r any) (action types.Action) {
	defer func() {
		if recover() != nil {
			action = types.ActionContinue // never leave the request hanging
		}
	}()
	return h.fail(fmt.Errorf("panic in the RLS answer: %v", r))
}

// readAnswer reads the HTTP-call response. A failed call (timeout, reset) has no headers:
// the host answers their read with NOT_FOUND.
func readAnswer(bodySize int) global.Answer {
	headers, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil || len(headers) == 0 {
		return global.Answer{Failed: true}
	}
	a := global.Answer{Headers: headers}
	if bodySize > 0 {
		a.Body, _ = proxywasm.GetHttpCallResponseBody(0, bodySize)
	}
	a.Trailers, _ = proxywasm.GetHttpCallResponseTrailers()
	return a
}

// finishGlobal turns RLS's answer (or its absence) into the request's decision and acts
// on it.
func (h *httpContext) finishGlobal(a global.Answer) types.Action {
	p := h.plugin
	t := now()
	r := p.quota.Finish(h.cfg, &h.global.ticket, a, t, sharedData{})
	dec := h.global.decision()
	d := &dec
	if r.StateErr != nil {
		p.gm.inc(p.gm.stateErrors)
		h.logDecision(proxywasm.LogWarn, d, h.outcomeOf(d), "global entry not written (a lease or a carry-over may be lost): "+r.StateErr.Error())
	}
	h.usageState(d, nil, r.UsageLost)
	if r.Fallback != 0 {
		p.gm.fallback(r.Fallback)
		h.logDecision(proxywasm.LogWarn, d, h.outcomeOf(d), "RLS gave no usable answer, failureMode "+r.Fallback.String()+": "+r.Err.Error())
	}
	switch r.Verdict {
	case global.Exceeded:
		return h.finishExceeded(d, t, r.Reset)
	case global.Failed:
		d.Outcome, d.Reason, d.Err = core.Failure, "RLS failure", r.Err
		d.RateLimit = core.RateLimit{}
		if !h.cfg.ShadowMode {
			// failureMode CLOSED answers with the FAILURE response whatever the top-level
			// failurePolicy (which is about the proxy's own state) says.
			h.removeSpoofedIdentity()
			if h.sentKey {
				h.stripKey()
			}
			h.record(outcomeFailure, d)
			h.replied = true
			f := h.cfg.Response(config.Failure)
			return sendResponse(core.Response{Status: f.Status, Headers: f.Headers, Body: f.Body})
		}
	case global.Admitted:
		if h.cfg.RateLimitHeaders && r.Remaining >= 0 && (!d.RateLimit.Set || r.Remaining < d.RateLimit.Remaining) {
			d.RateLimit = core.RateLimit{Set: true, Limit: d.Plan.Quota.Limit, Remaining: r.Remaining,
				Reset: limit.Seconds(time.Unix(r.Reset, 0).Sub(t)), Window: h.global.ticket.Window.End - h.global.ticket.Window.Start, Name: "quota"}
		}
	}
	return h.act(d)
}

// usageState counts and logs what went wrong with the proxy's unsent usage of the key (see
// global.UsageEntry): an entry not read or written, admitted requests lost to an
// unanswered call. The request's decision stands.
func (h *httpContext) usageState(d *core.Decision, err error, lost int64) {
	p := h.plugin
	if err != nil {
		p.gm.inc(p.gm.stateErrors)
		h.logDecision(proxywasm.LogWarn, d, h.outcomeOf(d), "global usage or grant entry not read or not written (the request may miss the fleet's usage, or be decided without the grant): "+err.Error())
	}
	p.usageLost(lost, "a call that carried the key's usage")
}

// finishExceeded answers the quota's 429, Retry-After until the period ends (reset, Unix
// seconds; 0: the ticket's period end).
func (h *httpContext) finishExceeded(d *core.Decision, t time.Time, reset int64) types.Action {
	w := h.global.ticket.Window
	if reset == 0 {
		reset = w.End
	}
	d.Outcome, d.Reason = core.QuotaExceeded, "quota exceeded"
	d.Reset = time.Unix(reset, 0).UTC()
	d.RetryAfter = limit.Seconds(d.Reset.Sub(t))
	d.Limit = nil
	d.RateLimit = core.RateLimit{}
	if h.cfg.RateLimitHeaders {
		d.RateLimit = core.RateLimit{Set: true, Limit: d.Plan.Quota.Limit, Remaining: 0, Reset: d.RetryAfter,
			Window: w.End - w.Start, Name: "quota"}
	}
	return h.act(d)
}

// globalMetrics count what global mode did: usageplans.global.calls (RLS calls made),
// .lease_served (requests served from a lease, no call), .refused_local (refused without a
// call: RLS already said OVER_LIMIT in this window), .fallback.<OPEN|CLOSED|LOCAL>
// (requests RLS gave no usable answer for, by the mode that decided), .state_errors,
// .usage_flushes (calls of the tick that carry usage of quiet keys) and .usage_lost
// (admitted requests left out of the fleet's usage: a call carrying them got no answer).
type globalMetrics struct {
	calls, leaseServed, refusedLocal, stateErrors proxywasm.MetricCounter
	flushes, usageLost                            proxywasm.MetricCounter
	fallbacks                                     [4]proxywasm.MetricCounter
}

// newGlobalMetrics defines the counters; a counter the host refuses stays 0, and counting
// on it is a no-op (see inc).
func newGlobalMetrics() (m globalMetrics) {
	defer func() { _ = recover() }()
	m.calls = proxywasm.DefineCounterMetric("usageplans.global.calls")
	m.leaseServed = proxywasm.DefineCounterMetric("usageplans.global.lease_served")
	m.stateErrors = proxywasm.DefineCounterMetric("usageplans.global.state_errors")
	m.refusedLocal = proxywasm.DefineCounterMetric("usageplans.global.refused_local")
	m.flushes = proxywasm.DefineCounterMetric("usageplans.global.usage_flushes")
	m.usageLost = proxywasm.DefineCounterMetric("usageplans.global.usage_lost")
	for _, f := range []config.GlobalFailure{config.GlobalClosed, config.GlobalOpen, config.GlobalLocal} {
		m.fallbacks[f] = proxywasm.DefineCounterMetric("usageplans.global.fallback." + f.String())
	}
	return m
}

// inc adds one; the SDK panics on any metric status, which must not fail a request.
func (m *globalMetrics) inc(c proxywasm.MetricCounter) {
	defer func() { _ = recover() }()
	if c != 0 {
		c.Increment(1)
	}
}

func (m *globalMetrics) add(c proxywasm.MetricCounter, n int64) {
	defer func() { _ = recover() }()
	if c != 0 && n > 0 {
		c.Increment(uint64(n))
	}
}

func (m *globalMetrics) fallback(f config.GlobalFailure) {
	if int(f) < len(m.fallbacks) {
		m.inc(m.fallbacks[f])
	}
}

// checkGlobal checks what the parser cannot see: that the cluster exists. It sends a
// check-only call (hits_addend 0, counting nothing): Envoy answers proxy_http_call with
// BAD_ARGUMENT for a cluster it does not know, and the configuration is then rejected, the
// one in force kept. The answer, when it comes, says whether RLS knows the domain (see
// onCheckAnswer).
func checkGlobal(cfg *config.Config) bool {
	g := cfg.Global
	body := rls.AppendRequestFrame(nil, &rls.Request{Domain: g.Domain, Descriptors: []rls.Descriptor{
		{Entries: []rls.Entry{{Key: global.CheckKey, Value: global.CheckValue}}, HasHits: true}}})
	_, err := proxywasm.DispatchHttpCall(g.Cluster, rls.Headers(g.Cluster), body, nil, g.TimeoutMS, func(_, bodySize, _ int) {
		defer func() {
			if r := recover(); r != nil {
				proxywasm.LogErrorf("usageplans: panic reading the RLS check: %v", r)
			}
		}()
		onCheckAnswer(g, readAnswer(bodySize))
	})
	switch err {
	case nil:
		return true
	case types.ErrorStatusBadArgument:
		proxywasm.LogCriticalf("usageplans %s: configuration rejected: 1 problem(s)", version)
		proxywasm.LogCriticalf("usageplans: config: global.cluster: unknown cluster %q", g.Cluster)
		return false
	}
	proxywasm.LogWarnf("usageplans: global: the check call to cluster %q was not sent: %v", g.Cluster, err)
	return true
}

func onCheckAnswer(g *config.Global, a global.Answer) {
	if a.Failed {
		proxywasm.LogWarnf("usageplans: global: RLS (cluster %q) did not answer the configuration check; requests needing quota go by failureMode %s until it does", g.Cluster, g.FailureMode)
		return
	}
	if err := rls.CallStatus(a.Headers, a.Trailers); err != nil {
		proxywasm.LogWarnf("usageplans: global: RLS check: %v", err)
		return
	}
	msg, err := rls.Unframe(a.Body)
	var resp rls.Response
	if err == nil {
		err = rls.DecodeResponse(msg, &resp)
	}
	switch {
	case err != nil:
		proxywasm.LogWarnf("usageplans: global: RLS check: %v", err)
	case len(resp.Statuses) != 1 || resp.Statuses[0].Limit.RequestsPerUnit == 0:
		// Without the domain RLS ignores the limits the filter sends and admits everything.
		proxywasm.LogCriticalf("usageplans: global: RLS answered the check without a limit: its configuration lacks domain %q or its check descriptor; without the domain every request is admitted (load the output of `usageplans ratelimit-config` into RLS)", g.Domain)
	default:
		proxywasm.LogInfof("usageplans: global: RLS serves domain %q", g.Domain)
	}
}
