package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
	"github.com/usageplans/usageplans/internal/rlstest"
)

// TestGatewayGlobalBody: in global mode the filter holds a request's headers while it asks
// RLS. Behind Envoy's default the body waits unread meanwhile (StopAllIterationAndWatermark:
// flow control, no 413) and streams once the filter continues; with
// allow_on_headers_stop_iteration the gateway hands the filter the body as it arrives, and
// once the filter continues the rest streams. Either way a chunked body larger than Envoy's
// 1 MiB buffer limit, whose first 64 KiB come before RLS answers and the rest after, reaches
// the upstream whole, as does a small one. With the knob the filter holds the body as
// Envoy's ratelimit filter does (StopIterationAndWatermark): a body over 1 MiB sent while RLS
// cannot answer yet is read up to the buffer limit, then flow control, and reaches the
// upstream whole once RLS answers (StopIterationAndBuffer would have been a 413).
func TestGatewayGlobalBody(t *testing.T) {
	for _, knob := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_on_headers_stop_iteration=%v", knob), func(t *testing.T) {
			env := rlstest.Start(t, rlstest.Options{Config: rlsDomainFile}) // its own count of the daily key
			g := startGateway(t, gwSetup{config: fltGlobal(`{"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": 5000}`),
				routes: shopRoutes, workers: 2, clusters: map[string]string{"ratelimit": "grpc://" + env.RLS.GRPCAddr},
				options: func(o *gateway.Options) { o.AllowOnHeadersStopIteration = knob }})
			postBodies(t, g)
			if knob {
				env.RLS.Pause()
				time.AfterFunc(500*time.Millisecond, env.RLS.Resume)
				postBody(t, g, 3<<19, 0)
			}
		})
	}
}

// postBodies POSTs a 100-byte and a 1.5 MiB chunked body with the daily key (RLS answers
// after the first 64 KiB) and checks that the echo upstream got each whole, through one RLS
// call each.
func postBodies(t *testing.T, g *gwTest) {
	for _, size := range []int{100, 3 << 19} {
		postBody(t, g, size, 500*time.Millisecond)
	}
	if m := g.metrics(); m["usageplans.global.calls"] != 2 {
		t.Errorf("usageplans.global.calls = %d, want 2 (SYNC: one call per request)", m["usageplans.global.calls"])
	}
}

// postBody POSTs a chunked body of size bytes with the daily key, the first 64 KiB then,
// after pause, the rest, and checks that the echo upstream got it whole.
func postBody(t *testing.T, g *gwTest, size int, pause time.Duration) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		chunk := strings.Repeat("b", 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if size-sent < len(chunk) {
				chunk = chunk[:size-sent]
			}
			if _, err := pw.Write([]byte(chunk)); err != nil {
				return
			}
			if sent == 0 {
				time.Sleep(pause)
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.Addr()+"/pets", pr)
	req.Host = "api.example.com"
	req.Header.Set("x-api-key", fltDaily)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("POST of %d bytes: %v", size, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var echo gateway.Echo
	if resp.StatusCode != 200 || json.Unmarshal(b, &echo) != nil || echo.BodyBytes != int64(size) {
		t.Fatalf("POST of %d bytes: %d %.300s, want 200 and the whole body upstream", size, resp.StatusCode, b)
	}
}
