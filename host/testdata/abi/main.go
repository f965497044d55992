// Command abi is a proxy-wasm plugin that exercises the host's ABI on demand: the request
// header x-op lists operations (comma separated) and each writes its outcome into a request
// header x-r-<op>, which the host's tests read from the request the upstream would receive.
package main

import (
	"encoding/hex"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func init() { proxywasm.SetVMContext(&vm{}) }

func main() {}

type vm struct{ types.DefaultVMContext }

func (*vm) OnVMStart(int) types.OnVMStartStatus {
	c, _ := proxywasm.GetVMConfiguration()
	if string(c) == "fail" {
		proxywasm.LogError("vm start refused: vm configuration is \"fail\"")
		return types.OnVMStartStatusFailed
	}
	return types.OnVMStartStatusOK
}

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	config string
	ticks  int
}

var (
	requests  proxywasm.MetricCounter
	inflight  proxywasm.MetricGauge
	latency   proxywasm.MetricHistogram
	tickCount proxywasm.MetricCounter
)

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	c, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogErrorf("reading configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	if strings.HasPrefix(string(c), "reject") {
		proxywasm.LogErrorf("configuration rejected: %q", c)
		return types.OnPluginStartStatusFailed
	}
	if ms, ok := strings.CutPrefix(string(c), "tick="); ok {
		n, _ := strconv.Atoi(ms)
		proxywasm.SetTickPeriodMilliSeconds(uint32(n))
	}
	if string(c) == "count-configures" {
		countConfigures()
	}
	p.config = string(c)
	requests = proxywasm.DefineCounterMetric("abi_requests")
	inflight = proxywasm.DefineGaugeMetric("abi_inflight")
	latency = proxywasm.DefineHistogramMetric("abi_latency")
	tickCount = proxywasm.DefineCounterMetric("abi_ticks")
	proxywasm.LogInfof("configured: %q", c)
	return types.OnPluginStartStatusOK
}

// countConfigures counts this configuration in shared data ("configures", a decimal) and in
// the counter abi_configures, so a test sees every VM that configured, the canary included.
func countConfigures() {
	proxywasm.DefineCounterMetric("abi_configures").Increment(1)
	for range 10 {
		v, cas, err := proxywasm.GetSharedData("configures")
		n, _ := strconv.Atoi(string(v))
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			proxywasm.LogErrorf("configures: %v", err)
			return
		}
		if err := proxywasm.SetSharedData("configures", []byte(strconv.Itoa(n+1)), cas); err == nil {
			return
		}
	}
}

func (p *plugin) OnPluginDone() bool {
	proxywasm.LogInfof("plugin done: %q", p.config)
	return true
}

func (p *plugin) OnTick() {
	p.ticks++
	tickCount.Increment(1)
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext { return &stream{p: p, id: id} }

type stream struct {
	types.DefaultHttpContext
	p   *plugin
	id  uint32
	ops map[string]bool
}

func errName(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, types.ErrorStatusNotFound):
		return "not_found"
	case errors.Is(err, types.ErrorStatusCasMismatch):
		return "cas_mismatch"
	case errors.Is(err, types.ErrorStatusBadArgument):
		return "bad_argument"
	case errors.Is(err, syscall.ENOSYS):
		return "ENOSYS"
	}
	return err.Error()
}

func header(name string) string {
	v, _ := proxywasm.GetHttpRequestHeader(name)
	return v
}

func result(op, value string) { proxywasm.AddHttpRequestHeader("x-r-"+op, value) }

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.ops = map[string]bool{}
	opList, _ := proxywasm.GetHttpRequestHeader("x-op")
	for _, op := range strings.Split(opList, ",") {
		s.ops[op] = true
	}
	requests.Increment(1)
	action := types.ActionContinue
	for _, op := range strings.Split(opList, ",") {
		if s.run(op) == types.ActionPause {
			action = types.ActionPause
		}
	}
	return action
}

func (s *stream) run(op string) types.Action {
	switch op {
	case "headers":
		hs, err := proxywasm.GetHttpRequestHeaders()
		var b strings.Builder
		for _, h := range hs {
			b.WriteString(h[0] + "=" + h[1] + ";")
		}
		result(op, b.String()+errName(err))
	case "add":
		result(op, errName(proxywasm.AddHttpRequestHeader("X-Added", "yes")))
	case "replace":
		result(op, errName(proxywasm.ReplaceHttpRequestHeader("X-Dup", "new")))
	case "remove":
		result(op, errName(proxywasm.RemoveHttpRequestHeader("X-Gone")))
	case "get-missing":
		_, err := proxywasm.GetHttpRequestHeader("x-missing")
		result(op, errName(err))
	case "set-pairs":
		err := proxywasm.ReplaceHttpRequestHeaders([][2]string{{":method", "GET"}, {":path", "/replaced"}, {":authority", "h"}, {"X-Only", "1"}})
		result(op, errName(err))
	case "response-headers-in-request":
		_, err := proxywasm.GetHttpResponseHeader("x")
		result(op, errName(err))
	case "request-headers-later":
		s.ops["request-headers-later"] = true
	case "local", "local-continue":
		err := proxywasm.SendHttpResponse(403, [][2]string{{"content-type", "application/json"}, {"x-amzn-ErrorType", "ForbiddenException"}},
			[]byte(`{"message":"Forbidden"}`), -1)
		if err != nil {
			proxywasm.LogErrorf("send local response: %v", err)
		}
		if op == "local" {
			return types.ActionPause
		}
	case "local-twice":
		proxywasm.SendHttpResponse(429, nil, []byte("first"), -1)
		err := proxywasm.SendHttpResponse(500, nil, []byte("second"), -1)
		proxywasm.LogInfof("second local response: %s", errName(err))
		return types.ActionPause
	case "shared-get":
		v, cas, err := proxywasm.GetSharedData(header("x-key"))
		result(op, string(v)+"|"+strconv.FormatUint(uint64(cas), 10)+"|"+errName(err))
	case "shared-set":
		cas, _ := strconv.ParseUint(header("x-cas"), 10, 32)
		result(op, errName(proxywasm.SetSharedData(header("x-key"), []byte(header("x-value")), uint32(cas))))
	case "cas-incr":
		result(op, casIncrement(header("x-key")))
	case "prop":
		v, err := proxywasm.GetProperty(strings.Split(header("x-path"), "."))
		result(op, hex.EncodeToString(v)+"|"+errName(err))
	case "set-prop":
		path := strings.Split(header("x-path"), ".")
		err := proxywasm.SetProperty(path, []byte(header("x-value")))
		v, err2 := proxywasm.GetProperty(path)
		result(op, errName(err)+"|"+string(v)+"|"+errName(err2))
	case "panic":
		panic("abi: panic on request")
	case "metric":
		inflight.Add(5)
		inflight.Add(-2)
		latency.Record(7)
		result(op, strconv.FormatUint(requests.Value(), 10)+"|"+strconv.FormatInt(inflight.Value(), 10))
	case "log":
		proxywasm.LogTrace("msg-trace")
		proxywasm.LogDebug("msg-debug")
		proxywasm.LogInfo("msg-info")
		proxywasm.LogWarn("msg-warn")
		proxywasm.LogError("msg-error")
		proxywasm.LogCritical("msg-critical")
		println("to-stderr")
	case "config":
		// Envoy keeps the plugin configuration only while configuring: report what
		// OnPluginStart recorded and what reading it now gives.
		_, err := proxywasm.GetPluginConfiguration()
		result(op, s.p.config+"|"+errName(err))
	case "vmconfig":
		c, err := proxywasm.GetVMConfiguration()
		result(op, string(c)+"|"+errName(err))
	case "now":
		result(op, strconv.FormatInt(time.Now().UnixNano(), 10))
	case "ticks":
		result(op, strconv.Itoa(s.p.ticks))
	case "fdflags":
		result(op, errName(syscall.SetNonblock(1, true)))
	case "gc":
		runtime.GC()
	case "pause-continue":
		// Resume from inside the callback that pauses: Envoy defers the continuation, so the
		// request goes on.
		result(op, "resuming")
		err := proxywasm.ResumeHttpRequest()
		err2 := proxywasm.AddHttpRequestHeader("x-after-resume", "1")
		proxywasm.LogInfof("resume: %s, add after resume: %s", errName(err), errName(err2))
		return types.ActionPause
	case "grpccall", "grpccall-detached":
		// A gRPC unary call over proxy_http_call: the framed message comes hex-encoded in
		// x-body, the method path in x-path; x-trailer adds a request trailer. The answer is
		// described by describeCall: into x-r-grpccall, resuming the request, or for
		// grpccall-detached (the stream goes on at once and may be over when the answer
		// comes) into shared data under "grpccall".
		timeout, _ := strconv.Atoi(header("x-timeout"))
		body, _ := hex.DecodeString(header("x-body"))
		var trailers [][2]string
		if t := header("x-trailer"); t != "" {
			trailers = [][2]string{{"x-req-trailer", t}}
		}
		_, err := proxywasm.DispatchHttpCall(header("x-cluster"), [][2]string{{":method", "POST"}, {":path", header("x-path")},
			{":authority", "ratelimit"}, {"content-type", "application/grpc"}, {"te", "trailers"}},
			body, trailers, uint32(timeout), func(nh, bodySize, nt int) {
				d := describeCall(nh, bodySize, nt)
				if op == "grpccall-detached" {
					proxywasm.SetSharedData("grpccall", []byte(d), 0)
					return
				}
				result(op, d)
				proxywasm.ResumeHttpRequest()
			})
		if err != nil {
			result(op, "dispatch:"+errName(err))
			return types.ActionContinue
		}
		if op == "grpccall-detached" {
			return types.ActionContinue
		}
		return types.ActionPause
	case "httpcall", "httpcall-local", "httpcall-panic":
		timeout, _ := strconv.Atoi(header("x-timeout"))
		cluster := header("x-cluster")
		_, err := proxywasm.DispatchHttpCall(cluster, [][2]string{{":method", "POST"}, {":path", "/call?x=1"}, {":authority", "svc.local"}, {"x-from", "guest"}},
			[]byte("ping"), nil, uint32(timeout), func(nh, bodySize, nt int) {
				hs, _ := proxywasm.GetHttpCallResponseHeaders()
				body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
				status := ""
				for _, h := range hs {
					if h[0] == ":status" {
						status = h[1]
					}
				}
				if op == "httpcall-panic" {
					panic("abi: panic in the callout's answer")
				}
				if op == "httpcall-local" {
					proxywasm.SendHttpResponse(401, nil, []byte("callout said "+status), -1)
					return
				}
				result(op, strconv.Itoa(nh)+"|"+status+"|"+string(body))
				proxywasm.ResumeHttpRequest()
			})
		if err != nil {
			result(op, "dispatch:"+errName(err))
			return types.ActionContinue
		}
		return types.ActionPause
	}
	return types.ActionContinue
}

// describeCall renders an HTTP call's answer during proxy_on_http_call_response:
// "<n_headers>|<n_trailers>|<headers>|<trailers>|<body hex>", maps as "k=v;k=v" without
// the date header (which changes), absent maps as "none".
func describeCall(nh, bodySize, nt int) string {
	pairs := func(hs [][2]string, err error) string {
		if err != nil {
			return "none"
		}
		var b []string
		for _, h := range hs {
			if h[0] != "date" {
				b = append(b, h[0]+"="+h[1])
			}
		}
		return strings.Join(b, ";")
	}
	body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
	return strconv.Itoa(nh) + "|" + strconv.Itoa(nt) + "|" + pairs(proxywasm.GetHttpCallResponseHeaders()) + "|" +
		pairs(proxywasm.GetHttpCallResponseTrailers()) + "|" + hex.EncodeToString(body)
}

// casIncrement adds one to a decimal counter in shared data with a bounded CAS loop.
func casIncrement(key string) string {
	for i := 0; i < 1000; i++ {
		v, cas, err := proxywasm.GetSharedData(key)
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			return errName(err)
		}
		n, _ := strconv.Atoi(string(v))
		err = proxywasm.SetSharedData(key, []byte(strconv.Itoa(n+1)), cas)
		if err == nil {
			return strconv.Itoa(n + 1)
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return errName(err)
		}
	}
	return "exhausted"
}

func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	if !s.ops["body"] {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause
	}
	b, err := proxywasm.GetHttpRequestBody(0, bodySize)
	if err != nil {
		proxywasm.LogErrorf("body: %v", err)
		return types.ActionContinue
	}
	proxywasm.ReplaceHttpRequestBody([]byte(strings.ToUpper(string(b))))
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.ops["panic-response"] {
		panic("abi: panic on response")
	}
	if s.ops["local-in-response"] {
		proxywasm.SendHttpResponse(502, [][2]string{{"x-replaced", "1"}}, []byte("replaced"), -1)
		return types.ActionPause
	}
	if s.ops["request-headers-later"] {
		// Envoy took the request headers back when the request continued.
		_, err := proxywasm.GetHttpRequestHeader("x-op")
		_, err2 := proxywasm.GetHttpRequestHeaders()
		path, err3 := proxywasm.GetProperty([]string{"request", "path"})
		proxywasm.AddHttpResponseHeader("x-later", errName(err)+"|"+errName(err2)+"|"+string(path)+errName(err3))
	}
	if s.ops["mark-response"] {
		st, _ := proxywasm.GetHttpResponseHeader(":status")
		proxywasm.AddHttpResponseHeader("x-filter-saw", st)
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if s.ops["mark-response"] && endOfStream {
		proxywasm.AppendHttpResponseBody([]byte("+filtered"))
	}
	return types.ActionContinue
}

func (s *stream) OnHttpStreamDone() {
	if s.ops["log-phase"] {
		// The SDK calls this from proxy_on_log: Envoy's access-log phase, where the final
		// headers are readable and nothing is writable.
		op, err := proxywasm.GetHttpRequestHeader("x-op")
		st, err2 := proxywasm.GetHttpResponseHeader(":status")
		err3 := proxywasm.AddHttpResponseHeader("x-too-late", "1")
		proxywasm.LogInfof("log phase: %s %s, %s %s, add %s", op, errName(err), st, errName(err2), errName(err3))
	}
	if s.ops["log-done"] {
		proxywasm.LogInfof("stream %d done", s.id)
	}
}
