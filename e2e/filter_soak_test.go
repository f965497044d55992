package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/host"
)

// The soak (issue 2 §5): Go's runtime calls poll_oneoff once its poller is initialised (a
// timer, a sleep), and Envoy before mid-2026 answers ENOSYS, which kills the VM (golang/go
// issue 78513); from mid-2026 it answers 0 events at once, so a sleeping filter would spin.
// The filter must never get there, however often it collects garbage, under either cpp-host
// (issue 11: 50,000 requests each, where one profile had 100,000). GOGC=1 (through the VM's
// environment) makes the runtime collect after almost every allocation burst, and
// GODEBUG=gctrace=1 makes it print one stderr line per collection, which is how the
// collections are counted.
func TestFilterSoak(t *testing.T) {
	for _, profile := range host.WASIProfiles() {
		t.Run(string(profile), func(t *testing.T) { soak(t, profile) })
	}
}

func soak(t *testing.T, profile host.WASIProfile) {
	const requests = 50000
	e := startFilter(t, fltSetup{env: [][2]string{{"GOGC", "1"}, {"GODEBUG", "gctrace=1"}}, wasi: profile,
		config: fltOptions(`"rateLimitHeaders": true`, `"apiKeyQueryParameter": "api_key"`)})
	vm := e.plugin.VMs()[0]
	// Requests that make the guest allocate: a long query string it parses and rewrites, and a
	// long bogus key it reads (and, being no key value, never hashes).
	pad := strings.Repeat("abcdefgh", 4096)
	start := time.Now()
	var pagesHalf uint32
	for i := range requests {
		e.clock.Advance(time.Millisecond) // 10 tokens a millisecond for the bench plan: never throttled
		var req *host.Request
		want := 200
		switch i % 4 {
		case 0:
			req = fltGet("/pets", apiKey(fltBench), [2]string{"accept", "application/json"})
		case 1:
			req = fltGet("/pets/42?pad="+pad+"&api_key="+fltBench+"&fields=name,age", [2]string{"user-agent", "soak"})
		case 2:
			req, want = fltGet("/pets", apiKey(pad)), 403
		case 3:
			req, want = fltGet("/nowhere"), 403
		}
		resp := e.do(req)
		if resp.Status != want {
			t.Fatalf("request %d: %d %q, want %d", i, resp.Status, resp.Body, want)
		}
		if i == requests/2 {
			pagesHalf = vm.MemoryPages()
		}
	}
	elapsed := time.Since(start)
	if err := vm.Failed(); err != nil {
		t.Fatalf("the VM failed: %v", err)
	}
	calls := vm.WASICalls()
	if n := calls["poll_oneoff"]; n != 0 {
		t.Errorf("poll_oneoff called %d times under %s; Envoy 1.33 answers ENOSYS and the VM dies", n, profile)
	}
	e.scan.mu.Lock()
	gcs := e.scan.gcs
	e.scan.mu.Unlock()
	t.Logf("%d requests in %v (%v each), %d garbage collections, memory %d pages at half-time, %d at the end; WASI calls %v",
		requests, elapsed.Round(time.Millisecond), elapsed/requests, gcs, pagesHalf, vm.MemoryPages(), calls)
	// Go's memory never shrinks; over the second half it must not grow either (1 MiB slack).
	if end := vm.MemoryPages(); end > pagesHalf+16 {
		t.Errorf("memory grew from %d to %d pages over the second half", pagesHalf, end)
	}
	if gcs < requests/50 {
		t.Errorf("only %d garbage collections: the soak proves little", gcs)
	}
	e.wantCounters(t, map[string]uint64{"usageplans.requests.allowed": requests / 2, "usageplans.requests.forbidden": requests / 4,
		"usageplans.requests.unmatched": requests / 4, "usageplans.requests.failure": 0, "usageplans.panics_recovered": 0})
}
