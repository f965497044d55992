package istio

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
	extensions "istio.io/api/extensions/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/usageplans/usageplans/build/envoy"
	"github.com/usageplans/usageplans/filter/config"
)

func manifests(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %q, want wasmplugin.yaml and gateway.yaml at least", files)
	}
	return files
}

func pluginJSON(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestManifests reads every build/istio/*.yaml with Istio's API types (unknown fields
// rejected), checks each WasmPlugin, runs the filter's own parser on its pluginConfig, and
// checks that each plugin.json route name is a route some VirtualService of the file makes.
func TestManifests(t *testing.T) {
	want := jsonValue(t, pluginJSON(t))
	for _, f := range manifests(t) {
		t.Run(f, func(t *testing.T) {
			objs, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			var plugins []*extensions.WasmPlugin
			routes := map[string]bool{}
			hasVS := false
			for _, o := range objs {
				switch s := o.Spec.(type) {
				case *extensions.WasmPlugin:
					plugins = append(plugins, s)
				case *networking.VirtualService:
					hasVS = true
					for _, n := range RouteNames(s) {
						routes[n] = true
					}
				}
			}
			if len(plugins) != 1 {
				t.Fatalf("%d WasmPlugins, want 1", len(plugins))
			}
			wp := plugins[0]
			if err := CheckWasmPlugin(wp); err != nil {
				t.Error(err)
			}
			if !strings.HasPrefix(wp.GetUrl(), "oci://") {
				t.Errorf("url %q: the manifests deploy the OCI image that make image builds", wp.GetUrl())
			}
			if wp.GetSha256() == "" {
				t.Errorf("sha256 is empty: pin the image digest so a re-pushed tag cannot change the filter")
			}
			if wp.GetPluginName() != envoy.RootID {
				t.Errorf("pluginName %q, want the root id %q", wp.GetPluginName(), envoy.RootID)
			}
			got, err := PluginConfigJSON(wp)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(jsonValue(t, got), want) {
				t.Errorf("pluginConfig differs from plugin.json; run go run ./build/envoy/cmd/embedconfig")
			}
			cfg, err := config.Parse(got)
			if err != nil {
				t.Fatalf("the filter rejects the pluginConfig:\n%v", err)
			}
			if hasVS {
				for _, r := range cfg.Routes {
					if r.RouteName != "" && !routes[r.RouteName] {
						t.Errorf("plugin.json route %q matches Envoy route %q, which no VirtualService here generates", r.Name, r.RouteName)
					}
				}
			}
		})
	}
}

func TestEmbeddedConfigIsCurrent(t *testing.T) {
	cfg := pluginJSON(t)
	for _, f := range manifests(t) {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := envoy.Embed(doc, cfg)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(out, doc) {
			t.Errorf("%s differs from plugin.json: run go run ./build/envoy/cmd/embedconfig", f)
		}
	}
}

func TestCheckWasmPlugin(t *testing.T) {
	good := func() *extensions.WasmPlugin {
		return &extensions.WasmPlugin{
			Url:          "oci://registry.example.com/usageplans:v1",
			Sha256:       strings.Repeat("ab", 32),
			PluginName:   "usageplans",
			PluginConfig: &structpb.Struct{},
			Type:         extensions.PluginType_HTTP,
			FailStrategy: extensions.FailStrategy_FAIL_CLOSE,
		}
	}
	for _, c := range []struct {
		name   string
		change func(*extensions.WasmPlugin)
		want   string
	}{
		{"good", func(*extensions.WasmPlugin) {}, ""},
		{"https url", func(w *extensions.WasmPlugin) { w.Url = "https://example.com/usageplans.wasm" }, ""},
		{"ftp url", func(w *extensions.WasmPlugin) { w.Url = "ftp://example.com/m.wasm" },
			`url "ftp://example.com/m.wasm": scheme must be oci, https, http or file`},
		{"oci without repository", func(w *extensions.WasmPlugin) { w.Url = "oci://registry.example.com" },
			`url "oci://registry.example.com": want oci://registry/repository:tag`},
		{"sha256 with prefix", func(w *extensions.WasmPlugin) { w.Sha256 = "sha256:" + strings.Repeat("ab", 32) },
			`sha256 "sha256:abab`},
		{"sha256 upper case", func(w *extensions.WasmPlugin) { w.Sha256 = strings.Repeat("AB", 32) },
			`want 64 lower-case hex digits`},
		{"url digest differs", func(w *extensions.WasmPlugin) {
			w.Url = "oci://registry.example.com/usageplans@sha256:" + strings.Repeat("cd", 32)
		}, "url digest and sha256"},
		{"no pluginName", func(w *extensions.WasmPlugin) { w.PluginName = "" }, "pluginName (the root id) is empty"},
		{"no pluginConfig", func(w *extensions.WasmPlugin) { w.PluginConfig = nil }, "pluginConfig is missing"},
		{"fail open", func(w *extensions.WasmPlugin) { w.FailStrategy = extensions.FailStrategy_FAIL_OPEN }, "failStrategy FAIL_OPEN"},
		{"network type", func(w *extensions.WasmPlugin) { w.Type = extensions.PluginType_NETWORK }, "type NETWORK"},
		{"selector and targetRefs", func(w *extensions.WasmPlugin) {
			w.Selector = &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "x"}}
			w.TargetRefs = []*typev1beta1.PolicyTargetReference{{Kind: "Gateway", Group: "gateway.networking.k8s.io", Name: "gw"}}
		}, "selector and targetRefs are both set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := good()
			c.change(w)
			err := CheckWasmPlugin(w)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"unknown spec field", "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: a, namespace: b}\nspec: {urll: oci://x/y}\n",
			`unknown field "urll"`}, // protojson varies the spacing of its messages on purpose
		{"unknown metadata field", "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: a, namespace: b, lables: {}}\nspec: {}\n",
			`json: unknown field "lables"`},
		{"unknown kind", "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugins\nmetadata: {name: a, namespace: b}\nspec: {}\n",
			"document 2: unexpected extensions.istio.io/v1alpha1 WasmPlugins"},
		{"bad enum", "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: a, namespace: b}\nspec: {failStrategy: FAIL_CLOSED}\n",
			`invalid value for enum field failStrategy: "FAIL_CLOSED"`},
		{"no namespace", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {}\n",
			"metadata.name and metadata.namespace are required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "m.yaml")
			if err := os.WriteFile(p, []byte("# comment only\n---\n"+c.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestRouteNames(t *testing.T) {
	vs := &networking.VirtualService{Http: []*networking.HTTPRoute{
		{Name: "plain"},
		{Name: "api", Match: []*networking.HTTPMatchRequest{{Name: "v1"}, {}}},
	}}
	got := RouteNames(vs)
	want := []string{"plain", "api.v1", "api"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RouteNames = %q, want %q", got, want)
	}
}

// Pinning the committed manifests to a pushed image gives manifests that still load and
// check, with exactly that url and sha256, and nothing else changed.
func TestPin(t *testing.T) {
	digest := strings.Repeat("0123456789abcdef", 4)
	for _, f := range manifests(t) {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Pin(doc, "reg.example.net:5000/team/usageplans:v2", digest)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p := filepath.Join(t.TempDir(), f)
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		before, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		after, err := Load(p)
		if err != nil {
			t.Fatalf("pinned %s does not load: %v", f, err)
		}
		if len(after) != len(before) {
			t.Fatalf("pinned %s has %d documents, want %d", f, len(after), len(before))
		}
		for i := range after {
			a, ok := after[i].Spec.(*extensions.WasmPlugin)
			if !ok {
				if !reflect.DeepEqual(after[i], before[i]) {
					t.Errorf("%s: pinning changed the %s", f, after[i].Kind)
				}
				continue
			}
			if a.GetUrl() != "oci://reg.example.net:5000/team/usageplans:v2" || a.GetSha256() != digest {
				t.Errorf("%s: pinned url %q sha256 %q", f, a.GetUrl(), a.GetSha256())
			}
			if err := CheckWasmPlugin(a); err != nil {
				t.Errorf("%s: pinned plugin: %v", f, err)
			}
			b := before[i].Spec.(*extensions.WasmPlugin)
			b.Url, b.Sha256 = a.Url, a.Sha256
			if !reflect.DeepEqual(jsonOf(t, a), jsonOf(t, b)) {
				t.Errorf("%s: pinning changed more than url and sha256", f)
			}
		}
	}
}

func jsonOf(t *testing.T, wp *extensions.WasmPlugin) string {
	t.Helper()
	b, err := wp.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPinRejects(t *testing.T) {
	doc := []byte("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nspec:\n  url: oci://a/b\n  sha256: x\n")
	for _, c := range []struct{ doc, ref, digest, want string }{
		{string(doc), "a/b:1", "abc", `pin: digest "abc": want 64 lower-case hex digits`},
		{string(doc), "oci://a/b:1", strings.Repeat("a", 64), `pin: image "oci://a/b:1": want registry/repository:tag without a scheme`},
		{"kind: VirtualService\n", "a/b:1", strings.Repeat("a", 64), "pin: no WasmPlugin in the manifest"},
		{"kind: WasmPlugin\nspec:\n  url: oci://a/b\n", "a/b:1", strings.Repeat("a", 64), "pin: WasmPlugin in document 1: want exactly one spec-level url: and sha256: line"},
	} {
		_, err := Pin([]byte(c.doc), c.ref, c.digest)
		if err == nil || err.Error() != c.want {
			t.Errorf("Pin error %v, want %q", err, c.want)
		}
	}
}
