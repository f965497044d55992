package usage_test

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/core"
	"github.com/usageplans/usageplans/filter/state"
	"github.com/usageplans/usageplans/filter/usage"
)

const (
	k1 = "Key1Key1Key1Key1Key1Key1" // plan daily: 5 a day
	k2 = "Key2Key2Key2Key2Key2Key2" // plan monthly: 100 a month, 90 in its first
	k3 = "Key3Key3Key3Key3Key3Key3" // plan monthly
	k4 = "Key4Key4Key4Key4Key4Key4" // plan open: no quota
)

// 2026-03-10 is day 20522.
var day1 = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

func plans(t testing.TB) *config.Config {
	t.Helper()
	b, err := os.ReadFile("testdata/plans.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// traffic sends n requests of key at at through the real decision and returns how many
// were admitted.
func traffic(t *testing.T, cfg *config.Config, s state.Store, key string, at time.Time, n int) int {
	t.Helper()
	var dc core.Decider
	admitted := 0
	for range n {
		d := dc.Decide(cfg, core.Request{Method: "GET", Path: "/items", Key: key}, at, s)
		if d.UsageErr != nil {
			t.Fatalf("usage: %v", d.UsageErr)
		}
		if d.Outcome == core.Allow {
			admitted++
		}
	}
	return admitted
}

func get(cfg *config.Config, s state.Store, now time.Time, target string) usage.Response {
	return usage.Handle(cfg, usage.Local{Store: s}, now, "GET", target, nil)
}

func patch(cfg *config.Config, s state.Store, now time.Time, target, body string) usage.Response {
	return usage.Handle(cfg, usage.Local{Store: s}, now, "PATCH", target, []byte(body))
}

func want(t *testing.T, r usage.Response, status int, body string) {
	t.Helper()
	if r.Status != status || r.Body != body {
		t.Fatalf("got %d %s\nwant %d %s", r.Status, r.Body, status, body)
	}
}

// TestGetUsageCountsAdmitted: three days of a daily quota of 5 with 7, 3 and 0 requests sent:
// used is what was admitted (5, 3, 0), never what was sent, and remaining is per day.
func TestGetUsageCountsAdmitted(t *testing.T) {
	cfg := plans(t)
	var s state.MemStore
	if got := traffic(t, cfg, &s, k1, day1, 7); got != 5 {
		t.Fatalf("day 1: %d admitted, want 5", got)
	}
	traffic(t, cfg, &s, k1, day1.Add(24*time.Hour), 3)
	now := day1.Add(48 * time.Hour)
	r := get(cfg, &s, now, "/daily/usage?startDate=2026-03-10&endDate=2026-03-12")
	want(t, r, 200, `{"usagePlanId":"daily","startDate":"2026-03-10","endDate":"2026-03-12","values":{"k1":[[5,0],[3,2],[0,5]]}}`)
	if r.Headers[0] != [2]string{"content-type", "application/json"} {
		t.Fatalf("headers %v", r.Headers)
	}
	// A month plan: the offset of 10 applies in the key's first month; remaining counts down
	// across the days of the period; a plan without quota answers -1.
	traffic(t, cfg, &s, k2, day1, 4)
	traffic(t, cfg, &s, k2, day1.Add(24*time.Hour), 6)
	traffic(t, cfg, &s, k4, day1, 2)
	want(t, get(cfg, &s, now, "/monthly/usage?startDate=2026-03-10&endDate=2026-03-11"), 200,
		`{"usagePlanId":"monthly","startDate":"2026-03-10","endDate":"2026-03-11","values":{"k2":[[4,86],[6,80]],"k3":[[0,90],[0,90]]}}`)
	want(t, get(cfg, &s, now, "/open/usage?startDate=2026-03-09&endDate=2026-03-10&keyId=k4"), 200,
		`{"usagePlanId":"open","startDate":"2026-03-09","endDate":"2026-03-10","values":{"k4":[[0,-1],[2,-1]]}}`)
	// Next month: a new period, without the offset.
	apr := time.Date(2026, 4, 1, 0, 0, 1, 0, time.UTC)
	traffic(t, cfg, &s, k2, apr, 1)
	want(t, get(cfg, &s, apr, "/monthly/usage?startDate=2026-03-31&endDate=2026-04-30&keyId=k2"), 200,
		`{"usagePlanId":"monthly","startDate":"2026-03-31","endDate":"2026-04-30","values":{"k2":[[0,80],[1,99]]}}`)
}

// TestGetUsagePages: limit pages through the plan's keys; position is the next page's start.
func TestGetUsagePages(t *testing.T) {
	cfg := plans(t)
	var s state.MemStore
	traffic(t, cfg, &s, k3, day1, 2)
	r := get(cfg, &s, day1, "/monthly/usage?startDate=2026-03-10&endDate=2026-03-10&limit=1")
	want(t, r, 200, `{"usagePlanId":"monthly","startDate":"2026-03-10","endDate":"2026-03-10","position":"azM","values":{"k2":[[0,90]]}}`)
	want(t, get(cfg, &s, day1, "/monthly/usage?startDate=2026-03-10&endDate=2026-03-10&limit=1&position=azM"), 200,
		`{"usagePlanId":"monthly","startDate":"2026-03-10","endDate":"2026-03-10","values":{"k3":[[2,88]]}}`)
}

// TestUpdateUsage: replace /remaining leaves the key exactly N more requests in the period,
// above or below what the limit alone leaves; the grant ends with the period.
func TestUpdateUsage(t *testing.T) {
	cfg := plans(t)
	var s state.MemStore
	traffic(t, cfg, &s, k1, day1, 5)
	r := patch(cfg, &s, day1, "/daily/keys/k1/usage", `{"patchOperations":[{"op":"replace","path":"/remaining","value":"3"}]}`)
	want(t, r, 200, `{"usagePlanId":"daily","startDate":"2026-03-10","endDate":"2026-03-10","values":{"k1":[[5,3]]}}`)
	if got := traffic(t, cfg, &s, k1, day1, 5); got != 3 {
		t.Fatalf("%d admitted after a grant of 3, want 3", got)
	}
	want(t, get(cfg, &s, day1, "/daily/usage?startDate=2026-03-10&endDate=2026-03-10"), 200,
		`{"usagePlanId":"daily","startDate":"2026-03-10","endDate":"2026-03-10","values":{"k1":[[8,0]]}}`)
	// The next day the grant is gone: 5 again. Lowering it works too (AWS's own example).
	next := day1.Add(24 * time.Hour)
	want(t, patch(cfg, &s, next, "/daily/keys/k1/usage", `{"patchOperations":[{"op":"replace","path":"/remaining","value":2}]}`), 200,
		`{"usagePlanId":"daily","startDate":"2026-03-11","endDate":"2026-03-11","values":{"k1":[[0,2]]}}`)
	if got := traffic(t, cfg, &s, k1, next, 5); got != 2 {
		t.Fatalf("%d admitted after lowering to 2, want 2", got)
	}
	want(t, get(cfg, &s, next.Add(24*time.Hour), "/daily/usage?startDate=2026-03-10&endDate=2026-03-12"), 200,
		`{"usagePlanId":"daily","startDate":"2026-03-10","endDate":"2026-03-12","values":{"k1":[[8,0],[2,0],[0,5]]}}`)
}

func snapshotStore(s *state.MemStore, keys []string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, _, err := s.Get(k); err == nil {
			out[k] = string(v)
		}
	}
	return out
}

// TestBadInput: every bad request gets its status and AWS-shaped message, and changes nothing.
func TestBadInput(t *testing.T) {
	cfg := plans(t)
	var s state.MemStore
	traffic(t, cfg, &s, k1, day1, 2)
	traffic(t, cfg, &s, k2, day1, 2)
	names := []string{"usageplans:key:daily:k1", "usageplans:usage:daily:k1", "usageplans:key:monthly:k2", "usageplans:usage:monthly:k2"}
	before := snapshotStore(&s, names)
	const q = "/daily/usage?startDate=2026-03-10&endDate=2026-03-10"
	const ok = `{"patchOperations":[{"op":"replace","path":"/remaining","value":"9"}]}`
	for _, tt := range []struct {
		method, target, body string
		status               int
		errType, message     string
	}{
		{"GET", "/nope/usage?startDate=2026-03-10&endDate=2026-03-10", "", 404, "NotFoundException", "Invalid Usage Plan ID specified"},
		{"GET", "/daily/usage?endDate=2026-03-10", "", 400, "BadRequestException", "startDate is required: a UTC date such as 2026-03-14"},
		{"GET", "/daily/usage?startDate=2026-03-10", "", 400, "BadRequestException", "endDate is required: a UTC date such as 2026-03-14"},
		{"GET", "/daily/usage?startDate=2026-3-10&endDate=2026-03-10", "", 400, "BadRequestException", `Invalid startDate "2026-3-10": want a date YYYY-MM-DD (UTC)`},
		{"GET", "/daily/usage?startDate=2026-03-10&endDate=2026-02-30", "", 400, "BadRequestException", `Invalid endDate "2026-02-30": want a date YYYY-MM-DD (UTC)`},
		{"GET", "/daily/usage?startDate=2026-03-10&endDate=2026-03-09", "", 400, "BadRequestException", "endDate 2026-03-09 is before startDate 2026-03-10"},
		{"GET", "/daily/usage?startDate=2026-03-11&endDate=2026-03-12", "", 400, "BadRequestException", "startDate 2026-03-11 is after today (2026-03-10 UTC): there is no usage yet"},
		{"GET", "/daily/usage?startDate=2025-12-10&endDate=2026-03-10", "", 400, "BadRequestException", "startDate 2025-12-10 is more than 90 days ago: usage is kept for 90 days, from 2025-12-11"},
		{"GET", q + "&limit=0", "", 400, "BadRequestException", `Invalid limit "0": want a whole number from 1 to 500`},
		{"GET", q + "&limit=501", "", 400, "BadRequestException", `Invalid limit "501": want a whole number from 1 to 500`},
		{"GET", q + "&limit=x", "", 400, "BadRequestException", `Invalid limit "x": want a whole number from 1 to 500`},
		{"GET", q + "&position=!!", "", 400, "BadRequestException", `Invalid position "!!": pass the position of the previous page as it was given`},
		{"GET", q + "&keyId=k9", "", 404, "NotFoundException", "Invalid API Key identifier specified"},
		{"GET", q + "&keyId=k2", "", 404, "NotFoundException", `API key "k2" is not in usage plan "daily"`},
		{"GET", "/daily/keys/k1/usage", "", 405, "MethodNotAllowedException", "Use PATCH on this resource"},
		{"DELETE", q, "", 405, "MethodNotAllowedException", "Use GET on this resource"},
		{"GET", "/daily", "", 404, "NotFoundException", `No usage API resource at "/daily": GET /usageplans/{usageplanId}/usage or PATCH /usageplans/{usageplanId}/keys/{keyId}/usage`},
		{"PATCH", "/nope/keys/k1/usage", ok, 404, "NotFoundException", "Invalid Usage Plan ID specified"},
		{"PATCH", "/daily/keys/k9/usage", ok, 404, "NotFoundException", "Invalid API Key identifier specified"},
		{"PATCH", "/daily/keys/k2/usage", ok, 404, "NotFoundException", `API key "k2" is not in usage plan "daily"`},
		{"PATCH", "/open/keys/k4/usage", ok, 400, "BadRequestException", `Usage plan "open" has no quota: there is no remaining quota to extend`},
		{"PATCH", "/daily/keys/k1/usage", "", 400, "BadRequestException", `Invalid patch: the body must be the JSON object {"patchOperations": [{"op": "replace", "path": "/remaining", "value": "N"}]}`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":`, 400, "BadRequestException", `Invalid patch: the body must be the JSON object {"patchOperations": [{"op": "replace", "path": "/remaining", "value": "N"}]}`},
		{"PATCH", "/daily/keys/k1/usage", `[]`, 400, "BadRequestException", `Invalid patch: the body must be the JSON object {"patchOperations": [{"op": "replace", "path": "/remaining", "value": "N"}]}`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[]}`, 400, "BadRequestException", `Invalid patch: patchOperations must be a non-empty array: {"patchOperations": [{"op": "replace", "path": "/remaining", "value": "N"}]}`},
		{"PATCH", "/daily/keys/k1/usage", `{"ops":[]}`, 400, "BadRequestException", `Invalid patch: unknown field "ops": the body is {"patchOperations": [{"op": "replace", "path": "/remaining", "value": "N"}]}`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[1]}`, 400, "BadRequestException", `Invalid patch operation: must be an object {"op", "path", "value"} (patchOperations[0])`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[{"op":"add","path":"/remaining","value":"1"}]}`, 400, "BadRequestException", `Invalid patch operation specified: op must be "replace" on /remaining, got "add" (patchOperations[0])`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[{"op":"replace","path":"/used","value":"1"}]}`, 400, "BadRequestException", `Invalid patch path "/used" specified for op 'replace': must be "/remaining" (patchOperations[0])`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[{"op":"replace","path":"/remaining","value":"-1"}]}`, 400, "BadRequestException", `Invalid value "-1" for /remaining: must be a whole number of requests from 0 to 9007199254740992, as a string (patchOperations[0])`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[{"op":"replace","path":"/remaining"}]}`, 400, "BadRequestException", `Invalid value nothing for /remaining: must be a whole number of requests from 0 to 9007199254740992, as a string (patchOperations[0])`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[{"op":"replace","path":"/remaining","value":"1.5"}]}`, 400, "BadRequestException", `Invalid value "1.5" for /remaining: must be a whole number of requests from 0 to 9007199254740992, as a string (patchOperations[0])`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[{"op":"replace","path":"/remaining","value":"1","from":"/x"}]}`, 400, "BadRequestException", `Invalid patch operation: from is not supported for /remaining (patchOperations[0])`},
		{"PATCH", "/daily/keys/k1/usage", `{"patchOperations":[{"op":"replace","path":"/remaining","value":"1"},{"op":"replace","path":"/remaining","value":"x"}]}`, 400, "BadRequestException", `Invalid value "x" for /remaining: must be a whole number of requests from 0 to 9007199254740992, as a string (patchOperations[1])`},
	} {
		r := usage.Handle(cfg, usage.Local{Store: &s}, day1, tt.method, tt.target, []byte(tt.body))
		body := fmt.Sprintf(`{"message":%q}`, tt.message)
		if r.Status != tt.status || r.Body != body || r.Headers[1] != [2]string{"x-amzn-errortype", tt.errType} {
			t.Errorf("%s %s %s:\n got %d %s %v\nwant %d %s %s", tt.method, tt.target, tt.body, r.Status, r.Body, r.Headers, tt.status, body, tt.errType)
		}
	}
	if after := snapshotStore(&s, names); !reflect.DeepEqual(after, before) || s.Keys() != 4 {
		t.Fatalf("bad input changed the store (%d keys)", s.Keys())
	}
}

// TestRaceRequestsAndGrants: workers record requests while admins grant, on one key; every
// admitted request is counted once (no admin's write loses one), and the last grant stands
// exactly: after the race, the key makes exactly N more requests.
func TestRaceRequestsAndGrants(t *testing.T) {
	b, _ := os.ReadFile("testdata/plans.json")
	cfg, err := config.Parse([]byte(strings.Replace(string(b), `"limit": 100,`, `"limit": 100000,`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CASRetries = 1000
	var s state.MemStore
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 4 {
		wg.Go(func() {
			var dc core.Decider
			n := 0
			for range 300 {
				d := dc.Decide(cfg, core.Request{Method: "GET", Path: "/items", Key: k2}, day1, &s)
				if d.UsageErr != nil {
					t.Error(d.UsageErr)
					return
				}
				if d.Outcome == core.Allow {
					n++
				}
			}
			mu.Lock()
			admitted += n
			mu.Unlock()
		})
	}
	for i := range 2 {
		wg.Go(func() {
			for range 20 {
				r := patch(cfg, &s, day1, "/monthly/keys/k2/usage", fmt.Sprintf(`{"patchOperations":[{"op":"replace","path":"/remaining","value":"%d"}]}`, 200000+i))
				if r.Status != 200 {
					t.Error(r.Status, r.Body)
					return
				}
			}
		})
	}
	wg.Wait()
	if admitted != 1200 {
		t.Fatalf("%d admitted, want 1200", admitted)
	}
	r := get(cfg, &s, day1, "/monthly/usage?startDate=2026-03-10&endDate=2026-03-10&keyId=k2")
	if !strings.HasPrefix(r.Body, `{"usagePlanId":"monthly","startDate":"2026-03-10","endDate":"2026-03-10","values":{"k2":[[1200,`) {
		t.Fatalf("used after the race: %s, want 1200", r.Body)
	}
	// Settle the grant with no traffic, then spend it.
	want(t, patch(cfg, &s, day1, "/monthly/keys/k2/usage", `{"patchOperations":[{"op":"replace","path":"/remaining","value":"7"}]}`), 200,
		`{"usagePlanId":"monthly","startDate":"2026-03-01","endDate":"2026-03-10","values":{"k2":[[0,99990],[0,99990],[0,99990],[0,99990],[0,99990],[0,99990],[0,99990],[0,99990],[0,99990],[1200,7]]}}`)
	if got := traffic(t, cfg, &s, k2, day1, 9); got != 7 {
		t.Fatalf("%d admitted after remaining 7, want 7", got)
	}
	keys := []string{}
	for _, k := range []string{"usageplans:key:monthly:k2", "usageplans:usage:monthly:k2"} {
		if _, _, err := s.Get(k); err == nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) != 2 || s.Keys() != 2 {
		t.Fatalf("store keys %v (%d)", keys, s.Keys())
	}
}
