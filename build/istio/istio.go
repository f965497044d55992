// Package istio reads the Istio manifests of the filter with Istio's own API types and
// checks what Istio's loader would refuse or silently mis-apply.
package istio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	extensions "istio.io/api/extensions/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	"sigs.k8s.io/yaml"
)

// Object is one Kubernetes resource of a manifest, its spec decoded into Istio's type.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Spec       proto.Message // *extensions.WasmPlugin, *networking.VirtualService or *networking.Gateway
}

// kinds maps apiVersion/kind to a new spec; only what the manifests use is accepted.
var kinds = map[string]func() proto.Message{
	"extensions.istio.io/v1alpha1/WasmPlugin": func() proto.Message { return &extensions.WasmPlugin{} },
	"networking.istio.io/v1/VirtualService":   func() proto.Message { return &networking.VirtualService{} },
	"networking.istio.io/v1/Gateway":          func() proto.Message { return &networking.Gateway{} },
}

type envelope struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// Load reads every document of a multi-document YAML file; unknown kinds and unknown
// fields (in the envelope or the spec) are errors naming the document.
func Load(path string) ([]Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var objs []Object
	for i, doc := range docSep.Split(string(data), -1) {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue // only comments
		}
		var env envelope
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		newSpec, ok := kinds[env.APIVersion+"/"+env.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: document %d: unexpected %s %s", path, i+1, env.APIVersion, env.Kind)
		}
		where := fmt.Sprintf("%s: %s %s/%s", path, env.Kind, env.Metadata.Namespace, env.Metadata.Name)
		if env.Metadata.Name == "" || env.Metadata.Namespace == "" {
			return nil, fmt.Errorf("%s: metadata.name and metadata.namespace are required", where)
		}
		spec := newSpec()
		if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(env.Spec, spec); err != nil {
			return nil, fmt.Errorf("%s: spec: %w", where, err)
		}
		objs = append(objs, Object{env.APIVersion, env.Kind, env.Metadata.Name, env.Metadata.Namespace, spec})
	}
	return objs, nil
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckWasmPlugin reports every problem of wp that Istio would reject or that would make
// the filter misbehave: url scheme, sha256 format, missing pluginName or config, a
// FAIL_OPEN strategy, and a selector and targetRefs given together.
func CheckWasmPlugin(wp *extensions.WasmPlugin) error {
	var errs []error
	u, err := url.Parse(wp.GetUrl())
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("url %q: %w", wp.GetUrl(), err))
	case u.Scheme != "oci" && u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file":
		errs = append(errs, fmt.Errorf("url %q: scheme must be oci, https, http or file", wp.GetUrl()))
	case u.Scheme == "oci" && (u.Host == "" || u.Path == "" || u.Path == "/"):
		errs = append(errs, fmt.Errorf("url %q: want oci://registry/repository:tag", wp.GetUrl()))
	}
	if s := wp.GetSha256(); s != "" && !hex64.MatchString(s) {
		errs = append(errs, fmt.Errorf("sha256 %q: want 64 lower-case hex digits, without a sha256: prefix", s))
	}
	if i := strings.Index(wp.GetUrl(), "@sha256:"); i >= 0 && wp.GetSha256() != "" && wp.GetUrl()[i+len("@sha256:"):] != wp.GetSha256() {
		errs = append(errs, fmt.Errorf("url digest and sha256 %q differ: Istio refuses the module", wp.GetSha256()))
	}
	if wp.GetPluginName() == "" {
		errs = append(errs, errors.New("pluginName (the root id) is empty"))
	}
	if wp.GetPluginConfig() == nil {
		errs = append(errs, errors.New("pluginConfig is missing: the filter refuses to start without a configuration"))
	}
	if wp.GetFailStrategy() == extensions.FailStrategy_FAIL_OPEN {
		errs = append(errs, errors.New("failStrategy FAIL_OPEN: a failed VM would let every request through unmetered"))
	}
	if wp.GetSelector() != nil && len(wp.GetTargetRefs()) > 0 {
		errs = append(errs, errors.New("selector and targetRefs are both set: Istio accepts only one"))
	}
	if wp.GetType() != extensions.PluginType_HTTP {
		errs = append(errs, fmt.Errorf("type %v: the filter is an HTTP filter", wp.GetType()))
	}
	return errors.Join(errs...)
}

// PluginConfigJSON is the JSON Istio hands the plugin: its pluginConfig Struct marshalled.
func PluginConfigJSON(wp *extensions.WasmPlugin) ([]byte, error) {
	if wp.GetPluginConfig() == nil {
		return nil, errors.New("pluginConfig is missing")
	}
	return protojson.Marshal(wp.GetPluginConfig())
}

// RouteNames lists the Envoy route names Istio generates for vs: each http route's name,
// followed by "." and the match's name when the match is named (as Istio's route builder).
func RouteNames(vs *networking.VirtualService) []string {
	var names []string
	for _, h := range vs.GetHttp() {
		if len(h.GetMatch()) == 0 {
			names = append(names, h.GetName())
		}
		for _, m := range h.GetMatch() {
			n := h.GetName()
			if m.GetName() != "" {
				n += "." + m.GetName()
			}
			names = append(names, n)
		}
	}
	return names
}

var (
	specURLRE    = regexp.MustCompile(`(?m)^  url: .*$`)
	specSHA256RE = regexp.MustCompile(`(?m)^  sha256: .*$`)
	wasmPluginRE = regexp.MustCompile(`(?m)^kind: WasmPlugin\s*$`)
)

// Pin returns the manifest doc with the url and sha256 of each WasmPlugin set to the
// image at ociRef (registry/repository:tag) and its manifest digest (hex, no prefix): what
// a user applies after pushing. Other documents are left byte for byte.
func Pin(doc []byte, ociRef, digestHex string) ([]byte, error) {
	if !hex64.MatchString(digestHex) {
		return nil, fmt.Errorf("pin: digest %q: want 64 lower-case hex digits", digestHex)
	}
	if strings.Contains(ociRef, "://") || ociRef == "" {
		return nil, fmt.Errorf("pin: image %q: want registry/repository:tag without a scheme", ociRef)
	}
	docs := docSep.Split(string(doc), -1)
	seps := docSep.FindAllString(string(doc), -1)
	pinned := 0
	for i, d := range docs {
		if !wasmPluginRE.MatchString(d) {
			continue
		}
		if len(specURLRE.FindAllString(d, -1)) != 1 || len(specSHA256RE.FindAllString(d, -1)) != 1 {
			return nil, fmt.Errorf("pin: WasmPlugin in document %d: want exactly one spec-level url: and sha256: line", i+1)
		}
		d = specURLRE.ReplaceAllLiteralString(d, "  url: oci://"+ociRef)
		docs[i] = specSHA256RE.ReplaceAllLiteralString(d, `  sha256: "`+digestHex+`"`)
		pinned++
	}
	if pinned == 0 {
		return nil, errors.New("pin: no WasmPlugin in the manifest")
	}
	var out strings.Builder
	for i, d := range docs {
		out.WriteString(d)
		if i < len(seps) {
			out.WriteString(seps[i])
		}
	}
	return []byte(out.String()), nil
}
