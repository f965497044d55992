package usage_test

import (
	"encoding/binary"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/state"
	"github.com/usageplans/usageplans/filter/usage"
)

// fleetCfg is a global-mode configuration: plan daily (5 a DAY) with k1, plan monthly (100
// a MONTH) with keys m0..m(n-1), plan open (no quota) with k4.
func fleetCfg(t testing.TB, monthlyKeys int) *config.Config {
	t.Helper()
	var keys, links []string
	for i := range monthlyKeys {
		keys = append(keys, fmt.Sprintf(`{"id": "m%d", "value": "MonthlyKey%014d"}`, i, i))
		links = append(links, fmt.Sprintf(`{"usagePlanId": "monthly", "keyId": "m%d"}`, i))
	}
	doc := `{"apis": [{"id": "shop", "resources": [{"path": "/items", "resourceMethods": {"GET": {"apiKeyRequired": true}}}], "stages": [{"stageName": "prod"}]}],
	  "routes": [{"apiId": "shop", "stage": "prod"}], "accountThrottle": false,
	  "usagePlans": [
	    {"id": "daily", "apiStages": [{"apiId": "shop", "stage": "prod"}], "quota": {"limit": 5, "period": "DAY"}},
	    {"id": "monthly", "apiStages": [{"apiId": "shop", "stage": "prod"}], "quota": {"limit": 100, "period": "MONTH"}},
	    {"id": "open", "apiStages": [{"apiId": "shop", "stage": "prod"}]}],
	  "apiKeys": [{"id": "k1", "value": "Key1Key1Key1Key1Key1Key1"}, {"id": "k4", "value": "Key4Key4Key4Key4Key4Key4"}` + strings.Repeat(", ", min(len(keys), 1)) + strings.Join(keys, ", ") + `],
	  "usagePlanKeys": [{"usagePlanId": "daily", "keyId": "k1"}, {"usagePlanId": "open", "keyId": "k4"}` + strings.Repeat(", ", min(len(links), 1)) + strings.Join(links, ", ") + `],
	  "global": {"cluster": "rls", "domain": "up"}}`
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// counts answers ShouldRateLimit as RLS does, within one window: each descriptor's count
// (keyed by its values and its last key, "plan/key/usage/d20261204") grows by its hits, in
// order, and its status is its limit less its count, OVER_LIMIT above it.
func counts(t *testing.T, body []byte, c map[string]uint32, calls *int) global.Answer {
	t.Helper()
	*calls++
	if len(body) < 5 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
		t.Fatalf("bad frame")
	}
	var req rlsv3.RateLimitRequest
	if err := proto.Unmarshal(body[5:], &req); err != nil {
		t.Fatal(err)
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}
	for _, d := range req.Descriptors {
		var vs []string
		for _, e := range d.Entries {
			vs = append(vs, e.Value)
		}
		k := strings.Join(vs[:2], "/") + "/" + d.Entries[2].Key + "/" + vs[2]
		if h := d.HitsAddend.GetValue(); h > 0 {
			c[k] += uint32(h)
		}
		n := c[k]
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		if n > d.Limit.RequestsPerUnit {
			st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
		} else {
			st.LimitRemaining = d.Limit.RequestsPerUnit - n
		}
		resp.Statuses = append(resp.Statuses, st)
	}
	msg, _ := proto.Marshal(resp)
	return global.Answer{Headers: [][2]string{{":status", "200"}}, Trailers: [][2]string{{"grpc-status", "0"}}, Body: rls.AppendFrame(nil, msg)}
}

// run makes read's calls against c until it answers.
func run(t *testing.T, read *usage.FleetRead, c map[string]uint32, calls *int) usage.Response {
	t.Helper()
	for range 8 {
		if r, done := read.Step(counts(t, read.Body(), c, calls)); done {
			return r
		}
	}
	t.Fatal("more than 8 calls")
	return usage.Response{}
}

// fleet runs a usage API request in global mode against c.
func fleet(t *testing.T, cfg *config.Config, now time.Time, method, target, body string, c map[string]uint32, calls *int) usage.Response {
	t.Helper()
	read, r := usage.HandleFleet(cfg, now, method, target, []byte(body))
	if read == nil {
		return r
	}
	return run(t, read, c, calls)
}

// 2026-12-04 is in RLS's YEAR window that began on 2025-12-18 (day 56 × 365 from the epoch).
var fleetNow = time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)

// GetUsage in global mode: used per day is each usage descriptor's count (what the fleet
// admitted), today's remaining is RLS's quota remaining (its count holds refused calls
// too), a past day's the limit less what its period used up to it; one call for the page.
func TestFleetGetUsage(t *testing.T) {
	cfg := fleetCfg(t, 1)
	c := map[string]uint32{
		"daily/k1/usage/d20261202": 5, "daily/k1/usage/d20261203": 2, "daily/k1/usage/d20261204": 3,
		"daily/k1/period/d20261204":  4, // 3 admitted, and a lease or a refused call
		"monthly/m0/usage/d20261130": 40, "monthly/m0/usage/d20261201": 7, "monthly/m0/usage/d20261203": 9,
		"monthly/m0/period/m202612": 20,
	}
	calls := 0
	for _, tc := range []struct{ target, want string }{
		{"/daily/usage?startDate=2026-12-02&endDate=2026-12-06",
			`{"usagePlanId":"daily","startDate":"2026-12-02","endDate":"2026-12-06","values":{"k1":[[5,0],[2,3],[3,1]]}}`},
		{"/monthly/usage?startDate=2026-11-30&endDate=2026-12-04",
			`{"usagePlanId":"monthly","startDate":"2026-11-30","endDate":"2026-12-04","values":{"m0":[[40,60],[7,93],[0,93],[9,84],[0,80]]}}`},
		{"/open/usage?startDate=2026-12-04&endDate=2026-12-04",
			`{"usagePlanId":"open","startDate":"2026-12-04","endDate":"2026-12-04","values":{"k4":[[0,-1]]}}`},
	} {
		before := maps.Clone(c)
		got := fleet(t, cfg, fleetNow, "GET", tc.target, "", c, &calls)
		if !maps.Equal(before, c) {
			t.Errorf("%s: a read changed RLS's counts", tc.target)
		}
		if got.Status != 200 || got.Body != tc.want {
			t.Errorf("%s:\n%d %s\nwant %s", tc.target, got.Status, got.Body, tc.want)
		}
	}
	if calls != 3 {
		t.Errorf("%d calls, want 3", calls)
	}
}

// A page holds as many keys as fit in MaxFleetDescriptors; the position continues it, and
// every key is answered once.
func TestFleetPaging(t *testing.T) {
	cfg := fleetCfg(t, 100)
	c := map[string]uint32{}
	for i := range 100 {
		c[fmt.Sprintf("monthly/m%d/usage/d20261204", i)] = uint32(i)
	}
	calls, seen, pos := 0, 0, ""
	for page := 0; ; page++ {
		target := "/monthly/usage?startDate=2026-09-06&endDate=2026-12-04&limit=500" + pos
		got := fleet(t, cfg, fleetNow, "GET", target, "", c, &calls).Body
		for i := range 100 {
			if strings.Contains(got, fmt.Sprintf(`"m%d":[`, i)) {
				seen++
				if !strings.Contains(got, fmt.Sprintf(`[%d,100]]`, i)) { // today: RLS's quota count is 0
					t.Errorf("page %d: key m%d's today missing", page, i)
				}
			}
		}
		_, after, ok := strings.Cut(got, `"position":"`)
		if !ok {
			break
		}
		p, _, _ := strings.Cut(after, `"`)
		pos = "&position=" + p
	}
	// 90 days from 2026-09-06, and the month before them: 95 days + the quota's count and
	// grant counter a key, 42 keys a page of 4096 descriptors.
	if seen != 100 || calls != 3 {
		t.Errorf("%d keys over %d pages, want 100 over 3", seen, calls)
	}
}

// Bad requests get AWS's error shapes without a call; RLS not answering is a 503.
func TestFleetErrors(t *testing.T) {
	cfg := fleetCfg(t, 1)
	for _, tc := range []struct {
		method, target string
		status         int
		body           string
	}{
		{"GET", "/daily/usage?startDate=2025-12-17&endDate=2025-12-19", 400,
			`{"message":"startDate 2025-12-17 is before 2025-12-18: in global mode per-day usage lives in RLS's current 365-day window (unit YEAR, from the Unix epoch), which began on 2025-12-18; the next begins on 2026-12-18"}`},
		{"GET", "/daily/usage?startDate=2026-12-05&endDate=2026-12-04", 400, `{"message":"endDate 2026-12-04 is before startDate 2026-12-05"}`},
		{"GET", "/nope/usage?startDate=2026-12-04&endDate=2026-12-04", 404, `{"message":"Invalid Usage Plan ID specified"}`},
		{"PATCH", "/daily/keys/k1/usage", 400, `{"message":"Invalid patch: the body must be the JSON object {\"patchOperations\": [{\"op\": \"replace\", \"path\": \"/remaining\", \"value\": \"N\"}]}"}`},
		{"PATCH", "/open/keys/k4/usage", 400, `{"message":"Usage plan \"open\" has no quota: there is no remaining quota to extend"}`},
		{"PATCH", "/daily/keys/m0/usage", 404, `{"message":"API key \"m0\" is not in usage plan \"daily\""}`},
		{"POST", "/daily/usage", 405, `{"message":"Use GET on this resource"}`},
		{"GET", "/daily", 404, `{"message":"No usage API resource at \"/daily\": GET /usageplans/{usageplanId}/usage or PATCH /usageplans/{usageplanId}/keys/{keyId}/usage"}`},
	} {
		now := fleetNow
		if strings.Contains(tc.target, "2025-12-17") {
			now = time.Date(2025, 12, 19, 1, 0, 0, 0, time.UTC)
		}
		body := []byte(nil)
		if tc.target == "/open/keys/k4/usage" {
			body = []byte(`{"patchOperations":[{"op":"replace","path":"/remaining","value":"3"}]}`)
		}
		read, r := usage.HandleFleet(cfg, now, tc.method, tc.target, body)
		if read != nil || r.Status != tc.status || r.Body != tc.body {
			t.Errorf("%s %s: read %v, %d %s\nwant %d %s", tc.method, tc.target, read != nil, r.Status, r.Body, tc.status, tc.body)
		}
	}
	// A plan without keys: no call, an empty document.
	empty := fleetCfg(t, 0)
	if read, r := usage.HandleFleet(empty, fleetNow, "GET", "/monthly/usage?startDate=2026-12-04&endDate=2026-12-04", nil); read != nil || r.Status != 200 ||
		r.Body != `{"usagePlanId":"monthly","startDate":"2026-12-04","endDate":"2026-12-04","values":{}}` {
		t.Errorf("no keys: read %v, %d %s", read != nil, r.Status, r.Body)
	}
	read, _ := usage.HandleFleet(cfg, fleetNow, "GET", "/daily/usage?startDate=2026-12-04&endDate=2026-12-04", nil)
	r, done := read.Step(global.Answer{Failed: true})
	if !done {
		t.Error("no answer: not done")
	}
	if r.Status != 503 || r.Body != `{"message":"The usage could not be read from the Rate Limit Service: global: no answer from RLS (timeout or connection failure)"}` {
		t.Errorf("no answer: %d %s", r.Status, r.Body)
	}
}

// proxyRequest runs one request of key k1 in plan daily through a proxy's quota (its own
// shared data) against RLS c, and reports whether it was admitted.
func proxyRequest(t *testing.T, cfg *config.Config, qt *global.Quota, store *state.MemStore, now time.Time, c map[string]uint32, calls *int) bool {
	t.Helper()
	plan, key := cfg.PlanByID("daily"), cfg.KeyByID("k1")
	tk := qt.Begin(cfg, plan, key, now, store)
	switch tk.StepOf() {
	case global.Refuse:
		return false
	case global.Call:
	default:
		t.Fatalf("step %d: %v", tk.StepOf(), tk.Err)
	}
	r := qt.Finish(cfg, &tk, counts(t, tk.Body, c, calls), now, store)
	if r.StateErr != nil || r.Err != nil {
		t.Fatalf("%+v", r)
	}
	return r.Verdict == global.Admitted
}

// UpdateUsage in global mode, two admins racing (both take a generation, the second writes
// first): the grant of the higher generation is in force, once, not the sum; both proxies
// see it with their next calls (one refused by RLS asks again after GrantCheckMS) and admit
// exactly the remaining it gave, fleet-wide; GetUsage says so.
func TestFleetUpdateUsageRace(t *testing.T) {
	cfg := fleetCfg(t, 0)
	c := map[string]uint32{}
	calls := 0
	qa, qb := &global.Quota{}, &global.Quota{}
	sa, sb := &state.MemStore{}, &state.MemStore{}
	now := fleetNow
	admitted := 0
	for i := range 6 {
		q, s := qa, sa
		if i%2 == 1 {
			q, s = qb, sb
		}
		if proxyRequest(t, cfg, q, s, now, c, &calls) {
			admitted++
		}
	}
	if admitted != 5 || c["daily/k1/period/d20261204"] != 6 {
		t.Fatalf("admitted %d, RLS count %d; want 5 and 6", admitted, c["daily/k1/period/d20261204"])
	}
	for _, p := range []struct {
		q *global.Quota
		s *state.MemStore
	}{{qa, sa}, {qb, sb}} {
		f, _ := p.q.BeginFlush(cfg, p.s)
		if f != nil {
			p.q.FinishFlush(cfg, f, counts(t, f.Body, c, &calls), p.s)
		}
	}
	patch := func(n int) (*usage.FleetRead, usage.Response) {
		return usage.HandleFleet(cfg, now, "PATCH", "/daily/keys/k1/usage",
			[]byte(fmt.Sprintf(`{"patchOperations":[{"op":"replace","path":"/remaining","value":"%d"}]}`, n)))
	}
	a, _ := patch(3)
	b, _ := patch(2)
	if _, done := a.Step(counts(t, a.Body(), c, &calls)); done { // a takes generation 1
		t.Fatal("a done after taking")
	}
	if _, done := b.Step(counts(t, b.Body(), c, &calls)); done { // b takes generation 2
		t.Fatal("b done after taking")
	}
	rb := run(t, b, c, &calls) // b writes first: limit 6 + 2
	ra := run(t, a, c, &calls) // then a: limit 6 + 3, in generation 1, below b's
	// Both answer with the grant in force: 2 left (b's), not 3, not 5.
	const want = `{"usagePlanId":"daily","startDate":"2026-12-04","endDate":"2026-12-04","values":{"k1":[[5,2]]}}`
	if rb.Status != 200 || rb.Body != want || ra.Status != 200 || ra.Body != want {
		t.Errorf("answers:\n%d %s\n%d %s\nwant %s", rb.Status, rb.Body, ra.Status, ra.Body, want)
	}
	if c["daily/k1/grant/d20261204"] != 2 || c["daily/k1/grant/d20261204.1"] != 10 || c["daily/k1/grant/d20261204.2"] != 9 {
		t.Errorf("grant counts %v", c)
	}
	// Proxy b was refused by RLS: it refuses by itself until GrantCheckMS has passed.
	if n := calls; proxyRequest(t, cfg, qb, sb, now.Add(time.Second), c, &calls) || calls != n {
		t.Error("admitted within GrantCheckMS of RLS's refusal")
	}
	later := now.Add(global.GrantCheckMS * time.Millisecond)
	admitted = 0
	for i := range 6 {
		q, s := qa, sa
		if i%2 == 1 {
			q, s = qb, sb
		}
		if proxyRequest(t, cfg, q, s, later, c, &calls) {
			admitted++
		}
	}
	if admitted != 2 {
		t.Errorf("admitted %d after the grant, want exactly 2", admitted)
	}
	got := fleet(t, cfg, later, "GET", "/daily/usage?startDate=2026-12-04&endDate=2026-12-04", "", c, &calls)
	if !strings.HasSuffix(got.Body, `,0]]}}`) {
		t.Errorf("after the grant's requests: %s, want remaining 0", got.Body)
	}
}
