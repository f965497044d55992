package host

import (
	"context"
	"testing"
)

func TestBodies(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	var up recorder
	req := get("body,mark-response")
	req.Body = []byte("hello body")
	resp, err := p.Do(context.Background(), req, up.upstream)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(up.last(t).Body); got != "HELLO BODY" {
		t.Errorf("upstream body = %q, want the guest's replacement %q", got, "HELLO BODY")
	}
	if got := string(resp.Body); got != "upstream body+filtered" {
		t.Errorf("response body = %q, want %q", got, "upstream body+filtered")
	}
}

// While the filter pauses on a body chunk, chunks accumulate and the guest sees them all.
func TestBodyBuffering(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	s, err := p.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	steps := []struct {
		chunk string
		eos   bool
		want  Action
		body  string
	}{
		{"", false, ActionContinue, ""},
		{"abc", false, ActionPause, "abc"},
		{"def", false, ActionPause, "abcdef"},
		{"g", true, ActionContinue, "ABCDEFG"},
	}
	for i, st := range steps {
		var act Action
		if i == 0 {
			act, err = s.RequestHeaders(get("body").Headers, false)
		} else {
			act, err = s.RequestBody([]byte(st.chunk), st.eos)
		}
		if err != nil || act != st.want {
			t.Fatalf("step %d: action %v, %v; want %v", i, act, err, st.want)
		}
		if got := string(s.Body(BufferHTTPRequestBody)); got != st.body {
			t.Errorf("step %d: body = %q, want %q", i, got, st.body)
		}
	}
}

// ABI-level buffer statuses and cpp-host's reading rules, through a probe.
func TestBufferStatuses(t *testing.T) {
	rt := newRuntime(t, Options{})
	v := probeVM(t, rt, PluginConfig{VMConfig: []byte("0123456789"), Configuration: []byte("plugin")},
		envImport("proxy_get_buffer_bytes"), envImport("proxy_get_buffer_status"), envImport("proxy_set_buffer_bytes"))
	tests := []struct {
		name        string
		args        []uint64 // type, start, max
		want        Status
		out         string
		wantWritten bool
	}{
		{"whole", []uint64{6, 0, 100}, StatusOK, "0123456789", true},
		{"window", []uint64{6, 2, 3}, StatusOK, "234", true},
		{"clipped", []uint64{6, 8, 100}, StatusOK, "89", true},
		{"start at end", []uint64{6, 10, 5}, StatusOK, "", false},
		// start + max is a 64-bit sum in cpp-host: past 2^32 it is clamped, not refused.
		{"start past the end, sum past 2^32", []uint64{6, 0xFFFFFFF0, 0x20}, StatusOK, "", false},
		{"max past 2^32", []uint64{6, 2, 0xFFFFFFFF}, StatusOK, "23456789", true},
		// Envoy keeps the plugin configuration only while configuring.
		{"plugin configuration after configure", []uint64{7, 0, 10}, StatusNotFound, "", false},
		{"request body from root", []uint64{0, 0, 10}, StatusOK, "", false},
		{"call data", []uint64{8, 0, 10}, StatusOK, "", false},
		{"HTTP-call body outside its callback", []uint64{4, 0, 10}, StatusNotFound, "", false},
		{"type 9", []uint64{9, 0, 10}, StatusBadArgument, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			poke(t, v, 100, make([]byte, 8))
			got := Status(callIn(t, v, rootContextID, "proxy_get_buffer_bytes", append(tt.args, 100, 104)...))
			if got != tt.want {
				t.Fatalf("status = %v, want %v", got, tt.want)
			}
			written := peekU32(t, v, 104) != 0
			if written != tt.wantWritten {
				t.Fatalf("wrote a result = %v, want %v", written, tt.wantWritten)
			}
			if written {
				if out := string(outBytes(t, v, 100, 104)); out != tt.out {
					t.Errorf("bytes = %q, want %q", out, tt.out)
				}
			}
		})
	}
	if st := Status(callIn(t, v, rootContextID, "proxy_get_buffer_status", 6, 200, 204)); st != StatusOK || peekU32(t, v, 200) != 10 || peekU32(t, v, 204) != 0 {
		t.Errorf("status = %v, length %d, flags %d; want OK 10 0", st, peekU32(t, v, 200), peekU32(t, v, 204))
	}
	poke(t, v, 300, []byte("XY"))
	if st := Status(callIn(t, v, rootContextID, "proxy_set_buffer_bytes", 6, 0, 0, 300, 2)); st != StatusBadArgument {
		t.Errorf("set on the VM configuration = %v, want BAD_ARGUMENT (read-only)", st)
	}
	// Envoy's copyFrom on a body: start 0 replaces a prefix, start >= size appends, else
	// BAD_ARGUMENT.
	s, err := v.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.RequestBody([]byte("abcdef"), true); err != nil {
		t.Fatal(err)
	}
	// The probe has no body callback, so the body was let go at once; hold it as a guest
	// that returned Pause would.
	v.mu.Lock()
	s.reqBodyLive = true
	v.mu.Unlock()
	for _, st := range []struct {
		start, length uint64
		want          Status
		body          string
	}{
		{0, 2, StatusOK, "XYcdef"},
		{0, 0, StatusOK, "XYXYcdef"},
		{8, 0, StatusOK, "XYXYcdefXY"},
		{3, 1, StatusBadArgument, "XYXYcdefXY"},
		{0, 100, StatusOK, "XY"},
	} {
		got := Status(callIn(t, v, s.ID(), "proxy_set_buffer_bytes", 0, st.start, st.length, 300, 2))
		if body := string(s.Body(BufferHTTPRequestBody)); got != st.want || body != st.body {
			t.Errorf("set(start %d, length %d) = %v, body %q; want %v, %q", st.start, st.length, got, body, st.want, st.body)
		}
	}
	v.mu.Lock()
	s.reqBodyLive = false
	v.mu.Unlock()
	if got := Status(callIn(t, v, s.ID(), "proxy_set_buffer_bytes", 0, 0, 0, 300, 2)); got != StatusBadArgument {
		t.Errorf("set on a body the filter let go = %v, want BAD_ARGUMENT", got)
	}
}
