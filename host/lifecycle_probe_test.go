package host

import (
	"context"
	"errors"
	"testing"
)

// ABI-level statuses of the stream-control functions, called directly through a probe.
func TestStreamControlStatuses(t *testing.T) {
	rt := newRuntime(t, Options{})
	v := probeVM(t, rt, PluginConfig{}, envImport("proxy_continue_stream"), envImport("proxy_close_stream"),
		envImport("proxy_set_effective_context"), envImport("proxy_send_local_response"), envImport("proxy_get_status"),
		envImport("proxy_done"))
	s, err := v.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	poke(t, v, 0, marshalPairs(nil))
	tests := []struct {
		fn    string
		ctxID uint32
		args  []uint64
		want  Status
	}{
		{"proxy_continue_stream", s.ID(), []uint64{0}, StatusOK},
		{"proxy_continue_stream", s.ID(), []uint64{1}, StatusOK},
		// Envoy's Context::continueStream: downstream OK (a no-op for HTTP), upstream
		// UNIMPLEMENTED; closeStream: both OK. This host used to answer UNIMPLEMENTED to all.
		{"proxy_continue_stream", s.ID(), []uint64{2}, StatusOK},
		{"proxy_continue_stream", s.ID(), []uint64{3}, StatusUnimplemented},
		{"proxy_close_stream", s.ID(), []uint64{2}, StatusOK},
		{"proxy_close_stream", s.ID(), []uint64{3}, StatusOK},
		{"proxy_continue_stream", s.ID(), []uint64{4}, StatusBadArgument},
		{"proxy_continue_stream", rootContextID, []uint64{0}, StatusOK},
		{"proxy_close_stream", s.ID(), []uint64{5}, StatusBadArgument},
		{"proxy_set_effective_context", rootContextID, []uint64{uint64(s.ID())}, StatusOK},
		{"proxy_set_effective_context", rootContextID, []uint64{99}, StatusBadArgument},
		{"proxy_done", s.ID(), nil, StatusNotFound},
		// From the root context there is no stream to answer: OK, nothing happens.
		{"proxy_send_local_response", rootContextID, []uint64{418, 0, 0, 0, 0, 0, 4, ^uint64(0)}, StatusOK},
	}
	for _, tt := range tests {
		if got := Status(callIn(t, v, tt.ctxID, tt.fn, tt.args...)); got != tt.want {
			t.Errorf("%s%v from context %d = %v, want %v", tt.fn, tt.args, tt.ctxID, got, tt.want)
		}
	}
	if s.LocalResponse() != nil || s.Reset() {
		t.Error("a local response was recorded from the root context, or closing a network stream reset the HTTP one")
	}
	// Header pairs that do not parse (3 bytes) are no pairs to cpp-host's toPairs: the reply
	// goes out without extra headers, OK (this host used to answer BAD_ARGUMENT, no reply).
	bad, err := v.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if got := Status(callIn(t, v, bad.ID(), "proxy_send_local_response", 418, 0, 0, 0, 0, 0, 3, ^uint64(0))); got != StatusOK {
		t.Errorf("send_local_response with malformed pairs = %v, want OK", got)
	}
	if l := bad.LocalResponse(); l == nil || l.Status != 418 || len(l.Headers) != 0 || len(l.Body) != 0 {
		t.Errorf("local response with malformed pairs = %+v, want 418 without headers", l)
	}
	// Details keep no whitespace, as Envoy's replaceAllEmptySpace.
	poke(t, v, 100, []byte("rate limited\tnow"))
	if got := Status(callIn(t, v, s.ID(), "proxy_send_local_response", 429, 100, 16, 0, 0, 0, 4, ^uint64(0))); got != StatusOK {
		t.Fatalf("send_local_response = %v", got)
	}
	if l := s.LocalResponse(); l == nil || l.Status != 429 || l.Details != "rate_limited_now" {
		t.Errorf("local response = %+v, want 429 with details rate_limited_now", l)
	}
	// get_status outside an HTTP-call answer: 0 and no message; inside a failed one: 11, "reset".
	if got := Status(callIn(t, v, rootContextID, "proxy_get_status", 200, 204, 208)); got != StatusOK || peekU32(t, v, 200) != 0 || peekU32(t, v, 208) != 0 {
		t.Errorf("get_status = %v code %d size %d, want OK 0 0", got, peekU32(t, v, 200), peekU32(t, v, 208))
	}
	v.mu.Lock()
	v.callResp = &httpCallResponse{failed: true}
	v.mu.Unlock()
	if got := Status(callIn(t, v, rootContextID, "proxy_get_status", 200, 204, 208)); got != StatusOK || peekU32(t, v, 200) != 11 || string(outBytes(t, v, 204, 208)) != "reset" {
		t.Errorf("get_status after a failed call = %v code %d, want OK 11 \"reset\"", got, peekU32(t, v, 200))
	}
	v.mu.Lock()
	v.callResp = nil
	v.mu.Unlock()
}

// proxy_close_stream resets the stream: Do returns ErrStreamReset and the upstream is not
// called; response.code_details says wasm_close_stream.
func TestCloseStream(t *testing.T) {
	rt := newRuntime(t, Options{})
	v := probeVM(t, rt, PluginConfig{}, envImport("proxy_close_stream"))
	s, err := v.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := Status(callIn(t, v, s.ID(), "proxy_close_stream", 0)); got != StatusOK {
		t.Fatalf("close_stream = %v", got)
	}
	if !s.Reset() {
		t.Fatal("Reset() = false after proxy_close_stream")
	}
	if got, ok := s.Property("response.code_details"); !ok || string(got) != "wasm_close_stream" {
		t.Errorf("response.code_details = %q, %v; want wasm_close_stream", got, ok)
	}
	var up recorder
	resp, err := s.do(context.Background(), get(""), up.upstream, nil)
	if !errors.Is(err, ErrStreamReset) || resp != nil || up.count() != 0 {
		t.Errorf("Do on a reset stream = %+v, %v (upstream %d); want nil, ErrStreamReset, no upstream", resp, err, up.count())
	}
}
