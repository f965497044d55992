package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usageplans/usageplans/host"
)

var (
	v2Once sync.Once
	v2Wasm []byte
	v2Err  error
)

// filterV2 builds the filter a second time, from the same source with the version string
// "v2" set at link time, once per test binary, and compiles it into the shared cache so a
// swap does not wait for the compiler.
func filterV2(t *testing.T) []byte {
	t.Helper()
	v2Once.Do(func() {
		dir, err := os.MkdirTemp("", "usageplans-v2-")
		if err != nil {
			v2Err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "usageplans-v2.wasm")
		cmd := exec.Command("go", "run", "./build/wasmbuild", "-o", out, "-ldflags", "-X main.version=v2", "./filter")
		cmd.Dir = ".."
		if b, err := cmd.CombinedOutput(); err != nil {
			v2Err = err
			t.Logf("%s", b)
			return
		}
		if v2Wasm, v2Err = os.ReadFile(out); v2Err != nil {
			return
		}
		ctx := context.Background()
		rt, err := host.NewRuntime(ctx, host.Options{CompilationCache: compileCache})
		if err != nil {
			v2Err = err
			return
		}
		defer rt.Close(ctx)
		_, v2Err = rt.Compile(ctx, v2Wasm)
	})
	if v2Err != nil {
		t.Fatalf("building the filter with -X main.version=v2: %v", v2Err)
	}
	return v2Wasm
}

// TestGatewayHotSwapUnderTraffic swaps the module, then fails to swap to bytes that are not
// Wasm and to a configuration the filter rejects, then swaps the configuration, all while 8
// clients send requests with one key whose quota is N. Shared data must survive every swap
// (exactly N admitted in total), no request may fail, and the new version must be the one
// answering afterwards.
func TestGatewayHotSwapUnderTraffic(t *testing.T) {
	const (
		quota   = 5000
		clients = 8
		perMax  = 2000 // a bound on each client's loop
	)
	v2 := filterV2(t)
	cfg := planConfig(100000, quota)
	g := startGateway(t, gwSetup{config: cfg, routes: shopRoutes, workers: 2})

	var (
		completed, admitted, limited atomic.Int64
		stop                         atomic.Bool
		failMu                       sync.Mutex
		failures                     []string
		wg                           sync.WaitGroup
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perMax && !stop.Load(); i++ {
				r, err := g.do(http.MethodGet, "/pets", key1, nil)
				switch {
				case err == nil && r.status == 200:
					admitted.Add(1)
				case err == nil && r.status == 429 && r.body == `{"message":"Limit Exceeded"}`:
					limited.Add(1)
				default:
					failMu.Lock()
					if len(failures) < 10 {
						failures = append(failures, strings.TrimSpace(r.body)+" "+http.StatusText(r.status)+" "+errString(err))
					}
					failMu.Unlock()
				}
				completed.Add(1)
			}
		}()
	}
	// waitFor blocks until the clients completed n requests; bounded, and it gives up if the
	// clients stopped first.
	waitFor := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for completed.Load() < n {
			if time.Now().After(deadline) {
				stop.Store(true)
				t.Fatalf("the clients completed %d requests in 30s, waiting for %d", completed.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	reload := func(want int, wantBody ...string) {
		t.Helper()
		r := g.admin(http.MethodPost, "/reload")
		for _, w := range wantBody {
			if r.status != want || !strings.Contains(r.body, w) {
				t.Errorf("POST /reload: %d %q, want %d and %q", r.status, r.body, want, w)
			}
		}
	}

	waitFor(200)
	atSwap1 := admitted.Load()
	writeFile(t, g.wasm, v2)
	reload(200, "reloaded: version 2 serves")

	waitFor(completed.Load() + 200)
	writeFile(t, g.wasm, []byte("this is not a wasm module"))
	reload(422, "reload (POST /reload) failed, version 2 keeps serving: --wasm "+g.wasm+": host: compile: not a WebAssembly binary")
	writeFile(t, g.wasm, v2)

	waitFor(completed.Load() + 200)
	writeFile(t, g.config, []byte(strings.Replace(cfg, `"period": "DAY"`, `"period": "MONTHS"`, 1)))
	reload(422, "version 2 keeps serving", `usagePlans[0].quota.period: must be DAY, WEEK or MONTH, got "MONTHS"`)

	waitFor(completed.Load() + 200)
	atSwap2 := admitted.Load()
	writeFile(t, g.config, []byte(strings.Replace(cfg, `"id": "k4"`, `"id": "k4", "description": "changed"`, 1)))
	reload(200, "reloaded: version 3 serves")

	// Run on until the quota has answered a few hundred times.
	for deadline := time.Now().Add(30 * time.Second); limited.Load() < 300; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			stop.Store(true)
			t.Fatalf("after 30s, %d admitted and %d over the quota", admitted.Load(), limited.Load())
		}
	}
	stop.Store(true)
	wg.Wait()

	t.Logf("%d requests: %d admitted (%d before the module swap, %d before the configuration swap), %d over the quota",
		completed.Load(), admitted.Load(), atSwap1, atSwap2, limited.Load())
	if len(failures) > 0 {
		t.Errorf("requests failed (first %d): %q", len(failures), failures)
	}
	if admitted.Load() != quota {
		t.Errorf("%d requests admitted in total, want exactly the quota, %d", admitted.Load(), quota)
	}
	if atSwap2 >= quota {
		t.Errorf("the quota ran out (%d admitted) before the configuration swap: the test proved less than it should", atSwap2)
	}
	if admitted.Load()+limited.Load() != completed.Load() {
		t.Errorf("%d admitted + %d limited != %d completed", admitted.Load(), limited.Load(), completed.Load())
	}
	g.wantStats(map[string]string{
		"usageplans_requests_allowed":                                            itoa(quota),
		"usageplans_requests_quota_exceeded":                                     itoa(int(limited.Load())),
		`envoy_http_downstream_rq_xx{envoy_response_code_class="5",` + hcm + "}": "0",
		"usageplans_gateway_reload_success":                                      "2",
		"usageplans_gateway_reload_failure":                                      "2",
		"usageplans_gateway_generation":                                          "3",
	})

	// The current VMs run v2 with the changed configuration, said so when configured, and
	// answered requests themselves.
	p := g.Plugin()
	if p.Version() != 3 {
		t.Errorf("plugin version %d, want 3", p.Version())
	}
	answered := uint64(0)
	for _, vm := range p.VMs() {
		if vm.Module().Digest() != sha256Hex(string(v2)) {
			t.Errorf("worker %d runs module %s, want v2", vm.Worker(), vm.Module().Digest())
		}
		logged := false
		for _, l := range vm.Logs() {
			logged = logged || strings.HasPrefix(l.Message, "usageplans v2: configuration accepted")
		}
		if !logged {
			t.Errorf("worker %d did not log \"usageplans v2: configuration accepted\"", vm.Worker())
		}
		for _, m := range vm.Metrics() {
			if strings.HasPrefix(m.Name, "usageplans.requests.") {
				answered += m.Value
			}
		}
	}
	if answered == 0 {
		t.Errorf("the VMs of version 3 answered no request")
	}
	if !strings.Contains(g.access.String(), " version=3 ") {
		t.Errorf("no access log line of a request served by version 3")
	}
	noSecrets(t, "the gateway's log", g.log.String(), cfg)
}

// TestGatewayWatchesFiles reloads when --config or --wasm change on disk, once they have
// settled, and keeps serving when the new file is broken.
func TestGatewayWatchesFiles(t *testing.T) {
	cfg := planConfig(100, 1000)
	g := startGateway(t, gwSetup{config: cfg, routes: shopRoutes, watch: 10 * time.Millisecond})
	waitStat := func(name, want string) {
		t.Helper()
		for i := 0; i < 500; i++ {
			if g.prom()[name] == want {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s did not become %s within 5s", name, want)
	}

	// k3's burst goes from 3 to 1.
	writeFile(t, g.config, []byte(strings.Replace(cfg, `"rateLimit": 1, "burstLimit": 3`, `"rateLimit": 1, "burstLimit": 1`, 1)))
	waitStat("usageplans_gateway_generation", "2")
	if a, b := g.get("/pets", key3), g.get("/pets", key3); a.status != 200 || b.status != 429 {
		t.Errorf("after the new configuration (burst 1): %d, %d; want 200, 429", a.status, b.status)
	}

	writeFile(t, g.wasm, []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0xff})
	waitStat("usageplans_gateway_reload_failure", "1")
	if r := g.get("/pets", key1); r.status != 200 {
		t.Errorf("after a broken module on disk: %d %q, want 200 from version 2", r.status, r.body)
	}
	if !strings.Contains(g.log.String(), "reload (file change) failed, version 2 keeps serving: --wasm") {
		t.Errorf("no log line for the failed reload:\n%s", tail(g.log.String(), 5))
	}
	g.wantStats(map[string]string{"usageplans_gateway_generation": "2", "usageplans_gateway_reload_success": "1"})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestGatewaySwapKeepsInFlight: a request in flight during a swap finishes on the version it
// started on, through its response callbacks, while new requests already go to the new one.
func TestGatewaySwapKeepsInFlight(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, r.Header.Get("x-usageplans-key-id"))
	}))
	defer up.Close()
	cfg := planConfig(100, 1000)
	cfg = strings.Replace(cfg, `{"path": "/health",`, `{"path": "/slow", "resourceMethods": {"GET": {"apiKeyRequired": true}}}, {"path": "/health",`, 1)
	g := startGateway(t, gwSetup{config: cfg, routes: `{"routes": [{"name": "shop", "upstream": "` + up.URL + `"}]}`, workers: 1})

	slow := make(chan reply, 1)
	go func() {
		r, err := g.do(http.MethodGet, "/slow", key1, nil)
		if err != nil {
			r.body = err.Error()
		}
		slow <- r
	}()
	waitUntil(t, "the slow request is in flight", func() bool { return g.prom()["envoy_http_downstream_rq_active{"+hcm+"}"] == "1" })
	writeFile(t, g.config, []byte(strings.Replace(cfg, `"id": "k4"`, `"id": "k4", "description": "v2"`, 1)))
	if r := g.admin(http.MethodPost, "/reload"); r.status != 200 || !strings.HasPrefix(r.body, "reloaded: version 2 serves") {
		t.Fatalf("POST /reload: %d %q", r.status, r.body)
	}
	if r := g.get("/pets", key2); r.status != 200 || r.body != "k2" {
		t.Errorf("a request after the swap: %d %q, want 200 k2", r.status, r.body)
	}
	close(release)
	if r := <-slow; r.status != 200 || r.body != "k1" {
		t.Errorf("the request in flight during the swap: %d %q, want 200 k1", r.status, r.body)
	}
	g.wantStats(map[string]string{"usageplans_requests_allowed": "2"})
	g.Plugin().WaitRetired() // version 1's VM closes once its last stream is done
	log := g.access.String()
	if !regexp.MustCompile(`path="/slow" status=200 outcome=\S+ end=upstream details=- key_id=k1 plan_id=gold route=shop worker=0 version=1 `).MatchString(log) ||
		!regexp.MustCompile(`path="/pets" status=200 outcome=\S+ end=upstream details=- key_id=k2 plan_id=gold route=shop worker=0 version=2 `).MatchString(log) {
		t.Errorf("access log:\n%s", log)
	}
}
