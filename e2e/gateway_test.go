package e2e

// The gateway (`usageplans serve`) over real loopback HTTP, with the built filter: what a user
// of `make run` sees, and what only a running proxy shows.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
	"github.com/usageplans/usageplans/host"
)

// gwEpoch is the fake clock's start: mid-day, mid-month, so that no quota period ends while a
// test runs; the clock only moves when a test moves it.
var gwEpoch = time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)

// gwTest is a gateway started in-process for one test, with its files and logs.
type gwTest struct {
	*gateway.Gateway
	t      testing.TB
	dir    string
	wasm   string
	config string
	clock  *host.FakeClock
	log    *lockedBuffer
	access *lockedBuffer
	client *http.Client
}

type gwSetup struct {
	wasm     []byte
	config   string
	routes   string // JSON; "" for none
	upstream string // "" for echo
	workers  int
	watch    time.Duration          // 0: off
	options  func(*gateway.Options) // changes the options before the gateway starts
	clusters map[string]string
}

func startGateway(t testing.TB, s gwSetup) *gwTest {
	t.Helper()
	dir := t.TempDir()
	g := &gwTest{t: t, dir: dir, wasm: filepath.Join(dir, "filter.wasm"), config: filepath.Join(dir, "plugin.json"),
		clock: host.NewFakeClock(gwEpoch), log: &lockedBuffer{}, access: &lockedBuffer{}}
	if s.wasm == nil {
		s.wasm = filterWasm
	}
	writeFile(t, g.wasm, s.wasm)
	writeFile(t, g.config, []byte(s.config))
	o := gateway.Options{
		Wasm: g.wasm, Config: g.config, Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Upstream: s.upstream, Workers: s.workers, Log: g.log, AccessLog: g.access,
		WatchInterval: -1, Clock: g.clock, CompilationCache: compileCache, Clusters: s.clusters,
	}
	if s.watch > 0 {
		o.WatchInterval = s.watch
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if s.routes != "" {
		o.Routes = filepath.Join(dir, "routes.json")
		writeFile(t, o.Routes, []byte(s.routes))
	}
	if s.options != nil {
		s.options(&o)
	}
	gw, err := gateway.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("gateway.Start: %v", err)
	}
	g.Gateway = gw
	g.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		g.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("gateway log:\n%s", tail(g.log.String(), 40))
		}
	})
	return g
}

// writeFile replaces a file atomically (write, then rename), as an editor or a build would,
// so that the watcher never sees half a file.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type reply struct {
	status int
	header http.Header
	body   string
}

// do sends a request to the gateway; key "" sends none.
func (g *gwTest) do(method, path, key string, body io.Reader) (reply, error) {
	req, err := http.NewRequest(method, "http://"+g.Addr()+path, body)
	if err != nil {
		return reply{}, err
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

func (g *gwTest) get(path, key string) reply {
	g.t.Helper()
	r, err := g.do(http.MethodGet, path, key, nil)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	return r
}

// admin sends a request to the admin endpoint.
func (g *gwTest) admin(method, path string) reply {
	g.t.Helper()
	req, _ := http.NewRequest(method, "http://"+g.AdminAddr()+path, nil)
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// prom reads /stats/prometheus into a map from "name{labels}" to value.
func (g *gwTest) prom() map[string]string {
	g.t.Helper()
	r := g.admin(http.MethodGet, "/stats/prometheus")
	if r.status != http.StatusOK {
		g.t.Fatalf("/stats/prometheus: %d %s", r.status, r.body)
	}
	out := map[string]string{}
	for _, line := range strings.Split(r.body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	return out
}

// wantStats compares Prometheus samples with exact values, once no request is active: a
// client may read its whole response a moment before the gateway has counted it.
func (g *gwTest) wantStats(want map[string]string) {
	g.t.Helper()
	got := g.prom()
	for i := 0; i < 1000 && got["envoy_http_downstream_rq_active{"+hcm+"}"] != "0"; i++ {
		time.Sleep(time.Millisecond)
		got = g.prom()
	}
	for name, v := range want {
		if got[name] != v {
			g.t.Errorf("/stats/prometheus %s = %q, want %q", name, got[name], v)
		}
	}
}

const hcm = `envoy_http_conn_manager_prefix="usageplans"`

// noSecrets fails when a key value or digest of the configuration appears in s.
func noSecrets(t *testing.T, where, s string, config string) {
	t.Helper()
	for _, secret := range secretsOf(config) {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a key value or digest of the configuration (%.6s...)", where, secret)
		}
	}
}

var secretRe = regexp.MustCompile(`"(?:value|valueSha256)"\s*:\s*"([^"]+)"`)

func secretsOf(config string) []string {
	var out []string
	for _, m := range secretRe.FindAllStringSubmatch(config, -1) {
		out = append(out, m[1])
	}
	return out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// echoOf decodes the echo upstream's answer.
func echoOf(t testing.TB, r reply) gateway.Echo {
	t.Helper()
	var e gateway.Echo
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("not an echo (%d): %v\n%s", r.status, err, r.body)
	}
	return e
}

// planConfig is a one-API configuration: GET/POST /pets need a key, /health does not; keys
// k1 and k2 are in plan "gold" (throttle burst gBurst, quota gQuota a day), k3 in plan
// "tin" (burst 3, rate 1, quota 1000), k4 is disabled. k2 is given as its digest.
func planConfig(gBurst, gQuota int) string {
	return fmt.Sprintf(`{
  "apis": [{"id": "shop", "resources": [
    {"path": "/pets", "resourceMethods": {"GET": {"apiKeyRequired": true}, "POST": {"apiKeyRequired": true}}},
    {"path": "/health", "resourceMethods": {"GET": {"apiKeyRequired": false}}}
  ], "stages": [{"stageName": "prod"}]}],
  "routes": [{"name": "shop", "match": {"routeName": "shop"}, "apiId": "shop", "stage": "prod"}],
  "usagePlans": [
    {"id": "gold", "apiStages": [{"apiId": "shop", "stage": "prod"}],
     "throttle": {"rateLimit": 1000, "burstLimit": %d}, "quota": {"limit": %d, "period": "DAY"}},
    {"id": "tin", "apiStages": [{"apiId": "shop", "stage": "prod"}],
     "throttle": {"rateLimit": 1, "burstLimit": 3}, "quota": {"limit": 1000, "period": "DAY"}}
  ],
  "apiKeys": [
    {"id": "k1", "value": "GoldKeyOne0000000000000001"},
    {"id": "k2", "valueSha256": "%s"},
    {"id": "k3", "value": "TinKeyThree00000000000003"},
    {"id": "k4", "value": "OffKeyFour00000000000004", "enabled": false}
  ],
  "usagePlanKeys": [
    {"usagePlanId": "gold", "keyId": "k1"}, {"usagePlanId": "gold", "keyId": "k2"},
    {"usagePlanId": "tin", "keyId": "k3"}, {"usagePlanId": "gold", "keyId": "k4"}
  ],
  "accountThrottle": {"rateLimit": 100000, "burstLimit": 100000}
}`, gBurst, gQuota, sha256Hex(key2))
}

const (
	key1 = "GoldKeyOne0000000000000001"
	key2 = "GoldKeyTwo0000000000000002"
	key3 = "TinKeyThree00000000000003"
	key4 = "OffKeyFour00000000000004"
)

const shopRoutes = `{"routes": [{"name": "shop", "pathPrefix": "/"}]}`
