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

// headerMap resolves a map type for the running context: a stream's request and response
// maps, or the HTTP-call response while proxy_on_http_call_response runs.
//   - BAD_ARGUMENT: the type is above 7, or a stream map is asked for from the root context
//     (which has no stream, as in Envoy).
//   - NOT_FOUND: the map does not exist (yet): e.g. response headers during the request, trailers
//     the stream did not have, an HTTP-call map outside its callback, gRPC metadata.
func (v *VM) headerMap(t MapType) (*Headers, Status) {
	switch t {
	case MapRequestHeaders, MapRequestTrailers, MapResponseHeaders, MapResponseTrailers:
		s := v.stream()
		if s == nil {
			return nil, StatusBadArgument
		}
		var m *Headers
		switch t {
		case MapRequestHeaders:
			m = s.reqHeaders
		case MapRequestTrailers:
			m = s.reqTrailers
		case MapResponseHeaders:
			m = s.respHeaders
		case MapResponseTrailers:
			m = s.respTrailers
		}
		if m == nil {
			return nil, StatusNotFound
		}
		return m, StatusOK
	case MapHTTPCallResponseHeaders, MapHTTPCallResponseTrailer:
		if v.callResp == nil {
			return nil, StatusNotFound
		}
		if t == MapHTTPCallResponseHeaders {
			return &v.callResp.headers, StatusOK
		}
		return &v.callResp.trailers, StatusOK
	case MapGrpcInitialMetadata, MapGrpcTrailingMetadata:
		return nil, StatusNotFound
	}
	return nil, StatusBadArgument
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

// Header map functions. Every one takes the map type first; keys are lower-cased before use,
// as Envoy's header maps (LowerCaseString) do, so names the guest sees are always lower case.
var headerFuncs = []hostFunc{
	// proxy_get_header_map_value(type, key_ptr, key_size, value_ptr_ptr, value_size_ptr) -> status
	//
	// Copies the first value of the key into memory from proxy_on_memory_allocate; address and
	// size are stored as u32 at value_ptr_ptr and value_size_ptr.
	//   - NOT_FOUND: no such header (ABI 0.2: not an empty value), or the map does not exist.
	//   - BAD_ARGUMENT: see headerMap. INVALID_MEMORY_ACCESS: a pointer is out of range.
	{name: "proxy_get_header_map_value", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		h, st := v.headerMap(MapType(uint32(s[0])))
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		key, ok := v.readString(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
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
	// are removed; a missing key is appended (Envoy's setCopy).
	{name: "proxy_replace_header_map_value", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		h, key, value, st := v.headerArgs(s, true)
		if st == StatusOK {
			h.replace(key, value)
		}
		s[0] = uint64(st)
	}},
	// proxy_remove_header_map_value(type, key_ptr, key_size) -> status
	//
	// Removes every pair with the key; a missing key is OK.
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
	// empty map is address 0, size 0 (cpp-host's getPairs).
	{name: "proxy_get_header_map_pairs", params: i32s(3), results: statusResult, fn: func(v *VM, s []uint64) {
		h, st := v.headerMap(MapType(uint32(s[0])))
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		var data []byte
		if len(*h) > 0 {
			data = marshalPairs(*h)
		}
		s[0] = uint64(v.copyOut(data, uint32(s[1]), uint32(s[2])))
	}},
	// proxy_set_header_map_pairs(type, ptr, size) -> status
	//
	// Replaces the whole map with the pairs serialised at ptr (names lower-cased).
	//   - BAD_ARGUMENT: the serialisation runs past size.
	{name: "proxy_set_header_map_pairs", params: i32s(3), results: statusResult, fn: func(v *VM, s []uint64) {
		h, st := v.headerMap(MapType(uint32(s[0])))
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		buf, ok := v.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		pairs, ok := unmarshalPairs(buf)
		if !ok {
			s[0] = uint64(StatusBadArgument)
			return
		}
		*h = pairs.lowered()
		s[0] = uint64(StatusOK)
	}},
	// proxy_get_header_map_size(type, size_ptr) -> status
	//
	// Stores the map's serialised size in bytes (what get_header_map_pairs would copy) as a
	// u32 at size_ptr.
	{name: "proxy_get_header_map_size", params: i32s(2), results: statusResult, fn: func(v *VM, s []uint64) {
		h, st := v.headerMap(MapType(uint32(s[0])))
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		if !v.writeU32(uint32(s[1]), uint32(pairsSize(*h))) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(StatusOK)
	}},
}

// headerArgs decodes (type, key_ptr, key_size[, value_ptr, value_size]).
func (v *VM) headerArgs(s []uint64, withValue bool) (*Headers, string, string, Status) {
	h, st := v.headerMap(MapType(uint32(s[0])))
	if st != StatusOK {
		return nil, "", "", st
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
