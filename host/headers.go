package host

import (
	"net/http"
	"sort"
	"strings"
)

// Headers is an ordered list of header (or trailer) name/value pairs. A name may repeat.
type Headers [][2]string

// Get returns the first value of name (compared case-insensitively) and whether it exists.
func (h Headers) Get(name string) (string, bool) {
	for _, p := range h {
		if strings.EqualFold(p[0], name) {
			return p[1], true
		}
	}
	return "", false
}

// Values returns every value of name (compared case-insensitively), in order.
func (h Headers) Values(name string) []string {
	var out []string
	for _, p := range h {
		if strings.EqualFold(p[0], name) {
			out = append(out, p[1])
		}
	}
	return out
}

// Clone returns a copy of h.
func (h Headers) Clone() Headers { return append(Headers(nil), h...) }

// lowered returns a copy of h with names lower-cased, as Envoy's header maps store them.
func (h Headers) lowered() Headers {
	out := make(Headers, len(h))
	for i, p := range h {
		out[i] = [2]string{strings.ToLower(p[0]), p[1]}
	}
	return out
}

// MapType selects a header map (WasmHeaderMapType).
type MapType uint32

// Header maps of ABI 0.2.1.
const (
	MapRequestHeaders          MapType = 0
	MapRequestTrailers         MapType = 1
	MapResponseHeaders         MapType = 2
	MapResponseTrailers        MapType = 3
	MapGrpcInitialMetadata     MapType = 4
	MapGrpcTrailingMetadata    MapType = 5
	MapHTTPCallResponseHeaders MapType = 6
	MapHTTPCallResponseTrailer MapType = 7
	mapTypeMax                         = MapHTTPCallResponseTrailer
)

// headerMap resolves a map type for the running context, as Envoy's getMap (mutate) and
// getConstMap (read) do, or returns nil when the map is not available: a stream map from the
// root context, a stream map the filter has let go (after Continue or proxy_continue_stream),
// anything written during proxy_on_log (which reads the final request and response headers),
// the HTTP-call response outside proxy_on_http_call_response (and always for writing), gRPC
// metadata. As in Envoy, the request (or response) trailers are created when the filter
// writes them during the last body callback of a stream that had none.
func (v *VM) headerMap(t MapType, mutate bool) *Headers {
	switch t {
	case MapRequestHeaders, MapRequestTrailers, MapResponseHeaders, MapResponseTrailers:
		s := v.stream()
		if s == nil {
			return nil
		}
		m := s.mapField(t)
		if s.logPhase {
			if mutate || t == MapRequestTrailers {
				return nil
			}
			return *m
		}
		if s.live[t] {
			return *m
		}
		if mutate && t == MapRequestTrailers && s.reqBodyLive && s.reqEOS ||
			mutate && t == MapResponseTrailers && s.respBodyLive && s.respEOS {
			*m = &Headers{}
			s.live[t] = true
			return *m
		}
		return nil
	case MapHTTPCallResponseHeaders, MapHTTPCallResponseTrailer:
		if mutate || v.callResp == nil || v.callResp.failed {
			return nil
		}
		if t == MapHTTPCallResponseHeaders {
			return &v.callResp.headers
		}
		if v.callResp.trailers == nil {
			return nil
		}
		return &v.callResp.trailers
	}
	return nil
}

func (s *Stream) mapField(t MapType) **Headers {
	switch t {
	case MapRequestHeaders:
		return &s.reqHeaders
	case MapRequestTrailers:
		return &s.reqTrailers
	case MapResponseHeaders:
		return &s.respHeaders
	}
	return &s.respTrailers
}

func (h *Headers) replace(key, value string) {
	found := false
	out := (*h)[:0]
	for _, p := range *h {
		if p[0] == key {
			if found {
				continue
			}
			found = true
			p[1] = value
		}
		out = append(out, p)
	}
	if !found {
		out = append(out, [2]string{key, value})
	}
	*h = out
}

func (h *Headers) remove(key string) {
	out := (*h)[:0]
	for _, p := range *h {
		if p[0] != key {
			out = append(out, p)
		}
	}
	*h = out
}

// Header map functions. Every one takes the map type first (above 7: BAD_ARGUMENT); keys are
// lower-cased before use, as Envoy's header maps (LowerCaseString) do, so names the guest sees
// are always lower case. "Unavailable" below is headerMap's nil.
var headerFuncs = []hostFunc{
	// proxy_get_header_map_value(type, key_ptr, key_size, value_ptr_ptr, value_size_ptr) -> status
	//
	// Copies the first value of the key into memory from proxy_on_memory_allocate; address and
	// size are stored as u32 at value_ptr_ptr and value_size_ptr. Envoy returns the first
	// value only, even when the key repeats.
	//   - NOT_FOUND: no such key (ABI 0.2: not an empty value); or, during proxy_on_log, an
	//     unavailable map.
	//   - BAD_ARGUMENT: the map is unavailable. INVALID_MEMORY_ACCESS: out of range.
	{name: "proxy_get_header_map_value", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		t := MapType(uint32(s[0]))
		if t > mapTypeMax {
			s[0] = uint64(StatusBadArgument)
			return
		}
		key, ok := v.readString(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		h := v.headerMap(t, false)
		if h == nil {
			if st := v.stream(); st != nil && st.logPhase {
				s[0] = uint64(StatusNotFound)
			} else {
				s[0] = uint64(StatusBadArgument)
			}
			return
		}
		key = strings.ToLower(key)
		for _, p := range *h {
			if p[0] == key {
				s[0] = uint64(v.copyOut([]byte(p[1]), uint32(s[3]), uint32(s[4])))
				return
			}
		}
		s[0] = uint64(StatusNotFound)
	}},
	// proxy_add_header_map_value(type, key_ptr, key_size, value_ptr, value_size) -> status
	//
	// Appends a pair; an existing key keeps its values and gains one more.
	//   - BAD_ARGUMENT: the map is unavailable. INVALID_MEMORY_ACCESS: out of range.
	{name: "proxy_add_header_map_value", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		h, key, value, st := v.headerArgs(s, true)
		if st == StatusOK {
			*h = append(*h, [2]string{key, value})
		}
		s[0] = uint64(st)
	}},
	// proxy_replace_header_map_value(type, key_ptr, key_size, value_ptr, value_size) -> status
	//
	// Sets the key's value: the first pair with the key takes the value in place and later ones
	// are removed; a missing key is appended (Envoy's setCopy). Statuses as add.
	{name: "proxy_replace_header_map_value", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		h, key, value, st := v.headerArgs(s, true)
		if st == StatusOK {
			h.replace(key, value)
		}
		s[0] = uint64(st)
	}},
	// proxy_remove_header_map_value(type, key_ptr, key_size) -> status
	//
	// Removes every pair with the key; a missing key is OK. Statuses as add.
	{name: "proxy_remove_header_map_value", params: i32s(3), results: statusResult, fn: func(v *VM, s []uint64) {
		h, key, _, st := v.headerArgs(s, false)
		if st == StatusOK {
			h.remove(key)
		}
		s[0] = uint64(st)
	}},
	// proxy_get_header_map_pairs(type, ptr_ptr, size_ptr) -> status
	//
	// Copies the whole map in the pairs serialisation: u32 count N, then N × (u32 key size,
	// u32 value size), then each key and value followed by a NUL byte; all little-endian. An
	// empty or unavailable map is OK with address 0, size 0 (cpp-host's getPairs; the SDK
	// reports it as NOT_FOUND).
	{name: "proxy_get_header_map_pairs", params: i32s(3), results: statusResult, fn: func(v *VM, s []uint64) {
		t := MapType(uint32(s[0]))
		if t > mapTypeMax {
			s[0] = uint64(StatusBadArgument)
			return
		}
		var data []byte
		if h := v.headerMap(t, false); h != nil && len(*h) > 0 {
			data = marshalPairs(*h)
		}
		s[0] = uint64(v.copyOut(data, uint32(s[1]), uint32(s[2])))
	}},
	// proxy_set_header_map_pairs(type, ptr, size) -> status
	//
	// Replaces the whole map with the pairs serialised at ptr (names lower-cased). Pairs that
	// do not parse are read as no pairs, as by cpp-host's toPairs: the map is cleared, OK.
	//   - BAD_ARGUMENT: the map is unavailable.
	//   - INVALID_MEMORY_ACCESS: out of range.
	{name: "proxy_set_header_map_pairs", params: i32s(3), results: statusResult, fn: func(v *VM, s []uint64) {
		t := MapType(uint32(s[0]))
		if t > mapTypeMax {
			s[0] = uint64(StatusBadArgument)
			return
		}
		buf, ok := v.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		h := v.headerMap(t, true)
		if h == nil {
			s[0] = uint64(StatusBadArgument)
			return
		}
		pairs, ok := unmarshalPairs(buf)
		if !ok {
			pairs = nil
		}
		*h = pairs.lowered()
		s[0] = uint64(StatusOK)
	}},
	// proxy_get_header_map_size(type, size_ptr) -> status
	//
	// Stores the map's byte size as Envoy's HeaderMap::byteSize counts it (the lengths of all
	// keys and values, no framing) as a u32 at size_ptr.
	//   - BAD_ARGUMENT: the map is unavailable (Envoy asks for the writable map here).
	{name: "proxy_get_header_map_size", params: i32s(2), results: statusResult, fn: func(v *VM, s []uint64) {
		t := MapType(uint32(s[0]))
		if t > mapTypeMax {
			s[0] = uint64(StatusBadArgument)
			return
		}
		h := v.headerMap(t, true)
		if h == nil {
			s[0] = uint64(StatusBadArgument)
			return
		}
		n := 0
		for _, p := range *h {
			n += len(p[0]) + len(p[1])
		}
		if !v.writeU32(uint32(s[1]), uint32(n)) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(StatusOK)
	}},
}

// headerArgs decodes (type, key_ptr, key_size[, value_ptr, value_size]).
func (v *VM) headerArgs(s []uint64, withValue bool) (*Headers, string, string, Status) {
	t := MapType(uint32(s[0]))
	if t > mapTypeMax {
		return nil, "", "", StatusBadArgument
	}
	key, ok := v.readString(uint32(s[1]), uint32(s[2]))
	if !ok {
		return nil, "", "", StatusInvalidMemoryAccess
	}
	var value string
	if withValue {
		if value, ok = v.readString(uint32(s[3]), uint32(s[4])); !ok {
			return nil, "", "", StatusInvalidMemoryAccess
		}
	}
	h := v.headerMap(t, true)
	if h == nil {
		return nil, "", "", StatusBadArgument
	}
	return h, strings.ToLower(key), value, StatusOK
}

// RequestHeadersFromHTTP returns a request's headers as Envoy hands them to a filter: the
// pseudo headers :authority, :path, :method and :scheme first, then the other headers with
// lower-cased names. net/http keeps no header order, so names are sorted.
func RequestHeadersFromHTTP(r *http.Request) Headers {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	h := Headers{{":authority", r.Host}, {":path", r.URL.RequestURI()}, {":method", r.Method}, {":scheme", scheme}}
	return append(h, sortedPairs(r.Header)...)
}

// HTTPHeader returns the headers other than pseudo headers as a net/http header.
func (h Headers) HTTPHeader() http.Header {
	out := http.Header{}
	for _, p := range h {
		if !strings.HasPrefix(p[0], ":") {
			out.Add(p[0], p[1])
		}
	}
	return out
}

// sortedPairs turns a net/http header into lower-cased pairs, sorted by name: net/http keeps
// no order, and a stable one makes the guest's view reproducible.
func sortedPairs(h http.Header) Headers {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	var out Headers
	for _, name := range names {
		for _, val := range h[name] {
			out = append(out, [2]string{strings.ToLower(name), val})
		}
	}
	return out
}
