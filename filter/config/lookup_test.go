package config

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/filter/limit"
)

// routing is a configuration with every kind of route and resource, for the lookup tests.
const routing = `{
  "apis": [
    {"id": "petstore", "resources": [
      {"path": "/", "resourceMethods": {"GET": {}}},
      {"path": "/pets", "resourceMethods": {"GET": {"apiKeyRequired": true}, "POST": {"apiKeyRequired": true}}},
      {"path": "/pets/{petId}", "resourceMethods": {"GET": {"apiKeyRequired": true}, "ANY": {"apiKeyRequired": true}}},
      {"path": "/pets/mine", "resourceMethods": {"GET": {"apiKeyRequired": true}}},
      {"path": "/pets/{petId}/photos/{photoId}", "resourceMethods": {"GET": {}}},
      {"path": "/files/{proxy+}", "resourceMethods": {"GET": {}}},
      {"path": "/{proxy+}", "resourceMethods": {"ANY": {}}}
     ],
     "stages": [
      {"stageName": "prod", "methodSettings": {
        "*/*": {"throttlingRateLimit": 100, "throttlingBurstLimit": 200},
        "/pets/POST": {"throttlingRateLimit": 10, "throttlingBurstLimit": 20},
        "~1pets~1{petId}/GET": {"throttlingRateLimit": 30, "throttlingBurstLimit": 40, "metricsEnabled": true}}},
      {"stageName": "beta", "methodSettings": {
        "~1/GET": {"throttlingRateLimit": 1, "throttlingBurstLimit": 2},
        "pets/{petId}/photos/{photoId}/GET": {"throttlingRateLimit": 3, "throttlingBurstLimit": 4}}}
     ]},
    {"id": "store", "resources": [{"path": "/orders", "resourceMethods": {"GET": {"apiKeyRequired": true}}}],
     "stages": [{"stageName": "v1"}]}
  ],
  "routes": [
    {"name": "health", "match": {"pathPrefix": "/healthz"}, "bypass": true},
    {"name": "by-route", "match": {"routeName": "petstore-prod"}, "apiId": "petstore", "stage": "prod"},
    {"name": "beta-host", "match": {"host": "beta.example.com", "pathPrefix": "/beta"}, "stripPathPrefix": true, "apiId": "petstore", "stage": "beta"},
    {"name": "store", "match": {"host": "*.store.example.com"}, "apiId": "store", "stage": "v1"},
    {"name": "prefixed", "match": {"pathPrefix": "/v1/"}, "apiId": "petstore", "stage": "prod"}
  ],
  "usagePlans": [
    {"id": "basic", "apiStages": [{"apiId": "petstore", "stage": "prod", "throttle": {"/pets/GET": {"rateLimit": 0.5, "burstLimit": 1}}}],
     "throttle": {"rateLimit": 5, "burstLimit": 10}, "quota": {"limit": 100, "period": "DAY"}},
    {"id": "beta", "apiStages": [{"apiId": "petstore", "stage": "beta"}, {"apiId": "store", "stage": "v1"}]}
  ],
  "apiKeys": [
    {"id": "k1", "value": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0001"},
    {"id": "k2", "valueSha256": "2707f1a367ca7982ef44f7b9566561cf1343bc80fce6b976706cc4c20582a41d", "enabled": false}
  ],
  "usagePlanKeys": [
    {"usagePlanId": "basic", "keyId": "k1"},
    {"usagePlanId": "beta", "keyId": "k1"},
    {"usagePlanId": "beta", "keyId": "k2"}
  ],
  "accountThrottle": false
}`

func mustParse(t testing.TB, s string) *Config {
	t.Helper()
	c, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return c
}

func TestMatch(t *testing.T) {
	c := mustParse(t, routing)
	tests := []struct {
		routeName, host, path, method string
		route, stage, methodID        string // "" = nil
	}{
		// Bypass comes first in the list, so it wins over the route-name route.
		{"petstore-prod", "", "/healthz", "GET", "health", "", ""},
		{"petstore-prod", "", "/healthz/live", "GET", "health", "", ""},
		{"petstore-prod", "", "/healthzz", "GET", "by-route", "petstore/prod", "/{proxy+}/ANY"},
		{"petstore-prod", "", "/", "GET", "by-route", "petstore/prod", "/GET"},
		{"petstore-prod", "", "", "GET", "by-route", "petstore/prod", "/GET"},
		{"petstore-prod", "", "/pets", "GET", "by-route", "petstore/prod", "/pets/GET"},
		{"petstore-prod", "", "/pets/", "GET", "by-route", "petstore/prod", "/pets/GET"},
		{"petstore-prod", "", "/pets?limit=3", "GET", "by-route", "petstore/prod", "/pets/GET"},
		{"petstore-prod", "", "/pets#frag", "POST", "by-route", "petstore/prod", "/pets/POST"},
		// No DELETE on /pets and no ANY there: the greedy root resource takes it.
		{"petstore-prod", "", "/pets", "DELETE", "by-route", "petstore/prod", "/{proxy+}/ANY"},
		// Literal beats parameter; exact method beats ANY.
		{"petstore-prod", "", "/pets/mine", "GET", "by-route", "petstore/prod", "/pets/mine/GET"},
		{"petstore-prod", "", "/pets/42", "GET", "by-route", "petstore/prod", "/pets/{petId}/GET"},
		{"petstore-prod", "", "/pets/42", "PUT", "by-route", "petstore/prod", "/pets/{petId}/ANY"},
		// /pets/mine has no PUT: back off to the parameter.
		{"petstore-prod", "", "/pets/mine", "PUT", "by-route", "petstore/prod", "/pets/{petId}/ANY"},
		{"petstore-prod", "", "/pets/42/photos/7", "GET", "by-route", "petstore/prod", "/pets/{petId}/photos/{photoId}/GET"},
		// A dead end deeper in the tree backs off to the greedy root.
		{"petstore-prod", "", "/pets/42/photos", "GET", "by-route", "petstore/prod", "/{proxy+}/ANY"},
		{"petstore-prod", "", "/files/a/b/c.txt", "GET", "by-route", "petstore/prod", "/files/{proxy+}/GET"},
		{"petstore-prod", "", "/files", "GET", "by-route", "petstore/prod", "/{proxy+}/ANY"},
		{"petstore-prod", "", "//pets//42", "GET", "by-route", "petstore/prod", "/pets/{petId}/GET"},
		// Method names are case-sensitive, as in HTTP.
		{"petstore-prod", "", "/pets/mine", "get", "by-route", "petstore/prod", "/pets/{petId}/ANY"},
		// Host and prefix, with the prefix stripped before resources are matched.
		{"", "beta.example.com", "/beta/pets", "GET", "beta-host", "petstore/beta", "/pets/GET"},
		{"", "BETA.example.com:8443", "/beta", "GET", "beta-host", "petstore/beta", "/GET"},
		{"", "beta.example.com", "/betamax", "GET", "", "", ""},
		{"", "beta.example.com.evil", "/beta/pets", "GET", "", "", ""},
		// Wildcard host: a subdomain, not the bare domain.
		{"", "eu.store.example.com", "/orders", "GET", "store", "store/v1", "/orders/GET"},
		{"", "store.example.com", "/orders", "GET", "", "", ""},
		// The stage exists but has no such resource: Method is nil.
		{"", "eu.store.example.com", "/customers", "GET", "store", "store/v1", ""},
		{"", "eu.store.example.com", "/orders", "POST", "store", "store/v1", ""},
		// A prefix without stripping matches resources against the whole path.
		{"", "", "/v1/pets", "GET", "prefixed", "petstore/prod", "/{proxy+}/ANY"},
		{"", "", "/v1", "GET", "prefixed", "petstore/prod", "/{proxy+}/ANY"},
		{"", "", "/pets", "GET", "", "", ""},
		{"other", "", "/pets", "GET", "", "", ""},
		{"", "[::1]:80", "/pets", "GET", "", "", ""},
	}
	for _, tt := range tests {
		m := c.Match(tt.routeName, tt.host, tt.path, tt.method)
		var route, stage, method string
		if m.Route != nil {
			route = m.Route.Name
		}
		if m.Stage != nil {
			stage = m.Stage.ID
		}
		if m.Method != nil {
			method = m.Method.ID
		}
		if route != tt.route || stage != tt.stage || method != tt.methodID {
			t.Errorf("Match(%q, %q, %q, %q) = route %q stage %q method %q, want %q %q %q",
				tt.routeName, tt.host, tt.path, tt.method, route, stage, method, tt.route, tt.stage, tt.methodID)
		}
	}
}

func TestHostMatches(t *testing.T) {
	tests := []struct {
		pattern, host string
		ok            bool
	}{
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "API.Example.COM", true},
		{"api.example.com", "api.example.com:443", true},
		{"api.example.com", "xapi.example.com", false},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", ".example.com", false},
		{"[::1]", "[::1]:8080", true},
		{"[::1]", "[::1]", true},
		{"[::1]", "[::2]", false},
	}
	for _, tt := range tests {
		if got := hostMatches(tt.pattern, tt.host); got != tt.ok {
			t.Errorf("hostMatches(%q, %q) = %v, want %v", tt.pattern, tt.host, got, tt.ok)
		}
	}
}

func TestKeys(t *testing.T) {
	c := mustParse(t, routing)
	prod := c.Match("petstore-prod", "", "/pets", "GET").Stage
	beta := c.Match("", "beta.example.com", "/beta/pets", "GET").Stage
	store := c.Match("", "x.store.example.com", "/orders", "GET").Stage

	k1 := c.KeyByValue("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0001")
	if k1 == nil || k1.ID != "k1" || !k1.Enabled {
		t.Fatalf("KeyByValue(k1's value) = %+v, want enabled k1", k1)
	}
	if got := k1.Plan(prod); got == nil || got.ID != "basic" {
		t.Errorf("k1.Plan(petstore/prod) = %v, want basic", got)
	}
	if got := k1.Plan(beta); got == nil || got.ID != "beta" {
		t.Errorf("k1.Plan(petstore/beta) = %v, want beta", got)
	}
	if got := k1.Plan(store); got == nil || got.ID != "beta" {
		t.Errorf("k1.Plan(store/v1) = %v, want beta", got)
	}
	// k2 is configured by digest only: sha256("DigestOnlyKey0000000000000000002").
	k2 := c.KeyByValue("DigestOnlyKey0000000000000000002")
	if k2 == nil || k2.ID != "k2" || k2.Enabled {
		t.Fatalf("KeyByValue(digest-only value) = %+v, want disabled k2", k2)
	}
	if k2 != c.KeyByDigest(sha256.Sum256([]byte("DigestOnlyKey0000000000000000002"))) {
		t.Errorf("KeyByDigest and KeyByValue disagree")
	}
	if got := k2.Plan(prod); got != nil {
		t.Errorf("k2.Plan(petstore/prod) = %s, want nil", got.ID)
	}
	if got := c.KeyByValue("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0002"); got != nil {
		t.Errorf("unknown value found key %s", got.ID)
	}
	if got := c.KeyByValue(""); got != nil {
		t.Errorf("empty value found key %s", got.ID)
	}
}

func TestAppendLimits(t *testing.T) {
	c := mustParse(t, routing)
	withAccount := mustParse(t, `{"apis": [{"id": "a", "resources": [{"path": "/x", "resourceMethods": {"GET": {}}}],
		"stages": [{"stageName": "s"}]}], "routes": [{"apiId": "a", "stage": "s"}]}`)
	k1 := c.KeyByValue("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0001")
	type lim struct {
		level  Level
		id     string
		perKey bool
		t      limit.Throttle
	}
	tests := []struct {
		name string
		c    *Config
		m    Match
		key  *Key
		want []lim
	}{
		{"plan override, plan, stage default", c, c.Match("petstore-prod", "", "/pets", "GET"), k1, []lim{
			{LevelPlanMethod, "plan:basic:petstore/prod:/pets/GET", true, limit.Throttle{Rate: 0.5, Burst: 1}},
			{LevelPlan, "plan:basic", true, limit.Throttle{Rate: 5, Burst: 10}},
			{LevelStageMethod, "stage:petstore/prod:/pets/GET", false, limit.Throttle{Rate: 100, Burst: 200}},
		}},
		{"plan, stage method setting", c, c.Match("petstore-prod", "", "/pets", "POST"), k1, []lim{
			{LevelPlan, "plan:basic", true, limit.Throttle{Rate: 5, Burst: 10}},
			{LevelStageMethod, "stage:petstore/prod:/pets/POST", false, limit.Throttle{Rate: 10, Burst: 20}},
		}},
		{"stage method setting spelled ~1", c, c.Match("petstore-prod", "", "/pets/1", "GET"), k1, []lim{
			{LevelPlan, "plan:basic", true, limit.Throttle{Rate: 5, Burst: 10}},
			{LevelStageMethod, "stage:petstore/prod:/pets/{petId}/GET", false, limit.Throttle{Rate: 30, Burst: 40}},
		}},
		{"no key: stage only", c, c.Match("petstore-prod", "", "/", "GET"), nil, []lim{
			{LevelStageMethod, "stage:petstore/prod:/GET", false, limit.Throttle{Rate: 100, Burst: 200}},
		}},
		{"plan without throttle, stage without settings, account off", c, c.Match("", "beta.example.com", "/beta/pets", "GET"), k1, nil},
		{"stage method setting spelled ~1/ (root)", c, c.Match("", "beta.example.com", "/beta/", "GET"), nil, []lim{
			{LevelStageMethod, "stage:petstore/beta:/GET", false, limit.Throttle{Rate: 1, Burst: 2}},
		}},
		{"stage method setting without leading slash", c, c.Match("", "beta.example.com", "/beta/pets/1/photos/2", "GET"), nil, []lim{
			{LevelStageMethod, "stage:petstore/beta:/pets/{petId}/photos/{photoId}/GET", false, limit.Throttle{Rate: 3, Burst: 4}},
		}},
		{"default account throttle", withAccount, withAccount.Match("", "", "/x", "GET"), nil, []lim{
			{LevelAccount, "account", false, limit.Throttle{Rate: 10000, Burst: 5000}},
		}},
	}
	for _, tt := range tests {
		var plan *Plan
		if tt.key != nil {
			plan = tt.key.Plan(tt.m.Stage)
		}
		var buf [4]Limit
		got := tt.c.AppendLimits(buf[:0], plan, tt.m)
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %d limits %+v, want %d", tt.name, len(got), got, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			g := got[i]
			if g.Level != w.level || g.ID != w.id || g.PerKey != w.perKey || g.Throttle != w.t {
				t.Errorf("%s: limit %d = %+v, want %+v", tt.name, i, g, w)
			}
		}
	}
}

// The per-request lookups must not allocate: they run for every request in every worker.
func TestLookupsDoNotAllocate(t *testing.T) {
	c := mustParse(t, routing)
	var buf [4]Limit
	var sink int
	allocs := testing.AllocsPerRun(100, func() {
		m := c.Match("petstore-prod", "api.example.com:443", "/pets/42/photos/7?size=large", "GET")
		k := c.KeyByValue("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0001")
		ls := c.AppendLimits(buf[:0], k.Plan(m.Stage), m)
		sink += len(ls)
	})
	if allocs != 0 {
		t.Errorf("Match + KeyByValue + AppendLimits allocate %v times per request, want 0", allocs)
	}
	_ = sink
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, `{}`)
	if c.UnmatchedRoute != Pass || c.UnmatchedResource != Deny || c.FailurePolicy != FailClosed ||
		!c.StripAPIKey || c.RateLimitHeaders || c.ShadowMode || c.Namespace != "usageplans" || c.CASRetries != 8 {
		t.Errorf("options: %+v", c)
	}
	if c.KeySource.Type != FromHeader || c.KeySource.Header != "x-api-key" || c.KeySource.QueryParameter != "" || c.KeySource.Property != nil {
		t.Errorf("key source: %+v", c.KeySource)
	}
	if c.IdentityHeaders != (IdentityHeaders{KeyID: "x-usageplans-key-id", PlanID: "x-usageplans-plan-id"}) {
		t.Errorf("identity headers: %+v", c.IdentityHeaders)
	}
	if c.Account == nil || c.Account.Throttle != (limit.Throttle{Rate: 10000, Burst: 5000}) || c.Account.ID != "account" {
		t.Errorf("account: %+v", c.Account)
	}
	if m := c.Match("r", "h", "/p", "GET"); m != (Match{}) {
		t.Errorf("Match on an empty config = %+v, want no route", m)
	}
	json := [2]string{"content-type", "application/json"}
	want := map[ResponseType]Response{
		InvalidAPIKey:              {403, [][2]string{json, {"x-amzn-errortype", "ForbiddenException"}}, `{"message":"Forbidden"}`},
		Throttled:                  {429, [][2]string{json}, `{"message":"Too Many Requests"}`},
		QuotaExceeded:              {429, [][2]string{json}, `{"message":"Limit Exceeded"}`},
		MissingAuthenticationToken: {403, [][2]string{json, {"x-amzn-errortype", "MissingAuthenticationTokenException"}}, `{"message":"Missing Authentication Token"}`},
		Failure:                    {500, [][2]string{json, {"x-amzn-errortype", "InternalServerErrorException"}}, `{"message":"Internal server error"}`},
	}
	for typ, w := range want {
		if g := c.Response(typ); !sameResponse(g, w) {
			t.Errorf("Response(%s) = %+v, want %+v", typ, g, w)
		}
	}
}

func sameResponse(a, b Response) bool {
	if a.Status != b.Status || a.Body != b.Body || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i] != b.Headers[i] {
			return false
		}
	}
	return true
}

func TestResponseOverrides(t *testing.T) {
	c := mustParse(t, `{"responses": {
		"THROTTLED": {"statusCode": 503, "headers": {"Content-Type": "text/plain", "X-Reason": "slow down"}, "body": "slow down\n"},
		"INVALID_API_KEY": {"statusCode": "401"},
		"QUOTA_EXCEEDED": {"headers": {}}
	}}`)
	tests := []struct {
		typ  ResponseType
		want Response
	}{
		{Throttled, Response{503, [][2]string{{"content-type", "text/plain"}, {"x-reason", "slow down"}}, "slow down\n"}},
		// Only the status is replaced; headers and body stay AWS's.
		{InvalidAPIKey, Response{401, [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "ForbiddenException"}}, `{"message":"Forbidden"}`}},
		// An empty headers object removes every default header.
		{QuotaExceeded, Response{429, nil, `{"message":"Limit Exceeded"}`}},
	}
	for _, tt := range tests {
		if g := c.Response(tt.typ); !sameResponse(g, tt.want) {
			t.Errorf("Response(%s) = %+v, want %+v", tt.typ, g, tt.want)
		}
	}
}

func TestErrorsFormat(t *testing.T) {
	es := Errors{{Path: "usagePlans[1].quota.period", Message: `must be DAY, WEEK or MONTH, got "MONTHS"`}, {Message: "configuration is not valid JSON"}}
	want := "usagePlans[1].quota.period: must be DAY, WEEK or MONTH, got \"MONTHS\"\nconfiguration is not valid JSON"
	if es.Error() != want {
		t.Errorf("Errors.Error() = %q, want %q", es.Error(), want)
	}
}

func BenchmarkMatch(b *testing.B) {
	c := mustParse(b, routing)
	for b.Loop() {
		c.Match("petstore-prod", "api.example.com", "/pets/42/photos/7", "GET")
	}
}

// keyCounts are the table sizes every key-table benchmark runs at: the cost of a lookup
// and of a configure must not grow with the number of keys beyond what a sorted table's
// log(n) costs.
var keyCounts = []int{10, 10000, 100000}

// BenchmarkKeyByValue looks up a key of a configuration of 10, 10k and 100k keys.
func BenchmarkKeyByValue(b *testing.B) {
	for _, n := range keyCounts {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			c := mustParse(b, string(manyKeys(n)))
			value := manyKeyValue(n / 2)
			if k := c.KeyByValue(value); k == nil || k.ID != fmt.Sprintf("k%d", n/2) {
				b.Fatalf("KeyByValue = %v", k)
			}
			for b.Loop() {
				c.KeyByValue(value)
			}
		})
	}
}

func BenchmarkParsePluginJSON(b *testing.B) {
	data := []byte(routing)
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseManyKeys parses a configuration of 10, 10k and 100k keys spread over two
// plans: the cost of one proxy_on_configure at that size. live-B/key is what the parsed
// Config keeps on the heap per key (after a GC, the configuration text dropped); sys-MiB is
// the memory the process took from the system by then (in Wasm: about the linear memory,
// which never shrinks), with every smaller run before it.
func BenchmarkParseManyKeys(b *testing.B) {
	for _, n := range keyCounts {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			data := manyKeys(n)
			b.SetBytes(int64(len(data)))
			var c *Config
			for b.Loop() {
				var err error
				if c, err = Parse(data); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			data = nil
			c = nil
			before := liveHeap()
			c, _ = Parse(manyKeys(n))
			after := liveHeap()
			runtime.KeepAlive(c)
			b.ReportMetric(float64(after-before)/float64(n), "live-B/key")
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			b.ReportMetric(float64(m.Sys)/(1<<20), "sys-MiB")
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// manyKeyValue is the value of key i of manyKeys.
func manyKeyValue(i int) string { return fmt.Sprintf("GeneratedKeyValue%012d", i) }

func manyKeys(n int) []byte {
	var keys, planKeys strings.Builder
	for i := range n {
		if i > 0 {
			keys.WriteByte(',')
			planKeys.WriteByte(',')
		}
		fmt.Fprintf(&keys, `{"id": "k%d", "value": "%s", "name": "customer %d"}`, i, manyKeyValue(i), i)
		fmt.Fprintf(&planKeys, `{"usagePlanId": "p%d", "keyId": "k%d"}`, i%2, i)
	}
	return []byte(`{"apis": [{"id": "a", "resources": [{"path": "/x", "resourceMethods": {"GET": {"apiKeyRequired": true}}}],
		"stages": [{"stageName": "s"}]}], "routes": [{"apiId": "a", "stage": "s"}],
		"usagePlans": [{"id": "p0", "apiStages": [{"apiId": "a", "stage": "s"}]}, {"id": "p1", "apiStages": [{"apiId": "a", "stage": "s"}]}],
		"apiKeys": [` + keys.String() + `], "usagePlanKeys": [` + planKeys.String() + `]}`)
}

func TestHasPathPrefix(t *testing.T) {
	tests := []struct {
		path, prefix string
		ok           bool
	}{
		{"/v1", "/v1", true},
		{"/v1/pets", "/v1", true},
		{"/v1beta", "/v1", false},
		{"/v", "/v1", false},
		{"/", "/", true},
		{"/anything", "/", true},
		{"", "/", false},
	}
	for _, tt := range tests {
		if got := hasPathPrefix(tt.path, tt.prefix); got != tt.ok {
			t.Errorf("hasPathPrefix(%q, %q) = %v, want %v", tt.path, tt.prefix, got, tt.ok)
		}
	}
}
