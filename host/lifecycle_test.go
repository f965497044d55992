package host

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestConfigureRejected(t *testing.T) {
	rt := newRuntime(t, Options{})
	_, err := rt.NewPlugin(context.Background(), compile(t, rt, "abi"), PluginConfig{Name: "p", VMID: "v", Configuration: []byte("reject-me")})
	// The canary VM rejects it, so no worker starts (cpp-host's createWasm).
	want := "host: plugin p: the canary VM rejected the configuration, no worker VM was started: host: p v#canary: proxy_on_configure returned false: the plugin configuration was rejected; guest output:\n[error] configuration rejected: \"reject-me\"\n"
	if err == nil || err.Error() != want {
		t.Fatalf("NewPlugin error = %v\nwant %q", err, want)
	}
}

func TestVMStartRefused(t *testing.T) {
	rt := newRuntime(t, Options{})
	_, err := rt.NewPlugin(context.Background(), compile(t, rt, "abi"), PluginConfig{Name: "p", VMID: "v", VMConfig: []byte("fail")})
	want := "host: plugin p: the canary VM rejected the configuration, no worker VM was started: host: p v#canary: proxy_on_vm_start returned false: the VM failed to start; guest output:\n[error] vm start refused: vm configuration is \"fail\"\n"
	if err == nil || err.Error() != want {
		t.Fatalf("NewPlugin error = %v\nwant %q", err, want)
	}
}

// A VM that is reconfigured keeps the previously accepted configuration when the new one is
// rejected.
func TestReconfigure(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{Configuration: []byte("first"), VMConfig: []byte("vmconf")})
	vm := p.VMs()[0]
	var up recorder
	steps := []struct {
		config  string
		wantErr string
		want    string // the configuration the guest then reads
	}{
		// The guest reports what OnPluginStart kept, and NOT_FOUND for reading the buffer
		// during a request: Envoy keeps the plugin configuration only while configuring.
		{"", "", "first|not_found"},
		{"second", "", "second|not_found"},
		{"reject-this", "proxy_on_configure returned false: the plugin configuration was rejected", "second|not_found"},
		{"third", "", "third|not_found"},
	}
	for _, st := range steps {
		if st.config != "" {
			err := vm.Configure(context.Background(), []byte(st.config))
			if (err == nil) != (st.wantErr == "") || err != nil && !strings.Contains(err.Error(), st.wantErr) {
				t.Fatalf("Configure(%q) = %v, want error containing %q", st.config, err, st.wantErr)
			}
		}
		if _, err := vm.Do(context.Background(), get("config,vmconfig"), up.upstream); err != nil {
			t.Fatal(err)
		}
		if got := resultOf(t, up.last(t), "config"); got != st.want {
			t.Errorf("after %q: guest reads configuration %q, want %q", st.config, got, st.want)
		}
		if got := resultOf(t, up.last(t), "vmconfig"); got != "vmconf|ok" {
			t.Errorf("guest reads VM configuration %q, want vmconf|ok", got)
		}
		if got := string(vm.PluginConfiguration()); got+"|not_found" != st.want {
			t.Errorf("PluginConfiguration = %q, want %q", got, st.want)
		}
	}
}

// A new configuration is a new root context, as cpp-host keys root contexts by plugin:
// context create, vm start and configure on a new id; a rejected one is ended at once
// (done, delete) while the old one serves on; an accepted one takes the new streams, and the
// old one is ended when its last stream closes. Before, Configure re-ran proxy_on_configure
// on root context 1, which Envoy never does.
func TestReconfigureCreatesRootContext(t *testing.T) {
	var mu sync.Mutex
	var events []string
	rt := newRuntime(t, Options{LogSink: func(e LogEntry) {
		if strings.HasPrefix(e.Message, "configured: ") || strings.HasPrefix(e.Message, "plugin done: ") {
			mu.Lock()
			events = append(events, e.Message)
			mu.Unlock()
		}
	}})
	take := func() string {
		mu.Lock()
		defer mu.Unlock()
		out := strings.Join(events, "; ")
		events = nil
		return out
	}
	p := newPlugin(t, rt, "abi", PluginConfig{Configuration: []byte("first")})
	vm := p.VMs()[0]
	// The canary VM configures first, then the worker.
	if got := take(); got != `configured: "first"; configured: "first"` {
		t.Fatalf("start: %s", got)
	}
	open, err := vm.NewStream() // keeps the first root context alive
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Configure(context.Background(), []byte("reject-me")); err == nil {
		t.Fatal("Configure(reject-me) succeeded")
	}
	// The rejected root context ends at once; its OnPluginStart kept no configuration.
	if got := take(); got != `plugin done: ""` {
		t.Errorf("after the rejection: %s", got)
	}
	if err := vm.Configure(context.Background(), []byte("second")); err != nil {
		t.Fatal(err)
	}
	if got := take(); got != `configured: "second"` {
		t.Errorf("after the second configuration: %s (the first root context must wait for its stream)", got)
	}
	vm.mu.Lock()
	root, roots := vm.root, len(vm.roots)
	vm.mu.Unlock()
	// ids: 1 first root, 2 the open stream, 3 the rejected root, 4 the second root.
	if root != 4 || roots != 2 || open.root != rootContextID {
		t.Errorf("current root %d, %d live roots, open stream under %d; want 4, 2, 1", root, roots, open.root)
	}
	var up recorder
	if _, err := vm.Do(context.Background(), get("config"), up.upstream); err != nil {
		t.Fatal(err)
	}
	if got := resultOf(t, up.last(t), "config"); got != "second|not_found" {
		t.Errorf("a new stream reads %q, want second|not_found", got)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if got := take(); got != `plugin done: "first"` {
		t.Errorf("after the old root's last stream closed: %s", got)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := take(); got != `plugin done: "second"` {
		t.Errorf("after Close: %s", got)
	}
}

// The filter's own 403: the upstream is not called, the callback's action becomes Pause even
// when the guest returns Continue, and the reply passes through the filter's response
// callbacks as Envoy's sendLocalReply does.
func TestLocalResponse(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	wantHeaders := Headers{{"content-type", "application/json"}, {"x-amzn-errortype", "ForbiddenException"}, {"content-length", "23"}, {"x-filter-saw", "403"}}
	for _, op := range []string{"local", "local-continue"} {
		t.Run(op, func(t *testing.T) {
			var up recorder
			resp, err := p.Do(context.Background(), get(op+",mark-response"), up.upstream)
			if err != nil {
				t.Fatal(err)
			}
			if up.count() != 0 {
				t.Errorf("upstream called %d times, want 0", up.count())
			}
			if resp.Status != 403 || string(resp.Body) != `{"message":"Forbidden"}+filtered` || !reflect.DeepEqual(resp.Headers, wantHeaders) {
				t.Errorf("response = %d %v %q\nwant 403 %v %q", resp.Status, resp.Headers, resp.Body, wantHeaders, `{"message":"Forbidden"}+filtered`)
			}
			if resp.Local == nil || resp.Local.Details != "" || resp.Local.GrpcStatus != -1 {
				t.Errorf("Local = %+v, want details \"\" and gRPC status -1", resp.Local)
			}
		})
	}
	t.Run("stream API", func(t *testing.T) {
		s, err := p.NewStream(0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		act, err := s.RequestHeaders(get("local-continue").Headers, true)
		if err != nil || act != ActionPause {
			t.Fatalf("RequestHeaders = %v, %v; want Pause, nil", act, err)
		}
		l := s.LocalResponse()
		if l == nil || l.Status != 403 {
			t.Fatalf("LocalResponse = %+v, want the 403", l)
		}
		// After the local response Envoy calls no more request callbacks.
		if act, err := s.RequestBody([]byte("x"), true); act != ActionPause || err != nil {
			t.Errorf("RequestBody after the local response = %v, %v; want Pause, nil", act, err)
		}
	})
	t.Run("second local response", func(t *testing.T) {
		var up recorder
		resp, err := p.Do(context.Background(), get("local-twice"), up.upstream)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 429 || string(resp.Body) != "first" {
			t.Errorf("response = %d %q, want 429 \"first\"", resp.Status, resp.Body)
		}
		logs := joinLogs(p.VMs()[0].Logs())
		if !strings.Contains(logs, "info proxy_log: second local response: ok\n") {
			t.Errorf("logs do not show the second reply accepted (and ignored):\n%s", logs)
		}
	})
}

// A trap fails the VM like Envoy's FAIL_CLOSED: the request gets a 503 with the error, and so
// does every later request, without calling the guest; other VMs go on.
func TestTrapFailsClosed(t *testing.T) {
	rt := newRuntime(t, Options{WASI: WASICppHost20260701})
	p := newPlugin(t, rt, "abi", PluginConfig{Workers: 2})
	vm0, vm1 := p.VMs()[0], p.VMs()[1]
	var up recorder
	resp, err := vm0.Do(context.Background(), get("panic"), up.upstream)
	if err == nil {
		t.Fatal("Do succeeded, want the trap")
	}
	for _, want := range []string{"host: test vm1#0: proxy_on_request_headers trapped, VM failed", "panic: abi: panic on request"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
	want503 := &Response{Status: 503, Headers: Headers{}, Body: []byte{}, Local: &LocalResponse{Status: 503, Headers: Headers{}, Body: []byte{}, Details: "wasm_fail_stream", GrpcStatus: -1}}
	if !reflect.DeepEqual(resp, want503) {
		t.Errorf("response = %+v, want %+v", resp, want503)
	}
	if vm0.Failed() == nil {
		t.Error("Failed() = nil after a trap")
	}
	resp, err = vm0.Do(context.Background(), get("config"), up.upstream)
	if err != nil || !reflect.DeepEqual(resp, want503) {
		t.Errorf("request on the failed VM = %+v, %v; want %+v, nil", resp, err, want503)
	}
	if up.count() != 0 {
		t.Errorf("upstream called %d times, want 0", up.count())
	}
	if resp, err := vm1.Do(context.Background(), get("config"), up.upstream); err != nil || resp.Status != 200 {
		t.Errorf("request on the healthy VM = %+v, %v; want 200", resp, err)
	}
}

// Close runs proxy_on_log, proxy_on_done (the SDK's OnHttpStreamDone) and proxy_on_delete,
// once.
func TestStreamClose(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	s, err := p.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestHeaders(get("log-done").Headers, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	logs := joinLogs(p.VMs()[0].Logs())
	if n := strings.Count(logs, "stream 2 done"); n != 1 {
		t.Errorf("stream done logged %d times, want 1:\n%s", n, logs)
	}
	if _, err := s.RequestHeaders(get("").Headers, true); err == nil || !strings.Contains(err.Error(), "on closed stream 2") {
		t.Errorf("callback on a closed stream: err = %v", err)
	}
}

// proxy_continue_stream from inside the callback that returns Pause continues the request
// (Envoy runs the continuation after the call), and takes the request headers back at once.
func TestContinueInsidePausingCallback(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	var up recorder
	resp, err := p.Do(context.Background(), get("pause-continue"), up.upstream)
	if err != nil || resp.Status != 200 {
		t.Fatalf("Do = %+v, %v; want 200", resp, err)
	}
	if got := resultOf(t, up.last(t), "pause-continue"); got != "resuming" {
		t.Errorf("result = %s, want resuming", got)
	}
	if _, ok := up.last(t).Headers.Get("x-after-resume"); ok {
		t.Error("a header added after proxy_continue_stream reached the upstream")
	}
	if logs := joinLogs(p.VMs()[0].Logs()); !strings.Contains(logs, "resume: ok, add after resume: bad_argument\n") {
		t.Errorf("logs:\n%s", logs)
	}
}

// Traps outside the request headers fail the VM too: in a response callback (the request
// gets the 503 and the error) and in an HTTP call's answer (the waiting request gets the 503).
func TestTrapLaterInTheStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for _, tt := range []struct {
		op      string
		wantErr string // from Do
		failed  string // VM.Failed
	}{
		{"panic-response", "proxy_on_response_headers trapped", "panic: abi: panic on response"},
		{"httpcall-panic", "", "panic: abi: panic in the callout's answer"},
	} {
		t.Run(tt.op, func(t *testing.T) {
			rt := newRuntime(t, Options{WASI: WASICppHost20260701, Clusters: map[string]string{"auth": srv.URL}})
			p := newPlugin(t, rt, "abi", PluginConfig{})
			var up recorder
			resp, err := p.Do(context.Background(), get(tt.op, "x-cluster", "auth"), up.upstream)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Do error = %v, want %q", err, tt.wantErr)
			}
			if resp == nil || resp.Status != 503 || resp.Local == nil || resp.Local.Details != "wasm_fail_stream" {
				t.Errorf("response = %+v, want the FAIL_CLOSED 503", resp)
			}
			if f := p.VMs()[0].Failed(); f == nil || !strings.Contains(f.Error(), tt.failed) {
				t.Errorf("Failed() = %v, want it to contain %q", f, tt.failed)
			}
		})
	}
}

// A local response sent while the response is encoded replaces it without passing through
// the response callbacks again (Envoy's sendDirectLocalReply).
func TestLocalResponseInResponse(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	var up recorder
	resp, err := p.Do(context.Background(), get("local-in-response,mark-response"), up.upstream)
	if err != nil {
		t.Fatal(err)
	}
	want := Headers{{"x-replaced", "1"}, {"content-length", "8"}, {"content-type", "text/plain"}}
	if resp.Status != 502 || string(resp.Body) != "replaced" || !reflect.DeepEqual(resp.Headers, want) || up.count() != 1 {
		t.Errorf("response = %d %v %q (upstream called %d times), want 502 %v \"replaced\" after one upstream call", resp.Status, resp.Headers, resp.Body, up.count(), want)
	}
}

// How a callback's raw result is read, as cpp-host's convertVmCallResultTo*Status: a value
// above the type's last status stops the stream (this host used to let 5+ on headers, 4+ on
// bodies and 2+ on trailers through).
func TestCallbackResultStops(t *testing.T) {
	tests := []struct {
		kind callbackKind
		raw  uint32
		stop bool
	}{
		{headersCallback, 0, false}, {headersCallback, 1, true}, {headersCallback, 2, false},
		{headersCallback, 3, true}, {headersCallback, 4, true}, {headersCallback, 5, true},
		{headersCallback, 0xFFFFFFFF, true},
		{dataCallback, 0, false}, {dataCallback, 1, true}, {dataCallback, 3, true}, {dataCallback, 4, true},
		{trailersCallback, 0, false}, {trailersCallback, 1, true}, {trailersCallback, 2, true},
	}
	for _, tt := range tests {
		if got := stops(tt.kind, tt.raw); got != tt.stop {
			t.Errorf("stops(kind %d, %d) = %v, want %v", tt.kind, tt.raw, got, tt.stop)
		}
	}
}
