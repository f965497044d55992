package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/host"
)

// manyKeysConfig is a configuration of n API keys spread over two plans of one stage.
func manyKeysConfig(n int) string {
	var keys, planKeys strings.Builder
	for i := range n {
		if i > 0 {
			keys.WriteByte(',')
			planKeys.WriteByte(',')
		}
		fmt.Fprintf(&keys, `{"id": "k%d", "value": "GeneratedKeyValue%012d", "name": "customer %d"}`, i, i, i)
		fmt.Fprintf(&planKeys, `{"usagePlanId": "p%d", "keyId": "k%d"}`, i%2, i)
	}
	return `{"apis": [{"id": "a", "resources": [{"path": "/x", "resourceMethods": {"GET": {"apiKeyRequired": true}}}],
		"stages": [{"stageName": "s"}]}], "routes": [{"apiId": "a", "stage": "s"}],
		"usagePlans": [{"id": "p0", "apiStages": [{"apiId": "a", "stage": "s"}]}, {"id": "p1", "apiStages": [{"apiId": "a", "stage": "s"}]}],
		"apiKeys": [` + keys.String() + `], "usagePlanKeys": [` + planKeys.String() + `]}`
}

// BenchmarkConfigureKeys is one proxy_on_configure of 10, 10k and 100k keys on one VM of
// the built module: what every worker VM pays on every reload. x-10keys is the time as a
// multiple of the 10-key configure of the same run; MiB is the VM's linear memory after the
// first configure of that size on a fresh VM (Go's Wasm memory never shrinks).
func BenchmarkConfigureKeys(b *testing.B) {
	var tenKeys float64
	for _, n := range []int{10, 10000, 100000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			cfg := []byte(manyKeysConfig(n))
			e := startFilter(b, fltSetup{config: manyKeysConfig(1), logLevel: host.LogInfo})
			vm := e.plugin.VMs()[0]
			ctx := context.Background()
			if err := vm.Configure(ctx, cfg); err != nil {
				b.Fatal(err)
			}
			mib := float64(vm.MemoryPages()) / 16
			for b.Loop() {
				if err := vm.Configure(ctx, cfg); err != nil {
					b.Fatal(err)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if n == 10 {
				tenKeys = ns
			} else if tenKeys > 0 {
				b.ReportMetric(ns/tenKeys, "x-10keys")
			}
			b.ReportMetric(mib, "MiB")
		})
	}
}
