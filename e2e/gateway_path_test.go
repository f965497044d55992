package e2e

// What the client wrote on the request line reaches the filter byte for byte, through a real
// listener: a hand-written request over a TCP socket, so that no client library re-escapes
// it (issue 8, finding 1: Go's URL.RequestURI() turned '\' into %5C before the filter saw it,
// and /admin/..\pets reached the upstream through the bypass route with no key).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
)

// bypassConfig meters GET /pets by key (plan gold, key1) on the route named "shop" and
// bypasses the prefix /admin, listed first or last.
func bypassConfig(bypassFirst bool) string {
	admin := `{"name": "admin", "match": {"pathPrefix": "/admin"}, "bypass": true}`
	shop := `{"name": "shop", "match": {"routeName": "shop"}, "apiId": "shop", "stage": "prod"}`
	routes := admin + ", " + shop
	if !bypassFirst {
		routes = shop + ", " + admin
	}
	return fmt.Sprintf(`{
  "apis": [{"id": "shop", "resources": [
    {"path": "/pets", "resourceMethods": {"GET": {"apiKeyRequired": true}}}
  ], "stages": [{"stageName": "prod"}]}],
  "routes": [%s],
  "usagePlans": [{"id": "gold", "apiStages": [{"apiId": "shop", "stage": "prod"}],
    "throttle": {"rateLimit": 100000, "burstLimit": 100000}, "quota": {"limit": 100000, "period": "DAY"}}],
  "apiKeys": [{"id": "k1", "value": "%s"}],
  "usagePlanKeys": [{"usagePlanId": "gold", "keyId": "k1"}],
  "accountThrottle": {"rateLimit": 100000, "burstLimit": 100000}
}`, routes, key1)
}

// rawRequest writes a request head by hand on a new connection and reads the response.
func rawRequest(t testing.TB, addr, head string) reply {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", head, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// rawGet sends GET target with the key (none when "").
func rawGet(t testing.TB, addr, target, key string) reply {
	t.Helper()
	head := "GET " + target + " HTTP/1.1\r\nHost: api.example.com\r\n"
	if key != "" {
		head += "x-api-key: " + key + "\r\n"
	}
	return rawRequest(t, addr, head+"Connection: close\r\n\r\n")
}

// TestGatewayPathTricksMetered sends every trick of the shared table (pathtricks_test.go)
// byte for byte over a TCP socket through the gateway, with the bypass route first and last:
// each is metered (403 Forbidden without a key; 200, counted once, with one, and the upstream
// receives the path as sent), and the controls bypass when the bypass route comes first.
func TestGatewayPathTricksMetered(t *testing.T) {
	for _, first := range []bool{true, false} {
		t.Run(fmt.Sprintf("bypass first %v", first), func(t *testing.T) {
			g := startGateway(t, gwSetup{config: pathTricksConfig(first), routes: shopRoutes})
			allowed := 0
			for _, tr := range pathTricks {
				t.Run(tr.name, func(t *testing.T) {
					if _, err := url.ParseRequestURI(tr.path); err != nil {
						// Go's server refuses it with 400 before any handler (a relative
						// path, an invalid escape): no upstream sees it.
						for _, key := range []string{"", pathTricksKey} {
							if r := rawGet(t, g.Addr(), tr.path, key); r.status != 400 || r.body != "400 Bad Request" {
								t.Errorf("key %q: %d %q, want Go's 400 Bad Request", key, r.status, r.body)
							}
						}
						return
					}
					bypassed := first && tr.control
					r := rawGet(t, g.Addr(), tr.path, "")
					switch {
					case bypassed:
						if e := echoOf(t, r); r.status != 200 || e.Path != tr.path || e.Headers["x-usageplans-key-id"] != "" {
							t.Errorf("control %s without a key: %d, upstream path %q; want 200 through the bypass, the path as sent", tr.path, r.status, e.Path)
						}
						return
					case r.status != 403 || r.body != `{"message":"Forbidden"}` || r.header.Get("x-amzn-ErrorType") != "ForbiddenException":
						t.Errorf("no key: %d %q, want 403 Forbidden (metered)", r.status, r.body)
					}
					r = rawGet(t, g.Addr(), tr.path, pathTricksKey)
					if r.status != 200 {
						t.Fatalf("with the key: %d %q, want 200", r.status, r.body)
					}
					allowed++
					// The upstream gets the target as the client wrote it (Envoy's defaults
					// leave the path alone), with the key's identity.
					e := echoOf(t, r)
					if e.Path != tr.path || e.Headers["x-usageplans-key-id"] != "tricks-key" || e.Headers["x-usageplans-plan-id"] != "tricks" {
						t.Errorf("upstream saw path %q, key id %q, plan %q; want %q, tricks-key, tricks", e.Path, e.Headers["x-usageplans-key-id"], e.Headers["x-usageplans-plan-id"], tr.path)
					}
				})
			}
			g.wantStats(map[string]string{"usageplans_plan_tricks_allowed": fmt.Sprint(allowed)})
		})
	}
}

// TestGatewayPathOptions: Envoy's path settings of the connection manager, as the shipped
// bootstraps set them, rewrite the path before the filter and the upstream see it; Envoy's
// defaults leave it alone (above).
func TestGatewayPathOptions(t *testing.T) {
	g := startGateway(t, gwSetup{config: bypassConfig(true), routes: shopRoutes, options: func(o *gateway.Options) {
		o.Path.NormalizePath, o.Path.MergeSlashes, o.Path.EscapedSlashes = true, true, "UNESCAPE_AND_REDIRECT"
	}})
	for _, c := range []struct{ target, upstream string }{
		{`/admin/..\pets`, "/pets"},
		{`//admin/../pets?a=//b`, "/pets?a=//b"},
		{`/admin/%2E%2e/pets`, "/pets"},
		{`/pets/%2fx`, ""}, // redirected below
	} {
		if c.upstream == "" {
			continue
		}
		r := rawGet(t, g.Addr(), c.target, key1)
		if e := echoOf(t, r); r.status != 200 || e.Path != c.upstream {
			t.Errorf("%s: %d, upstream path %q, want 200 and %q", c.target, r.status, e.Path, c.upstream)
		}
		if r := rawGet(t, g.Addr(), c.target, ""); r.status != 403 {
			t.Errorf("%s without a key: %d, want 403", c.target, r.status)
		}
	}
	// UNESCAPE_AND_REDIRECT: 307 to the unescaped, normalised path, before any filter.
	for target, loc := range map[string]string{`/admin/..%2fpets?x=1`: "/pets?x=1", `/admin/..%5Cpets`: "/pets"} {
		r := rawGet(t, g.Addr(), target, "")
		if r.status != 307 || r.header.Get("Location") != loc || r.body != "" {
			t.Errorf("%s: %d location %q body %q, want 307 to %q", target, r.status, r.header.Get("Location"), r.body, loc)
		}
	}
	// normalize_path refuses an escaped NUL with 400, as Envoy.
	if r := rawGet(t, g.Addr(), "/pets/%00", key1); r.status != 400 {
		t.Errorf("/pets/%%00: %d %q, want 400", r.status, r.body)
	}
	g.wantStats(map[string]string{
		"envoy_http_downstream_rq_redirected_with_normalized_path{" + hcm + "}": "2",
		"envoy_http_downstream_rq_failed_path_normalization{" + hcm + "}":       "1",
		"usageplans_plan_gold_allowed":                                          "3",
	})

	// REJECT_REQUEST answers 400 to an escaped slash; other paths go on.
	g2 := startGateway(t, gwSetup{config: bypassConfig(true), routes: shopRoutes, options: func(o *gateway.Options) {
		o.Path.EscapedSlashes = "REJECT_REQUEST"
	}})
	if r := rawGet(t, g2.Addr(), `/admin/..%2Fpets`, ""); r.status != 400 {
		t.Errorf("REJECT_REQUEST: %d %q, want 400", r.status, r.body)
	}
	if r := rawGet(t, g2.Addr(), `/admin/..\pets`, ""); r.status != 403 {
		t.Errorf("REJECT_REQUEST, no escaped slash: %d %q, want 403", r.status, r.body)
	}
}

// accessLine is an access log line with its time, worker and duration blanked.
var accessVolatile = regexp.MustCompile(`^\S+ (access .*) worker=\d+ (version=\S+) duration_ms=\S+$`)

// waitAccessLines waits (up to 5 s) until the access log has n lines.
func (g *gwTest) waitAccessLines(n int) {
	g.t.Helper()
	g.waitAccessLinesWithin(n, 5*time.Second)
}

// waitAccessLinesWithin waits up to d until the access log has n lines.
func (g *gwTest) waitAccessLinesWithin(n int, d time.Duration) {
	g.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end) && strings.Count(g.access.String(), "\n") < n; {
		time.Sleep(time.Millisecond)
	}
	if got := strings.Count(g.access.String(), "\n"); got != n {
		g.t.Fatalf("access log has %d lines, want %d:\n%s", got, n, g.access.String())
	}
}

func accessLines(t testing.TB, log string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimRight(log, "\n"), "\n") {
		m := accessVolatile.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not an access log line: %q", l)
		}
		out = append(out, m[1]+" "+m[2])
	}
	return out
}

// TestGatewayAccessLogPath: the access log shows the path as the client sent it (without
// its query, escaped), and the normal form the filter matched when it differs (issue 8,
// finding 2: it showed Go's decoded URL.Path, which was neither).
func TestGatewayAccessLogPath(t *testing.T) {
	g := startGateway(t, gwSetup{config: bypassConfig(true), routes: shopRoutes})
	for i, c := range []struct{ target, key string }{
		{`/pets?x-api-key=not-logged`, ""},
		{`/admin/..\pets`, ""},
		{`/admin/%2e%2e/pets?limit=2`, key1},
		{`/admin/./users`, ""},
		{"/admin/\xff\"x\"#frag", ""},
	} {
		rawGet(t, g.Addr(), c.target, c.key)
		g.waitAccessLines(i + 1) // the line is written once the response is out
	}
	got := accessLines(t, g.access.String())
	want := []string{
		`access method=GET path="/pets" status=403 outcome=forbidden end=local details=- key_id=- plan_id=- route=shop version=1`,
		`access method=GET path="/admin/..\\pets" matched_path="/pets" status=403 outcome=forbidden end=local details=- key_id=- plan_id=- route=shop version=1`,
		`access method=GET path="/admin/%2e%2e/pets" matched_path="/pets" status=200 outcome=allowed end=upstream details=- key_id=k1 plan_id=gold route=shop version=1`,
		`access method=GET path="/admin/./users" matched_path="/admin/users" status=200 outcome=- end=upstream details=- key_id=- plan_id=- route=shop version=1`,
		`access method=GET path="/admin/\xff\"x\"" status=200 outcome=- end=upstream details=- key_id=- plan_id=- route=shop version=1`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("access log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
