package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	abiOnce sync.Once
	abiWasm []byte
	abiErr  error
)

// hostABIGuest builds host/testdata/abi (the host's ABI probe: the x-op request header
// names operations, whose results it adds as x-r-<op> request headers) once per test binary.
func hostABIGuest(t *testing.T) []byte {
	t.Helper()
	abiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "usageplans-abi-")
		if err != nil {
			abiErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "abi.wasm")
		cmd := exec.Command("go", "run", "./build/wasmbuild", "-o", out, "./host/testdata/abi")
		cmd.Dir = ".."
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Logf("%s", b)
			abiErr = err
			return
		}
		abiWasm, abiErr = os.ReadFile(out)
	})
	if abiErr != nil {
		t.Fatalf("building host/testdata/abi: %v", abiErr)
	}
	return abiWasm
}

// abiGet sends a request with the given x-op (and extra headers) and returns what the echo
// upstream received.
func (g *gwTest) abiGet(path, op string, extra ...string) (reply, map[string]string) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+g.Addr()+path, nil)
	req.Header.Set("x-op", op)
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("GET %s x-op %s: %v", path, op, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if r.status != 200 {
		return r, nil
	}
	return r, echoOf(g.t, r).Headers
}

// TestGatewayProperties checks the attributes the gateway gives the filter per request, as
// the filter reads them (through the host's ABI probe guest), and that the request the
// filter rewrote is the one the upstream receives.
func TestGatewayProperties(t *testing.T) {
	g := startGateway(t, gwSetup{wasm: hostABIGuest(t), config: "{}", routes: `{"routes": [{"name": "r1", "pathPrefix": "/"}]}`, workers: 1})
	_, port, _ := net.SplitHostPort(g.Addr())
	portN, _ := strconv.Atoi(port)
	le := make([]byte, 8)
	binary.LittleEndian.PutUint64(le, uint64(portN))
	for _, c := range []struct{ path, want string }{
		{"xds.route_name", "r1"},
		{"xds.cluster_name", "echo"},
		{"request.protocol", "HTTP/1.1"},
		{"request.path", "/p?q=1"},
		{"request.url_path", "/p"},
		{"request.method", "GET"},
		{"request.host", g.Addr()},
		{"request.scheme", "http"},
		{"request.id", "rid-1"},
		{"destination.address", g.Addr()},
		{"destination.port", string(le)},
		{"plugin_vm_id", "usageplans"},
		{"plugin_root_id", "usageplans"},
		{"node.id", "usageplans-gateway"},
	} {
		_, h := g.abiGet("/p?q=1", "prop", "x-path", c.path, "x-request-id", "rid-1")
		if want := hex.EncodeToString([]byte(c.want)) + "|ok"; h["x-r-prop"] != want {
			t.Errorf("property %s: filter read %q, want %q", c.path, h["x-r-prop"], want)
		}
	}
	_, h := g.abiGet("/p", "prop", "x-path", "source.address")
	if v, _ := hex.DecodeString(strings.TrimSuffix(h["x-r-prop"], "|ok")); !strings.HasPrefix(string(v), "127.0.0.1:") {
		t.Errorf("source.address: %q, want 127.0.0.1:port", v)
	}

	// What the filter says in its filter state goes to the access log, as Envoy's
	// %FILTER_STATE(wasm.usageplans_outcome:PLAIN)% would show it.
	g.abiGet("/p", "set-prop", "x-path", "usageplans_outcome", "x-value", "throttled")
	g.abiGet("/p", "set-prop", "x-path", "usageplans_key_id", "x-value", "k 9")
	g.wantStats(map[string]string{}) // every request logged
	if l := g.access.String(); !strings.Contains(l, `status=200 outcome=throttled end=upstream details=- key_id=- `) ||
		!strings.Contains(l, `status=200 outcome=- end=upstream details=- key_id="k 9" `) {
		t.Errorf("filter state in the access log:\n%s", tail(l, 3))
	}

	// The filter replaced every request header, pseudo headers included.
	r, h := g.abiGet("/p", "set-pairs")
	if e := echoOf(t, r); r.status != 200 || e.Path != "/replaced" || h["host"] != "h" || h["x-only"] != "1" || h["x-op"] != "" {
		t.Errorf("after set-pairs the upstream saw %d %s %v, want /replaced with host h and x-only only", r.status, e.Path, h)
	}
}

// TestGatewayFailedVM: a trap fails the worker's VM; like Envoy's FAIL_CLOSED every request
// on it gets 503 until a reload, which replaces the VMs even though no file changed.
func TestGatewayFailedVM(t *testing.T) {
	g := startGateway(t, gwSetup{wasm: hostABIGuest(t), config: "{}", workers: 1})
	if r, _ := g.abiGet("/", "add"); r.status != 200 {
		t.Fatalf("before the trap: %d %s", r.status, r.body)
	}
	if r, _ := g.abiGet("/", "panic"); r.status != 503 {
		t.Errorf("the trapping request: %d %q, want 503", r.status, r.body)
	}
	if r, _ := g.abiGet("/", "add"); r.status != 503 {
		t.Errorf("after the trap: %d %q, want 503 (the VM failed)", r.status, r.body)
	}
	g.wantStats(map[string]string{"usageplans_gateway_workers_failed": "1"})
	if !strings.Contains(g.access.String(), "status=503 outcome=- end=local details=wasm_fail_stream") {
		t.Errorf("no access log line for the failed VM's 503:\n%s", tail(g.access.String(), 3))
	}
	if r := g.admin(http.MethodPost, "/reload"); r.status != 200 || !strings.HasPrefix(r.body, "reloaded: version 2 serves") {
		t.Errorf("POST /reload with a failed VM: %d %q", r.status, r.body)
	}
	if r, _ := g.abiGet("/", "add"); r.status != 200 {
		t.Errorf("after the reload: %d %q, want 200", r.status, r.body)
	}
	g.wantStats(map[string]string{"usageplans_gateway_workers_failed": "0", "usageplans_gateway_reload_success": "1"})
}
