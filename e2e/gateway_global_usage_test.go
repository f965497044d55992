package e2e

// AWS's usage API in global mode: answered from RLS + Redis (the fleet's counts), through
// the gateway's admin listener and the filter's admin route, by two proxies sharing one RLS.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
	"github.com/usageplans/usageplans/host"
	"github.com/usageplans/usageplans/internal/rlstest"
)

const (
	fleetDaily   = "FleetDailyKey000000000001" // plan daily: 5 a DAY
	fleetMonthly = "FleetMonthKey000000000002" // plan monthly: 1000 a MONTH
)

func fleetUsageConfig() string { return fleetUsageConfigMode(`"timeoutMs": 5000`) }

// fleetUsageConfigMode is fleetUsageConfig with global's members after cluster and domain.
func fleetUsageConfigMode(global string) string {
	return fmt.Sprintf(`{
  "apis": [{"id": "shop", "resources": [{"path": "/pets", "resourceMethods": {"GET": {"apiKeyRequired": true}}}],
            "stages": [{"stageName": "prod"}]}],
  "routes": [{"name": "shop", "match": {"routeName": "shop"}, "apiId": "shop", "stage": "prod"}],
  "usagePlans": [
    {"id": "daily", "apiStages": [{"apiId": "shop", "stage": "prod"}], "quota": {"limit": 5, "period": "DAY"}},
    {"id": "monthly", "apiStages": [{"apiId": "shop", "stage": "prod"}], "quota": {"limit": 1000, "period": "MONTH"}}
  ],
  "apiKeys": [{"id": "kd", "value": %q}, {"id": "km", "value": %q}],
  "usagePlanKeys": [{"usagePlanId": "daily", "keyId": "kd"}, {"usagePlanId": "monthly", "keyId": "km"}],
  "accountThrottle": false,
  "usageApi": {"pathPrefix": "/usageplans", "adminKeys": [{"id": "ops", "valueSha256": %q}], "allowOnHeadersStopIteration": true},
  "global": {"cluster": "ratelimit", "domain": "usageplans", %s}
}`, fleetDaily, fleetMonthly, sha256Hex(usageAdminKey), global)
}

// fleetStart is noon of the first of three UTC days the test runs on: two days ago, or the
// first day of RLS's current YEAR window (365 days from the epoch) when that is later, so
// that the three days are in the window RLS counts in now.
func fleetStart(now time.Time) time.Time {
	day := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	ysUnix := now.Unix() / (365 * 86400) * (365 * 86400)
	if day.Unix() < ysUnix {
		day = time.Unix(ysUnix, 0).UTC()
	}
	return day.Add(12 * time.Hour)
}

// TestGlobalUsageAcrossProxies: three days of traffic on a fake clock through two proxies
// (two gateways, two workers each) sharing one RLS + Redis. GetUsage through either
// gateway's admin listener and either filter's admin route answers the same document, whose
// used is exactly what the fleet admitted each day (not RLS's quota count, which holds the
// refused calls too), and whose remaining today is RLS's.
func TestGlobalUsageAcrossProxies(t *testing.T) {
	env, start, clock, gs := startFleet(t, fleetUsageConfig())
	// Per day and proxy: requests of the daily key, of the monthly key.
	sent := [3][2][2]int{{{4, 3}, {3, 2}}, {{2, 1}, {1, 1}}, {{0, 0}, {1, 2}}}
	var admitted [3][2]int // per day: daily key, monthly key (the fleet)
	for day := range 3 {
		for p, g := range gs {
			admitted[day][0] += g.send(fleetDaily, sent[day][p][0])
			admitted[day][1] += g.send(fleetMonthly, sent[day][p][1])
		}
		if day < 2 {
			clock.Advance(24 * time.Hour)
		}
	}
	// The fleet's quota of 5 held across both proxies on the first day.
	if admitted != [3][2]int{{5, 5}, {3, 2}, {1, 2}} {
		t.Fatalf("admitted %v", admitted)
	}
	clock.Advance(time.Second) // the tick that sends what no call of the key carried yet

	d := func(i int) string { return start.AddDate(0, 0, i).Format("2006-01-02") }
	daily := `{"usagePlanId":"daily","startDate":"` + d(0) + `","endDate":"` + d(2) + `","values":{"kd":[[5,0],[3,2],[1,4]]}}`
	var pairs []string
	left := int64(1000)
	for i := range 3 {
		if i > 0 && start.AddDate(0, 0, i).Month() != start.AddDate(0, 0, i-1).Month() {
			left = 1000
		}
		left -= int64(admitted[i][1])
		pairs = append(pairs, "["+strconv.Itoa(admitted[i][1])+","+strconv.FormatInt(left, 10)+"]")
	}
	monthly := `{"usagePlanId":"monthly","startDate":"` + d(0) + `","endDate":"` + d(2) + `","values":{"km":[` + strings.Join(pairs, ",") + `]}}`
	qd := "/usageplans/daily/usage?startDate=" + d(0) + "&endDate=" + d(2)
	qm := "/usageplans/monthly/usage?startDate=" + d(0) + "&endDate=" + d(2) + "&keyId=km"

	// The flush is asynchronous: wait (a hang guard, not a timing assertion) until the
	// fleet's count is complete, then every reader must answer it exactly.
	deadline := time.Now().Add(time.Minute)
	for gs[0].viaAdmin("GET", qd, "").body != daily || gs[0].viaAdmin("GET", qm, "").body != monthly {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for p, g := range gs {
		for _, c := range []struct{ q, want string }{{qd, daily}, {qm, monthly}} {
			wantUsage(t, fmt.Sprintf("proxy %d gateway", p), g.viaAdmin("GET", c.q, ""), 200, c.want)
			wantUsage(t, fmt.Sprintf("proxy %d filter route", p), g.viaFilter("GET", c.q, "", usageAdminKey), 200, c.want)
		}
		m := g.metrics()
		if m["usageplans.global.usage_lost"] != 0 || m["usageplans.global.usage_flushes"] == 0 || m["usageplans.usage_api.requests"] != 2 {
			t.Errorf("proxy %d: usage_lost %d, usage_flushes %d, usage_api.requests %d; want 0, at least 1, 2", p,
				m["usageplans.global.usage_lost"], m["usageplans.global.usage_flushes"], m["usageplans.usage_api.requests"])
		}
	}
	// In Redis: the first day's usage is what was admitted; its quota count also holds the
	// call that RLS refused (after which each proxy refused by itself).
	ys := strconv.FormatInt(time.Now().Unix()/(365*86400)*(365*86400), 10)
	day0 := start.Format("20060102")
	if n := redisCount(t, env, "usageplans_plan_daily_key_kd_usage_d"+day0+"_"+ys); n != 5 {
		t.Errorf("Redis usage count of the first day %d, want 5", n)
	}
	dayStart := strconv.FormatInt(time.Now().UTC().Truncate(24*time.Hour).Unix(), 10)
	if n := redisCount(t, env, "usageplans_plan_daily_key_kd_period_d"+day0+"_"+dayStart); n != 6 {
		t.Errorf("Redis quota count of the first day %d, want 6 (5 admitted, 1 refused by RLS)", n)
	}

	// Bad input gets AWS's error shape from RLS's readers too, and changes nothing.
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/usageplans/daily/usage?startDate=" + d(2) + "&endDate=" + d(0), "", 400,
			`{"message":"endDate ` + d(0) + ` is before startDate ` + d(2) + `"}`},
		{"GET", "/usageplans/nope/usage?startDate=" + d(0) + "&endDate=" + d(2), "", 404, `{"message":"Invalid Usage Plan ID specified"}`},
		{"PATCH", "/usageplans/daily/keys/kd/usage", `{"patchOperations":[{"op":"replace","path":"/used","value":"1"}]}`, 400,
			`{"message":"Invalid patch path \"/used\" specified for op 'replace': must be \"/remaining\" (patchOperations[0])"}`},
		{"PATCH", "/usageplans/daily/keys/km/usage", remainingPatch(10), 404, `{"message":"API key \"km\" is not in usage plan \"daily\""}`},
	} {
		wantUsage(t, "gateway "+c.path, gs[1].viaAdmin(c.method, c.path, c.body), c.status, c.want)
		wantUsage(t, "filter route "+c.path, gs[1].viaFilter(c.method, c.path, c.body, usageAdminKey), c.status, c.want)
	}
	wantUsage(t, "after bad input", gs[1].viaAdmin("GET", qd, ""), 200, daily)

	// RLS stopped: AWS's 503 shape, no hang.
	env.RLS.Stop()
	for _, r := range []reply{gs[0].viaAdmin("GET", qd, ""), gs[0].viaFilter("GET", qd, "", usageAdminKey)} {
		if r.status != 503 || !strings.HasPrefix(r.body, `{"message":"The usage could not be read from the Rate Limit Service: `) ||
			r.header.Get("x-amzn-errortype") != "ServiceUnavailableException" {
			t.Errorf("RLS stopped: %d %s %v", r.status, r.body, r.header)
		}
	}
	for _, g := range gs {
		noSecrets(t, "gateway log", g.log.String(), fleetUsageConfig())
	}
}

// startFleet starts RLS + Redis and two gateways (two workers each) on one fake clock at
// fleetStart, serving config, as Envoys with allow_on_headers_stop_iteration (UpdateUsage on
// the filter's route needs it).
func startFleet(t *testing.T, config string) (*rlstest.Env, time.Time, *host.FakeClock, [2]*gwTest) {
	env := rlstest.Start(t, rlstest.Options{Config: rlsDomainFile})
	start := fleetStart(time.Now())
	clock := host.NewFakeClock(start)
	var gs [2]*gwTest
	for i := range gs {
		gs[i] = startGateway(t, gwSetup{config: config, routes: shopRoutes, workers: 2,
			clusters: map[string]string{"ratelimit": "grpc://" + env.RLS.GRPCAddr},
			options:  func(o *gateway.Options) { o.Clock, o.AllowOnHeadersStopIteration = clock, true }})
	}
	return env, start, clock, gs
}

// TestGlobalUsageLease: in LEASE the proxies reserve chunks, so RLS's quota count runs ahead
// of what was admitted; the fleet's used is still exactly what was admitted each day, from
// leases and calls alike, concurrently on both proxies, and a past day's remaining follows.
func TestGlobalUsageLease(t *testing.T) {
	_, start, clock, gs := startFleet(t, fleetUsageConfigMode(`"timeoutMs": 5000, "mode": "LEASE", "lease": {"maxChunk": 3}, "proxies": 2`))
	var admitted [3]int
	for day, n := range []int{9, 4, 6} {
		done := make(chan [2]int) // admitted, other answers
		for _, g := range gs {
			go func() {
				var c [2]int
				for range n {
					r, err := g.do(http.MethodGet, "/pets", fleetMonthly, nil)
					if err == nil && r.status == http.StatusOK {
						c[0]++
					} else {
						c[1]++
					}
				}
				done <- c
			}()
		}
		a, b := <-done, <-done
		if a[1]+b[1] != 0 {
			t.Fatalf("day %d: %d requests not admitted", day, a[1]+b[1])
		}
		admitted[day] = a[0] + b[0]
		if day < 2 {
			clock.Advance(24 * time.Hour)
		}
	}
	if admitted != [3]int{18, 8, 12} {
		t.Fatalf("admitted %v, want every request (quota 1000)", admitted)
	}
	clock.Advance(time.Second)
	d := func(i int) string { return start.AddDate(0, 0, i).Format("2006-01-02") }
	q := "/usageplans/monthly/usage?startDate=" + d(0) + "&endDate=" + d(2)
	var pairs [][2]int64
	deadline := time.Now().Add(time.Minute)
	for {
		var doc struct {
			Values map[string][][2]int64 `json:"values"`
		}
		r := gs[1].viaFilter("GET", q, "", usageAdminKey)
		if err := json.Unmarshal([]byte(r.body), &doc); err != nil || r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		pairs = doc.Values["km"]
		if len(pairs) == 3 && pairs[0][0] == 18 && pairs[1][0] == 8 && pairs[2][0] == 12 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	left := int64(1000)
	for i, p := range pairs {
		if i > 0 && start.AddDate(0, 0, i).Month() != start.AddDate(0, 0, i-1).Month() {
			left = 1000
		}
		left -= int64(admitted[i])
		// Today's remaining is RLS's: what the leases left, at most what was not admitted.
		if p[0] != int64(admitted[i]) || i < 2 && p[1] != left || i == 2 && (p[1] > left || p[1] < left-2*3) {
			t.Errorf("day %d: [used, remaining] %v, admitted %d, %d left", i, p, admitted[i], left)
		}
	}
	if len(pairs) != 3 {
		t.Errorf("pairs %v", pairs)
	}
	for p, g := range gs {
		if m := g.metrics(); m["usageplans.global.usage_lost"] != 0 || m["usageplans.global.lease_served"] == 0 {
			t.Errorf("proxy %d: usage_lost %d, lease_served %d", p, m["usageplans.global.usage_lost"], m["usageplans.global.lease_served"])
		}
	}
}

// TestGlobalUpdateUsageRace: the daily key spent its quota of 5 across two proxies; two
// admins grant "remaining 3" at once, one through a gateway's admin listener and one through
// the other proxy's filter route. The grant is applied once: the fleet then admits exactly 3
// more (a proxy RLS refused asks again after global.GrantCheckMS), and GetUsage says 8 used,
// 0 left.
func TestGlobalUpdateUsageRace(t *testing.T) {
	_, start, clock, gs := startFleet(t, fleetUsageConfig())
	admitted := gs[0].send(fleetDaily, 4) + gs[1].send(fleetDaily, 3)
	if admitted != 5 {
		t.Fatalf("admitted %d, want 5", admitted)
	}
	day := start.Format("2006-01-02")
	want := `{"usagePlanId":"daily","startDate":"` + day + `","endDate":"` + day + `","values":{"kd":[[5,3]]}}`
	answers := make(chan reply, 2)
	go func() { answers <- gs[0].viaAdmin("PATCH", "/usageplans/daily/keys/kd/usage", remainingPatch(3)) }()
	go func() {
		answers <- gs[1].viaFilter("PATCH", "/usageplans/daily/keys/kd/usage", remainingPatch(3), usageAdminKey)
	}()
	for range 2 {
		r := <-answers
		// Usage sent by a proxy's tick may not be in yet: used is 4 or 5, remaining 3.
		if r.status != 200 || r.body != want && r.body != strings.Replace(want, "[[5,3]]", "[[4,3]]", 1) {
			t.Errorf("UpdateUsage: %d %s, want %s", r.status, r.body, want)
		}
	}
	clock.Advance(10 * time.Second) // past GrantCheckMS: a refused proxy asks RLS again
	admitted = 0
	for i := range 10 {
		admitted += gs[i%2].send(fleetDaily, 1)
	}
	if admitted != 3 {
		t.Errorf("admitted %d after the grants, want exactly 3", admitted)
	}
	clock.Advance(time.Second)
	q := "/usageplans/daily/usage?startDate=" + day + "&endDate=" + day
	want = strings.Replace(want, "[[5,3]]", "[[8,0]]", 1)
	deadline := time.Now().Add(time.Minute)
	for gs[1].viaAdmin("GET", q, "").body != want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	wantUsage(t, "gateway", gs[1].viaAdmin("GET", q, ""), 200, want)
	wantUsage(t, "filter route", gs[0].viaFilter("GET", q, "", usageAdminKey), 200, want)
	for _, g := range gs {
		if n := strings.Count(g.log.String(), "usage API: PATCH"); n > 1 {
			t.Errorf("%d PATCH log lines", n)
		}
		noSecrets(t, "gateway log", g.log.String(), fleetUsageConfig())
	}
}
