package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usageplans/usageplans/host"
)

// The keys of fltConfig. Every runtime the filter tests start scans every log line of its
// VMs for these values (fltLogScan).
const (
	fltGold    = "GoldKey0000000000000000000000001"  // plan gold: 100/s, burst 100
	fltTight   = "TightKey000000000000000000000002"  // plan tight: 0.5/s, burst 2
	fltDaily   = "DailyKey000000000000000000000003"  // plan daily: 3 a DAY
	fltWeekly  = "WeeklyKey00000000000000000000004"  // plan weekly: 2 a WEEK
	fltMonthly = "MonthlyKey0000000000000000000005"  // plan monthly: 2 a MONTH
	fltOff     = "DisabledKey000000000000000000006"  // in gold, disabled
	fltStray   = "StrayKey000000000000000000000007"  // in no plan
	fltUnknown = "UnknownKey00000000000000000000008" // not configured
	fltHammer  = "HammerKey00000000000000000000009"  // plan hammer: 100 a DAY (concurrency)
	fltBucket  = "BucketKey00000000000000000000010"  // plan bucket: 10/s, burst 20 (concurrency)
	fltBench   = "BenchKey000000000000000000000011"  // plan bench: 10,000/s, 10^9 a MONTH
)

var fltKeys = []string{fltGold, fltTight, fltDaily, fltWeekly, fltMonthly, fltOff, fltStray, fltUnknown,
	fltHammer, fltBucket, fltBench, pathTricksKey}

// fltConfig is one API stage behind host api.example.com, a bypassed /admin, and one plan per
// behaviour under test; fltOptions adds options per test.
const fltConfig = `{
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
    {"id": "monthly", "apiStages": [{"apiId": "pets", "stage": "prod"}], "quota": {"limit": 2, "period": "MONTH"}},
    {"id": "hammer", "apiStages": [{"apiId": "pets", "stage": "prod"}], "quota": {"limit": 100, "period": "DAY"}},
    {"id": "bucket", "apiStages": [{"apiId": "pets", "stage": "prod"}], "throttle": {"rateLimit": 10, "burstLimit": 20}},
    {"id": "bench", "apiStages": [{"apiId": "pets", "stage": "prod"}], "throttle": {"rateLimit": 10000, "burstLimit": 10000},
     "quota": {"limit": 1000000000, "period": "MONTH"}}
  ],
  "apiKeys": [
    {"id": "gold-key", "value": "GoldKey0000000000000000000000001"},
    {"id": "tight-key", "value": "TightKey000000000000000000000002"},
    {"id": "daily-key", "value": "DailyKey000000000000000000000003"},
    {"id": "weekly-key", "value": "WeeklyKey00000000000000000000004"},
    {"id": "monthly-key", "value": "MonthlyKey0000000000000000000005"},
    {"id": "off-key", "value": "DisabledKey000000000000000000006", "enabled": false},
    {"id": "stray-key", "value": "StrayKey000000000000000000000007"},
    {"id": "hammer-key", "value": "HammerKey00000000000000000000009"},
    {"id": "bucket-key", "value": "BucketKey00000000000000000000010"},
    {"id": "bench-key", "valueSha256": "` + "BENCH_DIGEST" + `"}
  ],
  "usagePlanKeys": [
    {"usagePlanId": "gold", "keyId": "gold-key"},
    {"usagePlanId": "gold", "keyId": "off-key"},
    {"usagePlanId": "tight", "keyId": "tight-key"},
    {"usagePlanId": "daily", "keyId": "daily-key"},
    {"usagePlanId": "weekly", "keyId": "weekly-key"},
    {"usagePlanId": "monthly", "keyId": "monthly-key"},
    {"usagePlanId": "hammer", "keyId": "hammer-key"},
    {"usagePlanId": "bucket", "keyId": "bucket-key"},
    {"usagePlanId": "bench", "keyId": "bench-key"}
  ],
  "accountThrottle": false
}`

// fltOptions returns fltConfig with top-level members (JSON fragments such as
// `"shadowMode": true`) added. The bench key is given as a digest, so that path is exercised.
func fltOptions(members ...string) string {
	cfg := strings.Replace(fltConfig, "BENCH_DIGEST", fltDigest(fltBench), 1)
	if len(members) == 0 {
		return cfg
	}
	end := strings.LastIndex(cfg, "}")
	return cfg[:end] + ", " + strings.Join(members, ", ") + "}"
}

// fltT0 is a Tuesday, one hour before the end of the day (UTC).
var fltT0 = time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC)

// fltEnv is the built filter running in its own host runtime (by default the oldest WASI
// profile under V8's restrictions), with a fake clock, and an upstream that records what it receives.
type fltEnv struct {
	t      testing.TB
	rt     *host.Runtime
	clock  *host.FakeClock
	module *host.Module
	plugin *host.Plugin
	scan   *fltLogScan

	mu       sync.Mutex
	upstream []host.Headers // request headers as each admitted request reached the upstream
}

type fltSetup struct {
	wasm    []byte    // nil for filterWasm
	config  string    // "" for fltOptions()
	workers int       // 0 for 1
	start   time.Time // zero for fltT0
	env     [][2]string
	// logLevel is the host's level; the zero value (trace) captures every line.
	logLevel host.LogLevel
	// wasi and engine select the cpp-host the host reproduces; empty means the defaults (the
	// oldest profile, V8's restrictions).
	wasi     host.WASIProfile
	engine   host.Engine
	clusters map[string]string // the host's proxy_http_call clusters (global mode)
	// allowHeadersStop is PluginConfig.AllowOnHeadersStopIteration (with wasi, a profile
	// that has it).
	allowHeadersStop bool
}

func startFilter(t testing.TB, s fltSetup) *fltEnv {
	t.Helper()
	if s.config == "" {
		s.config = fltOptions()
	}
	e := newFltRuntime(t, s)
	var err error
	e.plugin, err = e.rt.NewPlugin(context.Background(), e.module, e.pluginConfig(s.config, s))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newFltRuntime starts the runtime and compiles the module (once per test binary, through
// the compilation cache), without starting a plugin.
func newFltRuntime(t testing.TB, s fltSetup) *fltEnv {
	t.Helper()
	if s.start.IsZero() {
		s.start = fltT0
	}
	ctx := context.Background()
	// The no-op module logs nothing: only the filter's runtimes must show the scan saw lines.
	e := &fltEnv{t: t, clock: host.NewFakeClock(s.start), scan: &fltLogScan{quiet: s.wasm != nil}}
	rt, err := host.NewRuntime(ctx, host.Options{Clock: e.clock, CompilationCache: compileCache,
		LogSink: e.scan.line, LogLevel: s.logLevel, WASI: s.wasi, Engine: s.engine,
		Clusters: s.clusters})
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	t.Cleanup(func() {
		_ = rt.Close(context.Background())
		e.scan.check(t)
	})
	if o := rt.Options(); s.wasi == "" && (o.WASI != host.WASICppHost20241219 || o.Engine != host.EngineV8) {
		t.Fatalf("WASI profile %q, engine %q; want the oldest %q under %q by default", o.WASI, o.Engine, host.WASICppHost20241219, host.EngineV8)
	}
	if s.wasm == nil {
		s.wasm = filterWasm
	}
	if e.module, err = rt.Compile(ctx, s.wasm); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *fltEnv) pluginConfig(cfg string, s fltSetup) host.PluginConfig {
	return host.PluginConfig{Name: "usageplans", RootID: "usageplans", VMID: "usageplans",
		Configuration: []byte(cfg), Workers: s.workers, Env: s.env, AllowOnHeadersStopIteration: s.allowHeadersStop}
}

// upstreamOK is the upstream: it records the request headers and answers 200 "ok".
func (e *fltEnv) upstreamOK(_ context.Context, req *host.Request) (*host.Response, error) {
	e.mu.Lock()
	e.upstream = append(e.upstream, req.Headers.Clone())
	e.mu.Unlock()
	return &host.Response{Status: 200, Headers: host.Headers{{"server", "upstream"}}, Body: []byte("ok")}, nil
}

// lastUpstream returns the request headers the upstream saw last.
func (e *fltEnv) lastUpstream() host.Headers {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.upstream) == 0 {
		return nil
	}
	return e.upstream[len(e.upstream)-1]
}

// do runs one whole request on the next worker.
func (e *fltEnv) do(req *host.Request) *host.Response {
	e.t.Helper()
	resp, err := e.plugin.Do(context.Background(), req, e.upstreamOK)
	if err != nil {
		e.t.Fatalf("Do: %v", err)
	}
	return resp
}

// get is a GET of path on the API's host with extra headers.
func (e *fltEnv) get(path string, extra ...[2]string) *host.Response {
	e.t.Helper()
	return e.do(fltGet(path, extra...))
}

func fltGet(path string, extra ...[2]string) *host.Request {
	hs := host.Headers{{":method", "GET"}, {":path", path}, {":authority", "api.example.com"}, {":scheme", "http"}}
	return &host.Request{Headers: append(hs, extra...)}
}

func apiKey(v string) [2]string { return [2]string{"x-api-key", v} }

// metrics returns the plugin's counters by name.
func (e *fltEnv) metrics() map[string]uint64 {
	m := map[string]uint64{}
	for _, x := range e.plugin.Metrics() {
		m[x.Name] = x.Value
	}
	return m
}

// wantCounters fails unless each named counter has its value (a missing counter reads as
// absent, not 0).
func (e *fltEnv) wantCounters(t testing.TB, want map[string]uint64) {
	t.Helper()
	got := e.metrics()
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("counter %s = %d (defined: %t), want %d", name, g, ok, v)
		}
	}
}

// wantReply fails unless resp is exactly this local reply of the filter.
func wantReply(t testing.TB, resp *host.Response, status int, headers host.Headers, body string) {
	t.Helper()
	if resp.Local == nil {
		t.Errorf("not answered by the filter: %d %q %q", resp.Status, resp.Headers, resp.Body)
		return
	}
	if resp.Status != status || string(resp.Body) != body || !slices.Equal(resp.Headers, headers) {
		t.Errorf("reply = %d %q %q\nwant     %d %q %q", resp.Status, resp.Headers, resp.Body, status, headers, body)
	}
}

// wantPassed fails unless resp came from the upstream with these headers added, and the
// upstream received exactly upstream.
func (e *fltEnv) wantPassed(t testing.TB, resp *host.Response, upstream host.Headers, response host.Headers) {
	t.Helper()
	if resp.Local != nil {
		t.Errorf("answered by the filter: %d %q %q", resp.Status, resp.Headers, resp.Body)
		return
	}
	if resp.Status != 200 || string(resp.Body) != "ok" || !slices.Equal(resp.Headers, response) {
		t.Errorf("response = %d %q %q\nwant        200 %q \"ok\"", resp.Status, resp.Headers, resp.Body, response)
	}
	if got := e.lastUpstream(); !slices.Equal(got, upstream) {
		t.Errorf("upstream received %q\nwant              %q", got, upstream)
	}
}

// wantStatuses sends n GETs of /pets with key and fails unless their statuses are want.
func (e *fltEnv) wantStatuses(t testing.TB, key string, want ...int) {
	t.Helper()
	var got []int
	for range want {
		got = append(got, e.get("/pets", apiKey(key)).Status)
	}
	if !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

// fltLogScan sees every log line of a runtime's VMs as it is written and keeps those holding
// a key value of fltKeys (as key ids only: the value itself never reaches the test output).
type fltLogScan struct {
	mu    sync.Mutex
	lines int
	gcs   int  // lines of the Go runtime's GODEBUG=gctrace=1: one per garbage collection
	quiet bool // a module that logs nothing
	bad   []string
	// tap, when set, also receives every line, under the scan's lock.
	tap func(host.LogEntry)
}

// setTap makes tap receive every line from now on (nil: none).
func (s *fltLogScan) setTap(tap func(host.LogEntry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tap = tap
}

func (s *fltLogScan) line(l host.LogEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines++
	if s.tap != nil {
		s.tap(l)
	}
	if l.Source == host.SourceStderr && strings.HasPrefix(l.Message, "gc ") {
		s.gcs++
	}
	for i, k := range fltKeys {
		if strings.Contains(l.Message, k) {
			s.bad = append(s.bad, strings.ReplaceAll(l.Message, k, "<key #"+strconv.Itoa(i)+">"))
		}
	}
}

func (s *fltLogScan) check(t testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines == 0 && !s.quiet {
		t.Error("the log scan saw no line at all: is the sink wired?")
	}
	for _, l := range s.bad {
		t.Errorf("a log line holds a key value: %s", l)
	}
}

func fltDigest(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}
