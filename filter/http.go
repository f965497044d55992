package main

import (
	"fmt"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/core"
)

// now is the wall clock. In Wasm it is the host's (WASI clock_time_get, clock_wasip1.go),
// which is how the e2e tests move time; native tests replace it.
var now = wallClock

// httpContext is one request. It keeps the configuration it started with, so a
// reconfiguration in the middle of a request does not change how that request is treated.
type httpContext struct {
	types.DefaultHttpContext
	plugin  *pluginContext
	cfg     *config.Config
	metrics *metrics

	// headers are the request headers, read in one host call when the request's headers
	// arrive; headersRead is set once they were. The values a decision needs come from them,
	// and a header they lack is not removed (each removal is a host call).
	headers     [][2]string
	headersRead bool

	// responseHeaders are added to the upstream's response: the RateLimit-* headers of an
	// admitted request, when the configuration asks for them.
	responseHeaders [][2]string
	// sentKey is set when the request may carry a key: one was read, or the key's query
	// parameter may be in the query string (even one that does not decode). act strips it;
	// without one a rejection saves a host call.
	sentKey bool
	// recorded is set once the request's outcome is counted, replied once a local reply
	// is sent: a panic after either must not count the request again or answer it twice.
	recorded, replied bool
	// usage is a usage API request waiting for its body (filter/usageapi.go).
	usage *usageCall
	// global is the request's exchange with RLS while it is paused on it (global mode).
	global globalRequest
}

// OnHttpRequestBody: a usage API call buffers its body (usageapi.go); a request waiting for
// RLS holds its body back (global.go), since Envoy continues a request whose headers stopped
// as soon as a body callback answers Continue, which would send it upstream before its quota
// is decided. It holds it as Envoy's own ratelimit filter does, with
// StopIterationAndWatermark: Envoy stops reading the body at its buffer limit instead of
// answering 413. (Such callbacks come only under allow_on_headers_stop_iteration; without
// it Envoy holds the body itself until the filter continues.) Otherwise the body passes.
func (h *httpContext) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	switch {
	case h.usage != nil:
		return h.usageBody(bodySize, endOfStream)
	case h.global.waiting:
		return actionStopIterationAndWatermark
	}
	return types.ActionContinue
}

// actionStopIterationAndWatermark is proxy-wasm's FilterDataStatus 2, which the SDK has no
// name for: buffer the body, with flow control at the buffer limit rather than a 413.
const actionStopIterationAndWatermark types.Action = 2

// decidedHook, nil outside tests, runs after the outcome is recorded ("recorded") and after
// a local reply is sent ("replied"), so that tests can panic there.
var decidedHook func(where string)

func (h *httpContext) OnHttpRequestHeaders(_ int, endOfStream bool) (action types.Action) {
	defer h.recoverRequest(&action)
	if h.cfg == nil { // the plugin never accepted a configuration
		return h.fail(fmt.Errorf("no configuration accepted"))
	}
	req := h.request()
	if h.cfg.UsageAPI != nil {
		if a, ok := h.usageAPI(&req, endOfStream); ok {
			return a
		}
	}
	h.sentKey = req.Key != "" || h.cfg.KeySource.QueryParameter != "" && strings.IndexByte(req.Path, '?') >= 0
	d := h.plugin.decider.Decide(h.cfg, req, now(), sharedData{})
	if needsGlobal(h.cfg, &d) {
		return h.globalQuota(&d)
	}
	return h.act(&d)
}

// request reads what the decision needs, from the request headers read once (one host
// call, where a call per header cost a call and an allocation re-entry each). Missing
// pseudo-headers and properties read as "": the decision then treats the request as
// unmatched or keyless, never as an error; so do headers the host would not give. The
// route name is read only when a route looks at it.
func (h *httpContext) request() core.Request {
	h.headers, h.headersRead = nil, false
	if hs, err := proxywasm.GetHttpRequestHeaders(); err == nil {
		h.headers, h.headersRead = hs, true
	}
	path := h.header(":path")
	var host, routeName string
	if h.cfg.MatchesHost() {
		host = h.header(":authority")
	}
	if h.cfg.MatchesRouteName() {
		route, _ := proxywasm.GetProperty(routeNamePath)
		routeName = string(route)
	}
	return core.Request{
		Method:    h.header(":method"),
		Path:      path,
		Host:      host,
		RouteName: routeName,
		Key:       h.apiKey(path),
	}
}

var routeNamePath = []string{"xds", "route_name"}

// header is the first value of the request header name (compared as Envoy does, without
// regard to case), "" when absent.
func (h *httpContext) header(name string) string {
	if i := h.headerIndex(name); i >= 0 {
		return h.headers[i][1]
	}
	return ""
}

func (h *httpContext) headerIndex(name string) int {
	for i := range h.headers {
		if k := h.headers[i][0]; len(k) == len(name) && (k == name || strings.EqualFold(k, name)) {
			return i
		}
	}
	return -1
}

// mayHave reports whether the request may carry header name: it does, or its headers were
// never read.
func (h *httpContext) mayHave(name string) bool {
	return !h.headersRead || h.headerIndex(name) >= 0
}

// removeHeader removes request header name if the request may carry it.
func (h *httpContext) removeHeader(name string) {
	if h.mayHave(name) {
		_ = proxywasm.RemoveHttpRequestHeader(name)
	}
}

// apiKey reads the key from where the configuration says; "" when absent.
func (h *httpContext) apiKey(path string) string {
	src := &h.cfg.KeySource
	if len(src.Property) > 0 {
		v, err := proxywasm.GetProperty(src.Property)
		if err != nil {
			return ""
		}
		return string(v)
	}
	if v := h.header(src.Header); v != "" {
		return v
	}
	if src.QueryParameter != "" {
		return queryParam(path, src.QueryParameter)
	}
	return ""
}

// act carries out a decision: continue (adding identity headers), or answer locally.
// Shadow mode turns every rejection into a logged, counted admission. The key leaves every
// request the filter decides, rejected ones too: Envoy's access log reads the request's
// :path and headers after a local reply as well.
func (h *httpContext) act(d *core.Decision) types.Action {
	h.removeSpoofedIdentity()
	if d.Outcome != core.Pass && h.sentKey {
		h.stripKey()
	}
	if d.Outcome == core.Pass {
		return types.ActionContinue
	}
	o := h.outcomeOf(d)
	if d.UsageErr != nil {
		h.metrics.usageAPI(usageFailed)
		h.logDecision(proxywasm.LogWarn, d, o, "usage entry not read or not written ("+d.UsageErr.Error()+")")
	}
	if d.GiveBackFailed {
		h.metrics.giveBackFailure()
		h.logDecision(proxywasm.LogWarn, d, o, "give-back failed, a shared bucket stays a token short")
	}
	if d.Exhausted() { // a CAS loop gave up: a cause, counted beside the outcome
		h.metrics.casExhaustion(d.Plan)
	}
	h.record(o, d)
	switch {
	case o == outcomeAllowed:
		if d.Exhausted() { // a shared bucket was contended: admitted without its token
			h.logDecision(proxywasm.LogWarn, d, o, "shared bucket contended, admitted without its token")
		}
		h.admit(d)
		return types.ActionContinue
	case o == outcomeFailure:
		h.logDecision(proxywasm.LogWarn, d, o, "state failure")
		if h.cfg.FailurePolicy == config.FailOpen || h.cfg.ShadowMode {
			h.admit(d)
			return types.ActionContinue
		}
		return h.reply(d)
	case o == outcomeShadowDenied:
		h.logDecision(proxywasm.LogInfo, d, o, "shadow mode, let through")
		h.admit(d)
		return types.ActionContinue
	}
	h.logDecision(proxywasm.LogInfo, d, o, "rejected")
	return h.reply(d)
}

// outcomeOf names what happens to a decided request (not a Pass): one name for its log
// line, filter state and metric.
func (h *httpContext) outcomeOf(d *core.Decision) outcome {
	switch d.Outcome {
	case core.Allow:
		return outcomeAllowed
	case core.Failure:
		return outcomeFailure
	}
	if h.cfg.ShadowMode {
		return outcomeShadowDenied
	}
	return rejectionOutcome(d.Outcome)
}

// Filter state naming what the filter decided, for access logs (Envoy keeps a property set
// by a stream as filter state "wasm.<name>": %FILTER_STATE(wasm.usageplans_outcome:PLAIN)%).
// Keys and plans appear by id, never a key value.
var (
	stateOutcome = []string{"usageplans_outcome"}
	stateKeyID   = []string{"usageplans_key_id"}
	statePlanID  = []string{"usageplans_plan_id"}
)

// record counts a decided request and says in the filter state what was decided. An
// admitted request's key and plan are already in its identity headers (an access log reads
// them there, as %REQ(x-usageplans-key-id)%), so the allow path skips two host calls.
func (h *httpContext) record(o outcome, d *core.Decision) {
	h.metrics.count(o, d.Plan)
	h.recorded = true
	if decidedHook != nil {
		decidedHook("recorded")
	}
	_ = proxywasm.SetProperty(stateOutcome, outcomeBytes[o])
	if o == outcomeAllowed && h.cfg.IdentityHeaders.KeyID != "" && h.cfg.IdentityHeaders.PlanID != "" {
		return
	}
	if d.Key != nil {
		_ = proxywasm.SetProperty(stateKeyID, []byte(d.Key.ID))
	}
	if d.Plan != nil {
		_ = proxywasm.SetProperty(statePlanID, []byte(d.Plan.ID))
	}
}

func rejectionOutcome(o core.Outcome) outcome {
	switch o {
	case core.Throttled:
		return outcomeThrottled
	case core.QuotaExceeded:
		return outcomeQuotaExceeded
	case core.NoResource:
		return outcomeUnmatched
	}
	return outcomeForbidden
}

// stripKey removes the key from the request (header and query parameter, as configured),
// unless the configuration keeps it; a key read from a property is not the request's.
func (h *httpContext) stripKey() {
	cfg := h.cfg
	if !cfg.StripAPIKey || len(cfg.KeySource.Property) > 0 {
		return
	}
	if cfg.KeySource.Header != "" {
		h.removeHeader(cfg.KeySource.Header)
	}
	if q := cfg.KeySource.QueryParameter; q != "" {
		path, err := h.header(":path"), error(nil)
		if !h.headersRead {
			path, err = proxywasm.GetHttpRequestHeader(":path")
		}
		if err == nil {
			if stripped, ok := removeQueryParam(path, q); ok {
				_ = proxywasm.ReplaceHttpRequestHeader(":path", stripped)
			}
		}
	}
}

// admit prepares an admitted request for the upstream (act stripped its key): the identity
// headers name the key and plan, except for a key the filter would forbid (shadow mode
// lets it through): the upstream must not take a disabled or unplanned key for a valid one.
func (h *httpContext) admit(d *core.Decision) {
	cfg := h.cfg
	if d.Outcome != core.Forbidden {
		h.setIdentity(d)
	}
	h.responseHeaders = core.RateLimitHeaders(cfg, d)
}

// setIdentity adds the identity headers the configuration names for d's key and plan.
func (h *httpContext) setIdentity(d *core.Decision) {
	cfg := h.cfg
	if d.Key != nil && cfg.IdentityHeaders.KeyID != "" {
		_ = proxywasm.ReplaceHttpRequestHeader(cfg.IdentityHeaders.KeyID, d.Key.ID)
	}
	if d.Plan != nil && cfg.IdentityHeaders.PlanID != "" {
		_ = proxywasm.ReplaceHttpRequestHeader(cfg.IdentityHeaders.PlanID, d.Plan.ID)
	}
}

// removeSpoofedIdentity drops identity headers a client sent itself: only the filter may
// tell the upstream who a request belongs to.
func (h *httpContext) removeSpoofedIdentity() {
	for _, name := range [...]string{h.cfg.IdentityHeaders.KeyID, h.cfg.IdentityHeaders.PlanID} {
		if name != "" {
			h.removeHeader(name)
		}
	}
}

// reply sends the local response core builds for the decision. After it the stream is
// over: the callback must return Pause, and the upstream never sees the request.
func (h *httpContext) reply(d *core.Decision) types.Action {
	resp, ok := core.Respond(h.cfg, d)
	if !ok {
		return types.ActionContinue
	}
	h.replied = true
	a := sendResponse(resp)
	if decidedHook != nil {
		decidedHook("replied")
	}
	return a
}

func sendResponse(resp core.Response) types.Action {
	if err := proxywasm.SendHttpResponse(uint32(resp.Status), resp.Headers, []byte(resp.Body), -1); err != nil {
		proxywasm.LogErrorf("usageplans: sending the %d response: %v", resp.Status, err)
	}
	return types.ActionPause
}

// noConfigResponse answers when the plugin never accepted a configuration (Envoy does not
// route requests to such a plugin; this is the belt to that brace).
// It is AWS's default failure response, as no configured one exists.
var noConfigResponse = core.Response{Status: 500, Body: `{"message":"Internal server error"}`,
	Headers: [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "InternalServerErrorException"}}}

// fail answers a request the filter could not decide, by the failure policy; in shadow
// mode it lets the request through, as OPEN does. A request already answered stays paused;
// one whose outcome was already counted is not counted again, but still goes by the
// failure policy: the panic may have left it half prepared (identity headers, key).
func (h *httpContext) fail(err error) types.Action {
	proxywasm.LogErrorf("usageplans: %v", err)
	if h.replied {
		return types.ActionPause
	}
	if h.metrics != nil && !h.recorded {
		h.record(outcomeFailure, &core.Decision{})
	}
	if h.cfg == nil {
		h.replied = true
		return sendResponse(noConfigResponse)
	}
	h.scrubUndecided()
	if h.cfg.FailurePolicy == config.FailOpen || h.cfg.ShadowMode { // shadow mode never rejects
		return types.ActionContinue
	}
	return h.reply(&core.Decision{Outcome: core.Failure, Err: err})
}

// scrubUndecided leaves an undecided request without the key and without identity headers,
// the client's or ours (the filter could not tell who it is), whether it is let through
// (FailOpen) or answered. If that fails too, the request goes on as it is rather than hang.
func (h *httpContext) scrubUndecided() {
	defer func() { _ = recover() }()
	h.responseHeaders = nil
	h.removeSpoofedIdentity()
	h.stripKey()
}

// recoverRequest turns a panic in the request path into the failure response (or a
// pass-through under FailOpen or in shadow mode), so that no request is left hanging and
// the VM lives on.
func (h *httpContext) recoverRequest(action *types.Action) {
	r := recover()
	if r == nil {
		return
	}
	if h.metrics != nil {
		h.metrics.panicRecovered()
	}
	*action = h.fail(fmt.Errorf("panic in request headers: %v", r))
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogErrorf("usageplans: panic in response headers: %v", r)
		}
	}()
	for _, kv := range h.responseHeaders {
		_ = proxywasm.ReplaceHttpResponseHeader(kv[0], kv[1])
	}
	return types.ActionContinue
}

// logDecision writes one line about a decided request: outcome, reason, route, stage,
// resource, method, key id, plan and the limit that fired. Never the key value: the Decision
// does not hold it. The line is built in the VM's buffer, without fmt: formatting cost
// 2-3.5 µs a rejection in Wasm.
func (h *httpContext) logDecision(log func(string), d *core.Decision, o outcome, what string) {
	b := append(h.plugin.logBuf[:0], "usageplans: "...)
	b = append(b, what...)
	b = append(b, ": "...)
	b = d.AppendLogFieldsAs(b, o.String())
	h.plugin.logBuf = b
	log(string(b))
}
