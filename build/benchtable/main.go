// Command benchtable turns `go test -bench` output (several -count runs, several packages)
// into the one table `make bench` prints: each path of e2e BenchmarkRequest with its median
// ns/op, that median as a multiple of the no-op module's median from the same run, its host
// calls and allocation re-entries per request, and the median ns/op and allocs/op of the
// BenchmarkDecide sub-benchmark of the same name when the input has it (filter/core run in
// Wasm by make bench-wasm); then the gateway's req/s next to httputil.ReverseProxy's
// (e2e BenchmarkGatewayVsReverseProxy), and global mode's p50 and p99 next to local mode's
// (e2e BenchmarkGlobal). Rows of key-table sizes follow: every benchmark whose last name
// element is keys=N (10, 10k, 100k), as a multiple of its keys=10 sibling.
//
// Usage: go test -bench ... | benchtable [-request BenchmarkRequest] [-decide BenchmarkDecide]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	request := flag.String("request", "BenchmarkRequest", "the benchmark whose sub-benchmarks are the paths")
	decide := flag.String("decide", "BenchmarkDecide", "the benchmark of the decision alone, matched to the paths by sub-benchmark name")
	flag.Parse()
	r, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if err := r.table(os.Stdout, *request, *decide); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// results are the values of every benchmark by name (without the -GOMAXPROCS suffix), unit
// and run, in input order, and what the header lines say of the machine.
type results struct {
	names  []string
	values map[string]map[string][]float64
	cpu    string
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

func parse(in io.Reader) (*results, error) {
	r := &results{values: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if cpu, ok := strings.CutPrefix(line, "cpu: "); ok {
			r.cpu = strings.TrimSpace(cpu)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		if r.values[name] == nil {
			r.values[name] = map[string][]float64{}
			r.names = append(r.names, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: value %q: %v", line, f[i], err)
			}
			r.values[name][f[i+1]] = append(r.values[name][f[i+1]], v)
		}
	}
	return r, sc.Err()
}

// median of the runs of name in unit, and whether there were any.
func (r *results) median(name, unit string) (float64, bool) {
	v := slices.Clone(r.values[name][unit])
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2, true
	}
	return v[len(v)/2], true
}

func (r *results) table(w io.Writer, request, decide string) error {
	noop, ok := r.median(request+"/noop", "ns/op")
	if !ok {
		return fmt.Errorf("no %s/noop in the input: nothing to compare with", request)
	}
	runs := len(r.values[request+"/noop"]["ns/op"])
	fmt.Fprintf(w, "medians of %d runs; cpu: %s; ratios against the no-op module in the same run\n\n", runs, r.cpu)
	fmt.Fprintln(w, "| path | ns/request | × no-op | host calls | alloc re-entries | Decide in Wasm, ns | Decide allocs |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, name := range r.names {
		path, ok := strings.CutPrefix(name, request+"/")
		if !ok || strings.Contains(path, "keys=") {
			continue
		}
		ns, _ := r.median(name, "ns/op")
		calls, _ := r.median(name, "host-calls/op")
		allocs, _ := r.median(name, "guest-allocs/op")
		dns, dallocs := "", ""
		if v, ok := r.median(decide+"/"+path, "ns/op"); ok {
			dns = fmt.Sprintf("%.0f", v)
		}
		if v, ok := r.median(decide+"/"+path, "allocs/op"); ok {
			dallocs = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.0f | %.0f | %s | %s |\n", path, ns, ns/noop, calls, allocs, dns, dallocs)
	}
	r.gateway(w)
	r.global(w)
	return r.keyTable(w)
}

// globalBench is global mode's latency next to local mode's (e2e, against a real RLS).
const globalBench = "BenchmarkGlobal"

// global prints, when the input has them, the median p50 and p99 of a request with a quota
// in local mode and in global mode (SYNC, LEASE), and the medians of each run's ratios to
// local measured in that run, with RLS calls per request.
func (r *results) global(w io.Writer) {
	if _, ok := r.median(globalBench+"/local", "p50-ns"); !ok {
		return
	}
	fmt.Fprintln(w, "\nglobal mode against RLS + Redis on loopback, one request at a time (medians; ratios to local in the same run):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | p50 ns | p50 × local | p99 ns | p99 × local | RLS calls/request |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, m := range []string{"local", "sync", "lease"} {
		name := globalBench + "/" + m
		p50, ok := r.median(name, "p50-ns")
		if !ok {
			fmt.Fprintf(w, "| %s | skipped (no RLS in this run) | | | | |\n", m)
			continue
		}
		p99, _ := r.median(name, "p99-ns")
		x50, x99, calls := "1.00", "1.00", "0"
		if m != "local" {
			v50, _ := r.median(name, "p50-x-local")
			v99, _ := r.median(name, "p99-x-local")
			c, _ := r.median(name, "calls/op")
			x50, x99, calls = fmt.Sprintf("%.2f", v50), fmt.Sprintf("%.2f", v99), fmt.Sprintf("%.2f", c)
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %.0f | %s | %s |\n", m, p50, x50, p99, x99, calls)
	}
}

// gatewayBench is the benchmark of the whole gateway next to httputil.ReverseProxy.
const gatewayBench = "BenchmarkGatewayVsReverseProxy"

// gateway prints the gateway's median req/s, with the filter and with the no-op module, as
// a multiple of httputil.ReverseProxy's in front of the same upstream, when the input has them.
func (r *results) gateway(w io.Writer) {
	rp, ok := r.median(gatewayBench+"/reverseproxy", "req/s")
	if !ok || rp == 0 {
		return
	}
	fmt.Fprintf(w, "\ngateway over loopback HTTP, req/s (median): httputil.ReverseProxy %.0f", rp)
	for _, m := range []string{"noop", "filter"} {
		if v, ok := r.median(gatewayBench+"/"+m, "req/s"); ok {
			fmt.Fprintf(w, "; %s %.0f (%.2f×)", m, v, v/rp)
		}
	}
	fmt.Fprintln(w)
}

// keyTable prints the key-table sizes: benchmarks named .../keys=N, each as a multiple of
// the keys=10 benchmark with the same prefix. Without any, it says so: the benchmarks of
// the key table's size are the configuration's (filter/config).
func (r *results) keyTable(w io.Writer) error {
	var rows []string
	for _, name := range r.names {
		i := strings.LastIndex(name, "/keys=")
		if i < 0 {
			continue
		}
		base, ok := r.median(name[:i]+"/keys=10", "ns/op")
		ns, _ := r.median(name, "ns/op")
		ratio := ""
		if ok && base > 0 {
			ratio = fmt.Sprintf("%.2f", ns/base)
		}
		rows = append(rows, fmt.Sprintf("| %s | %.0f | %s |", name, ns, ratio))
	}
	fmt.Fprintln(w)
	if len(rows) == 0 {
		fmt.Fprintln(w, "key-table sizes: no benchmark named .../keys=N in this run")
		return nil
	}
	fmt.Fprintln(w, "| key-table size | ns/op | × keys=10 |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, row := range rows {
		fmt.Fprintln(w, row)
	}
	return nil
}
