package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/usageplans/usageplans/host"
)

// noopNsPerOp is the floor measured by BenchmarkRequest/noop in this run; the other
// sub-benchmarks report their cost as a multiple of it ("x-noop"), so the ratio is what the
// filter adds to a request whatever the machine.
var noopNsPerOp float64

// BenchmarkRequest is one whole request through the host on one VM (context create, request
// headers, the upstream unless the filter answered, response headers, log, done, delete),
// for the no-op module and for the filter's paths. The host logs at info, Envoy's default, so
// the rejections' log lines are part of their cost.
func BenchmarkRequest(b *testing.B) {
	for _, bc := range []struct {
		name   string
		wasm   []byte
		req    *host.Request
		status int
		warmup int           // requests before timing (to spend a bucket or a quota)
		tick   time.Duration // clock advance per request
	}{
		{"noop", noopWasm, fltGet("/pets", apiKey(fltBench)), 200, 0, 0},
		{"allow", nil, fltGet("/pets", apiKey(fltBench)), 200, 0, time.Millisecond},
		{"forbidden_unknown_key", nil, fltGet("/pets", apiKey(fltUnknown)), 403, 0, 0},
		{"forbidden_no_key", nil, fltGet("/pets"), 403, 0, 0},
		{"throttled", nil, fltGet("/pets", apiKey(fltTight)), 429, 2, 0},
		{"quota_exceeded", nil, fltGet("/pets", apiKey(fltDaily)), 429, 3, 0},
		{"not_governed", nil, fltGet("/admin/users", apiKey(fltBench)), 200, 0, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := startFilter(b, fltSetup{wasm: bc.wasm, logLevel: host.LogInfo, start: time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)})
			vm := e.plugin.VMs()[0]
			ctx := context.Background()
			up := func(context.Context, *host.Request) (*host.Response, error) {
				return &host.Response{Status: 200, Headers: host.Headers{{"server", "upstream"}}}, nil
			}
			for range bc.warmup {
				vm.Do(ctx, bc.req, up)
			}
			for b.Loop() {
				if bc.tick > 0 {
					e.clock.Advance(bc.tick)
				}
				resp, err := vm.Do(ctx, bc.req, up)
				if err != nil || resp.Status != bc.status {
					b.Fatalf("%v %+v, want %d", err, resp, bc.status)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if bc.wasm != nil {
				noopNsPerOp = ns
			} else if noopNsPerOp > 0 {
				b.ReportMetric(ns/noopNsPerOp, "x-noop")
			}
		})
	}
}
