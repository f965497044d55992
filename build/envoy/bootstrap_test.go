package envoy

import (
	"bufio"
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"github.com/usageplans/usageplans/filter/config"
)

const root = "../.." // the repository root, from this package's directory

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func bootstrapFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %q, want envoy.yaml, envoy-remote.yaml and envoy-lds.yaml", files)
	}
	return files
}

func pluginJSON(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBootstraps checks every build/envoy/*.yaml the way Envoy would load it: parsed with
// its protos (unknown fields and unknown Any types rejected), validated by its generated
// rules down through every typed_config, and the Wasm filter's settings and configuration
// checked against the Makefile's names and the filter's own configuration parser.
func TestBootstraps(t *testing.T) {
	want := pluginJSON(t)
	for _, f := range bootstrapFiles(t) {
		t.Run(f, func(t *testing.T) {
			b, err := LoadBootstrap(f)
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
			if err != nil {
				t.Fatal(err)
			}
			if len(filters) != 1 {
				t.Fatalf("%d Wasm filters, want 1", len(filters))
			}
			w := filters[0]
			checkPluginConfig(t, b, w.Config)
			// Envoy refuses a static route to a cluster it does not know.
			for _, c := range w.Clusters {
				if !hasCluster(b, c) {
					t.Errorf("a route of listener %s sends to cluster %q, which is not defined", w.Listener, c)
				}
			}

			got, err := PluginConfiguration(w.Config)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(bytes.TrimSpace(want))+"\n" {
				t.Errorf("embedded configuration differs from plugin.json; run go run ./build/envoy/cmd/embedconfig")
			}
			cfg, err := config.Parse(got)
			if err != nil {
				t.Fatalf("the filter rejects the embedded configuration:\n%v", err)
			}
			// Every route name the plugin matches on must be a route of this listener, or
			// that part of plugin.json never applies in Envoy.
			names := map[string]bool{}
			for _, r := range w.Routes {
				if r == "" {
					t.Errorf("listener %s has a route without a name: the plugin cannot select it", w.Listener)
				}
				names[r] = true
			}
			for _, r := range cfg.Routes {
				if r.RouteName != "" && !names[r.RouteName] {
					t.Errorf("plugin.json route %q matches Envoy route %q, which %s does not define (routes: %q)", r.Name, r.RouteName, f, w.Routes)
				}
			}
		})
	}
}

func checkPluginConfig(t *testing.T, b *bootstrapv3.Bootstrap, pc *wasmv3.PluginConfig) {
	t.Helper()
	vm := pc.GetVmConfig()
	if pc.GetRootId() != RootID || vm.GetVmId() != VMID {
		t.Errorf("root_id %q vm_id %q, want %q %q", pc.GetRootId(), vm.GetVmId(), RootID, VMID)
	}
	if vm.GetRuntime() != "envoy.wasm.runtime.v8" {
		t.Errorf("runtime %q, want envoy.wasm.runtime.v8 (the runtime of Envoy's official builds)", vm.GetRuntime())
	}
	if pc.GetFailOpen() || pc.GetFailurePolicy() == wasmv3.FailurePolicy_FAIL_OPEN || pc.GetFailurePolicy() == wasmv3.FailurePolicy_UNSPECIFIED {
		t.Errorf("failure policy %v (fail_open %v): want an explicit FAIL_RELOAD or FAIL_CLOSED", pc.GetFailurePolicy(), pc.GetFailOpen())
	}
	switch code := vm.GetCode(); {
	case code.GetLocal() != nil:
		if got := code.GetLocal().GetFilename(); got != ModulePath {
			t.Errorf("local module %q, want %q (what make build writes)", got, ModulePath)
		}
	case code.GetRemote() != nil:
		r := code.GetRemote()
		if !sha256RE.MatchString(r.GetSha256()) {
			t.Errorf("remote sha256 %q: want 64 lower-case hex digits", r.GetSha256())
		}
		u, err := url.Parse(r.GetHttpUri().GetUri())
		if err != nil || u.Scheme != "https" {
			t.Errorf("remote uri %q: want an https URL", r.GetHttpUri().GetUri())
		}
		if !hasCluster(b, r.GetHttpUri().GetCluster()) {
			t.Errorf("remote module cluster %q is not defined", r.GetHttpUri().GetCluster())
		}
	default:
		t.Errorf("vm_config.code is neither local nor remote")
	}
}

func hasCluster(b *bootstrapv3.Bootstrap, name string) bool {
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return true
		}
	}
	return false
}

// The Makefile, these bootstraps and the constants above name the same VM, root context
// and module path; the Makefile is the user's knob, so it is read, not assumed.
func TestMakefileAgrees(t *testing.T) {
	f, err := os.Open(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	assign := regexp.MustCompile(`^([A-Z_]+)\s*\?=\s*(\S+)\s*$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := assign.FindStringSubmatch(sc.Text()); m != nil {
			vars[m[1]] = m[2]
		}
	}
	for _, c := range []struct{ name, want string }{
		{"VM_ID", VMID},
		{"ROOT_ID", RootID},
		{"WASM", ModulePath},
	} {
		if got, ok := vars[c.name]; !ok || got != c.want {
			t.Errorf("Makefile %s ?= %q (defined: %v), bootstraps use %q", c.name, got, ok, c.want)
		}
	}
}

func TestEmbeddedConfigIsCurrent(t *testing.T) {
	cfg := pluginJSON(t)
	lds, err := filepath.Glob("lds/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(bootstrapFiles(t), lds...) {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Embed(doc, cfg)
		if errors.Is(err, ErrNoBlock) && f == "envoy-lds.yaml" {
			continue // its listener, with the configuration, is in lds/
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(out, doc) {
			t.Errorf("%s differs from plugin.json: run go run ./build/envoy/cmd/embedconfig", f)
		}
	}
}

// Bootstrap.ValidateAll alone stops at typed_config; ValidateDeep must reach inside.
func TestValidateDeepReachesIntoTypedConfig(t *testing.T) {
	y := `
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ""
          route_config: {name: r}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`
	var b bootstrapv3.Bootstrap
	if err := UnmarshalYAML([]byte(y), &b); err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("Bootstrap.ValidateAll: %v (expected it not to look inside the Any)", err)
	}
	err := ValidateDeep(&b)
	want := "Bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config(envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager): invalid HttpConnectionManager.StatPrefix: value length must be at least 1 runes"
	if err == nil || err.Error() != want {
		t.Fatalf("ValidateDeep error:\n%v\nwant:\n%s", err, want)
	}
}

func TestUnmarshalYAMLRejects(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"unknown field", "admin: {adress: {}}", `unknown field "adress"`},
		{"unknown field inside typed_config", `
static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefx: x
`, `unknown field "stat_prefx"`},
		{"unregistered type", `
static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: x
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.no_such.v3.Filter}
`, `unable to resolve "type.googleapis.com/envoy.extensions.filters.network.no_such.v3.Filter"`},
		{"not yaml", "admin: [", "yaml:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bootstrapv3.Bootstrap
			err := UnmarshalYAML([]byte(c.yaml), &b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
