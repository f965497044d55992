package gateway

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usageplans/usageplans/host"
)

// statPrefix is the HTTP connection manager's stat_prefix: the gateway's request stats are
// named as Envoy names them for a listener with this prefix.
const statPrefix = "usageplans"

// How a request ended, for the access log and the gateway's counters.
const (
	endLocal        = "local"           // the filter (or a failed VM) answered itself
	endUpstream     = "upstream"        // the upstream answered
	endUpstreamFail = "upstream_error"  // the upstream could not be reached or broke off
	endNoRoute      = "route_not_found" // no route selected the request: 404
	endReset        = "reset"           // the filter reset the stream
	endClientGone   = "client_gone"     // the client went away first
)

var ends = []string{endLocal, endUpstream, endUpstreamFail, endNoRoute, endReset, endClientGone, endTimeout}

// stats are the gateway's own counters, lock-free on the request path.
type stats struct {
	rqTotal  atomic.Uint64
	rqActive atomic.Int64
	rqClass  [6]atomic.Uint64 // by status/100 (0 unused)
	ended    map[string]*atomic.Uint64

	timeMu  sync.Mutex
	timeCnt uint64
	timeSum float64  // milliseconds
	timeBkt []uint64 // cumulative, by host.HistogramBounds

	reloadOK, reloadFailed, reloadUnchanged atomic.Uint64

	// Envoy's counters of the same names: requests ended by a timeout, answered 400 or
	// redirected by the path settings, and connections closed over the cap.
	rqTimeout, rqPathFailed, rqPathRedirected, cxOverflow atomic.Uint64
}

func newStats() *stats {
	s := &stats{ended: map[string]*atomic.Uint64{}, timeBkt: make([]uint64, len(host.HistogramBounds))}
	for _, e := range ends {
		s.ended[e] = new(atomic.Uint64)
	}
	return s
}

func (s *stats) record(status int, end string, d time.Duration) {
	s.rqTotal.Add(1)
	if c := status / 100; c >= 1 && c <= 5 {
		s.rqClass[c].Add(1)
	}
	s.ended[end].Add(1)
	ms := float64(d) / float64(time.Millisecond)
	s.timeMu.Lock()
	s.timeCnt++
	s.timeSum += ms
	for i, b := range host.HistogramBounds {
		if ms <= b {
			s.timeBkt[i]++
		}
	}
	s.timeMu.Unlock()
}

// stat is one exported value, named for /stats (Envoy's dotted name) and for Prometheus
// (name plus labels, as Envoy's tag extraction and custom namespaces give them).
type stat struct {
	name    string // dotted, as in /stats
	prom    string // Prometheus metric name
	labels  string // `a="b",c="d"` or ""
	typ     host.MetricType
	value   uint64
	count   uint64
	sum     float64
	buckets []uint64
}

// snapshot lists the gateway's stats and the filter's metrics (summed over VMs and versions).
func (g *Gateway) snapshot() []stat {
	s := g.stats
	hcm := `envoy_http_conn_manager_prefix="` + statPrefix + `"`
	dotted := "http." + statPrefix + "."
	out := []stat{
		{name: dotted + "downstream_rq_total", prom: "envoy_http_downstream_rq_total", labels: hcm, value: s.rqTotal.Load()},
		{name: dotted + "downstream_rq_active", prom: "envoy_http_downstream_rq_active", labels: hcm, typ: host.MetricGauge, value: uint64(max(s.rqActive.Load(), 0))},
	}
	for c := 1; c <= 5; c++ {
		out = append(out, stat{name: fmt.Sprintf("%sdownstream_rq_%dxx", dotted, c), prom: "envoy_http_downstream_rq_xx",
			labels: fmt.Sprintf(`envoy_response_code_class="%d",%s`, c, hcm), value: s.rqClass[c].Load()})
	}
	s.timeMu.Lock()
	out = append(out, stat{name: dotted + "downstream_rq_time", prom: "envoy_http_downstream_rq_time", labels: hcm,
		typ: host.MetricHistogram, count: s.timeCnt, sum: s.timeSum, buckets: append([]uint64(nil), s.timeBkt...)})
	s.timeMu.Unlock()
	out = append(out,
		stat{name: dotted + "downstream_rq_timeout", prom: "envoy_http_downstream_rq_timeout", labels: hcm, value: s.rqTimeout.Load()},
		stat{name: dotted + "downstream_rq_failed_path_normalization", prom: "envoy_http_downstream_rq_failed_path_normalization", labels: hcm, value: s.rqPathFailed.Load()},
		stat{name: dotted + "downstream_rq_redirected_with_normalized_path", prom: "envoy_http_downstream_rq_redirected_with_normalized_path", labels: hcm, value: s.rqPathRedirected.Load()},
		stat{name: "listener." + listenerStatName(g.ln.Addr().String()) + ".downstream_cx_overflow", prom: "envoy_listener_downstream_cx_overflow",
			labels: `envoy_listener_address="` + listenerStatName(g.ln.Addr().String()) + `"`, value: s.cxOverflow.Load()},
	)
	for _, e := range ends {
		out = append(out, stat{name: "gateway.requests." + e, prom: "usageplans_gateway_requests_" + e, value: s.ended[e].Load()})
	}
	out = append(out,
		stat{name: "gateway.reload.success", prom: "usageplans_gateway_reload_success", value: s.reloadOK.Load()},
		stat{name: "gateway.reload.failure", prom: "usageplans_gateway_reload_failure", value: s.reloadFailed.Load()},
		stat{name: "gateway.reload.unchanged", prom: "usageplans_gateway_reload_unchanged", value: s.reloadUnchanged.Load()},
		stat{name: "gateway.generation", prom: "usageplans_gateway_generation", typ: host.MetricGauge, value: uint64(g.active().n)},
		stat{name: "gateway.workers", prom: "usageplans_gateway_workers", typ: host.MetricGauge, value: uint64(g.opts.Workers)},
		stat{name: "gateway.workers_failed", prom: "usageplans_gateway_workers_failed", typ: host.MetricGauge, value: uint64(g.failedVMs())},
	)
	// Envoy exports a Wasm metric "x.y" as the stat "wasmcustom.x.y", and in Prometheus
	// without the custom namespace and without the "envoy_" prefix: "x_y".
	for _, m := range g.plugin.Metrics() {
		st := stat{name: "wasmcustom." + m.Name, prom: promName(m.Name), typ: m.Type, value: m.Value,
			count: m.Count, sum: float64(m.Sum), buckets: m.Buckets}
		out = append(out, st)
	}
	return out
}

// listenerStatName is a listener's address as Envoy writes it in stat names: "127.0.0.1_8080".
func listenerStatName(addr string) string { return strings.ReplaceAll(addr, ":", "_") }

// promName sanitises a stat name as Envoy's Prometheus formatter does: every character
// outside [a-zA-Z0-9_] becomes '_'.
func promName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// writeText writes stats as Envoy's /stats does: "name: value", sorted by name.
// Histograms show their count, sum and the upper bound of the bucket holding each quantile.
func writeText(w io.Writer, stats []stat) {
	sort.Slice(stats, func(i, j int) bool { return stats[i].name < stats[j].name })
	for _, s := range stats {
		if s.typ == host.MetricHistogram {
			fmt.Fprintf(w, "%s: count=%d sum=%s P50<=%s P90<=%s P99<=%s\n", s.name, s.count, formatFloat(s.sum),
				quantileBound(s, 0.5), quantileBound(s, 0.9), quantileBound(s, 0.99))
			continue
		}
		fmt.Fprintf(w, "%s: %d\n", s.name, s.value)
	}
}

func quantileBound(s stat, q float64) string {
	if s.count == 0 {
		return "nan"
	}
	want := uint64(math.Ceil(q * float64(s.count)))
	for i, c := range s.buckets {
		if c >= want {
			return formatFloat(host.HistogramBounds[i])
		}
	}
	return "+Inf"
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// writePrometheus writes stats in the Prometheus text format (0.0.4), one family per name,
// as Envoy's /stats/prometheus does.
func writePrometheus(w io.Writer, stats []stat) {
	sort.SliceStable(stats, func(i, j int) bool {
		if stats[i].prom != stats[j].prom {
			return stats[i].prom < stats[j].prom
		}
		return stats[i].labels < stats[j].labels
	})
	last := ""
	for _, s := range stats {
		if s.prom != last {
			fmt.Fprintf(w, "# TYPE %s %s\n", s.prom, s.typ)
			last = s.prom
		}
		if s.typ != host.MetricHistogram {
			fmt.Fprintf(w, "%s%s %d\n", s.prom, braces(s.labels), s.value)
			continue
		}
		sep := ""
		if s.labels != "" {
			sep = ","
		}
		for i, b := range host.HistogramBounds {
			var c uint64
			if i < len(s.buckets) {
				c = s.buckets[i]
			}
			fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", s.prom, s.labels, sep, formatFloat(b), c)
		}
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", s.prom, s.labels, sep, s.count)
		fmt.Fprintf(w, "%s_sum%s %s\n", s.prom, braces(s.labels), formatFloat(s.sum))
		fmt.Fprintf(w, "%s_count%s %d\n", s.prom, braces(s.labels), s.count)
	}
}

func braces(labels string) string {
	if labels == "" {
		return ""
	}
	return "{" + labels + "}"
}
