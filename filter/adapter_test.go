package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/usageplans/usageplans/filter/core"
	"github.com/usageplans/usageplans/filter/state"
)

// A configuration with problems is refused as a whole, and the operator sees every problem
// in Envoy's log, not only the first.
func TestConfigurationRejectedAtStart(t *testing.T) {
	bad := withOptions(`"failurePolicy": "SOMETIMES"`, `"casRetries": 0`)
	h := start(t, bad, types.OnPluginStartStatusFailed)
	want := []string{
		"usageplans dev: configuration rejected: 2 problem(s)",
		`usageplans: config: failurePolicy: must be CLOSED or OPEN, got "SOMETIMES"`,
		"usageplans: config: casRetries: must be an integer from 1 to 1000, got 0",
	}
	if got := h.host.GetCriticalLogs(); !slices.Equal(got, want) {
		t.Errorf("critical logs:\n%q\nwant\n%q", got, want)
	}
	if got := h.counter("usageplans.config.rejected"); got != 1 {
		t.Errorf("usageplans.config.rejected = %d, want 1", got)
	}
	// Envoy would not route to a plugin that never configured; if it did, the request must
	// not hang nor pass unchecked.
	wantLocal(t, h.get("/pets", key(goldKey)), 500, failureHeaders, failureBody)
}

// A rejected reconfiguration leaves the previous configuration serving, with its state; an
// accepted one replaces it.
func TestReconfigure(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	h.get("/pets", key(tightKey)) // one of tight's two tokens

	if h.vm.plugin.configure([]byte(`{"usagePlans": 3}`)) {
		t.Fatal("configure accepted a plan list that is a number")
	}
	if got := h.counter("usageplans.config.rejected"); got != 1 {
		t.Errorf("usageplans.config.rejected = %d, want 1", got)
	}
	wantUpstream(t, h.get("/pets", key(tightKey)), [][2]string{{":method", "GET"}, {":path", "/pets"},
		{":authority", "api.example.com"}, {"x-usageplans-key-id", "tight-key"}, {"x-usageplans-plan-id", "tight"}})
	wantLocal(t, h.get("/pets", key(tightKey)), 429, append(slices.Clone(jsonHeader), [2]string{"retry-after", "2"}), throttledBody)

	// Without tight-key's plan association, the key is in no plan of the stage.
	next := strings.Replace(baseConfig, `{"usagePlanId": "tight", "keyId": "tight-key"},`, "", 1)
	if !h.vm.plugin.configure([]byte(next)) {
		t.Fatalf("configure rejected a valid configuration: %q", h.host.GetCriticalLogs())
	}
	wantLocal(t, h.get("/pets", key(tightKey)), 403, forbiddenHeaders, forbiddenBody)
	if got := h.counter("usageplans.requests.allowed"); got != 2 {
		t.Errorf("usageplans.requests.allowed = %d after reconfiguring, want 2 (counts carry over)", got)
	}
}

// Every way of not having a usable key gets AWS's INVALID_API_KEY reply, and the request
// never reaches the upstream.
func TestForbidden(t *testing.T) {
	tests := []struct {
		name    string
		headers [][2]string
		reason  string
	}{
		{"no key", nil, `reason="missing API key"`},
		{"empty key", [][2]string{key("")}, `reason="missing API key"`},
		{"unknown key", [][2]string{key(unknownKey)}, `reason="unknown API key"`},
		{"not a key value", [][2]string{key("short")}, `reason="unknown API key"`},
		{"disabled key", [][2]string{key(offKey)}, `reason="disabled API key" route=pets stage=pets/prod resource=/pets method=GET key_id=off-key`},
		{"key in no plan of the stage", [][2]string{key(strayKey)}, `reason="key not in a plan of stage pets/prod" route=pets stage=pets/prod resource=/pets method=GET key_id=stray-key`},
		{"key in another header", [][2]string{{"authorization", goldKey}}, `reason="missing API key"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, baseConfig, types.OnPluginStartStatusOK)
			wantLocal(t, h.get("/pets", tt.headers...), 403, forbiddenHeaders, forbiddenBody)
			if got := h.counters("usageplans.requests.forbidden", "usageplans.requests.allowed"); got["usageplans.requests.forbidden"] != 1 || got["usageplans.requests.allowed"] != 0 {
				t.Errorf("counters = %v, want forbidden 1, allowed 0", got)
			}
			if logs := h.host.GetInfoLogs(); !slices.ContainsFunc(logs, func(l string) bool {
				return strings.HasPrefix(l, "usageplans: rejected: outcome=forbidden ") && strings.Contains(l, tt.reason)
			}) {
				t.Errorf("no rejection log line with %s in %q", tt.reason, logs)
			}
		})
	}
}

// An admitted request reaches the upstream without its key and with identity headers the
// upstream can trust: the client's own copies are removed, whatever their case.
func TestAllowStripsKeyAndSetsIdentity(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	o := h.get("/pets/7", key(goldKey), [2]string{"X-Usageplans-Key-Id", "admin"},
		[2]string{"x-usageplans-plan-id", "unlimited"}, [2]string{"accept", "application/json"})
	wantUpstream(t, o, [][2]string{{":method", "GET"}, {":path", "/pets/7"}, {":authority", "api.example.com"},
		{"accept", "application/json"}, {"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}})
	if want := [][2]string{{":status", "200"}, {"server", "upstream"}}; !slices.Equal(o.response, want) {
		t.Errorf("response headers = %q, want %q (rate-limit headers are off by default)", o.response, want)
	}
	want := map[string]int64{"usageplans.requests.allowed": 1, "usageplans.plan.gold.allowed": 1,
		"usageplans.requests.forbidden": 0, "usageplans.plan.tight.allowed": 0}
	if got := h.counters("usageplans.requests.allowed", "usageplans.plan.gold.allowed",
		"usageplans.requests.forbidden", "usageplans.plan.tight.allowed"); !equalMaps(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
}

// stripApiKey false keeps the key for an upstream that wants it; identityHeaders false
// sends none, but client-sent copies of the default names are then left alone.
func TestKeepKeyAndNoIdentity(t *testing.T) {
	h := start(t, withOptions(`"stripApiKey": false`, `"identityHeaders": {"keyId": "x-caller", "planId": ""}`), types.OnPluginStartStatusOK)
	o := h.get("/pets", key(goldKey), [2]string{"x-caller", "me"}, [2]string{"x-usageplans-plan-id", "p"})
	wantUpstream(t, o, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"},
		{"x-api-key", goldKey}, {"x-usageplans-plan-id", "p"}, {"x-caller", "gold-key"}})
}

// Requests the filter does not govern pass untouched, except that nobody but the filter
// may name the caller to the upstream.
func TestNotGoverned(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	spoof := [2]string{"x-usageplans-key-id", "admin"}
	tests := []struct {
		name string
		o    result
		want [][2]string
	}{
		{"other host", h.request([2]string{":method", "GET"}, [2]string{":path", "/pets"}, [2]string{":authority", "www.example.com"}, key(goldKey), spoof),
			[][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "www.example.com"}, key(goldKey)}},
		{"bypass route", h.get("/admin/users", key(goldKey), spoof),
			[][2]string{{":method", "GET"}, {":path", "/admin/users"}, {":authority", "api.example.com"}, key(goldKey)}},
		{"method without apiKeyRequired", h.get("/", key(goldKey), spoof),
			[][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "api.example.com"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantUpstream(t, tt.o, tt.want) })
	}
	// Only the keyless method was decided (and allowed, without a plan); the others were
	// not the filter's.
	want := map[string]int64{"usageplans.requests.allowed": 1, "usageplans.plan.gold.allowed": 0}
	if got := h.counters("usageplans.requests.allowed", "usageplans.plan.gold.allowed"); !equalMaps(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
}

// A stage without the resource answers AWS's Missing Authentication Token, counted as
// unmatched.
func TestUnmatchedResource(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	wantLocal(t, h.get("/owners", key(goldKey)), 403,
		[][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "MissingAuthenticationTokenException"}},
		`{"message":"Missing Authentication Token"}`)
	if got := h.counter("usageplans.requests.unmatched"); got != 1 {
		t.Errorf("usageplans.requests.unmatched = %d, want 1", got)
	}
}

// The token bucket: burst 2 at 0.5/s. The third request waits two seconds for a token; the
// 429 says so, and the request after those two seconds passes.
func TestThrottled(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	steps := []struct {
		advance time.Duration
		status  uint32 // 0: admitted
		after   string
	}{
		{0, 0, ""},
		{0, 0, ""},
		{0, 429, "2"},
		{time.Second, 429, "1"},
		{time.Second, 0, ""},
		{0, 429, "2"},
	}
	for i, s := range steps {
		h.clock = h.clock.Add(s.advance)
		o := h.get("/pets", key(tightKey))
		if s.status == 0 {
			if o.local != nil {
				t.Fatalf("step %d: %d %q, want admitted", i, o.local.StatusCode, o.local.Data)
			}
			continue
		}
		wantLocal(t, o, s.status, [][2]string{{"content-type", "application/json"}, {"retry-after", s.after}}, throttledBody)
	}
	want := map[string]int64{"usageplans.requests.allowed": 3, "usageplans.requests.throttled": 3,
		"usageplans.plan.tight.throttled": 3, "usageplans.plan.tight.allowed": 3}
	if got := h.counters("usageplans.requests.allowed", "usageplans.requests.throttled",
		"usageplans.plan.tight.throttled", "usageplans.plan.tight.allowed"); !equalMaps(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
	if logs := h.host.GetInfoLogs(); !slices.Contains(logs, `usageplans: rejected: outcome=throttled reason="throttled by plan limit" route=pets stage=pets/prod resource=/pets method=GET key_id=tight-key plan=tight limit=plan:tight rate=0.5 burst=2 retry_after=2`) {
		t.Errorf("no throttle log line naming plan, stage, resource, method, limit and key id in %q", logs)
	}
}

// The quota: 3 a day. The fourth request of the day waits until midnight UTC (an hour after
// t0); at midnight the count starts afresh.
func TestQuotaExceeded(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	for i := range 3 {
		if o := h.get("/pets", key(dailyKey)); o.local != nil {
			t.Fatalf("request %d: %d %q, want admitted", i, o.local.StatusCode, o.local.Data)
		}
	}
	wantLocal(t, h.get("/pets", key(dailyKey)), 429, [][2]string{{"content-type", "application/json"}, {"retry-after", "3600"}}, quotaBody)
	h.clock = h.clock.Add(59*time.Minute + 59*time.Second)
	wantLocal(t, h.get("/pets", key(dailyKey)), 429, [][2]string{{"content-type", "application/json"}, {"retry-after", "1"}}, quotaBody)
	h.clock = h.clock.Add(time.Second)
	if o := h.get("/pets", key(dailyKey)); o.local != nil {
		t.Fatalf("at midnight: %d %q, want admitted", o.local.StatusCode, o.local.Data)
	}
	want := map[string]int64{"usageplans.requests.allowed": 4, "usageplans.requests.quota_exceeded": 2,
		"usageplans.plan.daily.quota_exceeded": 2, "usageplans.plan.daily.allowed": 4}
	if got := h.counters("usageplans.requests.allowed", "usageplans.requests.quota_exceeded",
		"usageplans.plan.daily.quota_exceeded", "usageplans.plan.daily.allowed"); !equalMaps(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
}

// With rateLimitHeaders, the binding limit is described on the 429 and on the admitted
// request's response from the upstream.
func TestRateLimitHeaders(t *testing.T) {
	h := start(t, withOptions(`"rateLimitHeaders": true`), types.OnPluginStartStatusOK)
	o := h.get("/pets", key(tightKey))
	wantUpstream(t, o, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"},
		{"x-usageplans-key-id", "tight-key"}, {"x-usageplans-plan-id", "tight"}})
	// One of two tokens left; the bucket is full again in 2 s; it fills from empty in 4 s.
	want := [][2]string{{":status", "200"}, {"server", "upstream"}, {"ratelimit-limit", "2"},
		{"ratelimit-remaining", "1"}, {"ratelimit-reset", "2"}, {"ratelimit-policy", "2;w=4"}}
	if !slices.Equal(o.response, want) {
		t.Errorf("admitted response headers = %q\nwant                          %q", o.response, want)
	}
	h.get("/pets", key(tightKey))
	wantLocal(t, h.get("/pets", key(tightKey)), 429, [][2]string{{"content-type", "application/json"},
		{"retry-after", "2"}, {"ratelimit-limit", "2"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "4"},
		{"ratelimit-policy", "2;w=4"}}, throttledBody)

	// A quota binds when it has fewer requests left than any bucket.
	h.get("/pets", key(dailyKey))
	h.get("/pets", key(dailyKey))
	o = h.get("/pets", key(dailyKey))
	want = [][2]string{{":status", "200"}, {"server", "upstream"}, {"ratelimit-limit", "3"},
		{"ratelimit-remaining", "0"}, {"ratelimit-reset", "3600"}, {"ratelimit-policy", "3;w=86400"}}
	if !slices.Equal(o.response, want) {
		t.Errorf("admitted response headers = %q\nwant                          %q", o.response, want)
	}
	wantLocal(t, h.get("/pets", key(dailyKey)), 429, [][2]string{{"content-type", "application/json"},
		{"retry-after", "3600"}, {"ratelimit-limit", "3"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "3600"},
		{"ratelimit-policy", "3;w=86400"}}, quotaBody)
}

// A bucket that never refills (rateLimit 0, as AWS allows) still answers 429 once empty,
// with a Retry-After of a day rather than the 292 years of an endless wait (issue 3
// review); RateLimit-Policy gets no window.
func TestNeverRefillingBucket(t *testing.T) {
	cfg := strings.Replace(withOptions(`"rateLimitHeaders": true`), `"throttle": {"rateLimit": 0.5, "burstLimit": 2}`, `"throttle": {"rateLimit": 0, "burstLimit": 2}`, 1)
	h := start(t, cfg, types.OnPluginStartStatusOK)
	h.get("/pets", key(tightKey))
	o := h.get("/pets", key(tightKey))
	want := [][2]string{{":status", "200"}, {"server", "upstream"}, {"ratelimit-limit", "2"},
		{"ratelimit-remaining", "0"}, {"ratelimit-reset", "86400"}, {"ratelimit-policy", "2"}}
	if !slices.Equal(o.response, want) {
		t.Errorf("admitted response headers = %q\nwant                          %q", o.response, want)
	}
	h.clock = h.clock.Add(30 * 24 * time.Hour)
	wantLocal(t, h.get("/pets", key(tightKey)), 429, [][2]string{{"content-type", "application/json"},
		{"retry-after", "86400"}, {"ratelimit-limit", "2"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "86400"},
		{"ratelimit-policy", "2"}}, throttledBody)
}

// Shadow mode decides, counts and logs, adds the headers, and lets everything through.
func TestShadowMode(t *testing.T) {
	h := start(t, withOptions(`"shadowMode": true`, `"rateLimitHeaders": true`), types.OnPluginStartStatusOK)
	wantUpstream(t, h.get("/pets"), [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}})
	h.get("/pets", key(tightKey))
	h.get("/pets", key(tightKey))
	o := h.get("/pets", key(tightKey))
	wantUpstream(t, o, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"},
		{"x-usageplans-key-id", "tight-key"}, {"x-usageplans-plan-id", "tight"}})
	want := [][2]string{{":status", "200"}, {"server", "upstream"}, {"ratelimit-limit", "2"},
		{"ratelimit-remaining", "0"}, {"ratelimit-reset", "4"}, {"ratelimit-policy", "2;w=4"}}
	if !slices.Equal(o.response, want) {
		t.Errorf("shadow-throttled response headers = %q\nwant %q", o.response, want)
	}
	wantCounts := map[string]int64{"usageplans.requests.shadow_denied": 2, "usageplans.requests.allowed": 2,
		"usageplans.requests.forbidden": 0, "usageplans.requests.throttled": 0, "usageplans.plan.tight.shadow_denied": 1}
	if got := h.counters("usageplans.requests.shadow_denied", "usageplans.requests.allowed",
		"usageplans.requests.forbidden", "usageplans.requests.throttled", "usageplans.plan.tight.shadow_denied"); !equalMaps(got, wantCounts) {
		t.Errorf("counters = %v, want %v", got, wantCounts)
	}
	wantLogs := []string{
		`usageplans: shadow mode, let through: outcome=shadow_denied would_be=forbidden reason="missing API key" route=pets stage=pets/prod resource=/pets method=GET`,
		`usageplans: shadow mode, let through: outcome=shadow_denied would_be=throttled reason="throttled by plan limit" route=pets stage=pets/prod resource=/pets method=GET key_id=tight-key plan=tight limit=plan:tight rate=0.5 burst=2 retry_after=2`,
	}
	if got := h.host.GetInfoLogs()[1:]; !slices.Equal(got, wantLogs) {
		t.Errorf("info logs after the configuration:\n%q\nwant\n%q", got, wantLogs)
	}
}

// In shadow mode a key the filter would forbid (disabled, or in no plan of the stage) passes
// without identity headers (issue 3 review): the upstream must not take it for a valid key.
func TestShadowModeForbiddenHasNoIdentity(t *testing.T) {
	h := start(t, withOptions(`"shadowMode": true`), types.OnPluginStartStatusOK)
	for _, k := range []string{offKey, strayKey} {
		wantUpstream(t, h.get("/pets", key(k), [2]string{"x-usageplans-key-id", "admin"}),
			[][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}})
	}
	if got := h.counter("usageplans.requests.shadow_denied"); got != 2 {
		t.Errorf("usageplans.requests.shadow_denied = %d, want 2", got)
	}
}

// plantGarbage writes an entry that no version of the decoder accepts where gold-key's
// state lives, as a newer filter's or a corrupted entry would look.
func plantGarbage(t *testing.T) {
	t.Helper()
	k := state.KeyEntry("usageplans", "gold", "gold-key")
	_, cas, _ := proxywasm.GetSharedData(k) // the emulator, unlike Envoy, has no unconditional cas 0
	if err := proxywasm.SetSharedData(k, []byte{0xff, 0xff, 0xff}, cas); err != nil {
		t.Fatal(err)
	}
}

// When the state cannot be read, the failure policy decides: CLOSED answers the failure
// response, OPEN lets the request through with its identity.
func TestFailurePolicy(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		h := start(t, baseConfig, types.OnPluginStartStatusOK)
		plantGarbage(t)
		wantLocal(t, h.get("/pets", key(goldKey)), 500,
			failureHeaders, failureBody)
		want := map[string]int64{"usageplans.requests.failure": 1, "usageplans.plan.gold.failure": 1, "usageplans.requests.allowed": 0}
		if got := h.counters("usageplans.requests.failure", "usageplans.plan.gold.failure", "usageplans.requests.allowed"); !equalMaps(got, want) {
			t.Errorf("counters = %v, want %v", got, want)
		}
		if logs := h.host.GetWarnLogs(); len(logs) != 1 || !strings.HasPrefix(logs[0], "usageplans: state failure: outcome=failure ") ||
			!strings.Contains(logs[0], "key_id=gold-key plan=gold") {
			t.Errorf("warn logs = %q, want one state failure line naming key id and plan", logs)
		}
	})
	t.Run("closed in shadow mode", func(t *testing.T) {
		h := start(t, withOptions(`"shadowMode": true`), types.OnPluginStartStatusOK)
		plantGarbage(t)
		wantUpstream(t, h.get("/pets", key(goldKey)), [][2]string{{":method", "GET"}, {":path", "/pets"},
			{":authority", "api.example.com"}, {"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}})
		if got := h.counter("usageplans.requests.failure"); got != 1 {
			t.Errorf("usageplans.requests.failure = %d, want 1", got)
		}
	})
	t.Run("open", func(t *testing.T) {
		h := start(t, withOptions(`"failurePolicy": "OPEN"`), types.OnPluginStartStatusOK)
		plantGarbage(t)
		wantUpstream(t, h.get("/pets", key(goldKey)), [][2]string{{":method", "GET"}, {":path", "/pets"},
			{":authority", "api.example.com"}, {"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}})
		if got := h.counter("usageplans.requests.failure"); got != 1 {
			t.Errorf("usageplans.requests.failure = %d, want 1", got)
		}
		// Other keys' state is separate: they are decided as usual.
		wantLocal(t, h.get("/pets", key(offKey)), 403, forbiddenHeaders, forbiddenBody)
	})
}

// A CAS loop that gave up is counted apart from other failures: it means contention.
func TestCASExhaustedCounted(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	// A stream the filter let pass (other host), made the emulator's active one, on which
	// the decision is then acted out.
	id := h.host.InitializeHttpContext()
	h.host.CallOnRequestHeaders(id, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "other"}}, true)
	hc := h.vm.plugin.NewHttpContext(id).(*httpContext)
	d := core.Decision{Outcome: core.Failure, Reason: core.ReasonCASExhausted, Plan: h.vm.plugin.cfg.Plans[0],
		Err: fmt.Errorf("usageplans:key:gold:gold-key: %w", state.ErrExhausted)}
	if act := hc.act(&d); act != types.ActionPause {
		t.Errorf("act = %v, want Pause", act)
	}
	if r := h.host.GetSentLocalResponse(id); r == nil || r.StatusCode != 500 || string(r.Data) != failureBody {
		t.Errorf("reply = %+v, want the failure response", r)
	}
	// The outcome is failure (issue 8 finding 4: it was cas_exhausted, and failure stayed 0
	// for a 500); cas_exhausted is the cause, counted beside it.
	want := map[string]int64{"usageplans.requests.cas_exhausted": 1, "usageplans.plan.gold.cas_exhausted": 1,
		"usageplans.requests.failure": 1, "usageplans.plan.gold.failure": 1}
	if got := h.counters("usageplans.requests.cas_exhausted", "usageplans.plan.gold.cas_exhausted", "usageplans.requests.failure",
		"usageplans.plan.gold.failure"); !equalMaps(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
	if got, err := h.host.GetProperty([]string{"usageplans_outcome"}); string(got) != "failure" {
		t.Errorf("filter state usageplans_outcome = %q (%v), want failure", got, err)
	}
	wantLogs := []string{`usageplans: state failure: outcome=failure reason="cas_exhausted" plan=gold error="usageplans:key:gold:gold-key: state: compare-and-swap attempts exhausted"`}
	if got := h.host.GetWarnLogs(); !slices.Equal(got, wantLogs) {
		t.Errorf("warn logs:\n%q\nwant\n%q", got, wantLogs)
	}
}

// A shared bucket's CAS loop that gave up admits the request without its token (issue 3
// review): counted as allowed and as cas_exhausted, and logged at warn.
func TestSharedCASExhaustedAdmitted(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	id := h.host.InitializeHttpContext()
	h.host.CallOnRequestHeaders(id, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "other"}, key(goldKey)}, true)
	hc := h.vm.plugin.NewHttpContext(id).(*httpContext)
	cfg := h.vm.plugin.cfg
	d := core.Decision{Outcome: core.Allow, Reason: core.ReasonCASExhausted, Plan: cfg.Plans[0], Key: cfg.Keys[0],
		Err: fmt.Errorf("%w: 8 attempts on \"usageplans:account\"", state.ErrExhausted)}
	if act := hc.act(&d); act != types.ActionContinue {
		t.Errorf("act = %v, want Continue", act)
	}
	if r := h.host.GetSentLocalResponse(id); r != nil {
		t.Errorf("answered %d %q, want admitted", r.StatusCode, r.Data)
	}
	want := map[string]int64{"usageplans.requests.allowed": 1, "usageplans.plan.gold.allowed": 1,
		"usageplans.requests.cas_exhausted": 1, "usageplans.plan.gold.cas_exhausted": 1, "usageplans.requests.failure": 0}
	if got := h.counters("usageplans.requests.allowed", "usageplans.plan.gold.allowed", "usageplans.requests.cas_exhausted",
		"usageplans.plan.gold.cas_exhausted", "usageplans.requests.failure"); !equalMaps(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
	wantLogs := []string{`usageplans: shared bucket contended, admitted without its token: outcome=allowed reason="cas_exhausted" key_id=gold-key plan=gold error="state: compare-and-swap attempts exhausted: 8 attempts on \"usageplans:account\""`}
	if got := h.host.GetWarnLogs(); !slices.Equal(got, wantLogs) {
		t.Errorf("warn logs:\n%q\nwant\n%q", got, wantLogs)
	}
}

// A denied request that could not give a shared bucket its token back is counted and
// logged at warn (issue 3 review); its own outcome stands.
func TestGiveBackFailedCounted(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	id := h.host.InitializeHttpContext()
	h.host.CallOnRequestHeaders(id, [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "other"}}, true)
	hc := h.vm.plugin.NewHttpContext(id).(*httpContext)
	d := core.Decision{Outcome: core.Failure, Plan: h.vm.plugin.cfg.Plans[0], GiveBackFailed: true,
		Err: fmt.Errorf("usageplans:key:gold:gold-key: %w", state.ErrExhausted)}
	if act := hc.act(&d); act != types.ActionPause {
		t.Errorf("act = %v, want Pause", act)
	}
	want := map[string]int64{"usageplans.requests.giveback_failed": 1, "usageplans.requests.cas_exhausted": 1, "usageplans.requests.failure": 1}
	if got := h.counters("usageplans.requests.giveback_failed", "usageplans.requests.cas_exhausted", "usageplans.requests.failure"); !equalMaps(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
	wantLogs := []string{
		`usageplans: give-back failed, a shared bucket stays a token short: outcome=failure reason="" plan=gold error="usageplans:key:gold:gold-key: state: compare-and-swap attempts exhausted"`,
		`usageplans: state failure: outcome=failure reason="" plan=gold error="usageplans:key:gold:gold-key: state: compare-and-swap attempts exhausted"`,
	}
	if got := h.host.GetWarnLogs(); !slices.Equal(got, wantLogs) {
		t.Errorf("warn logs:\n%q\nwant\n%q", got, wantLogs)
	}
}

// A panic while deciding is recovered and answered by the failure policy: the request does
// not hang and the VM lives on.
func TestPanicRecovered(t *testing.T) {
	boom := func() time.Time { panic("clock on fire") }
	t.Run("closed", func(t *testing.T) {
		h := start(t, baseConfig, types.OnPluginStartStatusOK)
		now = boom
		wantLocal(t, h.get("/pets", key(goldKey)), 500,
			failureHeaders, failureBody)
		want := map[string]int64{"usageplans.panics_recovered": 1, "usageplans.requests.failure": 1}
		if got := h.counters("usageplans.panics_recovered", "usageplans.requests.failure"); !equalMaps(got, want) {
			t.Errorf("counters = %v, want %v", got, want)
		}
		if logs := h.host.GetErrorLogs(); !slices.Equal(logs, []string{"usageplans: panic in request headers: clock on fire"}) {
			t.Errorf("error logs = %q", logs)
		}
		now = func() time.Time { return h.clock }
		wantUpstream(t, h.get("/pets", key(goldKey)), [][2]string{{":method", "GET"}, {":path", "/pets"},
			{":authority", "api.example.com"}, {"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}})
	})
	t.Run("open", func(t *testing.T) {
		h := start(t, withOptions(`"failurePolicy": "OPEN"`), types.OnPluginStartStatusOK)
		now = boom
		// Let through, but as any admitted request: without the key, and without identity
		// headers the client made up (the filter could not tell who it is).
		wantUpstream(t, h.get("/pets", key(goldKey), [2]string{"x-usageplans-key-id", "admin"}),
			[][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}})
	})
	// Shadow mode never rejects, a panic included (issue 3 review): the request passes as
	// under OPEN, and is counted and logged as a failure.
	t.Run("shadow mode", func(t *testing.T) {
		h := start(t, withOptions(`"shadowMode": true`), types.OnPluginStartStatusOK)
		now = boom
		wantUpstream(t, h.get("/pets", key(goldKey), [2]string{"x-usageplans-key-id", "admin"}),
			[][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}})
		want := map[string]int64{"usageplans.panics_recovered": 1, "usageplans.requests.failure": 1}
		if got := h.counters("usageplans.panics_recovered", "usageplans.requests.failure"); !equalMaps(got, want) {
			t.Errorf("counters = %v, want %v", got, want)
		}
	})
}

// The key may come from a query parameter when configured; it is stripped from :path and
// the other parameters keep their order and encoding.
func TestQueryParameterKey(t *testing.T) {
	h := start(t, withOptions(`"apiKeyQueryParameter": "api_key"`), types.OnPluginStartStatusOK)
	wantUpstream(t, h.get("/pets?limit=5&api_key="+goldKey+"&q=a%20b"), [][2]string{{":method", "GET"},
		{":path", "/pets?limit=5&q=a%20b"}, {":authority", "api.example.com"},
		{"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}})
	wantUpstream(t, h.get("/pets?api_key="+goldKey), [][2]string{{":method", "GET"},
		{":path", "/pets"}, {":authority", "api.example.com"},
		{"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}})
	// The header wins over the parameter: a bad header is not rescued by a good parameter.
	wantLocal(t, h.get("/pets?api_key="+goldKey, key(unknownKey)), 403, forbiddenHeaders, forbiddenBody)
}

// The key leaves the request on every request the filter decides, rejected ones included
// (issue 3 review): Envoy's access log reads the request's :path and headers after a local
// reply too. Requests the filter does not govern keep it.
func TestKeyStrippedFromRejected(t *testing.T) {
	h := start(t, withOptions(`"apiKeyQueryParameter": "api_key"`), types.OnPluginStartStatusOK)
	h.get("/pets", key(tightKey))
	h.get("/pets", key(tightKey))
	for _, tt := range []struct {
		name    string
		o       result
		status  uint32
		request [][2]string
	}{
		{"throttled, header", h.get("/pets?x=1", key(tightKey)), 429,
			[][2]string{{":method", "GET"}, {":path", "/pets?x=1"}, {":authority", "api.example.com"}}},
		{"throttled, query parameter", h.get("/pets?api_key=" + tightKey + "&x=1"), 429,
			[][2]string{{":method", "GET"}, {":path", "/pets?x=1"}, {":authority", "api.example.com"}}},
		{"disabled key, both", h.get("/pets?api_key="+offKey, key(offKey)), 403,
			[][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}}},
		{"unknown key", h.get("/pets", key(unknownKey)), 403,
			[][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}}},
		{"a parameter that does not decode", h.get("/pets?api_key=" + goldKey + "%zz"), 403,
			[][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}}},
		{"no key", h.get("/pets"), 403,
			[][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}}},
		{"no resource", h.get("/owners?api_key="+goldKey, key(goldKey)), 403,
			[][2]string{{":method", "GET"}, {":path", "/owners"}, {":authority", "api.example.com"}}},
		{"bypassed route keeps it", h.get("/admin?api_key="+goldKey, key(goldKey)), 0,
			[][2]string{{":method", "GET"}, {":path", "/admin?api_key=" + goldKey}, {":authority", "api.example.com"}, key(goldKey)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status != 0 && (tt.o.local == nil || tt.o.local.StatusCode != tt.status) {
				t.Fatalf("reply %+v, want %d", tt.o.local, tt.status)
			}
			if !slices.Equal(tt.o.request, tt.request) {
				t.Errorf("request headers left = %q\nwant                   %q", tt.o.request, tt.request)
			}
		})
	}
}

// Reading the key from the query string is off by default: URLs end up in access logs.
func TestQueryParameterKeyOffByDefault(t *testing.T) {
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	wantLocal(t, h.get("/pets?api_key="+goldKey), 403, forbiddenHeaders, forbiddenBody)
}

// AUTHORIZER: the usage identifier an earlier filter wrote, in a header or a property.
func TestAuthorizerSource(t *testing.T) {
	t.Run("header", func(t *testing.T) {
		h := start(t, withOptions(`"apiKeySource": "AUTHORIZER"`, `"authorizer": {"header": "X-Usage-Identifier"}`), types.OnPluginStartStatusOK)
		wantUpstream(t, h.get("/pets", [2]string{"x-usage-identifier", goldKey}), [][2]string{{":method", "GET"},
			{":path", "/pets"}, {":authority", "api.example.com"},
			{"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}})
		// x-api-key means nothing under AUTHORIZER.
		wantLocal(t, h.get("/pets", key(goldKey)), 403, forbiddenHeaders, forbiddenBody)
	})
	t.Run("property", func(t *testing.T) {
		path := []string{"metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "usage_key"}
		h := start(t, withOptions(`"apiKeySource": "AUTHORIZER"`,
			`"authorizer": {"property": ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "usage_key"]}`),
			types.OnPluginStartStatusOK, withProperty(path, goldKey))
		// The property is not a header: nothing to strip, x-api-key is passed on as it is.
		wantUpstream(t, h.get("/pets", key("whatever")), [][2]string{{":method", "GET"},
			{":path", "/pets"}, {":authority", "api.example.com"}, key("whatever"),
			{"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}})
	})
	t.Run("property missing", func(t *testing.T) {
		h := start(t, withOptions(`"apiKeySource": "AUTHORIZER"`, `"authorizer": {"property": ["metadata", "usage_key"]}`),
			types.OnPluginStartStatusOK)
		wantLocal(t, h.get("/pets", key(goldKey)), 403, forbiddenHeaders, forbiddenBody)
	})
}

// Routes can match Envoy's route name (the xds.route_name property).
func TestRouteName(t *testing.T) {
	cfg := strings.Replace(baseConfig, `"match": {"host": "api.example.com"}`, `"match": {"routeName": "pets-route"}`, 1)
	t.Run("matches", func(t *testing.T) {
		h := start(t, cfg, types.OnPluginStartStatusOK, withProperty([]string{"xds", "route_name"}, "pets-route"))
		wantLocal(t, h.request([2]string{":method", "GET"}, [2]string{":path", "/pets"}, [2]string{":authority", "anything"}),
			403, forbiddenHeaders, forbiddenBody)
	})
	t.Run("other route", func(t *testing.T) {
		h := start(t, cfg, types.OnPluginStartStatusOK, withProperty([]string{"xds", "route_name"}, "other"))
		wantUpstream(t, h.get("/pets"), [][2]string{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}})
	})
}

// Configured responses replace AWS's, and the filter still adds Retry-After to a 429.
func TestResponseOverrides(t *testing.T) {
	h := start(t, withOptions(`"responses": {
		"INVALID_API_KEY": {"statusCode": 401, "headers": {"WWW-Authenticate": "ApiKey"}, "body": "no"},
		"THROTTLED": {"statusCode": "503", "headers": {}, "body": ""}}`), types.OnPluginStartStatusOK)
	wantLocal(t, h.get("/pets"), 401, [][2]string{{"www-authenticate", "ApiKey"}}, "no")
	h.get("/pets", key(tightKey))
	h.get("/pets", key(tightKey))
	wantLocal(t, h.get("/pets", key(tightKey)), 503, nil, "")
}

// No log line, at any level, may carry a key value: logs go to places keys must not.
func TestNoKeyValueInLogs(t *testing.T) {
	h := start(t, withOptions(`"apiKeyQueryParameter": "api_key"`, `"rateLimitHeaders": true`), types.OnPluginStartStatusOK)
	for _, k := range allKeys {
		for range 4 {
			h.get("/pets", key(k))
			h.get("/pets?api_key=" + k)
			h.get("/nowhere", key(k))
		}
	}
	plantGarbage(t)
	h.get("/pets", key(goldKey))
	now = func() time.Time { panic("key " + strings.Repeat("x", 3)) }
	h.get("/pets", key(goldKey))
	now = func() time.Time { return h.clock }
	h.vm.plugin.configure([]byte(`{"apiKeys": [{"id": "a", "value": "` + goldKey + `"}, {"id": "b", "value": "` + goldKey + `"}, {"id": "c", "value": "` + tightKey + `x!"}]}`))

	logs := h.logs()
	if len(logs) < 50 {
		t.Fatalf("only %d log lines: the scan would prove little", len(logs))
	}
	for _, l := range logs {
		for _, k := range allKeys {
			if strings.Contains(l, k) {
				t.Errorf("a log line holds the value of a key: %s", strings.ReplaceAll(l, k, "<KEY>"))
			}
		}
	}
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// The filter state tells an access log what was decided and for whom, by id.
func TestFilterState(t *testing.T) {
	tests := []struct {
		name                 string
		headers              [][2]string
		outcome, keyID, plan string
	}{
		{"allowed (key and plan in the identity headers)", [][2]string{key(goldKey)}, "allowed", "", ""},
		{"forbidden, unknown key", [][2]string{key(unknownKey)}, "forbidden", "", ""},
		{"forbidden, disabled key", [][2]string{key(offKey)}, "forbidden", "off-key", ""},
		{"throttled", [][2]string{key(tightKey)}, "throttled", "tight-key", "tight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, baseConfig, types.OnPluginStartStatusOK)
			if tt.outcome == "throttled" {
				h.get("/pets", tt.headers...)
				h.get("/pets", tt.headers...)
			}
			h.get("/pets", tt.headers...)
			for name, want := range map[string]string{"usageplans_outcome": tt.outcome, "usageplans_key_id": tt.keyID, "usageplans_plan_id": tt.plan} {
				got, err := h.host.GetProperty([]string{name})
				if want == "" && err == nil || want != "" && string(got) != want {
					t.Errorf("%s = %q (%v), want %q", name, got, err, want)
				}
			}
		})
	}
	// Without identity headers, the filter state is where an admitted key and plan show.
	t.Run("allowed without identity headers", func(t *testing.T) {
		h := start(t, withOptions(`"identityHeaders": false`), types.OnPluginStartStatusOK)
		h.get("/pets", key(goldKey))
		for name, want := range map[string]string{"usageplans_outcome": "allowed", "usageplans_key_id": "gold-key", "usageplans_plan_id": "gold"} {
			if got, err := h.host.GetProperty([]string{name}); string(got) != want {
				t.Errorf("%s = %q (%v), want %q", name, got, err, want)
			}
		}
	})
	// Requests the filter does not govern say nothing.
	h := start(t, baseConfig, types.OnPluginStartStatusOK)
	h.get("/admin", key(goldKey))
	if got, err := h.host.GetProperty([]string{"usageplans_outcome"}); err == nil {
		t.Errorf("usageplans_outcome = %q on a bypassed route, want none", got)
	}
}
