package e2e

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/usageplans/usageplans/internal/rlstest"
)

// rlsDomainFile is what `usageplans ratelimit-config` prints for the domain "usageplans".
const rlsDomainFile = `domain: usageplans
descriptors:
  - key: usageplans-check
    value: domain
    rate_limit:
      unit: YEAR
      requests_per_unit: 1
`

// startGlobal starts the built module in its own host (one proxy) with workers VMs, in
// global mode against env's RLS.
func startGlobal(t *testing.T, env *rlstest.Env, workers int, global string) *fltEnv {
	t.Helper()
	return startFilter(t, fltSetup{workers: workers, start: time.Now(),
		clusters: map[string]string{"ratelimit": "grpc://" + env.RLS.GRPCAddr},
		config:   fltGlobal(global)})
}

// hammerRedisKey is RLS's Redis key of the hammer key's DAY quota today.
func hammerRedisKey(now time.Time) string {
	day := now.UTC().Truncate(24 * time.Hour)
	return "usageplans_plan_hammer_key_hammer-key_period_d" + day.Format("20060102") + "_" + strconv.FormatInt(day.Unix(), 10)
}

func redisCount(t *testing.T, env *rlstest.Env, key string) int {
	t.Helper()
	v, err := env.Redis.Do("GET", key)
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	n, _ := strconv.Atoi(v)
	return n
}

// Through the built module against the real RLS and Redis: a quota of 100 (plan hammer) is
// admitted exactly 100 times in SYNC by 2 workers hammering it at once, and RLS counted
// every request.
func TestFilterGlobalSyncExact(t *testing.T) {
	env := rlstest.Start(t, rlstest.Options{Config: rlsDomainFile})
	e := startGlobal(t, env, 2, `{"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": 5000}`)
	admitted, others := e.hammer(t, fltHammer, func(_, sent, _ int) bool { return sent < 75 })
	if admitted != 100 || others[429] != 50 || len(others) != 1 {
		t.Errorf("admitted %d, others %v; want exactly 100 and 50 429s", admitted, others)
	}
	// Each call is counted in Redis, refused ones too; after RLS's first OVER_LIMIT the proxy
	// refuses by itself, so at most one refused call per worker was in flight.
	m := e.metrics()
	calls := m["usageplans.global.calls"]
	if n := redisCount(t, env, hammerRedisKey(time.Now())); uint64(n) != calls || calls < 101 || calls > 102 ||
		m["usageplans.global.refused_local"] != 150-calls || m["usageplans.requests.allowed"] != 100 {
		t.Errorf("Redis count %d, calls %d, refused locally %d; want 101 or 102 calls, all counted", n, calls, m["usageplans.global.refused_local"])
	}
}

// LEASE across two proxies (two hosts, two workers each) sharing one RLS: never over the
// quota, under by at most proxies × maxChunk, and far fewer calls than requests.
func TestFilterGlobalLeaseBound(t *testing.T) {
	env := rlstest.Start(t, rlstest.Options{Config: rlsDomainFile})
	const proxies, chunk, quota = 2, 10, 100
	global := `{"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": 5000, "mode": "LEASE", "lease": {"maxChunk": 10}, "proxies": 2}`
	es := []*fltEnv{startGlobal(t, env, 2, global), startGlobal(t, env, 2, global)}
	var wg sync.WaitGroup
	var admitted [proxies]int64
	for i, e := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			admitted[i], _ = e.hammer(t, fltHammer, func(_, sent, _ int) bool { return sent < 60 })
		}()
	}
	wg.Wait()
	total := admitted[0] + admitted[1]
	if total > quota || total < quota-proxies*chunk {
		t.Errorf("admitted %d (%v), want within [%d, %d]", total, admitted, quota-proxies*chunk, quota)
	}
	calls := es[0].metrics()["usageplans.global.calls"] + es[1].metrics()["usageplans.global.calls"]
	t.Logf("LEASE: %d of a quota of %d admitted over %d proxies (bound %d), %d RLS calls for 240 requests", total, quota, proxies, quota-proxies*chunk, calls)
}

// RLS stopped mid-run, then Redis stopped: each failureMode exactly, through the module.
func TestFilterGlobalOutages(t *testing.T) {
	env := rlstest.Start(t, rlstest.Options{Config: rlsDomainFile})
	key := hammerRedisKey(time.Now())

	closed := startGlobal(t, env, 1, `{"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": 1000, "failureMode": "CLOSED"}`)
	closed.wantStatuses(t, fltHammer, 200, 200)
	env.RLS.Stop()
	closed.wantStatuses(t, fltHammer, 500, 500, 500)
	wantReply(t, closed.get("/pets", apiKey(fltHammer)), 500, fltFailure, fltFailureBody)
	closed.wantStatuses(t, fltGold, 200) // no quota: no call
	closed.wantCounters(t, map[string]uint64{"usageplans.global.fallback.CLOSED": 4})
	env.RLS.Start()
	closed.wantStatuses(t, fltHammer, 200)

	if _, err := env.Redis.Do("DEL", key); err != nil {
		t.Fatal(err)
	}
	// LOCAL, 2 proxies: after 10 admitted RLS says 90 remain, so this proxy's share of an
	// outage is 45.
	local := startGlobal(t, env, 1, `{"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": 1000, "proxies": 2, "failureMode": "LOCAL"}`)
	for range 10 {
		local.wantStatuses(t, fltHammer, 200)
	}
	env.RLS.Stop()
	admitted := 0
	for range 50 {
		if local.get("/pets", apiKey(fltHammer)).Status == 200 {
			admitted++
		}
	}
	if admitted != 45 {
		t.Errorf("LOCAL admitted %d during the outage, want 45", admitted)
	}
	env.RLS.Start()
	local.wantStatuses(t, fltHammer, 200, 200) // the first answered call, then the one carrying the replay
	if n := redisCount(t, env, key); n != 10+1+45+1 {
		t.Errorf("Redis count %d after the outage, want %d (the 45 replayed once)", n, 10+1+45+1)
	}

	// Redis stopped: RLS answers gRPC errors; CLOSED answers 500.
	env.Redis.Stop()
	closed.wantStatuses(t, fltHammer, 500, 500)
	env.Redis.Start()
	var last int
	for range 30 { // RLS's stale Redis connections fail one call each first
		if last = closed.get("/pets", apiKey(fltHammer)).Status; last == 200 {
			break
		}
	}
	if last != 200 {
		t.Errorf("RLS never answered after Redis came back: last status %d", last)
	}
}
