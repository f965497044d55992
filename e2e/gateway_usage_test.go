package e2e

// AWS's usage API (GetUsage, UpdateUsage) through both places that serve it: the gateway's
// admin listener (/usageplans on --admin) and the filter's own admin route (usageApi on the
// proxied listener), against the exact number of requests the filter admitted.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
	"github.com/usageplans/usageplans/host"
)

const (
	usageAdminKey = "AdminKeyAdminKeyAdmin0001"
	usageDaily    = "DailyUsageKey000000000001" // plan daily: 5 a DAY
	usageTight    = "TightUsageKey000000000002" // plan tight: burst 2, 1 a second; 1000 a MONTH
)

func usageConfig() string {
	return fmt.Sprintf(`{
  "apis": [{"id": "shop", "resources": [{"path": "/pets", "resourceMethods": {"GET": {"apiKeyRequired": true}}}],
            "stages": [{"stageName": "prod"}]}],
  "routes": [{"name": "shop", "match": {"routeName": "shop"}, "apiId": "shop", "stage": "prod"}],
  "usagePlans": [
    {"id": "daily", "apiStages": [{"apiId": "shop", "stage": "prod"}], "quota": {"limit": 5, "period": "DAY"}},
    {"id": "tight", "apiStages": [{"apiId": "shop", "stage": "prod"}], "throttle": {"rateLimit": 1, "burstLimit": 2},
     "quota": {"limit": 1000, "period": "MONTH"}}
  ],
  "apiKeys": [
    {"id": "kd", "value": %q},
    {"id": "kt", "value": %q}
  ],
  "usagePlanKeys": [{"usagePlanId": "daily", "keyId": "kd"}, {"usagePlanId": "tight", "keyId": "kt"}],
  "accountThrottle": false,
  "usageApi": {"pathPrefix": "/usageplans", "adminKeys": [{"id": "ops", "valueSha256": %q}], "allowOnHeadersStopIteration": true}
}`, usageDaily, usageTight, sha256Hex(usageAdminKey))
}

// startUsageGateway serves usageConfig as an Envoy with allow_on_headers_stop_iteration
// does, which UpdateUsage on the filter's route needs.
func startUsageGateway(t *testing.T) *gwTest {
	return startGateway(t, gwSetup{config: usageConfig(), routes: shopRoutes, workers: 2,
		options: func(o *gateway.Options) { o.AllowOnHeadersStopIteration = true }})
}

// send makes n GETs of /pets with key and returns how many the filter admitted (200).
func (g *gwTest) send(key string, n int) (admitted int) {
	g.t.Helper()
	for range n {
		switch r := g.get("/pets", key); r.status {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
		default:
			g.t.Fatalf("GET /pets: %d %s", r.status, r.body)
		}
	}
	return admitted
}

// viaAdmin sends a usage API request to the gateway's admin listener.
func (g *gwTest) viaAdmin(method, path, body string) reply {
	g.t.Helper()
	return g.send1("http://"+g.AdminAddr()+path, method, body, "")
}

// viaFilter sends a usage API request to the filter's admin route, with key as the admin key.
func (g *gwTest) viaFilter(method, path, body, key string) reply {
	g.t.Helper()
	return g.send1("http://"+g.Addr()+path, method, body, key)
}

func (g *gwTest) send1(url, method, body, key string) reply {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	if body != "" {
		req.Header.Set("content-type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func wantUsage(t *testing.T, where string, r reply, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Errorf("%s: %d %s\nwant %d %s", where, r.status, r.body, status, body)
	}
	if ct := r.header.Get("content-type"); ct != "application/json" {
		t.Errorf("%s: content-type %q", where, ct)
	}
}

func remainingPatch(n any) string {
	return fmt.Sprintf(`{"patchOperations":[{"op":"replace","path":"/remaining","value":"%v"}]}`, n)
}

// TestUsageCountsAdmitted: three days of traffic on the host's fake clock, with requests
// over the quota and throttled: GetUsage through the gateway's admin listener and through
// the filter's admin route answers the same document, whose used is exactly what was
// admitted each day. The usage API's own requests are neither counted nor sent upstream, and
// need an admin key.
func TestUsageCountsAdmitted(t *testing.T) {
	g := startUsageGateway(t)
	sent := [3][2]int{{7, 4}, {3, 3}, {0, 1}} // per day: daily key, tight key
	var admitted [3][2]int
	for day := range 3 {
		admitted[day][0] = g.send(usageDaily, sent[day][0])
		admitted[day][1] = g.send(usageTight, sent[day][1])
		if day < 2 {
			g.clock.Advance(24 * time.Hour)
		}
	}
	// The quota and the bucket held: 5 of 7, 2 of 4 (burst 2), 3, 2 of 3, 0, 1.
	if admitted != [3][2]int{{5, 2}, {3, 2}, {0, 1}} {
		t.Fatalf("admitted %v", admitted)
	}
	before := g.metrics()
	const daily = `{"usagePlanId":"daily","startDate":"2026-06-10","endDate":"2026-06-12","values":{"kd":[[5,0],[3,2],[0,5]]}}`
	const tight = `{"usagePlanId":"tight","startDate":"2026-06-09","endDate":"2026-06-12","values":{"kt":[[0,1000],[2,998],[2,996],[1,995]]}}`
	q := "/usageplans/daily/usage?startDate=2026-06-10&endDate=2026-06-12"
	wantUsage(t, "gateway", g.viaAdmin("GET", q, ""), 200, daily)
	wantUsage(t, "filter route", g.viaFilter("GET", q, "", usageAdminKey), 200, daily)
	q = "/usageplans/tight/usage?startDate=2026-06-09&endDate=2026-06-12&keyId=kt"
	wantUsage(t, "gateway", g.viaAdmin("GET", q, ""), 200, tight)
	wantUsage(t, "filter route", g.viaFilter("GET", q, "", usageAdminKey), 200, tight)

	// Without an admin key, with an API key, with a wrong one: the route's own 403.
	const forbidden = `{"message":"Forbidden"}`
	for _, key := range []string{"", usageDaily, "NotAnAdminKey0000000000001"} {
		r := g.viaFilter("GET", q, "", key)
		wantUsage(t, "no admin key", r, 403, forbidden)
		if r.header.Get("x-amzn-errortype") != "ForbiddenException" {
			t.Errorf("403 without ForbiddenException: %v", r.header)
		}
	}
	after := g.metrics()
	for _, name := range []string{"usageplans.requests.allowed", "usageplans.requests.forbidden", "usageplans.plan.daily.allowed", "usageplans.plan.tight.allowed"} {
		if after[name] != before[name] {
			t.Errorf("%s went from %d to %d: a usage API request was counted", name, before[name], after[name])
		}
	}
	if after["usageplans.usage_api.requests"] != 5 || after["usageplans.usage_api.forbidden"] != 3 || after["usageplans.usage.failed"] != 0 {
		t.Errorf("usage API counters: %d requests, %d forbidden, %d failed; want 5, 3, 0",
			after["usageplans.usage_api.requests"], after["usageplans.usage_api.forbidden"], after["usageplans.usage.failed"])
	}
	// Answered by the filter (end=local), never the upstream; the admin key named by id only.
	access := g.access.String()
	if n := strings.Count(access, `path="/usageplans/daily/usage" status=200 outcome=usage_api end=local`); n != 1 {
		t.Errorf("%d access lines of the filter answering GetUsage, want 1:\n%s", n, access)
	}
	if strings.Contains(access, "outcome=usage_api end=upstream") {
		t.Error("a usage API request reached the upstream")
	}
	for where, text := range map[string]string{"gateway log": g.log.String(), "access log": access} {
		noSecrets(t, where, text, usageConfig())
		if strings.Contains(text, usageAdminKey) {
			t.Errorf("the admin key's value is in the %s", where)
		}
	}
}

// TestUpdateUsageRaces: two admins grant at once, once through the gateway and the filter's
// route together and once through the gateway twice; the grant is applied once, and the key
// then makes exactly the remaining requests.
func TestUpdateUsageRaces(t *testing.T) {
	g := startUsageGateway(t)
	if n := g.send(usageDaily, 5); n != 5 {
		t.Fatalf("%d admitted, want 5", n)
	}
	const path = "/usageplans/daily/keys/kd/usage"
	race := func(a, b func() reply) [2]reply {
		var out [2]reply
		var wg sync.WaitGroup
		wg.Go(func() { out[0] = a() })
		wg.Go(func() { out[1] = b() })
		wg.Wait()
		return out
	}
	rs := race(func() reply { return g.viaAdmin("PATCH", path, remainingPatch(4)) },
		func() reply { return g.viaFilter("PATCH", path, remainingPatch(4), usageAdminKey) })
	const four = `{"usagePlanId":"daily","startDate":"2026-06-10","endDate":"2026-06-10","values":{"kd":[[5,4]]}}`
	for i, r := range rs {
		wantUsage(t, fmt.Sprint("race ", i), r, 200, four)
	}
	if n := g.send(usageDaily, 6); n != 4 {
		t.Fatalf("%d admitted after remaining 4 (twice), want 4", n)
	}
	rs = race(func() reply { return g.viaAdmin("PATCH", path, remainingPatch(10)) },
		func() reply { return g.viaAdmin("PATCH", path, remainingPatch(20)) })
	got := g.viaAdmin("GET", "/usageplans/daily/usage?startDate=2026-06-10&endDate=2026-06-10", "")
	var final int
	switch got.body {
	case `{"usagePlanId":"daily","startDate":"2026-06-10","endDate":"2026-06-10","values":{"kd":[[9,10]]}}`:
		final = 10
	case `{"usagePlanId":"daily","startDate":"2026-06-10","endDate":"2026-06-10","values":{"kd":[[9,20]]}}`:
		final = 20
	default:
		t.Fatalf("after racing 10 and 20: %s", got.body)
	}
	for i, r := range rs {
		if r.status != 200 {
			t.Errorf("race %d: %d %s", i, r.status, r.body)
		}
	}
	if n := g.send(usageDaily, final+3); n != final {
		t.Fatalf("%d admitted after remaining %d, want %d", n, final, final)
	}
	// A malformed patch through either door: 400, and nothing changed.
	for _, r := range []reply{
		g.viaAdmin("PATCH", path, `{"patchOperations":[{"op":"replace","path":"/remaining","value":"many"}]}`),
		g.viaFilter("PATCH", path, `{"patchOperations":[{"op":"replace","path":"/remaining","value":"many"}]}`, usageAdminKey),
	} {
		wantUsage(t, "bad patch", r, 400, `{"message":"Invalid value \"many\" for /remaining: must be a whole number of requests from 0 to 9007199254740992, as a string (patchOperations[0])"}`)
	}
	wantUsage(t, "after", g.viaAdmin("GET", "/usageplans/daily/usage?startDate=2026-06-10&endDate=2026-06-10", ""), 200,
		fmt.Sprintf(`{"usagePlanId":"daily","startDate":"2026-06-10","endDate":"2026-06-10","values":{"kd":[[%d,0]]}}`, 9+final))
	// A cross-site browser request to the admin listener is refused.
	req, _ := http.NewRequest("PATCH", "http://"+g.AdminAddr()+path, strings.NewReader(remainingPatch(99)))
	req.Header.Set("Origin", "http://evil.example")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-origin PATCH: %d, want 403", resp.StatusCode)
	}
	// So is one a cross-site form could send (text/plain), as for /reload: the same guard.
	req, _ = http.NewRequest("PATCH", "http://"+g.AdminAddr()+path, strings.NewReader(remainingPatch(99)))
	req.Header.Set("Content-Type", "text/plain")
	resp, err = g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("text/plain PATCH: %d, want 415", resp.StatusCode)
	}
	wantUsage(t, "after refused PATCHes", g.viaAdmin("GET", "/usageplans/daily/usage?startDate=2026-06-10&endDate=2026-06-10", ""), 200,
		fmt.Sprintf(`{"usagePlanId":"daily","startDate":"2026-06-10","endDate":"2026-06-10","values":{"kd":[[%d,0]]}}`, 9+final))
}

// TestGrantSurvivesReloadAndSwap: a grant lives in shared data, so a configuration reload and
// a module swap keep it; it ends with its quota period.
func TestGrantSurvivesReloadAndSwap(t *testing.T) {
	g := startUsageGateway(t)
	v2 := filterV2(t)
	g.send(usageDaily, 5)
	wantUsage(t, "grant", g.viaAdmin("PATCH", "/usageplans/daily/keys/kd/usage", remainingPatch(3)), 200,
		`{"usagePlanId":"daily","startDate":"2026-06-10","endDate":"2026-06-10","values":{"kd":[[5,3]]}}`)
	reload := func(what string) {
		t.Helper()
		if r := g.admin(http.MethodPost, "/reload"); r.status != 200 || !strings.Contains(r.body, "reloaded") {
			t.Fatalf("%s: POST /reload: %d %s", what, r.status, r.body)
		}
	}
	writeFile(t, g.config, []byte(strings.Replace(usageConfig(), `{"id": "kt",`, `{"id": "kt", "description": "changed",`, 1)))
	reload("config")
	if n := g.send(usageDaily, 1); n != 1 {
		t.Fatalf("after the reload: %d admitted, want the grant's 1", n)
	}
	writeFile(t, g.wasm, v2)
	reload("module")
	if n := g.send(usageDaily, 3); n != 2 {
		t.Fatalf("after the swap: %d admitted, want the grant's last 2", n)
	}
	g.clock.Advance(24 * time.Hour)
	if n := g.send(usageDaily, 6); n != 5 {
		t.Fatalf("the next day: %d admitted, want the plan's 5 (the grant ended)", n)
	}
	wantUsage(t, "history", g.viaFilter("GET", "/usageplans/daily/usage?startDate=2026-06-10&endDate=2026-06-11", "", usageAdminKey), 200,
		`{"usagePlanId":"daily","startDate":"2026-06-10","endDate":"2026-06-11","values":{"kd":[[8,0],[5,0]]}}`)
}

// metrics returns the filter's counters by name.
func (g *gwTest) metrics() map[string]uint64 {
	m := map[string]uint64{}
	for _, x := range g.Plugin().Metrics() {
		m[x.Name] = x.Value
	}
	return m
}

// TestUsageRouteBody: behind an Envoy with allow_on_headers_stop_iteration, the filter's
// route buffers an UpdateUsage body that comes in chunks and answers once it is whole; a
// body over 64 KiB is refused without a change; the admin key leaves the request.
func TestUsageRouteBody(t *testing.T) {
	e := startFilter(t, fltSetup{wasi: host.WASICppHost20260701, allowHeadersStop: true,
		config: fltOptions(`"usageApi": {"adminKeys": [{"id": "ops", "valueSha256": "` + sha256Hex(usageAdminKey) + `"}], "allowOnHeadersStopIteration": true}`)})
	e.wantStatuses(t, fltDaily, 200, 200, 200, 429)
	s, err := e.plugin.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	hs := [][2]string{{":method", "PATCH"}, {":path", "/usageplans/daily/keys/daily-key/usage"}, {":authority", "api.example.com"}, {"x-api-key", usageAdminKey}}
	body := remainingPatch(1)
	ctx := context.Background()
	steps := []func() (host.Action, error){
		func() (host.Action, error) { return s.RequestHeaders(hs, false) },
		func() (host.Action, error) { return s.RequestBody([]byte(body[:10]), false) },
		func() (host.Action, error) { return s.RequestBody([]byte(body[10:]), true) },
	}
	for i, step := range steps {
		act, err := step()
		if err != nil || act != host.ActionPause {
			t.Fatalf("step %d: %v %v, want paused", i, act, err)
		}
		if l := s.LocalResponse(); (l != nil) != (i == 2) {
			t.Fatalf("step %d: local response %v", i, l)
		}
	}
	l := s.LocalResponse()
	if l.Status != 200 || string(l.Body) != `{"usagePlanId":"daily","startDate":"2026-03-10","endDate":"2026-03-10","values":{"daily-key":[[3,1]]}}` {
		t.Fatalf("answer %d %s", l.Status, l.Body)
	}
	h := s.Headers(host.MapRequestHeaders)
	if _, key := h.Get("x-api-key"); key {
		t.Errorf("request headers after the answer: %q, want them without the admin key", h)
	}
	if _, method := h.Get(":method"); !method {
		t.Errorf("request headers after the answer: %q, want them without the admin key", h)
	}
	s.Close()
	big := strings.Repeat(" ", 64<<10) + remainingPatch(50)
	resp, err := e.plugin.Do(ctx, &host.Request{Headers: hs, Body: []byte(big)}, e.upstreamOK)
	if err != nil || resp.Status != 413 || string(resp.Body) != `{"message":"Request body too large"}` {
		t.Fatalf("a body over 64 KiB: %v %d %s", err, resp.Status, resp.Body)
	}
	e.wantStatuses(t, fltDaily, 200, 429) // the grant of 1, not 50
	if len(e.upstream) != 4 {
		t.Fatalf("%d requests reached the upstream, want the 4 admitted and none of the usage API's", len(e.upstream))
	}
}

// TestUsageEntryUnreadable: a usage entry the filter cannot read (here a version it does not
// know) does not fail requests: the quota alone decides, the entry is left as it is, and
// usageplans.usage.failed counts each request with a warn line.
func TestUsageEntryUnreadable(t *testing.T) {
	e := startFilter(t, fltSetup{})
	store := e.rt.SharedData("usageplans")
	e.wantStatuses(t, fltDaily, 200)
	if st := store.Set("usageplans:usage:daily:daily-key", []byte{9, 9}, 0); st != host.StatusOK {
		t.Fatal(st)
	}
	e.wantStatuses(t, fltDaily, 200, 200, 429)
	e.wantCounters(t, map[string]uint64{"usageplans.usage.failed": 3, "usageplans.requests.allowed": 3, "usageplans.requests.quota_exceeded": 1})
	if v, _, _ := store.Get("usageplans:usage:daily:daily-key"); string(v) != "\x09\x09" {
		t.Fatalf("the unreadable entry was overwritten: %x", v)
	}
	warned := 0
	for _, l := range e.plugin.Logs() {
		if l.Level == host.LogWarn && strings.Contains(l.Message, "usage entry not read or not written (usage: decode at byte 0: unknown encoding version 9") {
			warned++
		}
	}
	if warned != 3 {
		t.Fatalf("%d warn lines, want 3", warned)
	}
}

// TestUsageRouteQueryKey: with apiKeyQueryParameter configured, an admin key is read only
// from the key header: the same key in the query string is not one (403), and the usage
// route takes the parameter out of :path, which Envoy's access log reads after the reply.
func TestUsageRouteQueryKey(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"apiKeyQueryParameter": "api_key"`,
		`"usageApi": {"adminKeys": [{"id": "ops", "valueSha256": "`+sha256Hex(usageAdminKey)+`"}]}`)})
	for _, tt := range []struct {
		name    string
		headers [][2]string
		status  int
	}{
		{"query only", nil, 403},
		{"header and query", [][2]string{{"x-api-key", usageAdminKey}}, 200},
	} {
		s, err := e.plugin.NewStream(0)
		if err != nil {
			t.Fatal(err)
		}
		hs := append([][2]string{{":method", "GET"}, {":authority", "api.example.com"},
			{":path", "/usageplans/daily/usage?startDate=2026-03-10&api_key=" + usageAdminKey + "&endDate=2026-03-10"}}, tt.headers...)
		if act, err := s.RequestHeaders(hs, true); err != nil || act != host.ActionPause {
			t.Fatalf("%s: %v %v, want paused", tt.name, act, err)
		}
		l := s.LocalResponse()
		if l == nil || l.Status != tt.status {
			t.Fatalf("%s: local response %+v, want %d", tt.name, l, tt.status)
		}
		if tt.status == 200 && string(l.Body) != `{"usagePlanId":"daily","startDate":"2026-03-10","endDate":"2026-03-10","values":{"daily-key":[[0,3]]}}` {
			t.Errorf("%s: body %s", tt.name, l.Body)
		}
		h := s.Headers(host.MapRequestHeaders)
		if p, _ := h.Get(":path"); p != "/usageplans/daily/usage?startDate=2026-03-10&endDate=2026-03-10" {
			t.Errorf("%s: :path after the answer %q, want it without api_key", tt.name, p)
		}
		if _, key := h.Get("x-api-key"); key {
			t.Errorf("%s: the admin key header is still on the request", tt.name)
		}
		s.Close()
	}
}

// TestUsageRouteNoBodyWhileStopped: behind Envoy's default (no
// allow_on_headers_stop_iteration), a filter that holds the headers gets no body until it
// lets them go, to the upstream: UpdateUsage on the filter's route is refused at once with
// AWS's error shape, naming both settings, instead of waiting for a body that never comes;
// nothing changes and nothing reaches the upstream. GetUsage needs no body and is answered.
func TestUsageRouteNoBodyWhileStopped(t *testing.T) {
	e := startFilter(t, fltSetup{config: fltOptions(`"usageApi": {"adminKeys": [{"id": "ops", "valueSha256": "` + sha256Hex(usageAdminKey) + `"}]}`)})
	e.wantStatuses(t, fltDaily, 200, 200, 200, 429)
	ctx := context.Background()
	hs := [][2]string{{":method", "PATCH"}, {":path", "/usageplans/daily/keys/daily-key/usage"}, {":authority", "api.example.com"}, {"x-api-key", usageAdminKey}}
	resp, err := e.plugin.Do(ctx, &host.Request{Headers: hs, Body: []byte(remainingPatch(5))}, e.upstreamOK)
	const want = `{"message":"UpdateUsage on this route needs the proxy to hand the filter the request body while it holds the headers: set allow_on_headers_stop_iteration: true in the Wasm filter's plugin config (Envoy 1.35+) and usageApi.allowOnHeadersStopIteration: true in plugin.json"}`
	if err != nil || resp.Status != 400 || string(resp.Body) != want {
		t.Fatalf("PATCH: %v %d %s, want 400 %s", err, resp.Status, resp.Body, want)
	}
	if et, _ := resp.Headers.Get("x-amzn-errortype"); et != "BadRequestException" {
		t.Errorf("x-amzn-errortype %q", et)
	}
	e.wantStatuses(t, fltDaily, 429) // no grant
	get := [][2]string{{":method", "GET"}, {":path", "/usageplans/daily/usage?startDate=2026-03-10&endDate=2026-03-10"}, {":authority", "api.example.com"}, {"x-api-key", usageAdminKey}}
	resp, err = e.plugin.Do(ctx, &host.Request{Headers: get}, e.upstreamOK)
	if err != nil || resp.Status != 200 || string(resp.Body) != `{"usagePlanId":"daily","startDate":"2026-03-10","endDate":"2026-03-10","values":{"daily-key":[[3,0]]}}` {
		t.Fatalf("GET: %v %d %s", err, resp.Status, resp.Body)
	}
	if len(e.upstream) != 3 {
		t.Fatalf("%d requests reached the upstream, want the 3 admitted", len(e.upstream))
	}
}
