package istio

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	extensions "istio.io/api/extensions/v1alpha1"
	"sigs.k8s.io/yaml"
)

// k8sObject is the part of a Kubernetes object of ratelimit.yaml the checks read. The
// repository has no Kubernetes API module; Istio's types cover only the WasmPlugin.
type k8sObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec struct {
		Ports []struct {
			Name        string `json:"name"`
			Port        int    `json:"port"`
			AppProtocol string `json:"appProtocol"`
		} `json:"ports"`
		Template struct {
			Spec struct {
				Containers []struct {
					Env []struct {
						Name  string `json:"name"`
						Value string `json:"value"`
					} `json:"env"`
					VolumeMounts []struct {
						MountPath string `json:"mountPath"`
					} `json:"volumeMounts"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// TestGlobalManifests checks the global-mode manifests: the WasmPlugin as TestManifests
// checks the others, its configuration plugin.json plus a "global" member whose cluster is
// the Envoy cluster Istio makes for RLS's gRPC Service port (named and appProtocol grpc, so
// HTTP/2), and RLS's ConfigMap the very file the Envoy bootstrap's test loads into the real
// RLS, mounted where RLS's RUNTIME_* settings look.
func TestGlobalManifests(t *testing.T) {
	objs, err := Load("global/wasmplugin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("%d objects, want the WasmPlugin", len(objs))
	}
	wp, ok := objs[0].Spec.(*extensions.WasmPlugin)
	if !ok {
		t.Fatalf("%s, want a WasmPlugin", objs[0].Kind)
	}
	if err := CheckWasmPlugin(wp); err != nil {
		t.Error(err)
	}
	got, err := PluginConfigJSON(wp)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("global/plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(jsonValue(t, got), jsonValue(t, want)) {
		t.Errorf("pluginConfig differs from global/plugin.json; run make manifests")
	}
	var cfg map[string]any
	if err := json.Unmarshal(want, &cfg); err != nil {
		t.Fatal(err)
	}
	global, _ := cfg["global"].(map[string]any)
	delete(cfg, "global")
	if !reflect.DeepEqual(cfg, jsonValue(t, pluginJSON(t))) {
		t.Errorf("global/plugin.json is not plugin.json plus its \"global\" member: edit it along with plugin.json")
	}

	data, err := os.ReadFile("global/ratelimit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]k8sObject{}
	for i, doc := range docSep.Split(string(data), -1) {
		var o k8sObject
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("ratelimit.yaml document %d: %v", i, err)
		}
		byKind[o.Kind+"/"+o.Metadata.Name] = o
	}
	svc, ok := byKind["Service/ratelimit"]
	if !ok {
		t.Fatal("ratelimit.yaml has no Service ratelimit")
	}
	cluster := ""
	for _, p := range svc.Spec.Ports {
		if p.Name == "grpc" && p.AppProtocol == "grpc" {
			cluster = fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", p.Port, svc.Metadata.Name, svc.Metadata.Namespace)
		}
	}
	if cluster == "" || global["cluster"] != cluster {
		t.Errorf("global.cluster %q, want %q (the Service's gRPC port)", global["cluster"], cluster)
	}

	rls, err := os.ReadFile("../envoy/global/ratelimit/config/usageplans.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cm := byKind["ConfigMap/ratelimit-config"]
	body := string(rls[strings.Index(string(rls), "\ndomain:")+1:])
	if cm.Data["usageplans.yaml"] != body {
		t.Errorf("ConfigMap ratelimit-config usageplans.yaml:\n%s\nwant the body of build/envoy/global/ratelimit/config/usageplans.yaml:\n%s", cm.Data["usageplans.yaml"], body)
	}
	if !strings.Contains(body, "domain: "+fmt.Sprint(global["domain"])+"\n") {
		t.Errorf("RLS config does not declare the plugin's domain %v", global["domain"])
	}
	dep := byKind["Deployment/ratelimit"]
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("Deployment ratelimit: want one container")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	dir := env["RUNTIME_ROOT"] + "/" + env["RUNTIME_SUBDIRECTORY"] + "/" + env["RUNTIME_APPDIRECTORY"]
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != dir || env["RUNTIME_WATCH_ROOT"] != "false" {
		t.Errorf("the ConfigMap is mounted at %+v, RLS reads %s (RUNTIME_WATCH_ROOT %q)", c.VolumeMounts, dir, env["RUNTIME_WATCH_ROOT"])
	}
	redis := byKind["Service/redis"]
	if want := fmt.Sprintf("%s.%s.svc.cluster.local:%d", redis.Metadata.Name, redis.Metadata.Namespace, 6379); env["REDIS_URL"] != want || env["REDIS_SOCKET_TYPE"] != "tcp" {
		t.Errorf("REDIS_URL %q (%s), want %q over tcp", env["REDIS_URL"], env["REDIS_SOCKET_TYPE"], want)
	}
}
