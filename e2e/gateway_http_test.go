package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestGatewayAnswers is the README's curl session, exactly: no key, a key, a burst, a
// quota, and what the upstream and the admin endpoint see afterwards. The fake clock stands
// still, so buckets do not refill and the counts are exact.
func TestGatewayAnswers(t *testing.T) {
	cfg := planConfig(4, 6)
	g := startGateway(t, gwSetup{config: cfg, routes: shopRoutes})

	// No key: AWS's 403, made by the filter itself.
	r := g.get("/pets", "")
	if r.status != 403 || r.body != `{"message":"Forbidden"}` || r.header.Get("x-amzn-ErrorType") != "ForbiddenException" {
		t.Errorf("no key: %d %v %q, want 403 ForbiddenException {\"message\":\"Forbidden\"}", r.status, r.header, r.body)
	}
	// Unknown and disabled keys look the same as a missing one.
	for _, k := range []string{"NoSuchKey000000000000000000", key4} {
		if r := g.get("/pets", k); r.status != 403 || r.body != `{"message":"Forbidden"}` {
			t.Errorf("key %.6s...: %d %q, want 403", k, r.status, r.body)
		}
	}
	// A key without a key requirement is not needed.
	if r := g.get("/health", ""); r.status != 200 {
		t.Errorf("/health without a key: %d %q, want 200", r.status, r.body)
	}

	// A key: 200 from the echo upstream, which got the identity headers and not the key.
	r = g.get("/pets?limit=2", key1)
	if r.status != 200 {
		t.Fatalf("key1: %d %q, want 200", r.status, r.body)
	}
	e := echoOf(t, r)
	if e.Method != "GET" || e.Path != "/pets?limit=2" {
		t.Errorf("upstream saw %s %s, want GET /pets?limit=2", e.Method, e.Path)
	}
	if _, ok := e.Headers["x-api-key"]; ok {
		t.Errorf("the key header reached the upstream: %v", e.Headers)
	}
	if e.Headers["x-usageplans-key-id"] != "k1" || e.Headers["x-usageplans-plan-id"] != "gold" {
		t.Errorf("identity headers at the upstream: key %q plan %q, want k1 gold", e.Headers["x-usageplans-key-id"], e.Headers["x-usageplans-plan-id"])
	}
	if e.Headers["x-forwarded-proto"] != "http" || len(e.Headers["x-request-id"]) != 36 {
		t.Errorf("x-forwarded-proto %q, x-request-id %q: want http and a UUID", e.Headers["x-forwarded-proto"], e.Headers["x-request-id"])
	}
	// A client cannot pose as another key through the identity headers.
	req, _ := http.NewRequest("GET", "http://"+g.Addr()+"/pets", nil)
	req.Header.Set("x-api-key", key2)
	req.Header.Set("x-usageplans-key-id", "k3")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if e := echoOf(t, reply{status: resp.StatusCode, body: string(b)}); e.Headers["x-usageplans-key-id"] != "k2" {
		t.Errorf("forged identity header: upstream saw key id %q, want k2", e.Headers["x-usageplans-key-id"])
	}

	// A burst: k3's plan holds 3 tokens; the clock stands still, so exactly 3 pass.
	var codes []int
	for range 5 {
		r := g.get("/pets", key3)
		codes = append(codes, r.status)
		if r.status == 429 && r.body != `{"message":"Too Many Requests"}` {
			t.Errorf("throttled body %q, want {\"message\":\"Too Many Requests\"}", r.body)
		}
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429]" {
		t.Errorf("burst of 5 with burstLimit 3: %v, want [200 200 200 429 429]", codes)
	}

	// The quota: gold allows 6 requests a day per key; k1 used 1, and 4 tokens of burst
	// would allow more, so after 5 more the quota answers.
	g.clock.Advance(10e9) // refill the buckets, not the day
	codes = codes[:0]
	for range 6 {
		r := g.get("/pets", key1)
		codes = append(codes, r.status)
		if r.status == 429 && r.body != `{"message":"Limit Exceeded"}` {
			t.Errorf("quota body %q, want {\"message\":\"Limit Exceeded\"}", r.body)
		}
		g.clock.Advance(10e9)
	}
	if fmt.Sprint(codes) != "[200 200 200 200 200 429]" {
		t.Errorf("quota of 6 after 1: %v, want [200 200 200 200 200 429]", codes)
	}

	// 3 forbidden; allowed: /health (no key needed), k1 1+5, k2 1, k3 3; 2 throttled; 1 quota.
	g.wantStats(map[string]string{
		"usageplans_requests_allowed":                                            "11",
		"usageplans_requests_forbidden":                                          "3",
		"usageplans_requests_throttled":                                          "2",
		"usageplans_requests_quota_exceeded":                                     "1",
		"usageplans_plan_gold_allowed":                                           "7",
		"usageplans_plan_tin_allowed":                                            "3",
		"usageplans_plan_tin_throttled":                                          "2",
		"envoy_http_downstream_rq_total{" + hcm + "}":                            "17",
		`envoy_http_downstream_rq_xx{envoy_response_code_class="2",` + hcm + "}": "11",
		`envoy_http_downstream_rq_xx{envoy_response_code_class="4",` + hcm + "}": "6",
		`envoy_http_downstream_rq_xx{envoy_response_code_class="5",` + hcm + "}": "0",
		"envoy_http_downstream_rq_time_count{" + hcm + "}":                       "17",
		`envoy_http_downstream_rq_time_bucket{` + hcm + `,le="+Inf"}`:            "17",
		"usageplans_gateway_requests_local":                                      "6",
		"usageplans_gateway_requests_upstream":                                   "11",
		"usageplans_gateway_reload_success":                                      "0",
	})
	st := g.admin("GET", "/stats")
	for _, line := range []string{"wasmcustom.usageplans.requests.allowed: 11\n", "http.usageplans.downstream_rq_total: 17\n"} {
		if !strings.Contains(st.body, line) {
			t.Errorf("/stats lacks %q", line)
		}
	}

	// /config_dump: the configuration serving, with no key value or digest.
	d := g.admin("GET", "/config_dump")
	if d.status != 200 {
		t.Fatalf("/config_dump: %d %s", d.status, d.body)
	}
	var dump gateway.ConfigDump
	if err := json.Unmarshal([]byte(d.body), &dump); err != nil {
		t.Fatalf("/config_dump: %v", err)
	}
	if dump.Version != 1 || dump.Workers != 2 || dump.VMID != "usageplans" || dump.Module.SHA256 != sha256Hex(string(filterWasm)) {
		t.Errorf("/config_dump: version %d, %d workers, vm_id %q, module %s", dump.Version, dump.Workers, dump.VMID, dump.Module.SHA256)
	}
	if n := strings.Count(string(dump.Config), `"[redacted]"`); n != 4 {
		t.Errorf("/config_dump redacted %d values, want 4 (one per key):\n%s", n, dump.Config)
	}
	noSecrets(t, "/config_dump", d.body, cfg)
	noSecrets(t, "the gateway's log", g.log.String(), cfg)
	noSecrets(t, "the access log", g.access.String(), cfg)
	for _, k := range []string{key1, key2, key3, key4} {
		if strings.Contains(g.log.String()+g.access.String(), k) {
			t.Errorf("a key value is in the logs (%.6s...)", k)
		}
	}
	if n := strings.Count(g.access.String(), " access "); n != 17 {
		t.Errorf("%d access log lines, want 17", n)
	}
	if !strings.Contains(g.access.String(), ` end=upstream details=- key_id=k1 plan_id=gold route=shop`) {
		t.Errorf("no access log line for k1's 200:\n%s", tail(g.access.String(), 5))
	}
}

// TestGatewayRoutesAndUpstream checks the routes file (route names as xds.route_name, host
// and prefix matching, 404 without a route) and a real upstream: the request body streams
// through the filter unchanged, and the upstream's status, headers and body come back.
func TestGatewayRoutesAndUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(201)
		fmt.Fprintf(w, "%s %s key=%q id=%s len=%d sum=%s", r.Method, r.URL.RequestURI(), r.Header.Get("x-api-key"),
			r.Header.Get("x-usageplans-key-id"), len(b), sha256Hex(string(b)))
	}))
	defer up.Close()
	routes := fmt.Sprintf(`{"routes": [
  {"name": "shop", "host": "api.example.com", "pathPrefix": "/", "upstream": %q},
  {"name": "other", "host": "*.example.org", "pathPrefix": "/pets"}
]}`, up.URL+"/base")
	g := startGateway(t, gwSetup{config: planConfig(100, 1000), routes: routes, workers: 1})

	body := strings.Repeat("0123456789abcdef", 20000) // 320 KB: several chunks
	req, _ := http.NewRequest("POST", "http://"+g.Addr()+"/pets?x=1", strings.NewReader(body))
	req.Host = "API.example.com:8080"
	req.Header.Set("x-api-key", key1)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`POST /base/pets?x=1 key="" id=k1 len=%d sum=%s`, len(body), sha256Hex(body))
	if resp.StatusCode != 201 || resp.Header.Get("X-Upstream") != "yes" || string(b) != want {
		t.Errorf("through the upstream: %d %q %q, want 201 yes %q", resp.StatusCode, resp.Header.Get("X-Upstream"), b, want)
	}

	// Route "other" is not a route of the configuration: unmatched routes pass untouched
	// (the default), to the echo upstream.
	req, _ = http.NewRequest("GET", "http://"+g.Addr()+"/pets/1", nil)
	req.Host = "a.example.org"
	req.Header.Set("x-api-key", key1) // passes untouched: the echo must not repeat it
	resp, err = g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if e := echoOf(t, reply{status: resp.StatusCode, body: string(b)}); resp.StatusCode != 200 || e.Path != "/pets/1" || e.Headers["x-api-key"] != "[redacted]" {
		t.Errorf("route other: %d %s, want 200 from the echo, the key redacted", resp.StatusCode, b)
	}

	// No route: Envoy's 404.
	if r := g.get("/pets", key1); r.status != 404 || r.body != "" {
		t.Errorf("no route: %d %q, want 404 and no body", r.status, r.body)
	}
	g.wantStats(map[string]string{"usageplans_gateway_requests_route_not_found": "1", "usageplans_gateway_requests_upstream": "2"})
	if !strings.Contains(g.access.String(), ` end=route_not_found details=route_not_found`) {
		t.Errorf("no access log line for the 404:\n%s", g.access.String())
	}
}

// TestGatewayAdmin checks the admin endpoint's answers that the other tests do not use.
func TestGatewayAdmin(t *testing.T) {
	g := startGateway(t, gwSetup{config: planConfig(10, 10), routes: shopRoutes})
	if r := g.admin("GET", "/ready"); r.status != 200 || r.body != "LIVE\n" {
		t.Errorf("/ready: %d %q, want 200 LIVE", r.status, r.body)
	}
	if r := g.admin("GET", "/reload"); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("GET /reload: %d Allow=%q, want 405 Allow=POST", r.status, r.header.Get("Allow"))
	}
	if r := g.admin("POST", "/reload"); r.status != 200 || r.body != "unchanged: version 1 keeps serving\n" {
		t.Errorf("POST /reload without changes: %d %q", r.status, r.body)
	}
	if r := g.admin("GET", "/stats?filter=^gateway[.]reload"); r.status != 200 ||
		r.body != "gateway.reload.failure: 0\ngateway.reload.success: 0\ngateway.reload.unchanged: 1\n" {
		t.Errorf("/stats?filter=^gateway[.]reload: %d %q", r.status, r.body)
	}
	if r := g.admin("GET", "/stats/prometheus?filter=reload.success"); r.body != "# TYPE usageplans_gateway_reload_success counter\nusageplans_gateway_reload_success 0\n" {
		t.Errorf("/stats/prometheus?filter=reload.success: %d %q", r.status, r.body)
	}
	if r := g.admin("GET", "/stats?filter=("); r.status != 400 {
		t.Errorf("/stats?filter=(: %d %q, want 400", r.status, r.body)
	}
	if r := g.admin("GET", "/nothing"); r.status != 404 {
		t.Errorf("/nothing: %d, want 404", r.status)
	}
	g.wantStats(map[string]string{"usageplans_gateway_reload_unchanged": "1", "usageplans_gateway_generation": "1", "usageplans_gateway_workers": "2"})
}

// TestGatewayUpstreamDown: an upstream that refuses connections gives Envoy's 503, and the
// log line about it does not repeat the request's query (which may carry a key).
func TestGatewayUpstreamDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	addr := down.URL
	down.Close() // nothing listens there now
	g := startGateway(t, gwSetup{config: planConfig(10, 10), routes: `{"routes": [{"name": "shop", "upstream": "` + addr + `"}]}`})
	r := g.get("/health?api_key="+key3, key1)
	want := "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	if r.status != 503 || r.body != want {
		t.Errorf("upstream down: %d %q, want 503 %q", r.status, r.body, want)
	}
	g.wantStats(map[string]string{"usageplans_gateway_requests_upstream_error": "1",
		`envoy_http_downstream_rq_xx{envoy_response_code_class="5",` + hcm + "}": "1"})
	if l := g.log.String(); !strings.Contains(l, `gateway: upstream `+strings.TrimPrefix(addr, "http://")+` for GET "/health": dial tcp`) || strings.Contains(l, key3) || strings.Contains(l, key1) {
		t.Errorf("gateway log:\n%s", tail(l, 3))
	}
}
