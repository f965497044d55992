package global

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/state"
)

// model is RLS's fixed-window counting as envoyproxy/ratelimit's Redis cache does it
// (src/limiter/cache_key.go, src/redis/fixed_cache_impl.go, src/limiter/base_limiter.go):
// key = domain, then key_value pairs joined with '_', then the window start; INCRBY the
// hits unconditionally; OVER_LIMIT when the count after the increment exceeds the limit.
// It reads the request with Envoy's generated types, so it checks the filter's encoding too.
// Unit tests run the pure logic against it; the end-to-end tests run the real RLS.
type model struct {
	t      testing.TB
	counts map[string]uint64
	calls  int
	// down answers every call as failed; status answers a gRPC error (Redis down).
	down   bool
	status int
}

func newModel(t testing.TB) *model { return &model{t: t, counts: map[string]uint64{}} }

func (m *model) answer(body []byte, now int64) Answer {
	m.calls++
	if m.down {
		return Answer{Failed: true}
	}
	if m.status != 0 {
		return Answer{Headers: [][2]string{{":status", "200"}, {"grpc-status", strconv.Itoa(m.status)}, {"grpc-message", "redis: connection refused"}}}
	}
	if len(body) < 5 || body[0] != 0 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
		m.t.Fatalf("bad frame %x", body)
	}
	var req rlsv3.RateLimitRequest
	if err := proto.Unmarshal(body[5:], &req); err != nil {
		m.t.Fatal(err)
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}
	for _, d := range req.Descriptors {
		var k strings.Builder
		k.WriteString(req.Domain + "_")
		for _, e := range d.Entries {
			k.WriteString(e.Key + "_" + e.Value + "_")
		}
		unit := rls.Unit(d.Limit.Unit)
		k.WriteString(strconv.FormatInt(unit.WindowStart(now), 10))
		hits := uint64(max(1, req.HitsAddend))
		if d.HitsAddend != nil {
			hits = d.HitsAddend.Value
		}
		m.counts[k.String()] += hits
		after := m.counts[k.String()]
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK,
			CurrentLimit:       &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: d.Limit.RequestsPerUnit, Unit: rlsv3.RateLimitResponse_RateLimit_Unit(unit)},
			DurationUntilReset: durationpb.New(time.Duration(unit.Seconds()-now%unit.Seconds()) * time.Second)}
		if after > uint64(d.Limit.RequestsPerUnit) {
			st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
		} else {
			st.LimitRemaining = uint32(uint64(d.Limit.RequestsPerUnit) - after)
		}
		resp.Statuses = append(resp.Statuses, st)
	}
	msg, err := proto.Marshal(resp)
	if err != nil {
		m.t.Fatal(err)
	}
	return Answer{Headers: [][2]string{{":status", "200"}, {"content-type", "application/grpc"}},
		Body: rls.AppendFrame(nil, msg), Trailers: [][2]string{{"grpc-status", "0"}}}
}

// total is RLS's count over every key whose name holds all of parts.
func (m *model) total(parts ...string) uint64 {
	var n uint64
	for k, v := range m.counts {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(k, p)
		}
		if all {
			n += v
		}
	}
	return n
}

// proxy is one proxy: its shared data, and one Quota per worker VM.
type proxy struct {
	store   *state.MemStore
	workers []*Quota
}

func newProxies(n, workers int) []*proxy {
	ps := make([]*proxy, n)
	for i := range ps {
		ps[i] = &proxy{store: &state.MemStore{}}
		for range workers {
			ps[i].workers = append(ps[i].workers, &Quota{})
		}
	}
	return ps
}

// request runs one request through worker w of p against m, start to finish.
func (p *proxy) request(t testing.TB, cfg *config.Config, m *model, w int, now time.Time) (Step, Result) {
	qt := p.workers[w%len(p.workers)]
	plan, key := cfg.Plans[0], cfg.Keys[0]
	tk := qt.Begin(cfg, plan, key, now, p.store)
	switch tk.StepOf() {
	case Fail:
		t.Fatalf("Begin: %v", tk.Err)
	case Admit:
		return Admit, Result{Verdict: Admitted}
	case Refuse:
		return Refuse, Result{Verdict: Exceeded, Remaining: 0, Reset: tk.Window.End}
	}
	r := qt.Finish(cfg, &tk, m.answer(tk.Body, now.Unix()), now, p.store)
	if r.StateErr != nil {
		t.Fatalf("Finish: %v", r.StateErr)
	}
	return Call, r
}

func globalCfg(t testing.TB, quota, global string) *config.Config {
	doc := `{"apis": [{"id": "a", "resources": [{"path": "/x", "resourceMethods": {"GET": {"apiKeyRequired": true}}}], "stages": [{"stageName": "s"}]}],
	  "routes": [{"match": {"pathPrefix": "/"}, "apiId": "a", "stage": "s"}],
	  "usagePlans": [{"id": "gold_plan", "apiStages": [{"apiId": "a", "stage": "s"}], "quota": ` + quota + `}],
	  "apiKeys": [{"id": "k_1", "value": "Key00000000000000000000001"}],
	  "usagePlanKeys": [{"usagePlanId": "gold_plan", "keyId": "k_1"}],
	  "global": ` + global + `}`
	c, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
