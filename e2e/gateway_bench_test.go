package e2e

import (
	"net/http"
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
