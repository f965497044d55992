package main

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
	"google.golang.org/protobuf/proto"

	"github.com/usageplans/usageplans/filter/rls"
)

// rlsCounter answers ShouldRateLimit calls as RLS's fixed window does (INCRBY each
// descriptor's hits in order, OVER_LIMIT above its limit), one count per descriptor's
// entries; count is the quota's (the first descriptor's). The end-to-end tests run the real
// RLS.
type rlsCounter struct {
	t      *testing.T
	count  uint64
	counts map[string]uint64
	last   *rlsv3.RateLimitRequest
}

func (c *rlsCounter) answer(body []byte) (headers, trailers [][2]string, out []byte) {
	c.t.Helper()
	if len(body) < 5 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
		c.t.Fatalf("bad gRPC frame %x", body)
	}
	req := &rlsv3.RateLimitRequest{}
	if err := proto.Unmarshal(body[5:], req); err != nil {
		c.t.Fatal(err)
	}
	c.last = req
	if c.counts == nil {
		c.counts = map[string]uint64{}
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}
	for i, d := range req.Descriptors {
		var k strings.Builder
		for _, e := range d.Entries {
			k.WriteString(e.Key + "=" + e.Value + ",")
		}
		c.counts[k.String()] += d.HitsAddend.GetValue()
		n := c.counts[k.String()]
		if i == 0 {
			c.count = n
		}
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK,
			CurrentLimit: &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: d.Limit.RequestsPerUnit, Unit: rlsv3.RateLimitResponse_RateLimit_Unit(d.Limit.Unit)}}
		if n > uint64(d.Limit.RequestsPerUnit) {
			st.Code, resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT, rlsv3.RateLimitResponse_OVER_LIMIT
		} else {
			st.LimitRemaining = d.Limit.RequestsPerUnit - uint32(n)
		}
		resp.Statuses = append(resp.Statuses, st)
	}
	msg, _ := proto.Marshal(resp)
	return [][2]string{{":status", "200"}, {"content-type", "application/grpc"}}, [][2]string{{"grpc-status", "0"}}, rls.AppendFrame(nil, msg)
}

// globalRequest runs one request that pauses on its RLS call, answers the call with answer
// (nil: the call failed, no response), and completes it.
func (h *harness) globalRequest(key string, answer func([]byte) ([][2]string, [][2]string, []byte)) (result, []proxytest.HttpCalloutAttribute) {
	h.t.Helper()
	id := h.host.InitializeHttpContext()
	var o result
	o.action = h.host.CallOnRequestHeaders(id, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}, {"x-api-key", key}}, true)
	calls := slices.Clone(h.host.GetCalloutAttributesFromContext(id))
	if o.action == types.ActionPause && h.host.GetSentLocalResponse(id) == nil {
		if len(calls) != 1 {
			h.t.Fatalf("paused with %d calls out", len(calls))
		}
		var hs, ts [][2]string
		var body []byte
		if answer != nil {
			hs, ts, body = answer(calls[0].Body)
		}
		h.host.CallOnHttpCallResponse(calls[0].CalloutID, hs, ts, body)
		o.action = h.host.GetCurrentHttpStreamAction(id)
	}
	if o.local = h.host.GetSentLocalResponse(id); o.local == nil {
		o.upstream = slices.Clone(h.host.GetCurrentRequestHeaders(id))
	}
	h.host.CompleteHttpContext(id)
	return o, calls
}

// SYNC through the adapter: each request of a key with a quota pauses on one call to the
// RLS cluster (gRPC headers, the plan, key id and day in the descriptor, never the key
// value), is resumed with its identity headers when RLS says OK, and gets the quota's 429
// with Retry-After to the end of the day when RLS says OVER_LIMIT.
func TestGlobalSync(t *testing.T) {
	h := start(t, withOptions(`"global": {"cluster": "rls", "domain": "up"}`), types.OnPluginStartStatusOK)
	c := &rlsCounter{t: t}
	for i := range 3 {
		o, calls := h.globalRequest(dailyKey, c.answer)
		wantUpstream(t, o, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"},
			{"x-usageplans-key-id", "daily-key"}, {"x-usageplans-plan-id", "daily"}})
		call := calls[0]
		if call.Upstream != "rls" || !slices.Contains(call.Headers, [2]string{":path", rls.Path}) ||
			!slices.Contains(call.Headers, [2]string{"content-type", "application/grpc"}) || !slices.Contains(call.Headers, [2]string{"te", "trailers"}) {
			t.Fatalf("request %d: call %+v", i, call)
		}
		if strings.Contains(string(call.Body), dailyKey) {
			t.Fatal("the key value went to RLS")
		}
	}
	d := c.last.Descriptors[0]
	if c.last.Domain != "up" || len(d.Entries) != 3 || d.Entries[0].Value != "daily" || d.Entries[1].Value != "daily-key" ||
		d.Entries[2].Value != "d20260310" || d.Limit.RequestsPerUnit != 3 || d.Limit.Unit != 4 || d.HitsAddend.GetValue() != 1 {
		t.Errorf("request %v", c.last)
	}
	o, _ := h.globalRequest(dailyKey, c.answer)
	wantLocal(t, o, 429, append(slices.Clone(jsonHeader), [2]string{"retry-after", "3600"}), quotaBody)
	// RLS said OVER_LIMIT: the next request of the key is refused without a call.
	o, calls := h.globalRequest(dailyKey, c.answer)
	wantLocal(t, o, 429, append(slices.Clone(jsonHeader), [2]string{"retry-after", "3600"}), quotaBody)
	if len(calls) != 0 {
		t.Errorf("%d calls after OVER_LIMIT", len(calls))
	}
	if got := h.counters("usageplans.global.calls", "usageplans.requests.allowed", "usageplans.requests.quota_exceeded", "usageplans.global.refused_local"); got["usageplans.global.calls"] != 4 ||
		got["usageplans.requests.allowed"] != 3 || got["usageplans.requests.quota_exceeded"] != 2 || got["usageplans.global.refused_local"] != 1 {
		t.Errorf("counters %v", got)
	}
	// A key without a quota needs no call.
	if o, calls := h.globalRequest(goldKey, nil); o.local != nil || len(calls) != 0 {
		t.Errorf("gold key: %d calls, local %v", len(calls), o.local)
	}
}

// Failure modes through the adapter, for a call that gets no answer.
func TestGlobalFailureModes(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		status uint32 // 0: let through
	}{{"OPEN", 0}, {"CLOSED", 500}, {"LOCAL", 0}} {
		t.Run(tc.mode, func(t *testing.T) {
			h := start(t, withOptions(`"global": {"cluster": "rls", "domain": "up", "failureMode": "`+tc.mode+`"}`), types.OnPluginStartStatusOK)
			o, _ := h.globalRequest(dailyKey, nil)
			if tc.status == 0 {
				wantUpstream(t, o, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"},
					{"x-usageplans-key-id", "daily-key"}, {"x-usageplans-plan-id", "daily"}})
			} else {
				wantLocal(t, o, tc.status, failureHeaders, failureBody)
			}
			if n := h.counter("usageplans.global.fallback." + tc.mode); n != 1 {
				t.Errorf("fallback counter %d", n)
			}
			for _, l := range h.logs() {
				if strings.Contains(l, dailyKey) {
					t.Errorf("key value in log %q", l)
				}
			}
		})
	}
	// CLOSED answers even when the top-level failurePolicy, about the proxy's own state,
	// is OPEN.
	h := start(t, withOptions(`"failurePolicy": "OPEN"`, `"global": {"cluster": "rls", "domain": "up", "failureMode": "CLOSED"}`), types.OnPluginStartStatusOK)
	o, _ := h.globalRequest(dailyKey, func([]byte) ([][2]string, [][2]string, []byte) {
		return [][2]string{{":status", "200"}, {"grpc-status", "14"}}, nil, nil
	})
	wantLocal(t, o, 500, failureHeaders, failureBody)
	if slices.Contains(o.request, key(dailyKey)) {
		t.Error("the key stayed in the answered request")
	}
}

// In local mode a request makes no call and the decision is as before.
func TestLocalModeMakesNoCall(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	for range 4 {
		if _, calls := h.globalRequest(dailyKey, nil); len(calls) != 0 {
			t.Fatalf("%d calls in local mode", len(calls))
		}
	}
	if n := h.counter("usageplans.requests.quota_exceeded"); n != 1 {
		t.Errorf("quota_exceeded %d, want 1 (local quota of 3)", n)
	}
}

// A request with a body waits for RLS with its body held, as Envoy's ratelimit filter holds
// it (StopIterationAndWatermark): Envoy would continue a stopped request whose body callback
// answers Continue.
func TestGlobalHoldsTheBody(t *testing.T) {
	h := start(t, withOptions(`"global": {"cluster": "rls", "domain": "up"}`), types.OnPluginStartStatusOK)
	c := &rlsCounter{t: t}
	id := h.host.InitializeHttpContext()
	if a := h.host.CallOnRequestHeaders(id, [][2]string{{":method", "POST"}, {":path", "/pets"}, {":authority", "api.example.com"}, key(dailyKey)}, false); a != types.ActionPause {
		t.Fatalf("headers: %v", a)
	}
	if a := h.host.CallOnRequestBody(id, []byte(`{"name":"rex"}`), false); a != actionStopIterationAndWatermark {
		t.Errorf("body while waiting: %v, want 2 (StopIterationAndWatermark)", a)
	}
	if a := h.host.CallOnRequestTrailers(id, [][2]string{{"x-t", "1"}}); a != types.ActionPause {
		t.Errorf("trailers while waiting: %v, want Pause", a)
	}
	calls := h.host.GetCalloutAttributesFromContext(id)
	hs, ts, body := c.answer(calls[0].Body)
	h.host.CallOnHttpCallResponse(calls[0].CalloutID, hs, ts, body)
	if a := h.host.GetCurrentHttpStreamAction(id); a != types.ActionContinue {
		t.Errorf("after the answer: %v, want Continue", a)
	}
	if a := h.host.CallOnRequestBody(id, []byte(`more`), true); a != types.ActionContinue {
		t.Errorf("body after the answer: %v", a)
	}
	h.host.CompleteHttpContext(id)
}

// LEASE through the adapter: the first request leases (one call), the next are served from
// the lease without a call, and the quota of 3 is never exceeded.
func TestGlobalLease(t *testing.T) {
	h := start(t, withOptions(`"global": {"cluster": "rls", "domain": "up", "mode": "LEASE", "lease": {"maxChunk": 2}}`), types.OnPluginStartStatusOK)
	c := &rlsCounter{t: t}
	var statuses []uint32
	var ncalls []int
	for range 5 {
		o, calls := h.globalRequest(dailyKey, c.answer)
		st := uint32(200)
		if o.local != nil {
			st = o.local.StatusCode
		}
		statuses = append(statuses, st)
		ncalls = append(ncalls, len(calls))
	}
	// Chunk: limit 3 on 1 proxy is 3 / 2 = 1, and so on: single requests, then refusals.
	if !slices.Equal(statuses, []uint32{200, 200, 200, 429, 429}) {
		t.Errorf("statuses %v", statuses)
	}
	if c.last.Descriptors[0].HitsAddend.GetValue() != 1 {
		t.Errorf("last hits %d", c.last.Descriptors[0].HitsAddend.GetValue())
	}
}

// LEASE with room: one lease of 50 serves 20 requests with a single call.
func TestGlobalLeaseServes(t *testing.T) {
	big := strings.Replace(withOptions(`"global": {"cluster": "rls", "domain": "up", "mode": "LEASE", "lease": {"maxChunk": 50}}`),
		`{"limit": 3, "period": "DAY"}`, `{"limit": 1000, "period": "DAY"}`, 1)
	h2 := start(t, big, types.OnPluginStartStatusOK)
	c2 := &rlsCounter{t: t}
	var ncalls []int
	for range 20 {
		if o, calls := h2.globalRequest(dailyKey, c2.answer); o.local == nil {
			ncalls = append(ncalls, len(calls))
		}
	}
	total := 0
	for _, n := range ncalls {
		total += n
	}
	if len(ncalls) != 20 || total != 1 || c2.count != 50 {
		t.Errorf("%d admitted in %d calls, RLS count %d; want 20 admitted in 1 call of a 50 lease", len(ncalls), total, c2.count)
	}
	if n := h2.counter("usageplans.global.lease_served"); n != 19 {
		t.Errorf("lease_served %d, want 19", n)
	}
}
