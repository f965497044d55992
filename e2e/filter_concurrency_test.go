package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hammer runs requests with key on every worker of e at once, each worker from its own
// goroutine, until more(worker, sent, last status) says stop; it returns how many were admitted and how many got each
// other status. Every request is a whole stream (create → delete) on that worker's VM.
func (e *fltEnv) hammer(t *testing.T, key string, more func(worker, sent, last int) bool) (admitted int64, others map[int]int64) {
	t.Helper()
	var ok atomic.Int64
	var mu sync.Mutex
	others = map[int]int64{}
	var wg sync.WaitGroup
	for w, vm := range e.plugin.VMs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for sent := 0; more(w, sent, last); sent++ {
				resp, err := vm.Do(context.Background(), fltGet("/pets", apiKey(key)), e.upstreamOK)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				switch last = resp.Status; last {
				case 200:
					ok.Add(1)
				default:
					mu.Lock()
					others[resp.Status]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load(), others
}

// Four workers (Envoy's threads, one VM each) spend one key's quota of 100 at once, over
// the shared data's compare-and-swap: exactly 100 are admitted, whatever the interleaving.
// (casRetries is raised so that no request meets the failure policy: a CAS loop giving up
// is a 500 under CLOSED, counted, and tested natively and in core.)
func TestFilterConcurrentQuotaExact(t *testing.T) {
	const workers, perWorker, quota = 4, 150, 100
	e := startFilter(t, fltSetup{workers: workers, config: fltOptions(`"casRetries": 1000`)})
	admitted, others := e.hammer(t, fltHammer, func(_, sent, _ int) bool { return sent < perWorker })
	if admitted != quota || others[429] != workers*perWorker-quota || len(others) != 1 {
		t.Errorf("admitted %d, others %v; want exactly %d admitted and %d 429s", admitted, others, quota, workers*perWorker-quota)
	}
	e.wantCounters(t, map[string]uint64{"usageplans.plan.hammer.allowed": quota,
		"usageplans.plan.hammer.quota_exceeded": workers*perWorker - quota, "usageplans.requests.cas_exhausted": 0,
		"usageplans.requests.failure": 0})
}

// Four workers hammer one key's bucket (10/s, burst 20) while the clock moves 2 s in 10 ms
// steps: never more than burst + rate × elapsed = 40 admitted. Once the clock stops, each
// worker keeps going until it is refused: the bucket is then empty, so at least the burst was
// handed out.
func TestFilterConcurrentBucketBound(t *testing.T) {
	const workers = 4
	e := startFilter(t, fltSetup{workers: workers, config: fltOptions(`"casRetries": 1000`)})
	// The clock moves between requests, by the request count rather than by wall time, so
	// the test takes no longer on a slow machine; the workers still interleave freely.
	var sent, ticks atomic.Int64
	admitted, others := e.hammer(t, fltBucket, func(_, _, last int) bool {
		if n := ticks.Load(); sent.Add(1)%8 == 0 && n < 200 && ticks.CompareAndSwap(n, n+1) {
			e.clock.Advance(10 * time.Millisecond)
		}
		return ticks.Load() < 200 || last != 429
	})
	const bound = 20 + 10*2
	if admitted > bound || admitted < 20 {
		t.Errorf("admitted %d over 2 s of host time; want between the burst (20) and burst + rate × elapsed (%d)", admitted, bound)
	}
	t.Logf("%d requests, %d admitted", sent.Load(), admitted)
	if len(others) != 1 || others[429] == 0 {
		t.Errorf("other statuses %v, want only 429s", others)
	}
	e.wantCounters(t, map[string]uint64{"usageplans.plan.bucket.allowed": uint64(admitted), "usageplans.requests.failure": 0,
		"usageplans.requests.cas_exhausted": 0})
	if got := e.clock.Now().Sub(fltT0); got != 2*time.Second {
		t.Fatalf("the clock moved %v, want 2s", got)
	}
}
