package host

import (
	"context"
	"encoding/hex"
	"testing"
	"time"
)

func TestProperties(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC))
	rt := newRuntime(t, Options{Clock: clock})
	p := newPlugin(t, rt, "abi", PluginConfig{Name: "usageplans", RootID: "root-a", VMID: "vm-a",
		Properties: map[string][]byte{"node.id": []byte("node-1")}})
	hexOf := func(s string) string { return hex.EncodeToString([]byte(s)) }
	tests := []struct {
		path string
		want string // hex of the value, "|", status
	}{
		{"request.path", hexOf("/pets?id=1") + "|ok"},
		{"request.url_path", hexOf("/pets") + "|ok"},
		{"request.query", hexOf("id=1") + "|ok"},
		{"request.host", hexOf("example.com") + "|ok"},
		{"request.method", hexOf("GET") + "|ok"},
		{"request.scheme", hexOf("http") + "|ok"},
		{"request.headers.x-path", hexOf("request.headers.x-path") + "|ok"},
		{"request.useragent", "|not_found"},
		{"request.time", hex.EncodeToString(int64Bytes(clock.Now().UnixNano())) + "|ok"},
		{"plugin_name", hexOf("usageplans") + "|ok"},
		{"plugin_root_id", hexOf("root-a") + "|ok"},
		{"plugin_vm_id", hexOf("vm-a") + "|ok"},
		{"node.id", hexOf("node-1") + "|ok"},
		{"xds.route_name", hexOf("pets-route") + "|ok"},
		{"response.code", "|not_found"},
		{"no.such.thing", "|not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var up recorder
			req := get("prop", "x-path", tt.path)
			req.Properties = map[string][]byte{"xds.route_name": []byte("pets-route")}
			if _, err := p.Do(context.Background(), req, up.upstream); err != nil {
				t.Fatal(err)
			}
			if got := resultOf(t, up.last(t), "prop"); got != tt.want {
				t.Errorf("property %s = %s, want %s", tt.path, got, tt.want)
			}
		})
	}
	t.Run("set by the guest", func(t *testing.T) {
		// Envoy stores the whole path but finds filter state by the first segment only.
		for _, tt := range []struct{ path, want string }{
			{"key_id", "ok|k-123|ok"},
			{"wasm.key_id", "ok||not_found"},
		} {
			var up recorder
			if _, err := p.Do(context.Background(), get("set-prop", "x-path", tt.path, "x-value", "k-123"), up.upstream); err != nil {
				t.Fatal(err)
			}
			if got := resultOf(t, up.last(t), "set-prop"); got != tt.want {
				t.Errorf("set then get %s = %s, want %s", tt.path, got, tt.want)
			}
		}
	})
	t.Run("headers map", func(t *testing.T) {
		s, err := p.NewStream(0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// The guest answers locally, so it keeps the request headers (Pause).
		if _, err := s.RequestHeaders(Headers{{":path", "/"}, {"x-op", "local"}}, true); err != nil {
			t.Fatal(err)
		}
		got, ok := s.Property("request.headers")
		if want := marshalPairs(Headers{{":path", "/"}, {"x-op", "local"}}); !ok || string(got) != string(want) {
			t.Errorf("request.headers = %q, %v; want %q", got, ok, want)
		}
		if got, ok := s.Property("response.code"); !ok || string(got) != string(int64Bytes(403)) {
			t.Errorf("response.code = %v, %v; want 403 as 8 little-endian bytes", got, ok)
		}
		if got, ok := s.Property("response.code_details"); ok {
			t.Errorf("response.code_details = %q, want none (the guest gave no details)", got)
		}
	})
}
