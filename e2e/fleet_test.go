package e2e

// The fleet: three `usageplans serve` processes (two workers each), built from this source,
// behind one real RLS and Redis, with real HTTP on loopback. What issue 9 promises a
// platform team: one quota per key across proxies, through restarts, swaps and outages.

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usageplans/usageplans/internal/rlstest"
)

const (
	fleetProxies = 3
	fleetClients = 24 // concurrent clients of a load, spread over the proxies
)

// fleetPlans are the plans of every fleet configuration: one key per plan and per property
// under test, so that each sub-test has a count of its own in Redis.
var fleetPlans = []struct {
	name  string
	limit int
}{
	{"exact", 1000}, {"kill", 1000}, {"swap", 1000}, {"rlsdown", 1000}, {"redisdown", 1000},
	{"lease", 1000}, {"local-rls", 300}, {"local-redis", 300}, {"open-rls", 300},
	{"paused", 300},
}

// fleetKey is the key value of plan name's one key (id "k-NAME").
func fleetKey(name string) string {
	return (fleetKeyPrefix + strings.ReplaceAll(name, "-", "") + strings.Repeat("0", 30))[:30]
}

const fleetKeyPrefix = "FleetKey"

// fleetConfig is a configuration with every fleet plan (a DAY quota, no throttle) on one
// API, and global as its "global" section.
func fleetConfig(global string) string {
	var plans, keys, links []string
	for _, p := range fleetPlans {
		plans = append(plans, fmt.Sprintf(`{"id": %q, "apiStages": [{"apiId": "shop", "stage": "prod"}], "quota": {"limit": %d, "period": "DAY"}}`, p.name, p.limit))
		keys = append(keys, fmt.Sprintf(`{"id": "k-%s", "value": %q}`, p.name, fleetKey(p.name)))
		links = append(links, fmt.Sprintf(`{"usagePlanId": %q, "keyId": "k-%s"}`, p.name, p.name))
	}
	return `{
  "apis": [{"id": "shop", "resources": [{"path": "/pets", "resourceMethods": {"GET": {"apiKeyRequired": true}}}], "stages": [{"stageName": "prod"}]}],
  "routes": [{"name": "shop", "match": {"routeName": "default"}, "apiId": "shop", "stage": "prod"}],
  "usagePlans": [` + strings.Join(plans, ",\n    ") + `],
  "apiKeys": [` + strings.Join(keys, ",\n    ") + `],
  "usagePlanKeys": [` + strings.Join(links, ",\n    ") + `],
  "accountThrottle": false,
  "global": ` + global + `
}`
}

// fleetRedisKey is RLS's Redis key of plan name's quota on day (UTC).
func fleetRedisKey(name string, day time.Time) string {
	return "usageplans_plan_" + name + "_key_k-" + name + "_period_d" + day.Format("20060102") + "_" + strconv.FormatInt(day.Unix(), 10)
}

// buildUsageplans builds the usageplans command from this source into a directory of t.
func buildUsageplans(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "usageplans")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/usageplans")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/usageplans: %v\n%s", err, out)
	}
	return bin
}

// fleetProxy is one `usageplans serve` process.
type fleetProxy struct {
	addr, admin string // listen and admin addresses, the same across restarts
	wasm        string // its --wasm file
	config      string // its --config file
	proc        *rlstest.Process
	// gate is held shared by each request sent to the proxy and alone by a kill: a kill
	// waits for the proxy's requests in flight, and meanwhile the load goes to the others.
	gate sync.RWMutex
}

type fleet struct {
	timeout time.Duration // the configuration's global.timeoutMs
	env     *rlstest.Env
	proxies []*fleetProxy
	client  *http.Client
}

// startServeFleet starts fleetProxies gateways with --workers 2, each with its own copy of the
// built module and the same configuration, the cluster "ratelimit" on env's RLS, and the
// echo upstream; it returns once every one answers /ready.
func startServeFleet(t *testing.T, bin string, env *rlstest.Env, timeout time.Duration, config string) *fleet {
	t.Helper()
	f := &fleet{env: env, timeout: timeout, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * fleetClients}, Timeout: 30 * time.Second}}
	t.Cleanup(f.client.CloseIdleConnections)
	var specs []rlstest.ProcessSpec
	for i := range fleetProxies {
		dir := t.TempDir()
		p := &fleetProxy{addr: "127.0.0.1:" + strconv.Itoa(rlstest.FreePort(t)), admin: "127.0.0.1:" + strconv.Itoa(rlstest.FreePort(t)),
			wasm: filepath.Join(dir, "usageplans.wasm")}
		p.config = filepath.Join(dir, "plugin.json")
		writeFile(t, p.wasm, filterWasm)
		writeFile(t, p.config, []byte(config))
		specs = append(specs, rlstest.ProcessSpec{Name: "usageplans-" + strconv.Itoa(i), Bin: bin,
			Args: []string{"serve", "--wasm", p.wasm, "--config", p.config, "--listen", p.addr, "--admin", p.admin,
				"--workers", "2", "--watch", "0", "--log-level", "warn", "--cluster", "ratelimit=grpc://" + env.RLS.GRPCAddr},
			Ready: func() error {
				r, err := f.admin(p, http.MethodGet, "/ready")
				if err == nil && r.status != 200 {
					err = fmt.Errorf("/ready: %d %s", r.status, r.body)
				}
				return err
			}})
		f.proxies = append(f.proxies, p)
	}
	for i, proc := range rlstest.StartProcesses(t, specs...) {
		f.proxies[i].proc = proc
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, p := range f.proxies {
				t.Logf("proxy %d's output (last 4 KiB):\n%s", i, p.proc.Log())
			}
		}
	})
	return f
}

func (f *fleet) admin(p *fleetProxy, method, path string) (reply, error) {
	req, _ := http.NewRequest(method, "http://"+p.admin+path, nil)
	return f.do(req)
}

// do sends req with the fleet's client and reads the whole answer.
func (f *fleet) do(req *http.Request) (reply, error) {
	resp, err := f.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// stat is the filter metric name (without "wasmcustom.") summed over the proxies, from their
// /stats.
func (f *fleet) stat(t *testing.T, name string) uint64 {
	t.Helper()
	var sum uint64
	for i, p := range f.proxies {
		r, err := f.admin(p, http.MethodGet, "/stats?filter=^wasmcustom\\.")
		if err != nil || r.status != 200 {
			t.Fatalf("proxy %d /stats: %v %d %s", i, err, r.status, r.body)
		}
		for _, l := range strings.Split(r.body, "\n") {
			if v, ok := strings.CutPrefix(l, "wasmcustom."+name+": "); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// swap writes wasm (unless nil) and config over every proxy's --wasm and --config files
// and POSTs /reload to each at once; each must answer that it swapped.
func (f *fleet) swap(t *testing.T, wasm []byte, config string, timeout time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for i, p := range f.proxies {
		if wasm != nil {
			writeFile(t, p.wasm, wasm)
		}
		writeFile(t, p.config, []byte(config))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.admin(p, http.MethodPost, "/reload")
			if err != nil || r.status != 200 || !strings.HasPrefix(r.body, "reloaded: version ") {
				t.Errorf("proxy %d POST /reload: %v %d %q, want 200 reloaded: version N serves", i, err, r.status, r.body)
			}
		}()
	}
	wg.Wait()
	f.timeout = timeout
}

// redis is the count of plan name's quota today in Redis.
func (f *fleet) redis(t *testing.T, name string, day time.Time) int {
	t.Helper()
	v, err := f.env.Redis.Do("GET", fleetRedisKey(name, day))
	if err != nil {
		t.Fatalf("Redis GET: %v", err)
	}
	n, _ := strconv.Atoi(v)
	return n
}

// The classes of a fleet response.
const (
	fleetOK      = iota // 200 from the echo upstream
	fleetQuota          // 429 {"message":"Limit Exceeded"}
	fleetFailure        // 500 {"message":"Internal server error"}, AWS's failure response
	fleetClasses
)

// fleetMixed is the phase of a request that started in one phase and ended in another.
const fleetMixed = -1

// fleetLoad is what a load got: counts by phase (the load's phase when a request started
// and ended, fleetMixed if they differ), proxy and class, and every other answer.
type fleetLoad struct {
	phase atomic.Int32
	done  atomic.Int64
	stop  atomic.Bool
	// slow, while set, paces the load to one request per fleetSlowTick in all: an event
	// that takes seconds (a restart, a swap) happens under load without the other proxies
	// using up the quota meanwhile.
	slow atomic.Bool
	// timedOut counts the requests that took a call timeout or longer: RLS may still
	// count such a call (it runs it once Redis answers again) after the filter gave up.
	timedOut atomic.Int64
	timeout  time.Duration

	mu     sync.Mutex
	counts map[[3]int]int
	others []string
}

// count sums the requests of class in phase (fleetMixed included as a phase of its own;
// any < -1 means every phase) to proxy (-1: every proxy).
func (l *fleetLoad) count(phase, proxy, class int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, v := range l.counts {
		if (phase < fleetMixed || k[0] == phase) && (proxy < 0 || k[1] == proxy) && k[2] == class {
			n += v
		}
	}
	return n
}

const fleetAny = -2 // every phase

// waitDone waits until the load completed n requests.
func (l *fleetLoad) waitDone(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); l.done.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the load completed %d requests in 30 s, waiting for %d", l.done.Load(), n)
		}
	}
}

const fleetSlowTick = 50 * time.Millisecond

// load sends GET /pets with key from clients goroutines, request i to proxy i mod 3 (to
// the next proxy when that one's gate is held by a kill), while control runs, until it has
// sent total and control has returned; it returns once every request is answered.
func (f *fleet) load(key string, total, clients int, control func(l *fleetLoad)) *fleetLoad {
	l := &fleetLoad{counts: map[[3]int]int{}, timeout: f.timeout}
	var next atomic.Int64
	var controlled atomic.Bool
	tick := time.NewTicker(fleetSlowTick)
	defer tick.Stop()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !l.stop.Load() {
				if l.slow.Load() {
					select {
					case <-tick.C:
					case <-time.After(fleetSlowTick):
						continue
					}
				}
				i := next.Add(1) - 1
				if i >= int64(total) && controlled.Load() {
					return
				}
				f.one(l, int(i%fleetProxies), key)
			}
		}()
	}
	defer wg.Wait()
	defer l.stop.Store(true) // a control that fails the test stops the load
	if control != nil {
		control(l)
	}
	controlled.Store(true)
	wg.Wait()
	return l
}

// total is how many requests the load sent and got an answer to.
func (l *fleetLoad) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.counts {
		n += v
	}
	return n
}

// one sends one request of a load to proxy n, or to the next one whose gate is free.
func (f *fleet) one(l *fleetLoad, n int, key string) {
	for k := range fleetProxies {
		if f.proxies[(n+k)%fleetProxies].gate.TryRLock() {
			n = (n + k) % fleetProxies
			break
		}
		if k == fleetProxies-1 {
			f.proxies[n].gate.RLock()
		}
	}
	p := f.proxies[n]
	defer p.gate.RUnlock()
	start, began := int(l.phase.Load()), time.Now()
	r, err := f.get(p, key)
	if time.Since(began) >= l.timeout {
		l.timedOut.Add(1)
	}
	phase := int(l.phase.Load())
	if phase != start {
		phase = fleetMixed
	}
	class := fleetClasses
	switch {
	case err != nil:
	case r.status == 200:
		class = fleetOK
	case r.status == 429 && r.body == fltQuotaBody:
		class = fleetQuota
	case r.status == 500 && r.body == fltFailureBody && r.header.Get("x-amzn-errortype") == "InternalServerErrorException":
		class = fleetFailure
	}
	l.mu.Lock()
	if class == fleetClasses {
		l.others = append(l.others, fmt.Sprintf("proxy %d: %d %q %v", n, r.status, r.body, err))
	} else {
		l.counts[[3]int{phase, n, class}]++
	}
	l.mu.Unlock()
	l.done.Add(1)
}

func (f *fleet) get(p *fleetProxy, key string) (reply, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/pets", nil)
	req.Header.Set("x-api-key", key)
	return f.do(req)
}

// sequence sends one request to each of proxies in order, and returns the statuses (a
// request that gets no answer fails the test).
func (f *fleet) sequence(t *testing.T, key string, proxies ...int) []int {
	t.Helper()
	var out []int
	for _, n := range proxies {
		r, err := f.get(f.proxies[n], key)
		if err != nil {
			t.Fatalf("proxy %d: %v", n, err)
		}
		out = append(out, r.status)
	}
	return out
}

// roundRobin is n proxy indexes 0, 1, 2, 0, ...
func roundRobin(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i % fleetProxies
	}
	return out
}

// wantOnly fails unless every answer of the load was 200, AWS's quota 429 or AWS's 500.
func (l *fleetLoad) wantOnly(t *testing.T) {
	t.Helper()
	if len(l.others) > 0 {
		t.Errorf("%d answers that are none of 200, AWS's 429 and AWS's 500, e.g. %q", len(l.others), l.others[:min(len(l.others), 5)])
	}
}

// gateAll holds every proxy's gate: the load pauses, with nothing in flight, until the
// returned function releases them.
func (f *fleet) gateAll() func() {
	for _, p := range f.proxies {
		p.gate.Lock()
	}
	return func() {
		for _, p := range f.proxies {
			p.gate.Unlock()
		}
	}
}

// TestFleet: three `usageplans serve` processes of two workers each behind one RLS and
// Redis. SYNC admits a quota of 1,000 exactly 1,000 times under load spread over the three,
// also across a proxy's SIGKILL and restart and across a module swap; LEASE stays within
// its bound; RLS stopped and Redis stopped mid-run give exactly what failureMode says.
func TestFleet(t *testing.T) {
	now := time.Now().UTC()
	day := now.Truncate(24 * time.Hour)
	if day.Add(24*time.Hour).Sub(now) < 3*time.Minute {
		t.Skipf("%s: the DAY quota period ends in less than 3 minutes (UTC midnight); the fleet's counts would straddle two days", now.Format(time.TimeOnly))
	}
	bin := buildUsageplans(t)
	const quota = 1000
	global := func(timeout time.Duration, more string) string {
		return fleetConfig(fmt.Sprintf(`{"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": %d, "proxies": %d, %s}`, timeout.Milliseconds(), fleetProxies, more))
	}

	// One RLS and Redis (with AOF, so that a restarted Redis keeps its counts) and one fleet
	// for every sub-test, in order; each sub-test has a key of its own, and swaps the fleet
	// to the configuration it needs (POST /reload).
	env := rlstest.Start(t, rlstest.Options{Config: rlsDomainFile, RedisPersist: true, RedisTimeout: 200 * time.Millisecond})
	f := startServeFleet(t, bin, env, time.Second, global(time.Second, `"failureMode": "CLOSED"`))

	t.Run("SYNC", func(t *testing.T) {
		// wantExact: exactly quota admitted, the rest refused with AWS's 429; RLS counted
		// every call, refused ones too: past the limit, each proxy (each run of it) makes at
		// most the calls in flight before it learns of RLS's OVER_LIMIT, then refuses alone.
		wantExact := func(t *testing.T, name string, l *fleetLoad) int {
			t.Helper()
			l.wantOnly(t)
			ok, refused := l.count(fleetAny, -1, fleetOK), l.count(fleetAny, -1, fleetQuota)
			if ok != quota || refused != l.total()-quota || l.total() < 1500 {
				t.Errorf("%d admitted, %d refused (429 Limit Exceeded) of %d; want exactly %d admitted of at least 1500", ok, refused, l.total(), quota)
			}
			n := f.redis(t, name, day)
			if n <= quota || n > quota+(fleetProxies+1)*fleetClients {
				t.Errorf("Redis count %d, want %d admitted plus the refused calls in flight (1 to %d)", n, quota, (fleetProxies+1)*fleetClients)
			}
			return n
		}
		// during paces the load (slow) while event runs, a fifth of the way in, then lets it
		// go on at full speed (phase 1).
		during := func(t *testing.T, event func()) func(l *fleetLoad) {
			return func(l *fleetLoad) {
				l.waitDone(t, 300)
				l.slow.Store(true)
				event()
				l.phase.Store(1)
				l.slow.Store(false)
			}
		}
		// after: the quota was still being used after the event (not all spent before it).
		after := func(t *testing.T, l *fleetLoad) {
			t.Helper()
			if n := l.count(1, -1, fleetOK); n == 0 {
				t.Error("no request was admitted after the event: the quota was spent before it")
			}
			t.Logf("%d admitted before or during the event, %d after it", l.count(0, -1, fleetOK)+l.count(fleetMixed, -1, fleetOK), l.count(1, -1, fleetOK))
		}

		t.Run("exact", func(t *testing.T) {
			l := f.load(fleetKey("exact"), 1500, fleetClients, nil)
			n := wantExact(t, "exact", l)
			for p := range fleetProxies {
				if got := l.count(fleetAny, p, fleetOK); got == 0 {
					t.Errorf("proxy %d admitted none: the load was not spread", p)
				}
			}
			// The first load of the fleet: its counters are this load's.
			if calls := f.stat(t, "usageplans.global.calls"); calls != uint64(n) {
				t.Errorf("the proxies made %d RLS calls, Redis counted %d: want one count per call", calls, n)
			}
			if a := f.stat(t, "usageplans.requests.allowed"); a != quota {
				t.Errorf("usageplans.requests.allowed summed over the proxies = %d, want %d", a, quota)
			}
			t.Logf("SYNC: %d of %d admitted over %d proxies, %v per proxy; Redis %d", quota, l.total(), fleetProxies,
				[]int{l.count(fleetAny, 0, fleetOK), l.count(fleetAny, 1, fleetOK), l.count(fleetAny, 2, fleetOK)}, n)
		})

		t.Run("kill", func(t *testing.T) {
			// Proxy 1 is SIGKILLed with none of its requests in flight (its gate), and
			// restarted on the same ports, while the load goes on to the others: a proxy
			// holds no count of its own in SYNC, so nothing is lost.
			victim := f.proxies[1]
			l := f.load(fleetKey("kill"), 1500, fleetClients, during(t, func() {
				victim.gate.Lock()
				defer victim.gate.Unlock()
				victim.proc.Kill()
				victim.proc.Start()
			}))
			wantExact(t, "kill", l)
			after(t, l)
			if n := l.count(1, 1, fleetOK); n == 0 {
				t.Error("the restarted proxy admitted none of the load after its restart")
			}
		})

		t.Run("swap", func(t *testing.T) {
			// A swap under load on every proxy: the v2 module written over --wasm, a new
			// configuration (timeoutMs 900) over --config, and POST /reload.
			v2 := filterV2(t)
			l := f.load(fleetKey("swap"), 1500, fleetClients, during(t, func() {
				f.swap(t, v2, global(900*time.Millisecond, `"failureMode": "CLOSED"`), 900*time.Millisecond)
			}))
			wantExact(t, "swap", l)
			after(t, l)
		})

		// outage runs a load of at least 600 (under the quota) and stops (down) then starts
		// (up) a component in its middle. Phases: 0 before, 1 stopping, 2 down, 3
		// starting, 4 up. A request that starts and ends while the component is down
		// gets AWS's 500 (CLOSED), one before the stop or after the start 200, one in
		// flight at either either. Every 200 is in Redis; a 500 may be too if it was in
		// flight at the stop, or timed out (RLS runs a call it holds once Redis answers).
		outage := func(t *testing.T, name string, down, up func()) {
			fallback := f.stat(t, "usageplans.global.fallback.CLOSED")
			l := f.load(fleetKey(name), 600, fleetClients, func(l *fleetLoad) {
				l.waitDone(t, 150)
				l.phase.Store(1)
				down()
				l.phase.Store(2)
				l.waitDone(t, l.done.Load()+3*fleetClients)
				l.phase.Store(3)
				up()
				l.phase.Store(4)
				l.waitDone(t, l.done.Load()+3*fleetClients)
			})
			l.wantOnly(t)
			ok, failed := l.count(fleetAny, -1, fleetOK), l.count(fleetAny, -1, fleetFailure)
			if in := l.count(2, -1, fleetFailure); in < fleetClients || l.count(2, -1, fleetOK) != 0 {
				t.Errorf("while down: %d 500s and %d 200s, want only 500s (at least %d)", in, l.count(2, -1, fleetOK), fleetClients)
			}
			if l.count(0, -1, fleetFailure)+l.count(4, -1, fleetFailure) != 0 || l.count(fleetAny, -1, fleetQuota) != 0 {
				t.Errorf("500s before the stop or after the start (%d, %d), or 429s (%d): want none",
					l.count(0, -1, fleetFailure), l.count(4, -1, fleetFailure), l.count(fleetAny, -1, fleetQuota))
			}
			if l.count(0, -1, fleetOK) == 0 || l.count(4, -1, fleetOK) == 0 {
				t.Errorf("%d admitted before the stop, %d after the start: want some of each", l.count(0, -1, fleetOK), l.count(4, -1, fleetOK))
			}
			unsure := failed - l.count(2, -1, fleetFailure) + int(l.timedOut.Load())
			if n := f.redis(t, name, day); n < ok || n > ok+unsure {
				t.Errorf("Redis count %d, want the %d admitted (and up to %d more: 500s in flight at the stop or start, or timed out)", n, ok, unsure)
			}
			if fb := f.stat(t, "usageplans.global.fallback.CLOSED") - fallback; fb != uint64(failed) {
				t.Errorf("usageplans.global.fallback.CLOSED counted %d, want the %d 500s", fb, failed)
			}
			t.Logf("%s: %d admitted, %d 500s (%d while down), %d timed out; Redis %d", name, ok, failed, l.count(2, -1, fleetFailure), l.timedOut.Load(), f.redis(t, name, day))
		}
		t.Run("RLS stopped, CLOSED", func(t *testing.T) {
			outage(t, "rlsdown", env.RLS.Stop, env.RLS.Start)
		})
		t.Run("Redis stopped, CLOSED", func(t *testing.T) {
			// Redis keeps its counts (AOF): the restarted Redis continues them. RLS's pooled
			// connections to the old Redis fail one call each once it is back: the load
			// pauses (gates) until RLS counts again.
			outage(t, "redisdown", env.Redis.Stop, func() {
				release := f.gateAll()
				defer release()
				env.Redis.Start()
				env.AwaitRedis(t)
			})
		})
	})

	t.Run("LEASE", func(t *testing.T) {
		const chunk = 20
		f.swap(t, nil, global(time.Second, `"mode": "LEASE", "lease": {"maxChunk": 20}`), time.Second)
		calls, served := f.stat(t, "usageplans.global.calls"), f.stat(t, "usageplans.global.lease_served")
		l := f.load(fleetKey("lease"), 1500, fleetClients, nil)
		l.wantOnly(t)
		ok, refused := l.count(fleetAny, -1, fleetOK), l.count(fleetAny, -1, fleetQuota)
		bound := fleetProxies * chunk
		t.Logf("LEASE: %d of a quota of %d admitted over %d proxies; under-admission bound proxies × maxChunk = %d × %d = %d; %d RLS calls, %d requests served from leases",
			ok, quota, fleetProxies, fleetProxies, chunk, bound, f.stat(t, "usageplans.global.calls")-calls, f.stat(t, "usageplans.global.lease_served")-served)
		if ok > quota || ok < quota-bound || ok+refused != 1500 {
			t.Errorf("%d admitted and %d refused of 1500, want admitted within [%d, %d]", ok, refused, quota-bound, quota)
		}
		if n := f.redis(t, "lease", day); n < ok {
			t.Errorf("Redis count %d is below the %d admitted", n, ok)
		}
	})

	t.Run("LOCAL", func(t *testing.T) {
		// Quota 300. 60 requests round robin first: each proxy's last answer says 242, 241
		// and 240 remain, so each one's share of an outage is 80 (remaining / 3). During the
		// outage each proxy gets 100 requests at once: exactly 80 admitted, 20 refused. When
		// RLS counts again, each proxy's first call is its own request and its second
		// carries the replay (1 + 80): RLS's count goes, two requests per proxy in turn, 61,
		// 142 (proxy 0), 143, 224 (proxy 1), 225, then 306 > 300, refused (proxy 2).
		const timeout = 300 * time.Millisecond
		f.swap(t, nil, global(timeout, `"failureMode": "LOCAL"`), timeout)
		run := func(t *testing.T, name string, down, up func()) {
			key := fleetKey(name)
			for i, s := range f.sequence(t, key, roundRobin(60)...) {
				if s != 200 {
					t.Fatalf("request %d before the outage: %d, want 200", i, s)
				}
			}
			fallback := f.stat(t, "usageplans.global.fallback.LOCAL")
			down()
			l := f.load(key, 300, fleetClients, nil)
			l.wantOnly(t)
			for p := range fleetProxies {
				if ok, refused := l.count(fleetAny, p, fleetOK), l.count(fleetAny, p, fleetQuota); ok != 80 || refused != 20 {
					t.Errorf("proxy %d during the outage: %d admitted, %d refused; want its share, 80, and 20 refused", p, ok, refused)
				}
			}
			if fb := f.stat(t, "usageplans.global.fallback.LOCAL") - fallback; fb != 300 {
				t.Errorf("usageplans.global.fallback.LOCAL counted %d, want 300", fb)
			}
			up()
			if got := f.sequence(t, key, 0, 0, 1, 1, 2, 2); fmt.Sprint(got) != "[200 200 200 200 200 429]" {
				t.Errorf("after the outage, two requests per proxy in turn: %v, want [200 200 200 200 200 429]", got)
			}
			// A call that timed out may still be counted: RLS holds it while Redis is
			// down and runs it when Redis is back (it was admitted under LOCAL and is
			// replayed too: counted twice, never zero times).
			if n, late := f.redis(t, name, day), int(l.timedOut.Load()); n < 306 || n > 306+late {
				t.Errorf("Redis count %d, want 306 (60, 3 first calls, each proxy's 80 replayed once) and up to %d more (calls that timed out)", n, late)
			}
			t.Logf("%s: Redis %d, %d calls timed out during the outage", name, f.redis(t, name, day), l.timedOut.Load())
		}
		// Killed (SIGKILL): SIGTERM would wait for the calls RLS still holds from the Redis
		// outage above, 5 s.
		t.Run("RLS killed", func(t *testing.T) { run(t, "local-rls", env.RLS.Kill, env.RLS.Start) })
		t.Run("Redis stopped", func(t *testing.T) {
			run(t, "local-redis", env.Redis.Stop, func() { env.Redis.Start(); env.AwaitRedis(t) })
		})
	})

	t.Run("OPEN", func(t *testing.T) {
		// RLS killed: every request admitted, none counted; RLS back: counted again.
		f.swap(t, nil, global(time.Second, `"failureMode": "OPEN"`), time.Second)
		key := fleetKey("open-rls")
		f.sequence(t, key, roundRobin(30)...)
		env.RLS.Kill()
		l := f.load(key, 90, fleetClients, nil)
		l.wantOnly(t)
		if ok := l.count(fleetAny, -1, fleetOK); ok != 90 || f.stat(t, "usageplans.global.fallback.OPEN") != 90 {
			t.Errorf("RLS killed, OPEN: %d of 90 admitted, fallback.OPEN %d; want all 90", ok, f.stat(t, "usageplans.global.fallback.OPEN"))
		}
		env.RLS.Start()
		if got := f.sequence(t, key, 0, 1, 2); fmt.Sprint(got) != "[200 200 200]" {
			t.Errorf("after RLS came back: %v, want 200s", got)
		}
		if n := f.redis(t, "open-rls", day); n != 33 {
			t.Errorf("Redis count %d, want 33: the 30 before and 3 after, none of the outage", n)
		}
	})

	t.Run("RLS paused, CLOSED", func(t *testing.T) {
		// RLS slow: paused (SIGSTOP), it accepts and never answers. Each request waits
		// timeoutMs, no more, and gets AWS's 500; resumed, RLS runs the calls it was sent
		// (counted, though they were answered 500) and answers again.
		const timeout = 300 * time.Millisecond
		f.swap(t, nil, global(timeout, `"failureMode": "CLOSED"`), timeout)
		key := fleetKey("paused")
		if got := f.sequence(t, key, 0, 1, 2); fmt.Sprint(got) != "[200 200 200]" {
			t.Fatalf("before the pause: %v, want 200s", got)
		}
		env.RLS.Pause()
		for _, p := range roundRobin(6) {
			start := time.Now()
			r, err := f.get(f.proxies[p], key)
			took := time.Since(start)
			if err != nil || r.status != 500 || r.body != fltFailureBody || took < timeout || took > timeout+time.Second {
				t.Errorf("proxy %d, RLS paused: %d %q %v after %v, want AWS's 500 after the %v timeout", p, r.status, r.body, err, took, timeout)
			}
		}
		env.RLS.Resume()
		if got := f.sequence(t, key, 0, 1, 2); fmt.Sprint(got) != "[200 200 200]" {
			t.Errorf("after the pause: %v, want 200s", got)
		}
		if n := f.redis(t, "paused", day); n < 6 || n > 12 {
			t.Errorf("Redis count %d, want the 6 admitted and up to the 6 calls sent while paused", n)
		}
		t.Logf("RLS paused: Redis %d for 6 admitted and 6 timed out", f.redis(t, "paused", day))
	})
}
