package e2e

import (
	"context"
	"testing"
)

// A reload that swaps the module releases the old module's compiled code once the VMs that
// still ran it have drained, and a reload that changes only the configuration keeps the
// module. Before, every swapped-out module stayed compiled for the gateway's lifetime.
func TestGatewayReleasesSwappedOutModule(t *testing.T) {
	g := startGateway(t, gwSetup{config: fltOptions(), workers: 2})
	old := g.Plugin().Module()
	writeFile(t, g.wasm, filterV2(t))
	if _, err := g.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	g.Plugin().WaitRetired()
	if !old.Closed() {
		t.Error("the swapped-out module is still compiled after its VMs drained")
	}
	v2 := g.Plugin().Module()
	if v2 == old || v2.Closed() {
		t.Fatal("the serving module is the old one, or closed")
	}
	writeFile(t, g.config, []byte(fltOptions(`"rateLimitHeaders": true`)))
	if _, err := g.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	g.Plugin().WaitRetired()
	if g.Plugin().Module() != v2 || v2.Closed() {
		t.Error("a configuration-only reload replaced or closed the serving module")
	}
	if r := g.get("/pets", fltGold); r.status != 200 {
		t.Errorf("GET after the reloads: %d %s", r.status, r.body)
	}
}
