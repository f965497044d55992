package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// The keys of baseConfig. Tests refer to them by name; the log scan checks that none of the
// values ever reaches a log line.
const (
	goldKey    = "GoldKey0000000000000000000000001"  // plan gold: throttle 100/s, burst 100
	tightKey   = "TightKey000000000000000000000002"  // plan tight: 0.5/s, burst 2
	dailyKey   = "DailyKey000000000000000000000003"  // plan daily: quota 3 a DAY
	weeklyKey  = "WeeklyKey00000000000000000000004"  // plan weekly: quota 2 a WEEK
	monthlyKey = "MonthlyKey0000000000000000000005"  // plan monthly: quota 2 a MONTH
	offKey     = "DisabledKey000000000000000000006"  // in gold, disabled
	strayKey   = "StrayKey000000000000000000000007"  // in no plan
	unknownKey = "UnknownKey00000000000000000000008" // not configured at all
)

var allKeys = []string{goldKey, tightKey, dailyKey, weeklyKey, monthlyKey, offKey, strayKey, unknownKey}

// baseConfig is one API stage behind host api.example.com, a bypassed /admin, and one plan
// per behaviour under test. Options are added per test with withOptions.
const baseConfig = `{
  "apis": [{"id": "pets", "resources": [
    {"path": "/", "resourceMethods": {"GET": {"apiKeyRequired": false}}},
    {"path": "/pets", "resourceMethods": {"GET": {"apiKeyRequired": true}, "POST": {"apiKeyRequired": true}}},
    {"path": "/pets/{petId}", "resourceMethods": {"GET": {"apiKeyRequired": true}}}
  ], "stages": [{"stageName": "prod"}]}],
  "routes": [
    {"name": "admin", "match": {"pathPrefix": "/admin"}, "bypass": true},
    {"name": "pets", "match": {"host": "api.example.com"}, "apiId": "pets", "stage": "prod"}
  ],
  "usagePlans": [
    {"id": "gold", "apiStages": [{"apiId": "pets", "stage": "prod"}], "throttle": {"rateLimit": 100, "burstLimit": 100}},
    {"id": "tight", "apiStages": [{"apiId": "pets", "stage": "prod"}], "throttle": {"rateLimit": 0.5, "burstLimit": 2}},
    {"id": "daily", "apiStages": [{"apiId": "pets", "stage": "prod"}], "quota": {"limit": 3, "period": "DAY"}},
    {"id": "weekly", "apiStages": [{"apiId": "pets", "stage": "prod"}], "quota": {"limit": 2, "period": "WEEK"}},
    {"id": "monthly", "apiStages": [{"apiId": "pets", "stage": "prod"}], "quota": {"limit": 2, "period": "MONTH"}}
  ],
  "apiKeys": [
    {"id": "gold-key", "value": "GoldKey0000000000000000000000001"},
    {"id": "tight-key", "value": "TightKey000000000000000000000002"},
    {"id": "daily-key", "value": "DailyKey000000000000000000000003"},
    {"id": "weekly-key", "value": "WeeklyKey00000000000000000000004"},
    {"id": "monthly-key", "value": "MonthlyKey0000000000000000000005"},
    {"id": "off-key", "value": "DisabledKey000000000000000000006", "enabled": false},
    {"id": "stray-key", "value": "StrayKey000000000000000000000007"}
  ],
  "usagePlanKeys": [
    {"usagePlanId": "gold", "keyId": "gold-key"},
    {"usagePlanId": "gold", "keyId": "off-key"},
    {"usagePlanId": "tight", "keyId": "tight-key"},
    {"usagePlanId": "daily", "keyId": "daily-key"},
    {"usagePlanId": "weekly", "keyId": "weekly-key"},
    {"usagePlanId": "monthly", "keyId": "monthly-key"}
  ],
  "accountThrottle": false
}`

// withOptions adds top-level members (JSON fragments such as `"shadowMode": true`) to
// baseConfig.
func withOptions(members ...string) string {
	if len(members) == 0 {
		return baseConfig
	}
	end := strings.LastIndex(baseConfig, "}")
	return baseConfig[:end] + ", " + strings.Join(members, ", ") + "}"
}

// t0 is a Tuesday, one hour before the end of the day (UTC).
var t0 = time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC)

// testVM records the plugin context the SDK creates, so that tests can reconfigure it.
type testVM struct {
	vmContext
	plugin *pluginContext
}

func (v *testVM) NewPluginContext(id uint32) types.PluginContext {
	v.plugin = v.vmContext.NewPluginContext(id).(*pluginContext)
	return v.plugin
}

// harness is one plugin in the SDK's emulated host, with the filter's clock under the
// test's control. The emulator is process-wide: tests using it must not run in parallel.
type harness struct {
	t     *testing.T
	host  proxytest.HostEmulator
	vm    *testVM
	clock time.Time
}

// start runs proxy_on_configure with cfg and fails the test unless want is its result.
func start(t *testing.T, cfg string, want types.OnPluginStartStatus, opts ...func(*proxytest.EmulatorOption)) *harness {
	t.Helper()
	h := &harness{t: t, vm: &testVM{}, clock: t0}
	opt := proxytest.NewEmulatorOption().WithVMContext(h.vm).WithPluginConfiguration([]byte(cfg))
	for _, o := range opts {
		o(opt)
	}
	host, reset := proxytest.NewHostEmulator(opt)
	h.host = host
	saved := now
	now = func() time.Time { return h.clock }
	t.Cleanup(func() { now = saved; reset() })
	if got := host.StartPlugin(); got != want {
		t.Fatalf("OnPluginStart = %v, want %v; critical logs: %q", got, want, host.GetCriticalLogs())
	}
	return h
}

func withProperty(path []string, value string) func(*proxytest.EmulatorOption) {
	return func(o *proxytest.EmulatorOption) { o.WithProperty(path, []byte(value)) }
}

// result is what one request came to: the filter's local reply, or what the upstream
// received and what the client got back from the upstream's 200.
type result struct {
	action   types.Action
	local    *proxytest.LocalHttpResponse
	upstream [][2]string // request headers as the filter left them (only when not answered)
	response [][2]string // response headers as the filter left them (only when not answered)
	// request is the request headers as the filter left them, answered or not: what
	// Envoy's access log reads (%REQ(:PATH)%).
	request [][2]string
}

// request runs one request through every callback: headers, then (unless answered) an
// upstream 200, then log and delete.
func (h *harness) request(headers ...[2]string) result {
	h.t.Helper()
	id := h.host.InitializeHttpContext()
	var o result
	o.action = h.host.CallOnRequestHeaders(id, headers, true)
	o.request = slices.Clone(h.host.GetCurrentRequestHeaders(id))
	if o.local = h.host.GetSentLocalResponse(id); o.local == nil {
		o.upstream = slices.Clone(h.host.GetCurrentRequestHeaders(id))
		h.host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}, {"server", "upstream"}}, true)
		o.response = slices.Clone(h.host.GetCurrentResponseHeaders(id))
	}
	h.host.CompleteHttpContext(id)
	return o
}

// get is a GET of path on the API's host with extra headers.
func (h *harness) get(path string, extra ...[2]string) result {
	h.t.Helper()
	hs := [][2]string{{":method", "GET"}, {":path", path}, {":authority", "api.example.com"}}
	return h.request(append(hs, extra...)...)
}

func key(v string) [2]string { return [2]string{"x-api-key", v} }

// counter reads a metric the filter defined; a missing one reads as -1 so that a test
// expecting 0 tells "never defined" apart.
func (h *harness) counter(name string) int64 {
	v, err := h.host.GetCounterMetric(name)
	if err != nil {
		return -1
	}
	return int64(v)
}

// counters reads several metrics at once, for one comparison.
func (h *harness) counters(names ...string) map[string]int64 {
	m := make(map[string]int64, len(names))
	for _, n := range names {
		m[n] = h.counter(n)
	}
	return m
}

// logs returns every log line at every level.
func (h *harness) logs() []string {
	var all []string
	for _, f := range []func() []string{h.host.GetTraceLogs, h.host.GetDebugLogs, h.host.GetInfoLogs,
		h.host.GetWarnLogs, h.host.GetErrorLogs, h.host.GetCriticalLogs} {
		all = append(all, f()...)
	}
	return all
}

// wantLocal fails unless o is the local reply (status, headers, body), exactly.
func wantLocal(t *testing.T, o result, status uint32, headers [][2]string, body string) {
	t.Helper()
	if o.local == nil {
		t.Fatalf("no local reply (action %v); the upstream got %q", o.action, o.upstream)
	}
	if o.action != types.ActionPause {
		t.Errorf("action = %v after a local reply, want Pause", o.action)
	}
	if o.local.StatusCode != status || string(o.local.Data) != body || !slices.Equal(o.local.Headers, headers) {
		t.Errorf("reply = %d %q %q\nwant     %d %q %q", o.local.StatusCode, o.local.Headers, o.local.Data, status, headers, body)
	}
}

// wantUpstream fails unless o went upstream with exactly these request headers.
func wantUpstream(t *testing.T, o result, headers [][2]string) {
	t.Helper()
	if o.local != nil {
		t.Fatalf("answered locally: %d %q %q", o.local.StatusCode, o.local.Headers, o.local.Data)
	}
	if o.action != types.ActionContinue {
		t.Errorf("action = %v, want Continue", o.action)
	}
	if !slices.Equal(o.upstream, headers) {
		t.Errorf("upstream headers = %q\nwant                %q", o.upstream, headers)
	}
}

var (
	forbiddenHeaders = [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "ForbiddenException"}}
	jsonHeader       = [][2]string{{"content-type", "application/json"}}
	failureHeaders   = [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "InternalServerErrorException"}}
)

const (
	forbiddenBody = `{"message":"Forbidden"}`
	throttledBody = `{"message":"Too Many Requests"}`
	quotaBody     = `{"message":"Limit Exceeded"}`
	failureBody   = `{"message":"Internal server error"}`
)
