package envoy

import (
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// TestPathNormalization: every HTTP connection manager we ship normalises the path before
// routing and filters, so the path Envoy routes on, the one the usageplans filter meters
// (it matches on the same normal form) and the one the upstream serves agree (issue 3).
func TestPathNormalization(t *testing.T) {
	for _, f := range bootstrapFiles(t) {
		t.Run(f, func(t *testing.T) {
			b, err := LoadBootstrap(f)
			if err != nil {
				t.Fatal(err)
			}
			listeners, err := Listeners(b, root)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, l := range listeners {
				for _, fc := range l.GetFilterChains() {
					for _, nf := range fc.GetFilters() {
						var hcm hcmv3.HttpConnectionManager
						if !nf.GetTypedConfig().MessageIs(&hcm) {
							continue
						}
						if err := nf.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
							t.Fatalf("listener %s: %v", l.GetName(), err)
						}
						n++
						if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() {
							t.Errorf("listener %s: normalize_path %v merge_slashes %v, want both true", l.GetName(), hcm.GetNormalizePath().GetValue(), hcm.GetMergeSlashes())
						}
						if got, want := hcm.GetPathWithEscapedSlashesAction(), hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT; got != want {
							t.Errorf("listener %s: path_with_escaped_slashes_action %v, want %v", l.GetName(), got, want)
						}
					}
				}
			}
			if n == 0 {
				t.Fatal("no HTTP connection manager found")
			}
		})
	}
}
