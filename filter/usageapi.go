package main

import (
	"strconv"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/usageplans/usageplans/filter/core"
	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/usage"
)

// maxUsageBody bounds an UpdateUsage body the filter buffers; a patch is a few dozen bytes.
const maxUsageBody = 64 << 10

// usageCall is a usage API request waiting for its body (an UpdateUsage).
type usageCall struct {
	method, target string
	admin          string // the admin key's id, for the log
}

var stateUsageAPI = []byte("usage_api")

// usageAPI answers a request under usageApi.pathPrefix as a local reply, or reports false
// when the request is not for the usage API. Such a request is never decided, counted
// against a plan or sent upstream; the admin key is read from the key header and removed,
// and the key's query parameter taken out of :path (Envoy's access log reads the headers
// after a local reply).
func (h *httpContext) usageAPI(req *core.Request, endOfStream bool) (types.Action, bool) {
	rest, ok := h.cfg.UsageAPIPath(req.Path)
	if !ok {
		return types.ActionContinue, false
	}
	u := h.cfg.UsageAPI
	h.recorded = true // not a plan's request: a panic from here on is not counted as one
	_ = proxywasm.SetProperty(stateOutcome, stateUsageAPI)
	// An admin key comes from the key header only: req.Key may come from a property or
	// from apiKeyQueryParameter, and a key in the query string is one that lands in logs.
	value := h.header(u.Header)
	h.removeHeader(u.Header)
	path := req.Path
	if q := h.cfg.KeySource.QueryParameter; q != "" {
		if stripped, ok := removeQueryParam(path, q); ok {
			path = stripped
			_ = proxywasm.ReplaceHttpRequestHeader(":path", path)
		}
	}
	h.metrics.usageAPI(usageRequests)
	admin, ok := u.Admin(value)
	if !ok {
		h.metrics.usageAPI(usageForbidden)
		proxywasm.LogInfof("usageplans: usage API: %s %s: forbidden (no admin key)", req.Method, strconv.Quote(rest))
		return h.sendUsage(usage.Response{Status: 403, Body: `{"message":"Forbidden"}`,
			Headers: [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "ForbiddenException"}}}), true
	}
	target := rest
	if _, q, ok := strings.Cut(path, "?"); ok {
		target += "?" + q
	}
	call := &usageCall{method: req.Method, target: target, admin: admin}
	if req.Method == "PATCH" && !endOfStream && !u.BodyWhileHeadersStopped {
		proxywasm.LogInfof("usageplans: usage API: %s %s by admin key %s: refused, the proxy does not hand the filter the body while it holds the headers", call.method, strconv.Quote(stripTarget(call.target)), call.admin)
		return h.sendUsage(usage.Response{Status: 400, Body: `{"message":"UpdateUsage on this route needs the proxy to hand the filter the request body while it holds the headers: set allow_on_headers_stop_iteration: true in the Wasm filter's plugin config (Envoy 1.35+) and usageApi.allowOnHeadersStopIteration: true in plugin.json"}`,
			Headers: [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "BadRequestException"}}}), true
	}
	if req.Method == "PATCH" && !endOfStream {
		h.usage = call // answered when the body is complete
		return types.ActionPause, true
	}
	return h.answerUsage(call, nil), true
}

// usageBody buffers an UpdateUsage body until it is complete, then answers.
func (h *httpContext) usageBody(bodySize int, endOfStream bool) (action types.Action) {
	defer h.recoverRequest(&action)
	if bodySize > maxUsageBody {
		call := h.usage
		h.usage = nil
		proxywasm.LogInfof("usageplans: usage API: %s %s: body over %d bytes", call.method, strconv.Quote(call.target), maxUsageBody)
		return h.sendUsage(usage.Response{Status: 413, Body: `{"message":"Request body too large"}`,
			Headers: [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "BadRequestException"}}})
	}
	if !endOfStream {
		return types.ActionPause // buffer
	}
	body, err := proxywasm.GetHttpRequestBody(0, bodySize)
	if err != nil && err != types.ErrorStatusNotFound {
		return h.fail(err)
	}
	call := h.usage
	h.usage = nil
	return h.answerUsage(call, body)
}

func (h *httpContext) answerUsage(call *usageCall, body []byte) types.Action {
	if h.cfg.Global != nil {
		return h.answerFleetUsage(call, body)
	}
	r := usage.Handle(h.cfg, usage.Local{Store: sharedData{}}, now(), call.method, call.target, body)
	return h.sendLoggedUsage(call, r)
}

func (h *httpContext) sendLoggedUsage(call *usageCall, r usage.Response) types.Action {
	if call.method == "PATCH" || r.Status >= 500 {
		proxywasm.LogInfof("usageplans: usage API: %s %s by admin key %s: %d %s", call.method, strconv.Quote(stripTarget(call.target)), call.admin, r.Status, r.Body)
	}
	return h.sendUsage(r)
}

// answerFleetUsage answers in global mode from RLS: the request is paused on its calls (one
// for GetUsage, or two when a key has a grant; three more for UpdateUsage) and answered from
// proxy_on_http_call_response; a call that cannot be sent, or gets no answer by
// global.timeoutMs, gets AWS's 503 shape.
func (h *httpContext) answerFleetUsage(call *usageCall, body []byte) types.Action {
	read, r := usage.HandleFleet(h.cfg, now(), call.method, call.target, body)
	if read == nil {
		return h.sendLoggedUsage(call, r)
	}
	h.fleetCall(call, read)
	return types.ActionPause
}

// fleetCall makes read's next call; its answer makes the one after, or answers.
func (h *httpContext) fleetCall(call *usageCall, read *usage.FleetRead) {
	g := h.cfg.Global
	step := func(a global.Answer) {
		if r, done := read.Step(a); done {
			h.sendLoggedUsage(call, r)
		} else {
			h.fleetCall(call, read)
		}
	}
	_, err := proxywasm.DispatchHttpCall(g.Cluster, rls.Headers(g.Cluster), read.Body(), nil, g.TimeoutMS, func(_, bodySize, _ int) {
		defer func() {
			if r := recover(); r != nil {
				proxywasm.LogErrorf("usageplans: usage API: panic reading RLS's answer: %v", r)
				h.sendUsage(usage.Response{Status: 500, Body: `{"message":"Internal server error"}`,
					Headers: [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "InternalServerErrorException"}}})
			}
		}()
		step(readAnswer(bodySize))
	})
	if err != nil {
		step(global.Answer{Failed: true})
	}
}
func (h *httpContext) sendUsage(r usage.Response) types.Action {
	h.replied = true
	if err := proxywasm.SendHttpResponse(uint32(r.Status), r.Headers, []byte(r.Body), -1); err != nil {
		proxywasm.LogErrorf("usageplans: usage API: sending the %d response: %v", r.Status, err)
	}
	return types.ActionPause
}

func stripTarget(t string) string {
	p, _, _ := strings.Cut(t, "?")
	return p
}
