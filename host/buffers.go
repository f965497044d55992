package host

// BufferType selects a buffer (WasmBufferType).
type BufferType uint32

// Buffers of ABI 0.2.1.
const (
	BufferHTTPRequestBody      BufferType = 0
	BufferHTTPResponseBody     BufferType = 1
	BufferDownstreamData       BufferType = 2
	BufferUpstreamData         BufferType = 3
	BufferHTTPCallResponseBody BufferType = 4
	BufferGrpcReceive          BufferType = 5
	BufferVMConfiguration      BufferType = 6
	BufferPluginConfiguration  BufferType = 7
	BufferCallData             BufferType = 8
	bufferTypeMax                         = BufferCallData
)

// buffer resolves a buffer type for the running context. writable reports whether
// proxy_set_buffer_bytes may change it (the bodies; configurations are read-only).
//   - BAD_ARGUMENT: the type is above 8.
//   - NOT_FOUND: the buffer does not exist here: a body outside a stream or before its
//     callback, the HTTP-call body outside proxy_on_http_call_response, network and gRPC
//     buffers, call data.
func (v *VM) buffer(t BufferType) (buf *[]byte, writable bool, st Status) {
	switch t {
	case BufferHTTPRequestBody, BufferHTTPResponseBody:
		s := v.stream()
		if s == nil {
			return nil, false, StatusNotFound
		}
		b := &s.reqBody
		if t == BufferHTTPResponseBody {
			b = &s.respBody
		}
		if *b == nil {
			return nil, false, StatusNotFound
		}
		return b, true, StatusOK
	case BufferHTTPCallResponseBody:
		if v.callResp == nil {
			return nil, false, StatusNotFound
		}
		return &v.callResp.body, false, StatusOK
	case BufferVMConfiguration:
		return &v.vmConfig, false, StatusOK
	case BufferPluginConfiguration:
		return &v.pluginConfig, false, StatusOK
	case BufferDownstreamData, BufferUpstreamData, BufferGrpcReceive, BufferCallData:
		return nil, false, StatusNotFound
	}
	return nil, false, StatusBadArgument
}

var bufferFuncs = []hostFunc{
	// proxy_get_buffer_bytes(type, start, max_size, ptr_ptr, size_ptr) -> status
	//
	// Copies up to max_size bytes from offset start into memory from proxy_on_memory_allocate;
	// address and size are stored as u32 at ptr_ptr and size_ptr. As in cpp-host, when
	// nothing is left to copy (an empty buffer, start at the end) the result is OK and
	// nothing is written: the SDK then reports the buffer as not found.
	//   - BAD_ARGUMENT: start + max_size overflows, or see buffer.
	//   - NOT_FOUND: see buffer. INVALID_MEMORY_ACCESS: a pointer is out of range.
	{name: "proxy_get_buffer_bytes", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		b, _, st := v.buffer(BufferType(uint32(s[0])))
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		start, length := uint64(uint32(s[1])), uint64(uint32(s[2]))
		if uint32(start+length) < uint32(start) {
			s[0] = uint64(StatusBadArgument)
			return
		}
		size := uint64(len(*b))
		if start >= size {
			s[0] = uint64(StatusOK)
			return
		}
		if start+length > size {
			length = size - start
		}
		if length == 0 {
			s[0] = uint64(StatusOK)
			return
		}
		s[0] = uint64(v.copyOut((*b)[start:start+length], uint32(s[3]), uint32(s[4])))
	}},
	// proxy_get_buffer_status(type, length_ptr, flags_ptr) -> status
	//
	// Stores the buffer's length and flags (always 0) as u32 at length_ptr and flags_ptr.
	{name: "proxy_get_buffer_status", params: i32s(3), results: statusResult, fn: func(v *VM, s []uint64) {
		b, _, st := v.buffer(BufferType(uint32(s[0])))
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		if !v.writeU32(uint32(s[1]), uint32(len(*b))) || !v.writeU32(uint32(s[2]), 0) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(StatusOK)
	}},
	// proxy_set_buffer_bytes(type, start, length, data_ptr, data_size) -> status
	//
	// Changes a body the way Envoy's Buffer::copyFrom does: start 0 replaces the first
	// length bytes with the data (length 0 prepends; length >= size replaces the whole body);
	// start at or past the end appends.
	//   - BAD_ARGUMENT: start inside the body but not 0, or a read-only buffer.
	//   - NOT_FOUND: see buffer. INVALID_MEMORY_ACCESS: the data is out of range.
	{name: "proxy_set_buffer_bytes", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		b, writable, st := v.buffer(BufferType(uint32(s[0])))
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		if !writable {
			s[0] = uint64(StatusBadArgument)
			return
		}
		data, ok := v.read(uint32(s[3]), uint32(s[4]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		start, length := int(uint32(s[1])), int(uint32(s[2]))
		switch {
		case start == 0:
			rest := (*b)[min(length, len(*b)):]
			*b = append(data, rest...)
		case start >= len(*b):
			*b = append(*b, data...)
		default:
			s[0] = uint64(StatusBadArgument)
			return
		}
		s[0] = uint64(StatusOK)
	}},
}
