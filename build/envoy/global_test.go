package envoy

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	rls "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	"github.com/usageplans/usageplans/internal/rlstest"
)

// Files of the global-mode deployment: the bootstrap, its plugin configuration and RLS's.
const (
	GlobalBootstrap  = "global/envoy.yaml"
	GlobalPlugin     = "global/plugin.json"
	GlobalRLSConfig  = "global/ratelimit/config/usageplans.yaml"
	globalPluginFrom = "plugin.json plus its \"global\" member"
)

// globalBlock is the plugin configuration's global section, as far as the deployment
// depends on it (field names of docs/configuration.md).
type globalBlock struct {
	Cluster string `json:"cluster"`
	Domain  string `json:"domain"`
}

// TestGlobalBootstrap checks the global-mode bootstrap as TestBootstraps checks the others,
// and what global mode adds: global/plugin.json is plugin.json plus a "global" member, the
// cluster it names is defined with explicit HTTP/2, and RLS's config file serves its domain.
func TestGlobalBootstrap(t *testing.T) {
	b, err := LoadBootstrap(GlobalBootstrap)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateDeep(b); err != nil {
		t.Fatalf("Envoy's validation rules: %v", err)
	}
	listeners, err := Listeners(b, root)
	if err != nil {
		t.Fatal(err)
	}
	filters, err := WasmFilters(listeners)
	if err != nil || len(filters) != 1 {
		t.Fatalf("Wasm filters %v (%v), want 1", filters, err)
	}
	checkPluginConfig(t, b, filters[0].Config)
	for _, c := range filters[0].Clusters {
		if !hasCluster(b, c) {
			t.Errorf("a route sends to cluster %q, which is not defined", c)
		}
	}
	got, err := PluginConfiguration(filters[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(GlobalPlugin)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(bytes.TrimSpace(want))+"\n" {
		t.Errorf("embedded configuration differs from %s; run make manifests", GlobalPlugin)
	}

	// global/plugin.json is plugin.json and a global member, nothing else.
	var withGlobal, base map[string]any
	if err := json.Unmarshal(want, &withGlobal); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(pluginJSON(t), &base); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(withGlobal["global"])
	delete(withGlobal, "global")
	if !reflect.DeepEqual(withGlobal, base) {
		t.Errorf("%s is not %s: edit it along with plugin.json", GlobalPlugin, globalPluginFrom)
	}
	var g globalBlock
	if err := json.Unmarshal(raw, &g); err != nil || g.Cluster == "" || g.Domain == "" {
		t.Fatalf("%s: global %s: want cluster and domain (%v)", GlobalPlugin, raw, err)
	}

	// Envoy speaks HTTP/1.1 to a cluster unless told otherwise; RLS's gRPC needs HTTP/2.
	var h2 bool
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != g.Cluster {
			continue
		}
		var po upstreamhttpv3.HttpProtocolOptions
		a := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
		if a == nil || a.UnmarshalTo(&po) != nil {
			t.Fatalf("cluster %s has no envoy.extensions.upstreams.http.v3.HttpProtocolOptions", g.Cluster)
		}
		h2 = po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
	}
	if !h2 {
		t.Errorf("cluster %q (global.cluster) is missing or not explicitly HTTP/2", g.Cluster)
	}

	// RLS's config names the plugin's domain, and the real RLS loads it: the filter's
	// configure-time check descriptor is answered with its limit.
	rc, err := os.ReadFile(GlobalRLSConfig)
	if err != nil {
		t.Fatal(err)
	}
	var domain struct {
		Domain string `json:"domain"`
	}
	if err := yaml.Unmarshal(rc, &domain); err != nil || domain.Domain != g.Domain {
		t.Fatalf("%s: domain %q (%v), want the plugin's %q", GlobalRLSConfig, domain.Domain, err, g.Domain)
	}
	st := rlstest.Check(t, g.Domain, string(rc), CheckDescriptor())
	if st.CurrentLimit.GetRequestsPerUnit() != 1 || st.CurrentLimit.GetUnit() != rls.RateLimitResponse_RateLimit_YEAR {
		t.Errorf("RLS answered the check descriptor %v, want its limit of 1 a YEAR", st)
	}
}

// CheckDescriptor is the filter's configure-time check (usageplans-check=domain, counting
// nothing), which RLS's config must answer with a limit.
func CheckDescriptor() *rlcommon.RateLimitDescriptor {
	return &rlcommon.RateLimitDescriptor{
		Entries:    []*rlcommon.RateLimitDescriptor_Entry{{Key: "usageplans-check", Value: "domain"}},
		HitsAddend: wrapperspb.UInt64(0),
	}
}
