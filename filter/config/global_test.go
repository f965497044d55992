package config

import (
	"strings"
	"testing"
)

const globalBase = `{
  "apis": [{"id": "a", "resources": [{"path": "/x", "resourceMethods": {"GET": {"apiKeyRequired": true}}}],
            "stages": [{"stageName": "s", "methodSettings": {"*/*": {"throttlingRateLimit": 30, "throttlingBurstLimit": 10}}}]}],
  "routes": [{"match": {"pathPrefix": "/"}, "apiId": "a", "stage": "s"}],
  "usagePlans": {"items": [
    {"id": "p", "apiStages": [{"apiId": "a", "stage": "s", "throttle": {"/x/GET": {"rateLimit": 9, "burstLimit": 4}}}],
     "throttle": {"rateLimit": 3, "burstLimit": 7}, "quota": {"limit": 1000, "period": "MONTH"}}
  ]},
  "apiKeys": [{"id": "k", "value": "Key00000000000000000000001"}],
  "usagePlanKeys": [{"usagePlanId": "p", "keyId": "k"}],
  "accountThrottle": {"rateLimit": 100, "burstLimit": 50}`

func globalConfig(global string) string { return globalBase + `, "global": ` + global + `}` }

func TestGlobalDefaults(t *testing.T) {
	c := mustParse(t, globalConfig(`{"cluster": "ratelimit", "domain": "usageplans"}`))
	want := Global{Cluster: "ratelimit", Domain: "usageplans", TimeoutMS: 200, Mode: Sync, MaxChunk: 20, Proxies: 1, FailureMode: GlobalClosed}
	if c.Global == nil || *c.Global != want {
		t.Fatalf("Global = %+v, want %+v", c.Global, want)
	}
	if c.Account.Throttle.Rate != 100 || c.Account.Throttle.Burst != 50 {
		t.Errorf("one proxy: account throttle %+v changed", c.Account.Throttle)
	}
	if mustParse(t, globalBase+`}`).Global != nil {
		t.Error("no global section: Global is not nil")
	}
}

func TestGlobalAllFields(t *testing.T) {
	c := mustParse(t, globalConfig(`{"cluster": "rls", "domain": "up.prod-1", "timeoutMs": 60000, "mode": "LEASE",
		"lease": {"maxChunk": 50}, "proxies": 3, "failureMode": "LOCAL"}`))
	want := Global{Cluster: "rls", Domain: "up.prod-1", TimeoutMS: 60000, Mode: Lease, MaxChunk: 50, Proxies: 3, FailureMode: GlobalLocal}
	if *c.Global != want {
		t.Fatalf("Global = %+v, want %+v", *c.Global, want)
	}
}

// Throttles stay local in global mode: each proxy gets rate/proxies and burst/proxies
// rounded up, for every level.
func TestGlobalDividesThrottles(t *testing.T) {
	c := mustParse(t, globalConfig(`{"cluster": "rls", "domain": "d", "proxies": 3, "failureMode": "OPEN"}`))
	m := c.Match("", "", "/x", "GET")
	plan := c.Plans[0]
	var buf [4]Limit
	got := map[string][2]float64{}
	for _, l := range c.AppendLimits(buf[:0], plan, m) {
		got[l.ID] = [2]float64{l.Throttle.Rate, float64(l.Throttle.Burst)}
	}
	want := map[string][2]float64{
		"plan:p:a/s:/x/GET": {3, 2},          // 9/3, ceil(4/3)
		"plan:p":            {1, 3},          // 3/3, ceil(7/3)
		"stage:a/s:/x/GET":  {10, 4},         // 30/3, ceil(10/3)
		"account":           {100.0 / 3, 17}, // ceil(50/3)
	}
	if len(got) != len(want) {
		t.Fatalf("limits %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: rate, burst = %v, want %v", id, got[id], w)
		}
	}
	if plan.Throttle.Rate != 1 || plan.Throttle.Burst != 3 {
		t.Errorf("Plan.Throttle = %+v, want the proxy's share", *plan.Throttle)
	}
}

func TestGlobalErrors(t *testing.T) {
	for _, tc := range []struct{ global, want string }{
		{`{"domain": "d"}`, `global.cluster: required`},
		{`{"cluster": "", "domain": "d"}`, `global.cluster: must be a cluster name of 1 to 1024 characters`},
		{`{"cluster": 3, "domain": "d"}`, `global.cluster: must be a string`},
		{`{"cluster": "c"}`, `global.domain: required`},
		{`{"cluster": "c", "domain": "up_plans"}`, `global.domain: must be 1 to 128 letters, digits, '-' and '.'`},
		{`{"cluster": "c", "domain": ""}`, `global.domain: must be 1 to 128 letters`},
		{`{"cluster": "c", "domain": "d", "timeoutMs": 0}`, `global.timeoutMs: must be an integer from 1 to 60000, got 0`},
		{`{"cluster": "c", "domain": "d", "timeoutMs": 60001}`, `global.timeoutMs: must be an integer from 1 to 60000, got 60001`},
		{`{"cluster": "c", "domain": "d", "timeoutMs": "200"}`, `global.timeoutMs: must be an integer from 1 to 60000, got "200"`},
		{`{"cluster": "c", "domain": "d", "mode": "ASYNC"}`, `global.mode: must be SYNC or LEASE, got`},
		{`{"cluster": "c", "domain": "d", "lease": {"maxChunk": 5}}`, `global.lease: only used when mode is LEASE`},
		{`{"cluster": "c", "domain": "d", "mode": "LEASE", "lease": {"maxChunk": 0}}`, `global.lease.maxChunk: must be an integer from 1 to 100000, got 0`},
		{`{"cluster": "c", "domain": "d", "mode": "LEASE", "lease": {"chunk": 3}}`, `global.lease.chunk: unknown field`},
		{`{"cluster": "c", "domain": "d", "proxies": 0}`, `global.proxies: must be an integer from 1 to 10000, got 0`},
		{`{"cluster": "c", "domain": "d", "failureMode": "FAIL"}`, `global.failureMode: must be CLOSED, OPEN or LOCAL`},
		{`{"cluster": "c", "domain": "d", "timeout": 3}`, `global.timeout: unknown field`},
		{`"rls"`, `global: must be an object`},
	} {
		_, err := Parse([]byte(globalConfig(tc.global)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.global, err, tc.want)
		}
	}
}

func TestGlobalQuotaErrors(t *testing.T) {
	for _, tc := range []struct{ quota, want string }{
		{`{"limit": 4294967296, "period": "DAY"}`, `usagePlans.items[0].quota.limit: must be at most 4294967295 in global mode (RLS counts in 32 bits), got 4294967296`},
		{`{"limit": 10, "offset": 2, "period": "DAY"}`, `usagePlans.items[0].quota.offset: not supported in global mode`},
	} {
		doc := strings.Replace(globalConfig(`{"cluster": "c", "domain": "d"}`), `{"limit": 1000, "period": "MONTH"}`, tc.quota, 1)
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.quota, err, tc.want)
		}
		// The same quota is fine in local mode.
		if _, err := Parse([]byte(strings.Replace(globalBase+`}`, `{"limit": 1000, "period": "MONTH"}`, tc.quota, 1))); err != nil {
			t.Errorf("%s in local mode: %v", tc.quota, err)
		}
	}
}
