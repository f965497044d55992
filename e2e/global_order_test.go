package e2e

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	rlspb "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"

	"github.com/usageplans/usageplans/internal/rlstest"
)

// orderRLS is a gRPC RateLimitService on loopback that passes every call on to the real
// RLS and holds the first call's answer until release is closed: RLS's answers can then
// arrive in the other order than it counted them, as they can when two workers' calls are
// in flight at once. The filter's configure-time checks pass untouched.
type orderRLS struct {
	rlspb.UnimplementedRateLimitServiceServer
	rls      rlspb.RateLimitServiceClient
	mu       sync.Mutex
	calls    int
	received chan struct{} // closed when the first call has been counted by RLS
	release  chan struct{} // closed by the test: the first call's answer may go
}

func (o *orderRLS) ShouldRateLimit(ctx context.Context, req *rlspb.RateLimitRequest) (*rlspb.RateLimitResponse, error) {
	if d := req.GetDescriptors(); len(d) > 0 && len(d[0].GetEntries()) > 0 && d[0].GetEntries()[0].GetKey() == "usageplans-check" {
		return o.rls.ShouldRateLimit(ctx, req) // each VM's configure-time check: not reordered
	}
	o.mu.Lock()
	o.calls++
	n := o.calls
	o.mu.Unlock()
	resp, err := o.rls.ShouldRateLimit(ctx, req)
	switch n {
	case 1:
		close(o.received)
		select {
		case <-o.release:
		case <-time.After(5 * time.Second):
		}
	}
	return resp, err
}

// TestGlobalAnswersOutOfOrder: quota 1, SYNC, two workers. Worker 0's call is counted first
// (1: admitted) but its answer comes last; worker 1's call (2: OVER_LIMIT) is answered
// first. The proxy knows RLS said OVER_LIMIT in the window, and RLS's count only grows, so
// its next request must be refused without a call (docs/configuration.md: "Once RLS has
// answered OVER_LIMIT for a key in the current RLS window, the proxy refuses the key's next
// requests by itself"). The filter used to clear that knowledge when the late admitted
// answer arrived and call RLS again (one more call counted in Redis, and the stale
// answer's remaining back in the entry): TestFilterGlobalSyncExact met it now and then.
func TestGlobalAnswersOutOfOrder(t *testing.T) {
	env := rlstest.Start(t, rlstest.Options{Config: rlsDomainFile})
	o := &orderRLS{rls: env.RLS.Client(t), received: make(chan struct{}), release: make(chan struct{})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rlspb.RegisterRateLimitServiceServer(srv, o)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	daily := `{"limit": 3, "period": "DAY"}`
	cfg := fltOptions(`"global": {"cluster": "ratelimit", "domain": "usageplans", "timeoutMs": 10000}`)
	if strings.Count(cfg, daily) != 1 {
		t.Fatalf("plan daily's quota %s is not in the configuration once", daily)
	}
	cfg = strings.Replace(cfg, daily, `{"limit": 1, "period": "DAY"}`, 1) // plan daily: quota 1
	e := startFilter(t, fltSetup{workers: 2, start: time.Now(), config: cfg,
		clusters: map[string]string{"ratelimit": "grpc://" + l.Addr().String()}})
	vms := e.plugin.VMs()
	do := func(w int) int {
		resp, err := vms[w].Do(context.Background(), fltGet("/pets", apiKey(fltDaily)), e.upstreamOK)
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
			return 0
		}
		return resp.Status
	}
	first := make(chan int, 1)
	go func() { first <- do(0) }()
	<-o.received
	if s := do(1); s != 429 {
		t.Errorf("worker 1, RLS's second count: %d, want 429", s)
	}
	close(o.release)
	if s := <-first; s != 200 {
		t.Errorf("worker 0, RLS's first count (answered last): %d, want 200", s)
	}
	if s := do(1); s != 429 {
		t.Errorf("the next request: %d, want 429", s)
	}
	e.wantCounters(t, map[string]uint64{"usageplans.global.calls": 2, "usageplans.global.refused_local": 1})
}
