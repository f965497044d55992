// Package envoy holds the Envoy bootstraps of the filter and the code that checks them
// against Envoy's own protos, and embeds plugin.json into every deployment manifest.
package envoy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	// Every typed_config the bootstraps use must be registered for protojson to resolve it.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// The values the Makefile and these bootstraps share; a test checks the three agree.
const (
	VMID       = "usageplans"            // vm_id: shared data is scoped by it
	RootID     = "usageplans"            // root_id: the plugin's root context
	ModulePath = "build/usageplans.wasm" // the module `make build` writes
	FilterName = "envoy.filters.http.wasm"
)

// LoadBootstrap reads an Envoy bootstrap in YAML the way Envoy's config loader does
// (YAML -> JSON -> proto3 JSON): unknown fields and unresolvable Any types are errors.
func LoadBootstrap(path string) (*bootstrapv3.Bootstrap, error) {
	y, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b bootstrapv3.Bootstrap
	if err := UnmarshalYAML(y, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

// UnmarshalYAML decodes YAML into m with protojson, rejecting unknown fields.
func UnmarshalYAML(y []byte, m proto.Message) error {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	opts := protojson.UnmarshalOptions{DiscardUnknown: false, Resolver: protoregistry.GlobalTypes}
	if err := opts.Unmarshal(j, m); err != nil {
		return fmt.Errorf("proto %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

type validator interface{ ValidateAll() error }

// ValidateDeep runs the protoc-gen-validate rules on m and on every message packed in an
// Any inside it (ValidateAll stops at an Any), reporting each failure with its field path.
func ValidateDeep(m proto.Message) error {
	var errs []error
	validateDeep(m.ProtoReflect(), string(m.ProtoReflect().Descriptor().Name()), &errs)
	return errors.Join(errs...)
}

func validateDeep(m protoreflect.Message, path string, errs *[]error) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", path, err))
			return
		}
		validateDeep(inner.ProtoReflect(), path+"("+string(inner.ProtoReflect().Descriptor().FullName())+")", errs)
		return
	}
	if v, ok := m.Interface().(validator); ok {
		if err := v.ValidateAll(); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				validateDeep(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", p, i), errs)
			}
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				validateDeep(mv.Message(), fmt.Sprintf("%s[%v]", p, k.Interface()), errs)
				return true
			})
		default:
			validateDeep(v.Message(), p, errs)
		}
		return true
	})
}

// WasmFilter is one envoy.filters.http.wasm found in a bootstrap, with where it was.
type WasmFilter struct {
	Listener string
	Config   *wasmv3.PluginConfig
	Routes   []string // names of the routes of the listener's route_config
	Clusters []string // clusters those routes send to
}

// Listeners returns the static listeners of b and, when b reads LDS from a file
// (dynamic_resources.lds_config.path_config_source), the listeners in that file, its path
// taken relative to dir, the directory Envoy is started in.
func Listeners(b *bootstrapv3.Bootstrap, dir string) ([]*listenerv3.Listener, error) {
	listeners := b.GetStaticResources().GetListeners()
	p := b.GetDynamicResources().GetLdsConfig().GetPathConfigSource().GetPath()
	if p == "" {
		return listeners, nil
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	dr, err := LoadDiscoveryResponse(p)
	if err != nil {
		return nil, err
	}
	for i, r := range dr.GetResources() {
		var l listenerv3.Listener
		if !r.MessageIs(&l) {
			return nil, fmt.Errorf("%s: resources[%d] is a %s, want a Listener", p, i, r.GetTypeUrl())
		}
		if err := r.UnmarshalTo(&l); err != nil {
			return nil, fmt.Errorf("%s: resources[%d]: %w", p, i, err)
		}
		listeners = append(listeners, &l)
	}
	return listeners, nil
}

// LoadDiscoveryResponse reads a file Envoy watches for filesystem xDS: a DiscoveryResponse
// in YAML, checked like a bootstrap (unknown fields, unknown types and rule violations).
func LoadDiscoveryResponse(path string) (*discoveryv3.DiscoveryResponse, error) {
	y, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dr discoveryv3.DiscoveryResponse
	if err := UnmarshalYAML(y, &dr); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := ValidateDeep(&dr); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &dr, nil
}

// WasmFilters finds every Wasm HTTP filter of the listeners' HTTP connection managers.
func WasmFilters(listeners []*listenerv3.Listener) ([]WasmFilter, error) {
	var found []WasmFilter
	for _, l := range listeners {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if !f.GetTypedConfig().MessageIs(&hcm) {
					continue
				}
				if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
					return nil, fmt.Errorf("listener %s: %w", l.GetName(), err)
				}
				var routes, clusters []string
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						routes = append(routes, r.GetName())
						if c := r.GetRoute().GetCluster(); c != "" {
							clusters = append(clusters, c)
						}
					}
				}
				for _, hf := range hcm.GetHttpFilters() {
					var w wasmfilterv3.Wasm
					if !hf.GetTypedConfig().MessageIs(&w) {
						continue
					}
					if err := hf.GetTypedConfig().UnmarshalTo(&w); err != nil {
						return nil, fmt.Errorf("listener %s: filter %s: %w", l.GetName(), hf.GetName(), err)
					}
					if hf.GetName() != FilterName {
						return nil, fmt.Errorf("listener %s: Wasm filter named %q, want %q (route configs refer to it by name)", l.GetName(), hf.GetName(), FilterName)
					}
					found = append(found, WasmFilter{Listener: l.GetName(), Config: w.GetConfig(), Routes: routes, Clusters: clusters})
				}
			}
		}
	}
	return found, nil
}

// PluginConfiguration returns the bytes Envoy hands to proxy_on_configure: the value of a
// StringValue or BytesValue as is (Envoy unwraps both), or an error for any other type.
func PluginConfiguration(pc *wasmv3.PluginConfig) ([]byte, error) {
	a := pc.GetConfiguration()
	if a == nil {
		return nil, errors.New("plugin config has no configuration")
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, err
	}
	switch v := m.(type) {
	case *wrapperspb.StringValue:
		return []byte(v.GetValue()), nil
	case *wrapperspb.BytesValue:
		return v.GetValue(), nil
	}
	return nil, fmt.Errorf("configuration is a %s; the filter reads JSON text, so use google.protobuf.StringValue", a.GetTypeUrl())
}
