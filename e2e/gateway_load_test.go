package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGatewayLoad sends 20,000 requests from 32 concurrent clients on a fixed schedule and
// checks every answer and every counter exactly: one request in ten has no key (403);
// clients 3, 7, 11, ... use k3, whose plan allows 1,000 a day (the rest get 429 Limit
// Exceeded, whichever worker answers); the others use k1 or k2, whose plan admits all.
func TestGatewayLoad(t *testing.T) {
	const (
		clients   = 32
		perClient = 625 // 20,000 in all
		tinQuota  = 1000
	)
	cfg := strings.Replace(planConfig(100000, 100000),
		`"throttle": {"rateLimit": 1, "burstLimit": 3}, "quota": {"limit": 1000, "period": "DAY"}`,
		fmt.Sprintf(`"throttle": {"rateLimit": 1, "burstLimit": 100000}, "quota": {"limit": %d, "period": "DAY"}`, tinQuota), 1)
	g := startGateway(t, gwSetup{config: cfg, routes: shopRoutes, workers: 2})
	g.client.Transport.(*http.Transport).MaxIdleConnsPerHost = clients

	keys := []string{key1, key2, key1, key3}
	var (
		ok, forbidden, limited, tinSent atomic.Int64
		failMu                          sync.Mutex
		failures                        []string
		wg                              sync.WaitGroup
	)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perClient {
				key := keys[c%len(keys)]
				if j%10 == 9 {
					key = ""
				} else if key == key3 {
					tinSent.Add(1)
				}
				r, err := g.do(http.MethodGet, "/pets", key, nil)
				switch {
				case err == nil && r.status == 200:
					ok.Add(1)
				case err == nil && r.status == 403 && key == "" && r.body == `{"message":"Forbidden"}`:
					forbidden.Add(1)
				case err == nil && r.status == 429 && key == key3 && r.body == `{"message":"Limit Exceeded"}`:
					limited.Add(1)
				default:
					failMu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%d %q %v", r.status, r.body, err))
					}
					failMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d requests from %d clients in %v (%.0f/s on %d workers)", clients*perClient, clients, elapsed.Round(time.Millisecond),
		float64(clients*perClient)/elapsed.Seconds(), 2)

	if len(failures) > 0 {
		t.Errorf("unexpected answers (first %d): %q", len(failures), failures)
	}
	// 62 of every client's 625 requests have no key; 8 clients use k3.
	const (
		total    = clients * perClient
		noKey    = clients * 62
		tinTotal = 8 * (perClient - 62)
		wantOK   = total - noKey - (tinTotal - tinQuota)
	)
	if tinSent.Load() != tinTotal {
		t.Fatalf("the schedule sent %d requests with k3, want %d", tinSent.Load(), tinTotal)
	}
	if ok.Load() != wantOK || forbidden.Load() != noKey || limited.Load() != tinTotal-tinQuota {
		t.Errorf("200: %d, 403: %d, 429: %d; want %d, %d, %d", ok.Load(), forbidden.Load(), limited.Load(), wantOK, noKey, tinTotal-tinQuota)
	}
	g.wantStats(map[string]string{
		"usageplans_requests_allowed":                                            itoa(wantOK),
		"usageplans_requests_forbidden":                                          itoa(noKey),
		"usageplans_requests_quota_exceeded":                                     itoa(tinTotal - tinQuota),
		"usageplans_requests_throttled":                                          "0",
		"usageplans_requests_cas_exhausted":                                      "0",
		"usageplans_requests_failure":                                            "0",
		"usageplans_plan_tin_allowed":                                            itoa(tinQuota),
		"usageplans_plan_gold_allowed":                                           itoa(wantOK - tinQuota),
		"envoy_http_downstream_rq_total{" + hcm + "}":                            itoa(total),
		`envoy_http_downstream_rq_xx{envoy_response_code_class="2",` + hcm + "}": itoa(wantOK),
		`envoy_http_downstream_rq_xx{envoy_response_code_class="4",` + hcm + "}": itoa(total - wantOK),
		`envoy_http_downstream_rq_xx{envoy_response_code_class="5",` + hcm + "}": "0",
		`envoy_http_downstream_rq_time_bucket{` + hcm + `,le="+Inf"}`:            itoa(total),
		"usageplans_gateway_requests_upstream":                                   itoa(wantOK),
		"usageplans_gateway_requests_local":                                      itoa(total - wantOK),
		"usageplans_gateway_requests_client_gone":                                "0",
	})
	if n := strings.Count(g.access.String(), " access "); n != total {
		t.Errorf("%d access log lines, want %d", n, total)
	}
}
