package e2e

import (
	"testing"
	"time"
)

// The gateway drives proxy_on_tick as Envoy's timers do (host.Plugin.RunTicks on the
// gateway's clock): the abi guest asks for a 5 ms period and counts its ticks. The fake
// clock moves only when the test moves it, so each 5 ms step gives exactly one tick. Before,
// nothing ran RunTicks and a filter's ticks never came.
func TestGatewayTicks(t *testing.T) {
	g := startGateway(t, gwSetup{wasm: hostABIGuest(t), config: "tick=5", workers: 1})
	ticks := func() string {
		r, up := g.abiGet("/", "ticks")
		if r.status != 200 {
			t.Fatalf("GET x-op ticks: %d %s", r.status, r.body)
		}
		return up["x-r-ticks"]
	}
	if got := ticks(); got != "0" {
		t.Fatalf("ticks before the clock moved = %q, want 0", got)
	}
	for want := 1; want <= 2; want++ {
		g.clock.Advance(5 * time.Millisecond)
		deadline := time.Now().Add(time.Minute) // a hang guard, not a timing assertion
		got := ticks()
		for got != itoa(want) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			got = ticks()
		}
		if got != itoa(want) {
			t.Fatalf("ticks after %d steps of 5 ms = %q, want %d", want, got, want)
		}
	}
}
