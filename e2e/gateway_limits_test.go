package e2e

// The gateway in front of slow and numerous clients, and its admin endpoint in front of a
// browser (issue 8, findings 5 and 6).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
)

// slowBody sends a POST head announcing size bytes, then one byte every interval until the
// answer comes; it returns the answer and how many body bytes were sent.
func slowBody(t *testing.T, addr string, size int, interval time.Duration, stallAfter int) (*http.Response, string, int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "POST /pets HTTP/1.1\r\nHost: api.example.com\r\nx-api-key: %s\r\nContent-Length: %d\r\n\r\n", key1, size)
	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			got <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		got <- answer{resp, string(b), err}
	}()
	sent := 0
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case a := <-got:
			if a.err != nil {
				t.Fatalf("after %d body bytes: %v", sent, a.err)
			}
			return a.resp, a.body, sent
		case <-tick.C:
			if sent < size && (stallAfter < 0 || sent < stallAfter) {
				if _, err := c.Write([]byte{'x'}); err == nil {
					sent++
				}
			}
		}
	}
}

// TestGatewaySlowBodyTimeouts: a body trickling in at one byte per second is cut off by
// request_timeout with Envoy's 408 "request timeout"; one that stops is cut off by
// stream_idle_timeout with 408 "stream timeout". Both close the connection, and neither
// reaches the upstream.
func TestGatewaySlowBodyTimeouts(t *testing.T) {
	g := startGateway(t, gwSetup{config: planConfig(100, 1000), routes: shopRoutes, options: func(o *gateway.Options) {
		o.RequestTimeout, o.StreamIdleTimeout = 3*time.Second, 1500*time.Millisecond
	}})
	for _, c := range []struct {
		name       string
		stallAfter int // -1: never stalls
		body       string
		details    string
	}{
		{"request_timeout", -1, "request timeout", "request_overall_timeout"},
		{"stream_idle_timeout", 1, "stream timeout", "stream_idle_timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body, sent := slowBody(t, g.Addr(), 1000, time.Second, c.stallAfter)
			if resp.StatusCode != 408 || body != c.body || resp.Header.Get("Content-Type") != "text/plain" || !resp.Close {
				t.Errorf("%d %q %v close=%v, want 408 %q text/plain and the connection closed", resp.StatusCode, body, resp.Header, resp.Close, c.body)
			}
			if sent == 0 || sent >= 1000 {
				t.Errorf("%d of 1000 body bytes sent before the answer, want the body cut off", sent)
			}
		})
	}
	g.waitAccessLines(2)
	for i, l := range accessLines(t, g.access.String()) {
		details := []string{"request_overall_timeout", "stream_idle_timeout"}[i]
		if want := "access method=POST path=\"/pets\" status=408 outcome=allowed end=timeout details=" + details +
			" key_id=k1 plan_id=gold route=shop version=1"; l != want {
			t.Errorf("access log line %d:\n%s\nwant:\n%s", i, l, want)
		}
	}
	g.wantStats(map[string]string{
		"envoy_http_downstream_rq_timeout{" + hcm + "}": "2",
		"usageplans_gateway_requests_timeout":           "2",
		"usageplans_gateway_requests_upstream":          "0",
	})
}

// TestGatewayMaxConnections: a connection over --max-connections is closed as soon as it is
// accepted, with no answer; once one of the others closes, a new one is served.
func TestGatewayMaxConnections(t *testing.T) {
	g := startGateway(t, gwSetup{config: planConfig(100, 1000), routes: shopRoutes, options: func(o *gateway.Options) {
		o.MaxConnections = 2
	}})
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", g.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader, close bool) (int, error) {
		head := "GET /health HTTP/1.1\r\nHost: api.example.com\r\n"
		if close {
			head += "Connection: close\r\n"
		}
		if _, err := io.WriteString(c, head+"\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	c1, r1 := dial()
	c2, r2 := dial()
	for i, c := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{c1, r1}, {c2, r2}} {
		if st, err := get(c.c, c.r, false); st != 200 || err != nil {
			t.Fatalf("connection %d: %d %v, want 200", i+1, st, err)
		}
	}
	c3, r3 := dial()
	if st, err := get(c3, r3, false); err == nil {
		t.Fatalf("a third connection over a cap of 2 was served: %d", st)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("third connection: %v, want it closed (EOF or reset)", err)
	}
	// c1 closes after one more request; its place is free when the client sees it closed.
	if st, err := get(c1, r1, true); st != 200 || err != nil {
		t.Fatalf("closing request on connection 1: %d %v", st, err)
	}
	if _, err := r1.ReadByte(); err != io.EOF {
		t.Fatalf("connection 1 after Connection: close: %v, want EOF", err)
	}
	c4, r4 := dial()
	if st, err := get(c4, r4, false); st != 200 || err != nil {
		t.Fatalf("a connection after one closed: %d %v, want 200", st, err)
	}
	g.wantStats(map[string]string{`envoy_listener_downstream_cx_overflow{envoy_listener_address="` + strings.ReplaceAll(g.Addr(), ":", "_") + `"}`: "1"})
}

// TestServeBusyPortBeforeCompile: a busy --listen port is reported before the module is
// read, compiled or run (issue 8, finding 7: it came after the VMs had started). The module
// given does not exist, so any other order reports --wasm instead.
func TestServeBusyPortBeforeCompile(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	status, stdout, stderr := runCLI("serve", "--wasm", "../no/such.wasm", "--listen", busy.Addr().String(), "--admin", "127.0.0.1:0")
	want := fmt.Sprintf("usageplans serve: --listen: listen tcp %s: bind: address already in use\n", busy.Addr())
	if status != 1 || stdout != "" || stderr != want {
		t.Errorf("serve on a busy port: status %d, stdout %q, stderr %q; want 1 and %q", status, stdout, stderr, want)
	}
}

// TestAdminMutationsRefuseCrossSite: POST /reload is refused from another origin and with
// the content types a cross-site form can send (issue 8, finding 6: a cross-origin
// text/plain POST reloaded the gateway); and the admin endpoint binds loopback unless told.
func TestAdminMutationsRefuseCrossSite(t *testing.T) {
	g := startGateway(t, gwSetup{config: planConfig(100, 1000), routes: shopRoutes})
	admin := g.AdminAddr()
	for _, c := range []struct {
		name    string
		method  string
		headers map[string]string
		status  int
		body    string
	}{
		{"GET", "GET", nil, 405, "use POST /reload\n"},
		{"cross-origin", "POST", map[string]string{"Origin": "http://evil.example"}, 403,
			fmt.Sprintf("POST /reload refused: a cross-origin request (Origin \"http://evil.example\" is not the admin address http://%s)\n", admin)},
		{"null origin", "POST", map[string]string{"Origin": "null"}, 403,
			fmt.Sprintf("POST /reload refused: a cross-origin request (Origin \"null\" is not the admin address http://%s)\n", admin)},
		{"same-site fetch", "POST", map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "POST /reload refused: a cross-origin request (Sec-Fetch-Site: same-site)\n"},
		{"text/plain", "POST", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, 415,
			"POST /reload refused: Content-Type \"text/plain;charset=UTF-8\" is what a cross-site form sends; send no body (curl -X POST), or application/json\n"},
		{"form", "POST", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415,
			"POST /reload refused: Content-Type \"application/x-www-form-urlencoded\" is what a cross-site form sends; send no body (curl -X POST), or application/json\n"},
		{"multipart", "POST", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415,
			"POST /reload refused: Content-Type \"multipart/form-data; boundary=x\" is what a cross-site form sends; send no body (curl -X POST), or application/json\n"},
		{"curl -X POST", "POST", nil, 200, "unchanged: version 1 keeps serving\n"},
		{"same origin", "POST", map[string]string{"Origin": "http://" + admin, "Content-Type": "application/json"}, 200, "unchanged: version 1 keeps serving\n"},
	} {
		req, _ := http.NewRequest(c.method, "http://"+admin+"/reload", nil)
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || string(b) != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.name, resp.StatusCode, b, c.status, c.body)
		}
	}
	g.wantStats(map[string]string{"usageplans_gateway_reload_unchanged": "2", "usageplans_gateway_reload_success": "0"})

	// Loopback only, unless --admin-allow-remote.
	status, _, stderr := runCLI("serve", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:9901")
	if want := "usageplans serve: --admin 0.0.0.0:9901: the admin endpoint (it reloads the gateway and dumps its configuration) binds loopback only, e.g. 127.0.0.1:9901; pass --admin-allow-remote to bind another address\n"; status != 1 || stderr != want {
		t.Errorf("serve --admin 0.0.0.0:9901: %d %q, want 1 %q", status, stderr, want)
	}
	status, _, stderr = runCLI("serve", "--listen", "127.0.0.1:0", "--admin", ":9901")
	if status != 1 || !strings.Contains(stderr, "--admin :9901: the admin endpoint") {
		t.Errorf("serve --admin :9901: %d %q, want 1 and the loopback message", status, stderr)
	}
}

// TestAdminRefusesRebinding: a page whose DNS name was rebound to 127.0.0.1 reaches the
// admin listener with its own name in Host; reads (usage, /config_dump, /stats) are refused
// as mutations are, unless Host names loopback (localhost or an IP literal), so a browser
// cannot be made to read the admin endpoint from elsewhere.
func TestAdminRefusesRebinding(t *testing.T) {
	g := startGateway(t, gwSetup{config: planConfig(100, 1000), routes: shopRoutes})
	_, port, _ := net.SplitHostPort(g.AdminAddr())
	for _, c := range []struct {
		host   string
		status int
	}{
		{"evil.example:" + port, 403},
		{"localhost.evil.example:" + port, 403},
		{"evil.example", 403},
		{"localhost:" + port, 200},
		{"127.0.0.1:" + port, 200},
		{"[::1]:" + port, 200},
	} {
		for _, path := range []string{"/config_dump", "/stats", "/usageplans/p/usage?startDate=2026-06-10&endDate=2026-06-10"} {
			req, _ := http.NewRequest(http.MethodGet, "http://"+g.AdminAddr()+path, nil)
			req.Host = c.host
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			status := resp.StatusCode
			if status == 404 && strings.HasPrefix(path, "/usageplans/") {
				status = 200 // planConfig has no plan "p": the request got past the guard
			}
			if status != c.status {
				t.Errorf("GET %s with Host %s: %d %q, want %d", path, c.host, resp.StatusCode, b, c.status)
			}
			if c.status == 403 && string(b) != fmt.Sprintf("refused: Host %q is not this admin listener (loopback: localhost or an IP address); pass --admin-allow-remote to serve other names\n", c.host) {
				t.Errorf("GET %s with Host %s: body %q", path, c.host, b)
			}
		}
	}
}

// TestGatewayStalledReaderTimeout: a client that stops reading a response holds its stream
// only until stream_idle_timeout; then the stream is reset (the response had started, so no
// 408), as Envoy does.
func TestGatewayStalledReaderTimeout(t *testing.T) {
	chunk := make([]byte, 32<<10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		for range 2048 { // 64 MiB, far more than the sockets buffer
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	g := startGateway(t, gwSetup{config: planConfig(100, 1000), routes: shopRoutes, upstream: up.URL, options: func(o *gateway.Options) {
		o.StreamIdleTimeout = time.Second
	}})
	c, err := net.DialTimeout("tcp", g.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /pets HTTP/1.1\r\nHost: api.example.com\r\nx-api-key: %s\r\n\r\n", key1)
	// The client reads nothing; the gateway gives up on it.
	g.waitAccessLinesWithin(1, 30*time.Second)
	if l := accessLines(t, g.access.String()); l[0] != "access method=GET path=\"/pets\" status=200 outcome=allowed end=timeout details=stream_idle_timeout key_id=k1 plan_id=gold route=shop version=1" {
		t.Errorf("access log: %s", l[0])
	}
	// What the client can still read ends before the 64 MiB: the stream was reset.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	if n >= 2048*32<<10 {
		t.Errorf("the client read %d bytes, the whole response: want it cut off", n)
	}
}
