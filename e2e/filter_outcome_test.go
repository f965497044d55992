package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usageplans/usageplans/host"
)

// TestFilterOutcomeNames (issue 8, finding 4) pins one outcome name per request across the
// filter's log line, its filter state (usageplans_outcome, which access logs read) and the
// metrics, through the built module. With casRetries 1, two workers send requests of one
// key and keyless ones, all of which take an account bucket token, while CAS loops give up:
// on the key's own entry the request fails, a CLOSED 500, named failure everywhere (before:
// the log said failure, the filter state and the metric cas_exhausted, and
// usageplans.requests.failure stayed 0); on the shared account bucket it is admitted, named
// allowed everywhere. cas_exhausted is the cause: the reason of both log lines, and a
// counter beside the outcome. Rounds go on until both kinds were seen, for at most a minute.
func TestFilterOutcomeNames(t *testing.T) {
	const workers, perRound = 2, 100
	cfg := strings.Replace(fltOptions(`"casRetries": 1`), `"accountThrottle": false`,
		`"accountThrottle": {"rateLimit": 0, "burstLimit": 1000000000}`, 1)
	e := startFilter(t, fltSetup{workers: workers, config: cfg})
	const (
		failLine    = `usageplans: state failure: outcome=failure reason="cas_exhausted" route=pets stage=pets/prod resource=/pets method=GET key_id=bench-key plan=bench error="state: compare-and-swap attempts exhausted: 1 attempts on \"usageplans:key:bench:bench-key\""`
		givebackPre = `usageplans: give-back failed, a shared bucket stays a token short: outcome=failure reason="cas_exhausted" `
		sharedLine  = `usageplans: shared bucket contended, admitted without its token: outcome=allowed reason="cas_exhausted" route=pets stage=pets/prod resource=/pets method=GET key_id=bench-key plan=bench error="state: compare-and-swap attempts exhausted: 1 attempts on \"usageplans:account\""`
		keylessLine = `usageplans: shared bucket contended, admitted without its token: outcome=allowed reason="cas_exhausted" route=pets stage=pets/prod resource=/ method=GET error="state: compare-and-swap attempts exhausted: 1 attempts on \"usageplans:account\""`
	)
	// The filter's lines, by worker: a VM runs one stream at a time, so the lines a worker
	// gathered during one request are that request's.
	lines := make([][]string, workers)
	e.scan.setTap(func(l host.LogEntry) {
		if l.Source == host.SourceProxyLog && strings.HasPrefix(l.Message, "usageplans: ") {
			lines[l.Worker] = append(lines[l.Worker], l.Message)
		}
	})
	takeLines := func(w int) []string {
		e.scan.mu.Lock()
		defer e.scan.mu.Unlock()
		l := lines[w]
		lines[w] = nil
		return l
	}
	takeLines(0)
	takeLines(1)
	// Besides the workers, a goroutine rewrites both entries as they are (a CAS write of
	// the value it read: no count changes, only the entry's CAS), so that the workers' loops
	// give up often enough.
	stop := make(chan struct{})
	var spinner sync.WaitGroup
	spinner.Go(func() {
		sd := e.rt.SharedData("usageplans")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := "usageplans:account"
			if i%2 == 0 {
				k = "usageplans:key:bench:bench-key"
			}
			if v, cas, ok := sd.Get(k); ok {
				sd.Set(k, v, cas)
			}
		}
	})
	defer spinner.Wait()
	defer close(stop)

	var mu sync.Mutex
	var failed, allowed, contended, usageLost, sent uint64
	const usageLostPre = `usageplans: usage entry not read or not written (state: compare-and-swap attempts exhausted: 1 attempts on "usageplans:usage:bench:bench-key"): outcome=allowed `
	deadline := time.Now().Add(time.Minute)
	for failed == 0 || contended == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d requests, %d failed on the key's entry and %d were admitted past a contended account bucket; want some of each",
				sent, failed, contended)
		}
		e.clock.Advance(time.Second) // the bench key's bucket (10,000/s) refills
		var wg sync.WaitGroup
		for w, vm := range e.plugin.VMs() {
			wg.Go(func() {
				for i := range perRound {
					req, contendedLine := fltGet("/pets", apiKey(fltBench)), sharedLine
					if i%2 == 1 { // keyless: the account bucket alone
						req, contendedLine = fltGet("/"), keylessLine
					}
					s, err := vm.NewStream()
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := s.RequestHeaders(req.Headers, true); err != nil {
						t.Error(err)
					}
					outcome, _ := s.Property("usageplans_outcome")
					local := s.LocalResponse()
					_ = s.Close()
					got := takeLines(w)
					mu.Lock()
					sent++
					switch {
					case local != nil && local.Status == 500:
						failed++
						if string(outcome) != "failure" || len(got) == 0 || got[len(got)-1] != failLine ||
							len(got) == 2 && !strings.HasPrefix(got[0], givebackPre) || len(got) > 2 {
							t.Errorf("a 500: filter state %q, log lines %q; want failure and\n%s", outcome, got, failLine)
						}
					case local == nil:
						allowed++
						// The two workers also race on the key's usage record (plan bench has a
						// quota): a lost race there is its own warn line and counter.
						if len(got) > 0 && strings.HasPrefix(got[len(got)-1], usageLostPre) {
							usageLost++
							got = got[:len(got)-1]
						}
						if string(outcome) != "allowed" || len(got) > 1 || len(got) == 1 && got[0] != contendedLine {
							t.Errorf("admitted: filter state %q, log lines %q; want allowed, and none or\n%s", outcome, got, contendedLine)
						}
						if len(got) == 1 {
							contended++
						}
					default:
						t.Errorf("answered %d, filter state %q, log lines %q", local.Status, outcome, got)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	t.Logf("%d requests: %d failed (CAS on the key's entry), %d admitted, %d of them past a contended account bucket",
		sent, failed, allowed, contended)
	e.wantCounters(t, map[string]uint64{
		"usageplans.requests.failure": failed, "usageplans.plan.bench.failure": failed,
		"usageplans.requests.allowed": allowed, "usageplans.requests.cas_exhausted": failed + contended,
		"usageplans.usage.failed": usageLost,
	})
}
