package host

import (
	"encoding/binary"
	"strings"
)

// Properties are read by path: the guest passes the path segments joined by NUL bytes
// (["request", "path"] is "request\x00path"); the Go API writes paths with dots
// ("request.path"). Values are bytes, encoded as Envoy encodes them: strings as their bytes,
// integers and timestamps as 8-byte little-endian int64 (timestamps in Unix nanoseconds), maps
// in the pairs serialisation (see headers.go).
//
// Where a value comes from, first match wins:
//  1. values the embedder set on the stream by exact path (Stream.SetProperty,
//     Request.Properties), standing for what Envoy knows of the stream: xds.route_name,
//     source.address, request.protocol, ...;
//  2. attributes computed as Envoy computes them. From the request headers, while the filter
//     holds them (until it lets the request headers go) and in proxy_on_log: request.path,
//     request.url_path, request.host, request.scheme, request.method, request.headers (a
//     map; request.headers.<name> is one value), request.referer, request.useragent,
//     request.id, request.query. From the response headers, likewise: response.headers,
//     response.trailers. From the stream: request.time (when it was created),
//     response.code and response.code_details (once the response started; "via_upstream",
//     the local reply's details, "wasm_fail_stream" or "wasm_close_stream");
//  3. the plugin's: plugin_name, plugin_root_id, plugin_vm_id, and PluginConfig.Properties
//     (e.g. node.id, xds.cluster_name);
//  4. what the guest set with proxy_set_property on this stream, which Envoy keeps as filter
//     state under the whole path but finds by the first segment only: a one-segment path
//     reads back, a longer one does not.
//
// Anything else is NOT_FOUND, and so is every stream attribute from the root context.

// SetProperty sets a property of the stream; path segments are separated by dots.
func (s *Stream) SetProperty(path string, value []byte) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	if s.props == nil {
		s.props = map[string][]byte{}
	}
	s.props[propertyKey(path)] = append([]byte(nil), value...)
}

// Property returns what the guest would read at path (dotted), and whether it exists.
func (s *Stream) Property(path string) ([]byte, bool) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	v, ok := s.vm.property(s, propertyKey(path))
	return append([]byte(nil), v...), ok
}

func propertyKey(dotted string) string { return strings.ReplaceAll(dotted, ".", "\x00") }

func int64Bytes(n int64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(n))
	return b
}

func (v *VM) property(s *Stream, key string) ([]byte, bool) {
	if s != nil {
		if val, ok := s.props[key]; ok {
			return val, true
		}
		if val, ok := s.computed(key); ok {
			return val, true
		}
	}
	if val, ok := v.plugin.props[key]; ok {
		return val, true
	}
	if s != nil && !strings.Contains(key, "\x00") {
		if val, ok := s.guestProps[key]; ok {
			return val, true
		}
	}
	return nil, false
}

// activeMap is the header map attributes read: the live one, or the final one in proxy_on_log.
func (s *Stream) activeMap(t MapType) *Headers {
	if s.live[t] || s.logPhase {
		return *s.mapField(t)
	}
	return nil
}

func headerValue(h *Headers, name string) ([]byte, bool) {
	if h == nil {
		return nil, false
	}
	if val, ok := h.Get(name); ok {
		return []byte(val), true
	}
	return nil, false
}

// computed derives Envoy's request and response attributes from the stream's header maps.
func (s *Stream) computed(key string) ([]byte, bool) {
	seg := strings.Split(key, "\x00")
	switch {
	case len(seg) == 2 && seg[0] == "request" && seg[1] == "time":
		return int64Bytes(s.created), true
	case len(seg) == 2 && seg[0] == "request":
		h := s.activeMap(MapRequestHeaders)
		switch seg[1] {
		case "path":
			return headerValue(h, ":path")
		case "url_path":
			p, ok := headerValue(h, ":path")
			if i := strings.IndexByte(string(p), '?'); ok && i >= 0 {
				p = p[:i]
			}
			return p, ok
		case "query":
			p, ok := headerValue(h, ":path")
			if i := strings.IndexByte(string(p), '?'); ok && i >= 0 {
				return p[i+1:], true
			}
			return []byte{}, ok
		case "host":
			return headerValue(h, ":authority")
		case "scheme":
			return headerValue(h, ":scheme")
		case "method":
			return headerValue(h, ":method")
		case "referer":
			return headerValue(h, "referer")
		case "useragent":
			return headerValue(h, "user-agent")
		case "id":
			return headerValue(h, "x-request-id")
		case "headers":
			if h == nil {
				return nil, false
			}
			return marshalPairs(*h), true
		}
	case len(seg) == 3 && seg[0] == "request" && seg[1] == "headers":
		return headerValue(s.activeMap(MapRequestHeaders), strings.ToLower(seg[2]))
	case len(seg) == 2 && seg[0] == "response":
		switch seg[1] {
		case "code":
			if s.respStatus != 0 {
				return int64Bytes(int64(s.respStatus)), true
			}
		case "code_details":
			if s.respDetails != "" {
				return []byte(s.respDetails), true
			}
		case "headers", "trailers":
			t := MapResponseHeaders
			if seg[1] == "trailers" {
				t = MapResponseTrailers
			}
			if h := s.activeMap(t); h != nil {
				return marshalPairs(*h), true
			}
		}
	case len(seg) == 3 && seg[0] == "response" && seg[1] == "headers":
		return headerValue(s.activeMap(MapResponseHeaders), strings.ToLower(seg[2]))
	}
	return nil, false
}

var propertyFuncs = []hostFunc{
	// proxy_get_property(path_ptr, path_size, value_ptr_ptr, value_size_ptr) -> status
	//
	// Copies the value at the path (segments joined by NUL) into memory from
	// proxy_on_memory_allocate; address and size are stored as u32 at value_ptr_ptr and
	// value_size_ptr (an empty value is address 0, size 0).
	//   - NOT_FOUND: no such property for this context.
	//   - INVALID_MEMORY_ACCESS: an argument is out of range.
	{name: "proxy_get_property", params: i32s(4), results: statusResult, fn: func(v *VM, s []uint64) {
		path, ok := v.readString(uint32(s[0]), uint32(s[1]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		val, ok := v.property(v.stream(), path)
		if !ok {
			s[0] = uint64(StatusNotFound)
			return
		}
		s[0] = uint64(v.copyOut(val, uint32(s[2]), uint32(s[3])))
	}},
	// proxy_set_property(path_ptr, path_size, value_ptr, value_size) -> status
	//
	// Sets a property of the resolved context's stream (Envoy's filter state "wasm.<path>");
	// see the list above for how it reads back.
	//   - NOT_FOUND: from the root context, which has no stream.
	//   - INVALID_MEMORY_ACCESS: an argument is out of range.
	{name: "proxy_set_property", params: i32s(4), results: statusResult, fn: func(v *VM, s []uint64) {
		path, ok1 := v.readString(uint32(s[0]), uint32(s[1]))
		val, ok2 := v.read(uint32(s[2]), uint32(s[3]))
		if !ok1 || !ok2 {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		st := v.stream()
		if st == nil {
			s[0] = uint64(StatusNotFound)
			return
		}
		if st.guestProps == nil {
			st.guestProps = map[string][]byte{}
		}
		st.guestProps[path] = val
		s[0] = uint64(StatusOK)
	}},
}
