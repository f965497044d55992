package e2e

import (
	"context"
	"net"
	"strings"
	"testing"
)

// closedPort is a loopback address nothing listens on: a call to it fails at once.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func fltGlobal(global string) string { return fltOptions(`"global": ` + global) }

// An unknown cluster cannot be seen by the parser: the filter's configure-time check call
// gets BAD_ARGUMENT from the host, as from Envoy, and the configuration is rejected with
// its JSON path; on a running VM the configuration in force stays.
func TestFilterGlobalUnknownCluster(t *testing.T) {
	clusters := map[string]string{"rls": "http://" + closedPort(t)}
	e := newFltRuntime(t, fltSetup{clusters: clusters})
	_, err := e.rt.NewPlugin(context.Background(), e.module, e.pluginConfig(fltGlobal(`{"cluster": "nope", "domain": "up"}`), fltSetup{}))
	if err == nil || !strings.Contains(err.Error(), `usageplans: config: global.cluster: unknown cluster "nope"`) {
		t.Fatalf("NewPlugin = %v, want the unknown cluster rejected", err)
	}

	e = startFilter(t, fltSetup{clusters: clusters})
	vm := e.plugin.VMs()[0]
	e.wantStatuses(t, fltDaily, 200)
	if err := vm.Configure(context.Background(), []byte(fltGlobal(`{"cluster": "nope", "domain": "up"}`))); err == nil ||
		!strings.Contains(err.Error(), `global.cluster: unknown cluster "nope"`) {
		t.Fatalf("Configure = %v, want the unknown cluster rejected", err)
	}
	// Still local mode: the daily quota of 3 counted here, no call made.
	e.wantStatuses(t, fltDaily, 200, 200, 429)
	e.wantCounters(t, map[string]uint64{"usageplans.config.rejected": 1})
	if _, ok := e.metrics()["usageplans.global.calls"]; ok {
		t.Error("global counters defined: the rejected configuration took effect")
	}
}

// RLS down (nothing listens on its port): every request needing quota goes by failureMode,
// exactly, through the built module; a request without a quota is not affected.
func TestFilterGlobalRLSDown(t *testing.T) {
	clusters := map[string]string{"rls": "http://" + closedPort(t)}
	for _, tc := range []struct {
		mode string
		want []int
	}{
		{"OPEN", []int{200, 200, 200, 200, 200}},
		{"CLOSED", []int{500, 500, 500, 500, 500}},
		{"LOCAL", []int{200, 200, 200, 429, 429}}, // the daily quota of 3, one proxy
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e := startFilter(t, fltSetup{clusters: clusters, workers: 2,
				config: fltGlobal(`{"cluster": "rls", "domain": "up", "timeoutMs": 2000, "failureMode": "` + tc.mode + `"}`)})
			e.wantStatuses(t, fltDaily, tc.want...)
			e.wantStatuses(t, fltGold, 200)
			e.wantCounters(t, map[string]uint64{"usageplans.global.fallback." + tc.mode: 5, "usageplans.global.calls": 5})
			if tc.mode == "CLOSED" {
				wantReply(t, e.get("/pets", apiKey(fltDaily)), 500, fltFailure, fltFailureBody)
			}
		})
	}
}
