package usage_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/filter/rls"
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

// counts answers a usage read as RLS does for hits_addend 0: each descriptor's status is
// its limit less its count (OVER_LIMIT above it); counts are keyed by the descriptor's
// values joined with '/'. It checks the request is check-only.
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
		if d.HitsAddend == nil || d.HitsAddend.Value != 0 {
			t.Fatalf("descriptor %v counts hits", d)
		}
		var vs []string
		for _, e := range d.Entries {
			vs = append(vs, e.Value)
		}
		n := c[strings.Join(vs[:2], "/")+"/"+d.Entries[2].Key+"/"+vs[2]]
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
		read, r := usage.HandleFleet(cfg, fleetNow, "GET", tc.target)
		if read == nil {
			t.Fatalf("%s: %d %s", tc.target, r.Status, r.Body)
		}
		got := read.Answer(counts(t, read.Body(), c, &calls))
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
		read, r := usage.HandleFleet(cfg, fleetNow, "GET", target)
		if read == nil {
			t.Fatalf("page %d: %d %s", page, r.Status, r.Body)
		}
		got := read.Answer(counts(t, read.Body(), c, &calls)).Body
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
	// 90 days from 2026-09-06, and the month before them: 116 days + the quota descriptor
	// a key, 35 keys a page of 4096 descriptors.
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
		{"PATCH", "/daily/keys/k1/usage", 400, `{"message":"UpdateUsage is not available in global mode: a grant must reach every proxy of the fleet through RLS, which this version does not do; change the plan's quota instead"}`},
		{"PATCH", "/daily/keys/m0/usage", 404, `{"message":"API key \"m0\" is not in usage plan \"daily\""}`},
		{"POST", "/daily/usage", 405, `{"message":"Use GET on this resource"}`},
		{"GET", "/daily", 404, `{"message":"No usage API resource at \"/daily\": GET /usageplans/{usageplanId}/usage or PATCH /usageplans/{usageplanId}/keys/{keyId}/usage"}`},
	} {
		now := fleetNow
		if strings.Contains(tc.target, "2025-12-17") {
			now = time.Date(2025, 12, 19, 1, 0, 0, 0, time.UTC)
		}
		read, r := usage.HandleFleet(cfg, now, tc.method, tc.target)
		if read != nil || r.Status != tc.status || r.Body != tc.body {
			t.Errorf("%s %s: read %v, %d %s\nwant %d %s", tc.method, tc.target, read != nil, r.Status, r.Body, tc.status, tc.body)
		}
	}
	// A plan without keys: no call, an empty document.
	empty := fleetCfg(t, 0)
	if read, r := usage.HandleFleet(empty, fleetNow, "GET", "/monthly/usage?startDate=2026-12-04&endDate=2026-12-04"); read != nil || r.Status != 200 ||
		r.Body != `{"usagePlanId":"monthly","startDate":"2026-12-04","endDate":"2026-12-04","values":{}}` {
		t.Errorf("no keys: read %v, %d %s", read != nil, r.Status, r.Body)
	}
	read, _ := usage.HandleFleet(cfg, fleetNow, "GET", "/daily/usage?startDate=2026-12-04&endDate=2026-12-04")
	r := read.Answer(global.Answer{Failed: true})
	if r.Status != 503 || r.Body != `{"message":"The usage could not be read from the Rate Limit Service: global: no answer from RLS (timeout or connection failure)"}` {
		t.Errorf("no answer: %d %s", r.Status, r.Body)
	}
}
