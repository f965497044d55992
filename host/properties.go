package host

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// Properties are read by path: the guest passes the path segments joined by NUL bytes
// (["request", "path"] is "request\x00path"); the Go API writes paths with dots
// ("request.path"). Values are bytes, encoded as Envoy encodes them: strings as their bytes,
// integers and timestamps as 8-byte little-endian int64 (timestamps in Unix nanoseconds), maps
// in the pairs serialisation (see headers.go).
//
// Where a value comes from, first match wins:
//  1. values set on the stream: Stream.SetProperty, Request.Properties, or the guest's own
//     proxy_set_property (Envoy keeps those in the stream's filter state);
//  2. attributes computed from the stream as Envoy computes them: request.path,
//     request.url_path, request.host, request.scheme, request.method, request.headers (a map;
//     request.headers.<name> is one value), request.referer, request.useragent, request.id,
//     request.query, request.time (when the stream was created); response.code,
//     response.code_details (of a local response), response.headers, response.trailers;
//  3. the plugin's: plugin_name, plugin_root_id, plugin_vm_id, and PluginConfig.Properties
//     (e.g. node.id, xds.cluster_name), plus values the guest set from its root context.
//
// Anything else is NOT_FOUND. xds.route_name, source.address, request.protocol and the like
// exist only when the embedder sets them, as Envoy has them only when it knows them.

// SetProperty sets a property of the stream; path segments are separated by dots.
func (s *Stream) SetProperty(path string, value []byte) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
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
	if val, ok := v.rootProps[key]; ok {
		return val, true
	}
	if val, ok := v.plugin.props[key]; ok {
		return val, true
	}
	return nil, false
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
	case len(seg) == 2 && seg[0] == "request":
		h := s.reqHeaders
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
		return headerValue(s.reqHeaders, strings.ToLower(seg[2]))
	case len(seg) == 2 && seg[0] == "response":
		switch seg[1] {
		case "code":
			st, ok := headerValue(s.respHeaders, ":status")
			if !ok {
				return nil, false
			}
			n, err := strconv.ParseInt(string(st), 10, 64)
			if err != nil {
				return nil, false
			}
			return int64Bytes(n), true
		case "code_details":
			if s.local != nil {
				return []byte(s.local.Details), true
			}
		case "headers":
			if s.respHeaders != nil {
				return marshalPairs(*s.respHeaders), true
			}
		case "trailers":
			if s.respTrailers != nil {
				return marshalPairs(*s.respTrailers), true
			}
		}
	case len(seg) == 3 && seg[0] == "response" && seg[1] == "headers":
		return headerValue(s.respHeaders, strings.ToLower(seg[2]))
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
	// Sets a property of the resolved context's stream (or, from the root context, of the
	// VM); later reads by the same path return it.
	//   - INVALID_MEMORY_ACCESS: an argument is out of range.
	{name: "proxy_set_property", params: i32s(4), results: statusResult, fn: func(v *VM, s []uint64) {
		path, ok1 := v.readString(uint32(s[0]), uint32(s[1]))
		val, ok2 := v.read(uint32(s[2]), uint32(s[3]))
		if !ok1 || !ok2 {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		if st := v.stream(); st != nil {
			st.props[path] = val
		} else {
			if v.rootProps == nil {
				v.rootProps = map[string][]byte{}
			}
			v.rootProps[path] = val
		}
		s[0] = uint64(StatusOK)
	}},
}
