package host

import (
	"context"
	"reflect"
	"testing"
)

// Metrics are shared by a plugin's VMs as Envoy's stats are: the guest reads the
// plugin-wide value, Plugin.Metrics has it, VM.Metrics has each VM's own part.
func TestMetrics(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{Workers: 2})
	var up recorder
	for i, want := range []string{"1|3", "2|6", "3|9"} {
		if _, err := p.Do(context.Background(), get("metric"), up.upstream); err != nil {
			t.Fatal(err)
		}
		if got := resultOf(t, up.last(t), "metric"); got != want {
			t.Errorf("request %d: guest reads requests|inflight = %s, want %s", i, got, want)
		}
	}
	buckets := func(n uint64) []uint64 { // 7 falls in every bucket from le=10 up
		b := make([]uint64, len(HistogramBounds))
		for i, bound := range HistogramBounds {
			if bound >= 7 {
				b[i] = n
			}
		}
		return b
	}
	want := []Metric{
		{Name: "abi_inflight", Type: MetricGauge, Value: 9},
		{Name: "abi_latency", Type: MetricHistogram, Count: 3, Sum: 21, Buckets: buckets(3)},
		{Name: "abi_requests", Type: MetricCounter, Value: 3},
		{Name: "abi_ticks", Type: MetricCounter},
	}
	if got := p.Metrics(); !reflect.DeepEqual(got, want) {
		t.Errorf("Plugin.Metrics\n got %+v\nwant %+v", got, want)
	}
	// Round robin: worker 0 served requests 1 and 3, worker 1 request 2.
	wantVM0 := []Metric{
		{Name: "abi_inflight", Type: MetricGauge, Value: 6},
		{Name: "abi_latency", Type: MetricHistogram, Count: 2, Sum: 14, Buckets: buckets(2)},
		{Name: "abi_requests", Type: MetricCounter, Value: 2},
		{Name: "abi_ticks", Type: MetricCounter},
	}
	if got := p.VMs()[0].Metrics(); !reflect.DeepEqual(got, wantVM0) {
		t.Errorf("VM 0 Metrics\n got %+v\nwant %+v", got, wantVM0)
	}
}

// ABI-level metric ids and statuses, following Envoy.
func TestMetricStatuses(t *testing.T) {
	rt := newRuntime(t, Options{})
	v := probeVM(t, rt, PluginConfig{}, envImport("proxy_define_metric"), envImport("proxy_increment_metric"),
		envImport("proxy_record_metric"), envImport("proxy_get_metric"))
	poke(t, v, 0, []byte("c1c2g1h1"))
	define := func(typ, off uint64) (Status, uint32) {
		st := Status(callIn(t, v, rootContextID, "proxy_define_metric", typ, off, 2, 100))
		return st, peekU32(t, v, 100)
	}
	for _, d := range []struct {
		typ, off uint64
		want     Status
		id       uint32
	}{
		// Envoy's nextCounterMetricId pre-increments by 4 from the type's value, so the
		// first ids are 4, 5 and 6 (this host used to start at 0, 1 and 2).
		{0, 0, StatusOK, 4}, // counters: 4, 8, ...
		{0, 2, StatusOK, 8},
		{0, 0, StatusOK, 12}, // the same name again: a new id for the same value
		{1, 4, StatusOK, 5},  // gauges: 5, 9, ...
		{2, 6, StatusOK, 6},  // histograms: 6, 10, ...
		{3, 0, StatusBadArgument, 6},
	} {
		if st, id := define(d.typ, d.off); st != d.want || id != d.id {
			t.Errorf("define(type %d, %q) = %v id %d, want %v id %d", d.typ, "c1c2g1h1"[d.off:d.off+2], st, id, d.want, d.id)
		}
	}
	neg := func(n int64) uint64 { return uint64(n) }
	for _, op := range []struct {
		fn   string
		id   uint64
		arg  uint64
		want Status
	}{
		{"proxy_increment_metric", 0, 1, StatusNotFound}, // never an id
		{"proxy_increment_metric", 4, 5, StatusOK},
		{"proxy_increment_metric", 4, neg(-1), StatusBadArgument},
		{"proxy_increment_metric", 5, neg(-3), StatusOK},
		{"proxy_increment_metric", 6, 1, StatusBadArgument},
		{"proxy_increment_metric", 12, 1, StatusOK}, // id 12 is c1 too
		{"proxy_increment_metric", 16, 1, StatusNotFound},
		{"proxy_increment_metric", 10, 1, StatusBadArgument}, // an undefined histogram id
		{"proxy_increment_metric", 3, 1, StatusBadArgument},  // type 3
		{"proxy_record_metric", 3, 1, StatusNotFound},
		{"proxy_record_metric", 4, 2, StatusOK},
		{"proxy_record_metric", 5, 40, StatusOK},
		{"proxy_record_metric", 6, 600, StatusOK},
	} {
		if got := Status(callIn(t, v, rootContextID, op.fn, op.id, op.arg)); got != op.want {
			t.Errorf("%s(%d, %d) = %v, want %v", op.fn, op.id, int64(op.arg), got, op.want)
		}
	}
	for _, g := range []struct {
		id    uint64
		want  Status
		value uint64
	}{{4, StatusOK, 8}, {12, StatusOK, 8}, {8, StatusOK, 0}, {5, StatusOK, 40}, {6, StatusBadArgument, 0}, {16, StatusNotFound, 0}, {7, StatusBadArgument, 0}, {0, StatusNotFound, 0}} {
		poke(t, v, 200, make([]byte, 8))
		if st := Status(callIn(t, v, rootContextID, "proxy_get_metric", g.id, 200)); st != g.want || peekU64(t, v, 200) != g.value {
			t.Errorf("get(%d) = %v %d, want %v %d", g.id, st, peekU64(t, v, 200), g.want, g.value)
		}
	}
}
