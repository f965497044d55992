package host

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestPairsRoundTrip(t *testing.T) {
	h := Headers{{"a", "1"}, {"", ""}, {"key", "value with spaces"}, {"a", "2"}}
	buf := marshalPairs(h)
	if len(buf) != pairsSize(h) {
		t.Fatalf("len = %d, pairsSize = %d", len(buf), pairsSize(h))
	}
	// count 4, four size pairs, then "a\x001\x00" "\x00\x00" ...
	if n := binary.LittleEndian.Uint32(buf); n != 4 {
		t.Fatalf("count = %d, want 4", n)
	}
	if got := string(buf[4+4*8:]); got != "a\x001\x00\x00\x00key\x00value with spaces\x00a\x002\x00" {
		t.Fatalf("data = %q", got)
	}
	back, ok := unmarshalPairs(buf)
	if !ok || !reflect.DeepEqual(back, h) {
		t.Fatalf("unmarshal = %v, %v; want %v", back, ok, h)
	}
	for _, bad := range [][]byte{{1, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 'a'}} {
		if got, ok := unmarshalPairs(bad); ok {
			t.Errorf("unmarshalPairs(%v) = %v, ok; want a failure", bad, got)
		}
	}
}

// Header operations through the abi guest: names are lower-cased, add appends, replace keeps
// the first position and drops duplicates, remove drops all, a missing header is NOT_FOUND.
func TestHeaderMapOperations(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	base := Headers{{":authority", "example.com"}, {":path", "/pets?id=1"}, {":method", "GET"}, {":scheme", "http"}}
	tests := []struct {
		ops   string
		extra []string
		want  Headers // what the upstream receives
	}{
		{"add", nil, append(base.Clone(), [2]string{"x-op", "add"}, [2]string{"x-added", "yes"}, [2]string{"x-r-add", "ok"})},
		{"replace", []string{"X-Dup", "a", "other", "o", "x-dup", "b"},
			append(base.Clone(), [2]string{"x-op", "replace"}, [2]string{"x-dup", "new"}, [2]string{"other", "o"}, [2]string{"x-r-replace", "ok"})},
		{"remove", []string{"x-gone", "1", "keep", "k", "X-GONE", "2"},
			append(base.Clone(), [2]string{"x-op", "remove"}, [2]string{"keep", "k"}, [2]string{"x-r-remove", "ok"})},
		{"get-missing", nil, append(base.Clone(), [2]string{"x-op", "get-missing"}, [2]string{"x-r-get-missing", "not_found"})},
		{"response-headers-in-request", nil, append(base.Clone(), [2]string{"x-op", "response-headers-in-request"}, [2]string{"x-r-response-headers-in-request", "bad_argument"})},
		{"headers", []string{"Mixed-Case", "V"},
			append(base.Clone(), [2]string{"x-op", "headers"}, [2]string{"mixed-case", "V"},
				[2]string{"x-r-headers", ":authority=example.com;:path=/pets?id=1;:method=GET;:scheme=http;x-op=headers;mixed-case=V;ok"})},
		{"set-pairs", nil, Headers{{":method", "GET"}, {":path", "/replaced"}, {":authority", "h"}, {"x-only", "1"}, {"x-r-set-pairs", "ok"}}},
	}
	for _, tt := range tests {
		t.Run(tt.ops, func(t *testing.T) {
			var up recorder
			if _, err := p.Do(context.Background(), get(tt.ops, tt.extra...), up.upstream); err != nil {
				t.Fatal(err)
			}
			if got := up.last(t).Headers; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("upstream headers\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// ABI-level statuses of the header functions, called directly through a probe module.
func TestHeaderMapStatuses(t *testing.T) {
	rt := newRuntime(t, Options{})
	v := probeVM(t, rt, PluginConfig{}, envImport("proxy_get_header_map_value"), envImport("proxy_get_header_map_pairs"), envImport("proxy_get_header_map_size"))
	s, err := v.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.RequestHeaders(Headers{{"A", "1"}, {"b", ""}}, true); err != nil {
		t.Fatal(err)
	}
	// The probe has no header callback, so the map was let go at once; hold it as a guest
	// that returned Pause would.
	v.mu.Lock()
	s.live[MapRequestHeaders] = true
	v.mu.Unlock()
	poke(t, v, 0, []byte("a"))
	tests := []struct {
		name    string
		ctxID   uint32
		args    []uint64
		want    Status
		outPtrs [2]uint32 // where to read the copied value, if OK
		out     string
	}{
		{"value", s.ID(), []uint64{0, 0, 1, 100, 104}, StatusOK, [2]uint32{100, 104}, "1"},
		{"missing header", s.ID(), []uint64{0, 8, 1, 100, 104}, StatusNotFound, [2]uint32{}, ""},
		{"root context", rootContextID, []uint64{0, 0, 1, 100, 104}, StatusBadArgument, [2]uint32{}, ""},
		{"response headers not yet", s.ID(), []uint64{2, 0, 1, 100, 104}, StatusBadArgument, [2]uint32{}, ""},
		{"HTTP-call headers outside the callback", s.ID(), []uint64{6, 0, 1, 100, 104}, StatusBadArgument, [2]uint32{}, ""},
		{"map type 8", s.ID(), []uint64{8, 0, 1, 100, 104}, StatusBadArgument, [2]uint32{}, ""},
		{"key out of memory", s.ID(), []uint64{0, 65535, 2, 100, 104}, StatusInvalidMemoryAccess, [2]uint32{}, ""},
	}
	poke(t, v, 8, []byte("c"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Status(callIn(t, v, tt.ctxID, "proxy_get_header_map_value", tt.args...))
			if got != tt.want {
				t.Fatalf("status = %v, want %v", got, tt.want)
			}
			if tt.want == StatusOK {
				if out := string(outBytes(t, v, tt.outPtrs[0], tt.outPtrs[1])); out != tt.out {
					t.Errorf("value = %q, want %q", out, tt.out)
				}
			}
		})
	}
	if st := Status(callIn(t, v, s.ID(), "proxy_get_header_map_pairs", 0, 100, 104)); st != StatusOK {
		t.Fatalf("get pairs = %v", st)
	}
	if got, want := outBytes(t, v, 100, 104), marshalPairs(Headers{{"a", "1"}, {"b", ""}}); !reflect.DeepEqual(got, want) {
		t.Errorf("pairs = %q, want %q", got, want)
	}
	if st := Status(callIn(t, v, s.ID(), "proxy_get_header_map_size", 0, 200)); st != StatusOK || peekU32(t, v, 200) != 3 {
		t.Errorf("size = %v %d, want OK 3 (Envoy's byteSize: keys and values only)", st, peekU32(t, v, 200))
	}
	// Once the filter lets the headers go: reads are BAD_ARGUMENT, pairs are empty.
	v.mu.Lock()
	s.live[MapRequestHeaders] = false
	v.mu.Unlock()
	if st := Status(callIn(t, v, s.ID(), "proxy_get_header_map_value", 0, 0, 1, 100, 104)); st != StatusBadArgument {
		t.Errorf("value after Continue = %v, want BAD_ARGUMENT", st)
	}
	poke(t, v, 100, []byte{9, 9, 9, 9, 9, 9, 9, 9})
	if st := Status(callIn(t, v, s.ID(), "proxy_get_header_map_pairs", 0, 100, 104)); st != StatusOK || peekU32(t, v, 100) != 0 || peekU32(t, v, 104) != 0 {
		t.Errorf("pairs after Continue = %v (%d, %d), want OK (0, 0)", st, peekU32(t, v, 100), peekU32(t, v, 104))
	}
}

func TestRequestHeadersFromHTTP(t *testing.T) {
	r := httptest.NewRequest("POST", "http://api.example.com/pets/1?x=y", nil)
	r.Header.Set("X-Api-Key", "k")
	r.Header.Add("Accept", "a")
	r.Header.Add("Accept", "b")
	want := Headers{{":authority", "api.example.com"}, {":path", "/pets/1?x=y"}, {":method", "POST"}, {":scheme", "http"},
		{"accept", "a"}, {"accept", "b"}, {"x-api-key", "k"}}
	got := RequestHeadersFromHTTP(r)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if hh := got.HTTPHeader(); !reflect.DeepEqual(hh, http.Header{"Accept": {"a", "b"}, "X-Api-Key": {"k"}}) {
		t.Errorf("HTTPHeader = %v", hh)
	}
}

// Envoy lends each map to the filter only while it holds the stream: after the request
// continued, the request headers are gone (reads BAD_ARGUMENT, pairs empty, request.*
// properties NOT_FOUND); in proxy_on_log the final headers are readable, not writable.
func TestMapAvailability(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	var up recorder
	resp, err := p.Do(context.Background(), get("request-headers-later,log-phase"), up.upstream)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := resp.Headers.Get("x-later"); got != "bad_argument|not_found|not_found" {
		t.Errorf("request maps in on_response_headers: %q, want bad_argument|not_found|not_found", got)
	}
	if _, ok := resp.Headers.Get("x-too-late"); ok {
		t.Error("a header added in proxy_on_log reached the client")
	}
	logs := joinLogs(p.VMs()[0].Logs())
	if want := "info proxy_log: log phase: request-headers-later,log-phase ok, 200 ok, add bad_argument\n"; !strings.Contains(logs, want) {
		t.Errorf("logs\n%s\nwant a line %q", logs, want)
	}
}

// proxy_set_header_map_pairs with pairs that do not parse: cpp-host's toPairs yields no
// pairs and Envoy's setHeaderMapPairs clears the map, OK (this host used to answer
// BAD_ARGUMENT and keep the map).
func TestSetHeaderMapPairsMalformed(t *testing.T) {
	rt := newRuntime(t, Options{})
	v := probeVM(t, rt, PluginConfig{}, envImport("proxy_set_header_map_pairs"))
	s, err := v.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.RequestHeaders(Headers{{"a", "1"}, {"b", "2"}}, true); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	s.live[MapRequestHeaders] = true // held, as by a guest that returned Pause
	v.mu.Unlock()
	for _, tt := range []struct {
		name string
		buf  []byte
	}{
		{"count past the end", []byte{5, 0, 0, 0, 1, 0, 0, 0}},
		{"sizes past the end", append(append([]byte{1, 0, 0, 0}, 9, 0, 0, 0, 9, 0, 0, 0), "a\x00b\x00"...)},
		{"three bytes", []byte{1, 0, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v.mu.Lock()
			*s.reqHeaders = Headers{{"a", "1"}, {"b", "2"}}
			v.mu.Unlock()
			poke(t, v, 300, tt.buf)
			if st := Status(callIn(t, v, s.ID(), "proxy_set_header_map_pairs", 0, 300, uint64(len(tt.buf)))); st != StatusOK {
				t.Fatalf("status = %v, want OK", st)
			}
			if got := s.Headers(MapRequestHeaders); len(got) != 0 {
				t.Errorf("request headers = %v, want the map cleared", got)
			}
		})
	}
}
