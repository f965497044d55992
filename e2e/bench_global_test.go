package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/usageplans/usageplans/host"
	"github.com/usageplans/usageplans/internal/rlstest"
)

// globalLocalP50 and globalLocalP99 are BenchmarkGlobal/local's latencies in this run, in
// ns; sync and lease report theirs as multiples of them ("p50-x-local", "p99-x-local").
var globalLocalP50, globalLocalP99 float64

// BenchmarkGlobal is the latency of one admitted request of a key with a quota (plan bench:
// 10^9 a MONTH) through the host with the built module, one VM, one request at a time: in
// local mode, and in global mode against a real RLS and Redis on loopback, SYNC (one RLS
// call per request) and LEASE (maxChunk 20: one call per 20 requests). Each reports the
// median and the 99th percentile of its requests (p50-ns, p99-ns); sync and lease also as
// ratios to local's, measured in the same run: the latency global mode adds. Without RLS
// or redis-server (make deps) sync and lease skip, saying so.
func BenchmarkGlobal(b *testing.B) {
	for _, bc := range []struct {
		name   string
		global string // "" for local mode
	}{
		{"local", ""},
		{"sync", `{"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": 1000}`},
		{"lease", `{"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": 1000, "mode": "LEASE", "lease": {"maxChunk": 20}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := fltSetup{logLevel: host.LogInfo, start: time.Now()}
			if bc.global != "" {
				// rlstest skips without RLS or redis-server (fails under CI=true); go test
				// shows a benchmark's skip only with -v, so say it on the output too.
				defer func() {
					if b.Skipped() {
						fmt.Printf("%s: skipped: no RLS or no redis-server (make deps builds RLS; apt-get install redis-server)\n", b.Name())
					}
				}()
				env := rlstest.Start(b, rlstest.Options{Config: rlsDomainFile})
				s.config, s.clusters = fltGlobal(bc.global), map[string]string{"ratelimit": "grpc://" + env.RLS.GRPCAddr}
			}
			e := startFilter(b, s)
			req := fltGet("/pets", apiKey(fltBench))
			var lat []time.Duration
			for b.Loop() {
				e.clock.Advance(time.Millisecond) // the plan's 10,000/s bucket refills
				start := time.Now()
				resp := e.do(req)
				lat = append(lat, time.Since(start))
				if resp.Status != 200 {
					b.Fatalf("%d %s, want 200", resp.Status, resp.Body)
				}
			}
			slices.Sort(lat)
			p50, p99 := float64(lat[len(lat)/2]), float64(lat[min(len(lat)-1, len(lat)*99/100)])
			b.ReportMetric(p50, "p50-ns")
			b.ReportMetric(p99, "p99-ns")
			if bc.global == "" {
				globalLocalP50, globalLocalP99 = p50, p99
			} else if globalLocalP50 > 0 {
				b.ReportMetric(p50/globalLocalP50, "p50-x-local")
				b.ReportMetric(p99/globalLocalP99, "p99-x-local")
			}
			if calls := e.metrics()["usageplans.global.calls"]; bc.global != "" {
				b.ReportMetric(float64(calls)/float64(len(lat)), "calls/op")
			}
		})
	}
}
