package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/host"
)

// The replies as a client receives them from Envoy: the configured headers, then the
// content-length Envoy's local reply adds.
var (
	fltForbidden    = host.Headers{{"content-type", "application/json"}, {"x-amzn-errortype", "ForbiddenException"}, {"content-length", "23"}}
	fltMissingToken = host.Headers{{"content-type", "application/json"},
		{"x-amzn-errortype", "MissingAuthenticationTokenException"}, {"content-length", "42"}}
	fltFailure = host.Headers{{"content-type", "application/json"}, {"x-amzn-errortype", "InternalServerErrorException"}, {"content-length", "35"}}
)

const (
	fltForbiddenBody = `{"message":"Forbidden"}`
	fltThrottledBody = `{"message":"Too Many Requests"}`
	fltQuotaBody     = `{"message":"Limit Exceeded"}`
	fltFailureBody   = `{"message":"Internal server error"}`
)

func fltThrottled(retryAfter string) host.Headers {
	return host.Headers{{"content-type", "application/json"}, {"retry-after", retryAfter}, {"content-length", "31"}}
}

func fltQuota(retryAfter string) host.Headers {
	return host.Headers{{"content-type", "application/json"}, {"retry-after", retryAfter}, {"content-length", "28"}}
}

// identity is what the upstream receives for an admitted GET of path by keyID in plan.
func identity(path, keyID, plan string) host.Headers {
	return host.Headers{{":method", "GET"}, {":path", path}, {":authority", "api.example.com"}, {":scheme", "http"},
		{"x-usageplans-key-id", keyID}, {"x-usageplans-plan-id", plan}}
}

var upstreamHeaders = host.Headers{{"server", "upstream"}}

// A configuration with problems makes proxy_on_configure return false, which fails the
// plugin's start in Envoy; every problem is in the log.
func TestFilterConfigRejectedAtStart(t *testing.T) {
	e := newFltRuntime(t, fltSetup{})
	var missing []string
	_, err := e.rt.NewPlugin(context.Background(), e.module, e.pluginConfig(
		fltOptions(`"failurePolicy": "SOMETIMES"`, `"casRetries": 0`), fltSetup{}))
	if err == nil {
		t.Fatal("NewPlugin accepted an invalid configuration")
	}
	msg := err.Error()
	for _, want := range []string{
		"proxy_on_configure returned false",
		"usageplans dev: configuration rejected: 2 problem(s)",
		`usageplans: config: failurePolicy: must be CLOSED or OPEN, got "SOMETIMES"`,
		"usageplans: config: casRetries: must be an integer from 1 to 1000, got 0",
	} {
		if !strings.Contains(msg, want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the error lacks %q:\n%s", missing, msg)
	}

	// Problems about key values name the keys by id: neither the error nor the log (scanned
	// at cleanup) may hold a value.
	_, err = e.rt.NewPlugin(context.Background(), e.module, e.pluginConfig(`{"apiKeys": [
		{"id": "a", "value": "`+fltGold+`"}, {"id": "b", "value": "`+fltGold+`"}, {"id": "c", "value": "`+fltTight+`!"}]}`, fltSetup{}))
	if err == nil {
		t.Fatal("NewPlugin accepted duplicate and malformed key values")
	}
	for _, k := range fltKeys {
		if strings.Contains(err.Error(), k) {
			t.Errorf("the rejection holds a key value: %s", strings.ReplaceAll(err.Error(), k, "<key>"))
		}
	}
	if !strings.Contains(err.Error(), `apiKeys[1]`) || !strings.Contains(err.Error(), `apiKeys[2]`) {
		t.Errorf("the rejection does not name both bad keys:\n%s", err)
	}
}

// On a configuration update of a running VM (Envoy: a new root context on the same VM, see
// host.VM.Configure), a rejected configuration leaves the previous root context serving with
// its state; an accepted one takes the next requests at once, and the shared-data state (same
// vm_id) carries over.
func TestFilterReconfigure(t *testing.T) {
	e := startFilter(t, fltSetup{})
	vm := e.plugin.VMs()[0]
	e.wantStatuses(t, fltTight, 200)
	if err := vm.Configure(context.Background(), []byte(`{"usagePlans": 3}`)); err == nil ||
		!strings.Contains(err.Error(), "usageplans: config: usagePlans: ") {
		t.Fatalf("Configure(invalid) = %v, want the rejection with its problem", err)
	}
	e.wantStatuses(t, fltTight, 200, 429)
	e.wantCounters(t, map[string]uint64{"usageplans.config.rejected": 1})

	// Without tight-key's plan association, the key is in no plan of the stage.
	next := strings.Replace(fltOptions(), `{"usagePlanId": "tight", "keyId": "tight-key"},`, "", 1)
	if err := vm.Configure(context.Background(), []byte(next)); err != nil {
		t.Fatal(err)
	}
	wantReply(t, e.get("/pets", apiKey(fltTight)), 403, fltForbidden, fltForbiddenBody)
	// The gold key's state carried over (same vm_id, same shared data): its bucket still
	// has 99 tokens, not a fresh 100.
	e.get("/pets", apiKey(fltGold))
	if err := vm.Configure(context.Background(), []byte(fltOptions(`"rateLimitHeaders": true`))); err != nil {
		t.Fatal(err)
	}
	resp := e.get("/pets", apiKey(fltGold))
	if got, _ := resp.Headers.Get("ratelimit-remaining"); got != "98" {
		t.Errorf("ratelimit-remaining after two requests across configurations = %q, want 98", got)
	}
}

// Every way of not having a usable key gets AWS's 403, and the upstream is never called.
func TestFilterForbidden(t *testing.T) {
	e := startFilter(t, fltSetup{})
	for _, tt := range []struct {
		name    string
		headers host.Headers
	}{
		{"no key", nil},
		{"empty key", host.Headers{apiKey("")}},
		{"unknown key", host.Headers{apiKey(fltUnknown)}},
		{"not a key value", host.Headers{apiKey("short")}},
		{"disabled key", host.Headers{apiKey(fltOff)}},
		{"key in no plan of the stage", host.Headers{apiKey(fltStray)}},
		{"key in another header", host.Headers{{"authorization", fltGold}}},
		{"upper-case header name", host.Headers{{"X-API-KEY", fltUnknown}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantReply(t, e.get("/pets", tt.headers...), 403, fltForbidden, fltForbiddenBody)
		})
	}
	if n := len(e.upstream); n != 0 {
		t.Errorf("the upstream was called %d times", n)
	}
	e.wantCounters(t, map[string]uint64{"usageplans.requests.forbidden": 8, "usageplans.requests.allowed": 0})
}

// The upstream sees an admitted request without its key, with identity headers it can
// trust (a client's own copies are removed), and with everything else untouched.
func TestFilterAllowStripsKeyAndSetsIdentity(t *testing.T) {
	e := startFilter(t, fltSetup{})
	resp := e.get("/pets/7", apiKey(fltGold), [2]string{"X-Usageplans-Key-Id", "admin"},
		[2]string{"x-usageplans-plan-id", "unlimited"}, [2]string{"accept", "application/json"})
	e.wantPassed(t, resp, host.Headers{{":method", "GET"}, {":path", "/pets/7"}, {":authority", "api.example.com"},
		{":scheme", "http"}, {"accept", "application/json"}, {"x-usageplans-key-id", "gold-key"},
		{"x-usageplans-plan-id", "gold"}}, upstreamHeaders)
	e.wantCounters(t, map[string]uint64{"usageplans.requests.allowed": 1, "usageplans.plan.gold.allowed": 1})

	// Requests the filter does not govern pass as they came, minus the spoofed identity.
	spoof := [2]string{"x-usageplans-key-id", "admin"}
	e.wantPassed(t, e.get("/admin/users", apiKey(fltGold), spoof), host.Headers{{":method", "GET"},
		{":path", "/admin/users"}, {":authority", "api.example.com"}, {":scheme", "http"}, apiKey(fltGold)}, upstreamHeaders)
	other := &host.Request{Headers: host.Headers{{":method", "GET"}, {":path", "/pets"}, {":authority", "www.example.com"},
		{":scheme", "http"}, apiKey(fltGold), spoof}}
	e.wantPassed(t, e.do(other), host.Headers{{":method", "GET"}, {":path", "/pets"}, {":authority", "www.example.com"},
		{":scheme", "http"}, apiKey(fltGold)}, upstreamHeaders)
	// A method without apiKeyRequired is decided (stage and account limits) but not by key.
	e.wantPassed(t, e.get("/", apiKey(fltGold), spoof), host.Headers{{":method", "GET"}, {":path", "/"},
		{":authority", "api.example.com"}, {":scheme", "http"}}, upstreamHeaders)
	// A resource the stage lacks is AWS's Missing Authentication Token.
	wantReply(t, e.get("/owners", apiKey(fltGold)), 403, fltMissingToken, `{"message":"Missing Authentication Token"}`)
	e.wantCounters(t, map[string]uint64{"usageplans.requests.allowed": 2, "usageplans.plan.gold.allowed": 1,
		"usageplans.requests.unmatched": 1})
}

// Burst 2 at 0.5/s: the third request waits 2 s for a token and the 429 says so; after
// those 2 s (on the host's clock) it passes.
func TestFilterThrottled(t *testing.T) {
	e := startFilter(t, fltSetup{})
	e.wantStatuses(t, fltTight, 200, 200)
	wantReply(t, e.get("/pets", apiKey(fltTight)), 429, fltThrottled("2"), fltThrottledBody)
	e.clock.Advance(1e9)
	wantReply(t, e.get("/pets", apiKey(fltTight)), 429, fltThrottled("1"), fltThrottledBody)
	e.clock.Advance(1e9)
	e.wantPassed(t, e.get("/pets", apiKey(fltTight)), identity("/pets", "tight-key", "tight"), upstreamHeaders)
	e.wantCounters(t, map[string]uint64{"usageplans.requests.throttled": 2, "usageplans.plan.tight.throttled": 2,
		"usageplans.requests.allowed": 3})
}

// 3 a day: the fourth request waits until midnight UTC, an hour away.
func TestFilterQuotaExceeded(t *testing.T) {
	e := startFilter(t, fltSetup{})
	e.wantStatuses(t, fltDaily, 200, 200, 200)
	wantReply(t, e.get("/pets", apiKey(fltDaily)), 429, fltQuota("3600"), fltQuotaBody)
	e.wantCounters(t, map[string]uint64{"usageplans.requests.quota_exceeded": 1, "usageplans.plan.daily.quota_exceeded": 1})
}

// The RateLimit-* headers describe the limit that binds, on admitted responses and on 429s.
func TestFilterRateLimitHeaders(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"rateLimitHeaders": true`)})
	e.wantPassed(t, e.get("/pets", apiKey(fltTight)), identity("/pets", "tight-key", "tight"), host.Headers{
		{"server", "upstream"}, {"ratelimit-limit", "2"}, {"ratelimit-remaining", "1"}, {"ratelimit-reset", "2"},
		{"ratelimit-policy", "2;w=4"}})
	e.get("/pets", apiKey(fltTight))
	wantReply(t, e.get("/pets", apiKey(fltTight)), 429, host.Headers{{"content-type", "application/json"},
		{"retry-after", "2"}, {"ratelimit-limit", "2"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "4"},
		{"ratelimit-policy", "2;w=4"}, {"content-length", "31"}}, fltThrottledBody)
	e.get("/pets", apiKey(fltDaily))
	e.get("/pets", apiKey(fltDaily))
	e.wantPassed(t, e.get("/pets", apiKey(fltDaily)), identity("/pets", "daily-key", "daily"), host.Headers{
		{"server", "upstream"}, {"ratelimit-limit", "3"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "3600"},
		{"ratelimit-policy", "3;w=86400"}})
	wantReply(t, e.get("/pets", apiKey(fltDaily)), 429, host.Headers{{"content-type", "application/json"},
		{"retry-after", "3600"}, {"ratelimit-limit", "3"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "3600"},
		{"ratelimit-policy", "3;w=86400"}, {"content-length", "28"}}, fltQuotaBody)
}

// Shadow mode: everything passes; what would have been rejected is counted and logged as
// such, and still carries the rate-limit headers.
func TestFilterShadowMode(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"shadowMode": true`, `"rateLimitHeaders": true`)})
	e.wantPassed(t, e.get("/pets"), host.Headers{{":method", "GET"}, {":path", "/pets"},
		{":authority", "api.example.com"}, {":scheme", "http"}}, upstreamHeaders)
	e.get("/pets", apiKey(fltTight))
	e.get("/pets", apiKey(fltTight))
	e.wantPassed(t, e.get("/pets", apiKey(fltTight)), identity("/pets", "tight-key", "tight"), host.Headers{
		{"server", "upstream"}, {"ratelimit-limit", "2"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "4"},
		{"ratelimit-policy", "2;w=4"}})
	e.wantCounters(t, map[string]uint64{"usageplans.requests.shadow_denied": 2, "usageplans.plan.tight.shadow_denied": 1,
		"usageplans.requests.allowed": 2, "usageplans.requests.forbidden": 0, "usageplans.requests.throttled": 0})
	var shadow []string
	for _, l := range e.plugin.Logs() {
		if strings.HasPrefix(l.Message, "usageplans: shadow mode") {
			shadow = append(shadow, l.Message)
		}
	}
	want := []string{
		`usageplans: shadow mode, let through: outcome=shadow_denied would_be=forbidden reason="missing API key" route=pets stage=pets/prod resource=/pets method=GET`,
		`usageplans: shadow mode, let through: outcome=shadow_denied would_be=throttled reason="throttled by plan limit" route=pets stage=pets/prod resource=/pets method=GET key_id=tight-key plan=tight limit=plan:tight rate=0.5 burst=2 retry_after=2`,
	}
	if strings.Join(shadow, "\n") != strings.Join(want, "\n") {
		t.Errorf("shadow log lines:\n%s\nwant\n%s", strings.Join(shadow, "\n"), strings.Join(want, "\n"))
	}
}

// In shadow mode a disabled key, or one in no plan of the stage, passes without identity
// headers (issue 3 review): the upstream must not take it for a valid key.
func TestFilterShadowModeForbiddenHasNoIdentity(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"shadowMode": true`)})
	for _, k := range []string{fltOff, fltStray} {
		e.wantPassed(t, e.get("/pets", apiKey(k), [2]string{"x-usageplans-plan-id", "gold"}), host.Headers{{":method", "GET"},
			{":path", "/pets"}, {":authority", "api.example.com"}, {":scheme", "http"}}, upstreamHeaders)
	}
	e.wantCounters(t, map[string]uint64{"usageplans.requests.shadow_denied": 2, "usageplans.requests.allowed": 0})
}

// An entry no decoder version accepts, where gold-key's state lives (what a corrupted entry,
// or a newer filter's during a botched rollback, would look like): the failure policy decides.
func TestFilterFailurePolicy(t *testing.T) {
	plant := func(t *testing.T, e *fltEnv) {
		if st := e.rt.SharedData("usageplans").Set("usageplans:key:gold:gold-key", []byte{0xff, 0xff, 0xff}, 0); st != host.StatusOK {
			t.Fatalf("planting the entry: %v", st)
		}
	}
	t.Run("closed", func(t *testing.T) {
		e := startFilter(t, fltSetup{})
		plant(t, e)
		wantReply(t, e.get("/pets", apiKey(fltGold)), 500, fltFailure, fltFailureBody)
		e.wantCounters(t, map[string]uint64{"usageplans.requests.failure": 1, "usageplans.plan.gold.failure": 1,
			"usageplans.requests.allowed": 0})
		// The entry is left as it was: the filter never overwrites what it cannot read.
		if v, _, _ := e.rt.SharedData("usageplans").Get("usageplans:key:gold:gold-key"); string(v) != "\xff\xff\xff" {
			t.Errorf("entry = %x, want ffffff", v)
		}
		// Other keys are unaffected.
		e.wantStatuses(t, fltTight, 200)
	})
	t.Run("open", func(t *testing.T) {
		e := startFilter(t, fltSetup{config: fltOptions(`"failurePolicy": "OPEN"`)})
		plant(t, e)
		e.wantPassed(t, e.get("/pets", apiKey(fltGold)), identity("/pets", "gold-key", "gold"), upstreamHeaders)
		e.wantCounters(t, map[string]uint64{"usageplans.requests.failure": 1, "usageplans.plan.gold.failure": 1,
			"usageplans.requests.allowed": 0})
	})
}

// The key from a query parameter, when configured: stripped from :path, the other
// parameters kept in order and encoding.
func TestFilterQueryParameterKey(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"apiKeyQueryParameter": "api_key"`)})
	e.wantPassed(t, e.get("/pets?limit=5&api_key="+fltGold+"&q=a%20b"),
		identity("/pets?limit=5&q=a%20b", "gold-key", "gold"), upstreamHeaders)
	// The header wins over the parameter.
	wantReply(t, e.get("/pets?api_key="+fltGold, apiKey(fltUnknown)), 403, fltForbidden, fltForbiddenBody)

	off := startFilter(t, fltSetup{})
	wantReply(t, off.get("/pets?api_key="+fltGold), 403, fltForbidden, fltForbiddenBody)
}

// A bucket that never refills (rateLimit 0, as AWS allows) answers 429 once empty with a
// Retry-After of a day, not the 292 years of an endless wait (issue 3 review); the daily
// plan's quota bounds it by the end of its day instead. RateLimit-Policy has no window.
func TestFilterNeverRefillingBucket(t *testing.T) {
	cfg := strings.Replace(fltOptions(`"rateLimitHeaders": true`), `"throttle": {"rateLimit": 0.5, "burstLimit": 2}`, `"throttle": {"rateLimit": 0, "burstLimit": 2}`, 1)
	cfg = strings.Replace(cfg, `"quota": {"limit": 3, "period": "DAY"}`, `"quota": {"limit": 3, "period": "DAY"}, "throttle": {"rateLimit": 0, "burstLimit": 1}`, 1)
	e := startFilter(t, fltSetup{config: cfg})
	e.wantStatuses(t, fltTight, 200, 200)
	e.clock.Advance(30 * 24 * time.Hour)
	wantReply(t, e.get("/pets", apiKey(fltTight)), 429, host.Headers{{"content-type", "application/json"},
		{"retry-after", "86400"}, {"ratelimit-limit", "2"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "86400"},
		{"ratelimit-policy", "2"}, {"content-length", "31"}}, fltThrottledBody)
	// 23:00 on the 9th of April: the daily quota's period ends in an hour.
	e.wantStatuses(t, fltDaily, 200)
	wantReply(t, e.get("/pets", apiKey(fltDaily)), 429, host.Headers{{"content-type", "application/json"},
		{"retry-after", "3600"}, {"ratelimit-limit", "1"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "3600"},
		{"ratelimit-policy", "1"}, {"content-length", "31"}}, fltThrottledBody)
}

// The key leaves every request the filter decides, rejected ones included (issue 3 review):
// Envoy's access log reads :path and the request headers after a local reply too. Only
// requests the filter does not govern keep it.
func TestFilterKeyStrippedFromRejected(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"apiKeyQueryParameter": "api_key"`)})
	vm := e.plugin.VMs()[0]
	e.wantStatuses(t, fltTight, 200, 200)
	for _, tt := range []struct {
		name    string
		req     *host.Request
		status  int // of the local reply; 0 when passed
		request host.Headers
	}{
		{"throttled, header", fltGet("/pets?x=1", apiKey(fltTight)), 429,
			host.Headers{{":method", "GET"}, {":path", "/pets?x=1"}, {":authority", "api.example.com"}, {":scheme", "http"}}},
		{"throttled, query parameter", fltGet("/pets?api_key=" + fltTight + "&x=1"), 429,
			host.Headers{{":method", "GET"}, {":path", "/pets?x=1"}, {":authority", "api.example.com"}, {":scheme", "http"}}},
		{"disabled key, both", fltGet("/pets?api_key="+fltOff, apiKey(fltOff)), 403,
			host.Headers{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"}, {":scheme", "http"}}},
		{"unmatched resource", fltGet("/owners?api_key="+fltGold, apiKey(fltGold)), 403,
			host.Headers{{":method", "GET"}, {":path", "/owners"}, {":authority", "api.example.com"}, {":scheme", "http"}}},
		{"bypassed route keeps it", fltGet("/admin?api_key="+fltGold, apiKey(fltGold)), 0,
			host.Headers{{":method", "GET"}, {":path", "/admin?api_key=" + fltGold}, {":authority", "api.example.com"}, {":scheme", "http"}, apiKey(fltGold)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := vm.NewStream()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.RequestHeaders(tt.req.Headers, true); err != nil {
				t.Fatal(err)
			}
			status := 0
			if l := s.LocalResponse(); l != nil {
				status = l.Status
			}
			if status != tt.status {
				t.Errorf("local reply %d, want %d", status, tt.status)
			}
			if got := s.Headers(host.MapRequestHeaders); !slices.Equal(got, tt.request) {
				t.Errorf("request headers left = %q\nwant                   %q", got, tt.request)
			}
		})
	}
}

// AUTHORIZER: the usage identifier an earlier filter wrote, as a header (stripped like a
// key) or as a property of the stream.
func TestFilterAuthorizerSource(t *testing.T) {
	t.Run("header", func(t *testing.T) {
		e := startFilter(t, fltSetup{config: fltOptions(`"apiKeySource": "AUTHORIZER"`, `"authorizer": {"header": "x-usage-identifier"}`)})
		e.wantPassed(t, e.get("/pets", [2]string{"x-usage-identifier", fltGold}), identity("/pets", "gold-key", "gold"), upstreamHeaders)
		wantReply(t, e.get("/pets", apiKey(fltGold)), 403, fltForbidden, fltForbiddenBody)
	})
	t.Run("property", func(t *testing.T) {
		e := startFilter(t, fltSetup{config: fltOptions(`"apiKeySource": "AUTHORIZER"`, `"authorizer": {"property": ["metadata", "usage_key"]}`)})
		req := fltGet("/pets", apiKey("whatever"))
		req.Properties = map[string][]byte{"metadata.usage_key": []byte(fltGold)}
		e.wantPassed(t, e.do(req), host.Headers{{":method", "GET"}, {":path", "/pets"}, {":authority", "api.example.com"},
			{":scheme", "http"}, apiKey("whatever"), {"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}}, upstreamHeaders)
		wantReply(t, e.get("/pets"), 403, fltForbidden, fltForbiddenBody)
	})
}

// A route selected by Envoy's route name (xds.route_name).
func TestFilterRouteName(t *testing.T) {
	cfg := strings.Replace(fltOptions(), `"match": {"host": "api.example.com"}`, `"match": {"routeName": "pets-route"}`, 1)
	e := startFilter(t, fltSetup{config: cfg})
	req := fltGet("/pets")
	req.Properties = map[string][]byte{"xds.route_name": []byte("pets-route")}
	wantReply(t, e.do(req), 403, fltForbidden, fltForbiddenBody)
	e.wantPassed(t, e.get("/pets"), host.Headers{{":method", "GET"}, {":path", "/pets"},
		{":authority", "api.example.com"}, {":scheme", "http"}}, upstreamHeaders)
}

// Configured replies replace AWS's; a 429 still gets Retry-After.
func TestFilterResponseOverrides(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"responses": {
		"INVALID_API_KEY": {"statusCode": 401, "headers": {"WWW-Authenticate": "ApiKey"}, "body": "no"},
		"THROTTLED": {"statusCode": "429", "headers": {}, "body": ""}}`)})
	wantReply(t, e.get("/pets"), 401, host.Headers{{"www-authenticate", "ApiKey"}, {"content-length", "2"},
		{"content-type", "text/plain"}}, "no")
	e.wantStatuses(t, fltTight, 200, 200)
	wantReply(t, e.get("/pets", apiKey(fltTight)), 429, host.Headers{{"retry-after", "2"}}, "")
}

// A request with a body is decided on its headers: an admitted one streams its body to the
// upstream unchanged; a rejected one ends before the body matters.
func TestFilterRequestWithBody(t *testing.T) {
	e := startFilter(t, fltSetup{})
	var got []byte
	up := func(_ context.Context, req *host.Request) (*host.Response, error) {
		got = req.Body
		return &host.Response{Status: 201, Body: []byte("created")}, nil
	}
	post := func(key string) *host.Request {
		return &host.Request{Headers: host.Headers{{":method", "POST"}, {":path", "/pets"}, {":authority", "api.example.com"},
			{":scheme", "http"}, {"content-type", "application/json"}, apiKey(key)}, Body: []byte(`{"name":"rex"}`)}
	}
	resp, err := e.plugin.Do(context.Background(), post(fltGold), up)
	if err != nil || resp.Status != 201 || string(resp.Body) != "created" || string(got) != `{"name":"rex"}` {
		t.Errorf("admitted POST: %v %d %q, upstream got body %q", err, resp.Status, resp.Body, got)
	}
	got = nil
	resp, err = e.plugin.Do(context.Background(), post(fltUnknown), up)
	if err != nil {
		t.Fatal(err)
	}
	wantReply(t, resp, 403, fltForbidden, fltForbiddenBody)
	if got != nil {
		t.Errorf("the upstream received the rejected request's body %q", got)
	}
}

// The filter state an access log reads (%FILTER_STATE(wasm.usageplans_outcome:PLAIN)% in
// Envoy): the outcome, and the key and plan by id when known.
func TestFilterStateForAccessLogs(t *testing.T) {
	e := startFilter(t, fltSetup{})
	vm := e.plugin.VMs()[0]
	e.wantStatuses(t, fltTight, 200, 200)
	for _, tt := range []struct {
		name, path, key, outcome, keyID, plan string
	}{
		{"allowed (key and plan are in the identity headers)", "/pets", fltGold, "allowed", "", ""},
		{"throttled", "/pets", fltTight, "throttled", "tight-key", "tight"},
		{"unknown key", "/pets", fltUnknown, "forbidden", "", ""},
		{"disabled key", "/pets", fltOff, "forbidden", "off-key", ""},
		{"unmatched resource", "/owners", fltGold, "unmatched", "", ""},
		{"bypassed route", "/admin", fltGold, "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := vm.NewStream()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.RequestHeaders(fltGet(tt.path, apiKey(tt.key)).Headers, true); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]string{"usageplans_outcome": tt.outcome, "usageplans_key_id": tt.keyID, "usageplans_plan_id": tt.plan} {
				got, ok := s.Property(name)
				if ok != (want != "") || string(got) != want {
					t.Errorf("%s = %q (set: %t), want %q", name, got, ok, want)
				}
			}
		})
	}
}
