package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// BenchmarkGateway is one admitted request through the whole gateway over loopback HTTP
// (client, listener, worker VM, echo upstream), with the filter and with the no-op module:
// the ratio filter/noop is what the filter adds to a request; absolute numbers depend on the
// machine.
func BenchmarkGateway(b *testing.B) {
	for _, m := range []struct {
		name string
		wasm []byte
	}{{"noop", noopWasm}, {"filter", filterWasm}} {
		b.Run(m.name, func(b *testing.B) {
			g := startGateway(b, gwSetup{wasm: m.wasm, config: planConfig(1<<40, 1<<40), routes: shopRoutes})
			g.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
			if r := g.get("/pets", key1); r.status != 200 {
				b.Fatalf("%s: %d %s", m.name, r.status, r.body)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := g.do(http.MethodGet, "/pets", key1, nil)
					if err != nil || r.status != 200 {
						b.Errorf("%d %v", r.status, err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGatewayVsReverseProxy puts the gateway (with the filter, and with the no-op
// module) and net/http/httputil.ReverseProxy, the plainest Go proxy there is, in front of
// the same HTTP upstream on loopback, with the same client and concurrency, in one run. Each
// reports req/s; make bench divides the gateway's by the reverse proxy's (the target
// is the filter at ≥ 0.9× of it).
func BenchmarkGatewayVsReverseProxy(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("content-type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}))
	b.Cleanup(upstream.Close)
	target, err := url.Parse(upstream.URL)
	if err != nil {
		b.Fatal(err)
	}
	client := func() *http.Client {
		return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	}
	run := func(b *testing.B, addr string, c *http.Client) {
		get := func() error {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/pets", nil)
			if err != nil {
				return err
			}
			req.Header.Set("x-api-key", key1)
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return &httpStatusError{resp.StatusCode}
			}
			return nil
		}
		if err := get(); err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(16) // 32 clients on the 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := get(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	b.Run("reverseproxy", func(b *testing.B) {
		rp := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
		b.Cleanup(rp.Close)
		run(b, rp.Listener.Addr().String(), client())
	})
	for _, m := range []struct {
		name string
		wasm []byte
	}{{"noop", noopWasm}, {"filter", filterWasm}} {
		b.Run(m.name, func(b *testing.B) {
			g := startGateway(b, gwSetup{wasm: m.wasm, config: planConfig(1<<40, 1<<40), routes: shopRoutes, upstream: upstream.URL})
			run(b, g.Addr(), client())
		})
	}
}

type httpStatusError struct{ status int }

func (e *httpStatusError) Error() string { return "status " + http.StatusText(e.status) }
