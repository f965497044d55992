package host

import (
	"github.com/tetratelabs/wazero/api"
	"sort"
	"sync"
)

// MetricType is a proxy-wasm metric type.
type MetricType uint32

// Metric types of ABI 0.2.1.
const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)

func (t MetricType) String() string {
	switch t {
	case MetricCounter:
		return "counter"
	case MetricGauge:
		return "gauge"
	case MetricHistogram:
		return "histogram"
	}
	return "unknown"
}

// HistogramBounds are the upper bounds of Envoy's default histogram buckets.
var HistogramBounds = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
	30000, 60000, 300000, 600000, 1800000, 3600000}

// Metric is a metric's name and value. Envoy exports a metric defined as "name" under the
// stat name "wasmcustom.name".
type Metric struct {
	Name string
	Type MetricType
	// Value is a counter's or a gauge's value.
	Value uint64
	// Count and Sum summarise a histogram's recorded values; Buckets[i] counts the values
	// <= HistogramBounds[i] (cumulative, as Prometheus expects).
	Count, Sum uint64
	Buckets    []uint64
}

type metricValue struct {
	Metric
}

func (m *metricValue) increment(offset int64) { m.Value = uint64(int64(m.Value) + offset) }

func (m *metricValue) record(value uint64) {
	switch m.Type {
	case MetricCounter:
		m.Value += value
	case MetricGauge:
		m.Value = value
	case MetricHistogram:
		if m.Buckets == nil {
			m.Buckets = make([]uint64, len(HistogramBounds))
		}
		m.Count++
		m.Sum += value
		for i, b := range HistogramBounds {
			if float64(value) <= b {
				m.Buckets[i]++
			}
		}
	}
}

func (m *metricValue) snapshot() Metric {
	out := m.Metric
	out.Buckets = append([]uint64(nil), m.Buckets...)
	return out
}

type metricKey struct {
	name string
	typ  MetricType
}

// metricStore holds a plugin's metrics. As in Envoy, where a metric name resolves to one stat
// in the plugin's scope, every VM of the plugin (and every swapped-in version) that defines
// the same name and type shares one value.
type metricStore struct {
	mu     sync.Mutex
	values map[metricKey]*metricValue
}

func newMetricStore() *metricStore { return &metricStore{values: map[metricKey]*metricValue{}} }

func (s *metricStore) lookup(k metricKey) *metricValue {
	m := s.values[k]
	if m == nil {
		m = &metricValue{Metric: Metric{Name: k.name, Type: k.typ}}
		s.values[k] = m
	}
	return m
}

func (s *metricStore) snapshot() []Metric {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Metric, 0, len(s.values))
	for _, m := range s.values {
		out = append(out, m.snapshot())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Type < out[j].Type
	})
	return out
}

// vmMetrics maps a VM's metric ids to metrics. Ids follow Envoy's nextCounterMetricId and
// its siblings: the low two bits are the type, and each type's counter starts at the type's
// value and is incremented by 4 before use (counters 4, 8, ...; gauges 5, 9, ...; histograms
// 6, 10, ...); every define takes a new id, even for a name
// already defined, and all ids of one name reach the same value. own holds this VM's
// contributions.
type vmMetrics struct {
	mu   sync.Mutex
	byID map[uint32]metricKey
	next [3]uint32
	own  *metricStore
}

func (m *vmMetrics) init() {
	m.byID = map[uint32]metricKey{}
	m.next = [3]uint32{0, 1, 2}
	m.own = newMetricStore()
}

// applyMetric runs op on the shared value of metric id and, for a change (own), on this
// VM's own value too. Like Envoy it reads the type from the id's low bits first: ids of type 3
// are BAD_ARGUMENT, and so are those of a type op refuses (wrongType), even undefined ones.
func (v *VM) applyMetric(id uint32, own bool, wrongType func(MetricType) bool, op func(*metricValue) Status) Status {
	if typ := MetricType(id & 3); typ > MetricHistogram || wrongType(typ) {
		return StatusBadArgument
	}
	v.metricIDs.mu.Lock()
	k, ok := v.metricIDs.byID[id]
	v.metricIDs.mu.Unlock()
	if !ok {
		return StatusNotFound
	}
	shared := v.plugin.metrics
	shared.mu.Lock()
	st := op(shared.lookup(k))
	shared.mu.Unlock()
	if st == StatusOK && own {
		own := v.metricIDs.own
		own.mu.Lock()
		op(own.lookup(k))
		own.mu.Unlock()
	}
	return st
}

var metricFuncs = []hostFunc{
	// proxy_define_metric(type, name_ptr, name_size, id_ptr) -> status
	//
	// Defines a metric and stores a new id for it as a u32 at id_ptr (a name defined again
	// gets another id for the same value, as in Envoy).
	//   - BAD_ARGUMENT: type is not 0 (counter), 1 (gauge) or 2 (histogram).
	//   - INVALID_MEMORY_ACCESS: the name or id_ptr is out of range.
	{name: "proxy_define_metric", params: i32s(4), results: statusResult, fn: func(v *VM, s []uint64) {
		typ := MetricType(uint32(s[0]))
		if typ > MetricHistogram {
			s[0] = uint64(StatusBadArgument)
			return
		}
		name, ok := v.readString(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		k := metricKey{name, typ}
		m := &v.metricIDs
		m.mu.Lock()
		m.next[typ] += 4
		id := m.next[typ]
		m.byID[id] = k
		m.mu.Unlock()
		shared := v.plugin.metrics
		shared.mu.Lock()
		shared.lookup(k)
		shared.mu.Unlock()
		m.own.mu.Lock()
		m.own.lookup(k)
		m.own.mu.Unlock()
		if !v.writeU32(uint32(s[3]), id) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(StatusOK)
	}},
	// proxy_increment_metric(id, offset i64) -> status
	//
	// Adds offset to a counter (offset must be > 0) or to a gauge (any sign).
	//   - BAD_ARGUMENT: a histogram id, or a counter with offset <= 0.
	//   - NOT_FOUND: no metric has that id.
	{name: "proxy_increment_metric", params: []api.ValueType{i32, i64}, results: statusResult, fn: func(v *VM, s []uint64) {
		offset := int64(s[1])
		s[0] = uint64(v.applyMetric(uint32(s[0]), true, isHistogram, func(m *metricValue) Status {
			if m.Type == MetricCounter && offset <= 0 {
				return StatusBadArgument
			}
			m.increment(offset)
			return StatusOK
		}))
	}},
	// proxy_record_metric(id, value u64) -> status
	//
	// Adds value to a counter, sets a gauge to value, or records value in a histogram.
	//   - NOT_FOUND: no metric has that id.
	{name: "proxy_record_metric", params: []api.ValueType{i32, i64}, results: statusResult, fn: func(v *VM, s []uint64) {
		value := s[1]
		if s[0]&3 == 3 { // Envoy's recordMetric finds no such id
			s[0] = uint64(StatusNotFound)
			return
		}
		s[0] = uint64(v.applyMetric(uint32(s[0]), true, func(MetricType) bool { return false }, func(m *metricValue) Status {
			m.record(value)
			return StatusOK
		}))
	}},
	// proxy_get_metric(id, value_ptr) -> status
	//
	// Stores a counter's or gauge's value (the plugin-wide value, shared by all its VMs as in
	// Envoy) as a u64 at value_ptr.
	//   - BAD_ARGUMENT: a histogram id.
	//   - NOT_FOUND: no metric has that id.
	//   - INVALID_MEMORY_ACCESS: value_ptr is out of range.
	{name: "proxy_get_metric", params: i32s(2), results: statusResult, fn: func(v *VM, s []uint64) {
		var value uint64
		st := v.applyMetric(uint32(s[0]), false, isHistogram, func(m *metricValue) Status {
			value = m.Value
			return StatusOK
		})
		if st == StatusOK && !v.writeU64(uint32(s[1]), value) {
			st = StatusInvalidMemoryAccess
		}
		s[0] = uint64(st)
	}},
}

// Metrics returns this VM's own contributions to its plugin's metrics: what its guest
// incremented, set and recorded. Plugin.Metrics has the plugin-wide values.
func (v *VM) Metrics() []Metric { return v.metricIDs.own.snapshot() }

func isHistogram(t MetricType) bool { return t == MetricHistogram }
