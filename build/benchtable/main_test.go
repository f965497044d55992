package main

import (
	"strings"
	"testing"
)

// TestTable: medians over the runs (the middle pair averaged for an even count), each path
// against the no-op module's median, the decision's figures joined by sub-benchmark name,
// the gateway's req/s against the reverse proxy's, and key-table sizes against keys=10.
func TestTable(t *testing.T) {
	in := `goos: linux
cpu: Test CPU 9000
BenchmarkRequest/noop-2    1000   3000 ns/op   0 guest-allocs/op   0 host-calls/op
BenchmarkRequest/noop-2    1000   5000 ns/op   0 guest-allocs/op   0 host-calls/op
BenchmarkRequest/noop-2    1000   2000 ns/op   0 guest-allocs/op   0 host-calls/op
BenchmarkRequest/allow-2   1000  12000 ns/op   3.000 guest-allocs/op   11.00 host-calls/op   4.000 x-noop
BenchmarkRequest/allow-2   1000   9000 ns/op   3.000 guest-allocs/op   11.00 host-calls/op   3.000 x-noop
BenchmarkRequest/allow-2   1000  99000 ns/op   3.000 guest-allocs/op   11.00 host-calls/op   33.00 x-noop
BenchmarkGatewayVsReverseProxy/reverseproxy-2   100   10 ns/op   2000 req/s
BenchmarkGatewayVsReverseProxy/filter-2         100   10 ns/op   1500 req/s
BenchmarkGlobal/local-2   100   20000 ns/op   16000 p50-ns   60000 p99-ns
BenchmarkGlobal/local-2   100   20000 ns/op   18000 p50-ns   80000 p99-ns
BenchmarkGlobal/sync-2    100  800000 ns/op   1.000 calls/op   750000 p50-ns   46.00 p50-x-local   2400000 p99-ns   40.00 p99-x-local
BenchmarkGlobal/sync-2    100  800000 ns/op   1.000 calls/op   770000 p50-ns   48.00 p50-x-local   2600000 p99-ns   30.00 p99-x-local
goos: wasip1
BenchmarkDecide/allow       500   7000 ns/op   0 B/op   0 allocs/op
BenchmarkDecide/allow       500   8000 ns/op   0 B/op   0 allocs/op
BenchmarkKeyLookup/keys=10     100   100 ns/op
BenchmarkKeyLookup/keys=100k   100   150 ns/op
PASS
`
	r, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := r.table(&out, "BenchmarkRequest", "BenchmarkDecide"); err != nil {
		t.Fatal(err)
	}
	want := `medians of 3 runs; cpu: Test CPU 9000; ratios against the no-op module in the same run

| path | ns/request | × no-op | host calls | alloc re-entries | Decide in Wasm, ns | Decide allocs |
|---|---:|---:|---:|---:|---:|---:|
| noop | 3000 | 1.00 | 0 | 0 |  |  |
| allow | 12000 | 4.00 | 11 | 3 | 7500 | 0 |

gateway over loopback HTTP, req/s (median): httputil.ReverseProxy 2000; filter 1500 (0.75×)

global mode against RLS + Redis on loopback, one request at a time (medians; ratios to local in the same run):

| mode | p50 ns | p50 × local | p99 ns | p99 × local | RLS calls/request |
|---|---:|---:|---:|---:|---:|
| local | 17000 | 1.00 | 70000 | 1.00 | 0 |
| sync | 760000 | 47.00 | 2500000 | 35.00 | 1.00 |
| lease | skipped (no RLS in this run) | | | | |

| key-table size | ns/op | × keys=10 |
|---|---:|---:|
| BenchmarkKeyLookup/keys=10 | 100 | 1.00 |
| BenchmarkKeyLookup/keys=100k | 150 | 1.50 |
`
	if got := out.String(); got != want {
		t.Errorf("table\n got:\n%s\nwant:\n%s", got, want)
	}
}

// TestTableWithoutNoop: without the floor there is nothing to divide by, and it says so.
func TestTableWithoutNoop(t *testing.T) {
	r, err := parse(strings.NewReader("BenchmarkRequest/allow-2 10 100 ns/op\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = r.table(&strings.Builder{}, "BenchmarkRequest", "BenchmarkDecide")
	if err == nil || err.Error() != "no BenchmarkRequest/noop in the input: nothing to compare with" {
		t.Fatalf("table = %v, want the missing no-op named", err)
	}
}
