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

// buffer resolves a buffer type for the running context as Envoy's getBuffer does. writable
// reports whether proxy_set_buffer_bytes may change it (the bodies while the filter holds
// them). A body the filter does not hold now (outside its callbacks, after Continue, from the
// root context), network and gRPC data, and call data are empty (size 0, OK), as Envoy's
// buffer over nothing is.
//   - NOT_FOUND: the plugin configuration outside proxy_on_vm_start and proxy_on_configure
//     (Envoy keeps it only while configuring), the HTTP-call body outside its callback.
//   - BAD_ARGUMENT: the type is above 8.
func (v *VM) buffer(t BufferType) (buf *[]byte, writable bool, st Status) {
	var empty []byte
	switch t {
	case BufferHTTPRequestBody, BufferHTTPResponseBody:
		s := v.stream()
		if s == nil {
			return &empty, false, StatusOK
		}
		if t == BufferHTTPRequestBody && s.reqBodyLive {
			return &s.reqBody, true, StatusOK
		}
		if t == BufferHTTPResponseBody && s.respBodyLive {
			return &s.respBody, true, StatusOK
		}
		return &empty, false, StatusOK
	case BufferHTTPCallResponseBody:
		if v.callResp == nil || v.callResp.failed {
			return nil, false, StatusNotFound
		}
		return &v.callResp.body, false, StatusOK
	case BufferVMConfiguration:
		return &v.vmConfig, false, StatusOK
	case BufferPluginConfiguration:
		if !v.configuring {
			return nil, false, StatusNotFound
		}
		return &v.pluginConfig, false, StatusOK
	case BufferDownstreamData, BufferUpstreamData, BufferGrpcReceive, BufferCallData:
		return &empty, false, StatusOK
	}
	return nil, false, StatusBadArgument
}

var bufferFuncs = []hostFunc{
	// proxy_get_buffer_bytes(type, start, max_size, ptr_ptr, size_ptr) -> status
	//
	// Copies up to max_size bytes from offset start into memory from proxy_on_memory_allocate;
	// address and size are stored as u32 at ptr_ptr and size_ptr. As in cpp-host, when
	// nothing is left to copy (an empty buffer, start at the end) the result is OK and
	// nothing is written: the SDK then reports the buffer as not found. start + max_size is
	// added in 64 bits, as cpp-host adds its 64-bit words, so a max_size running past 2^32
	// is clamped to the buffer like any other.
	//   - BAD_ARGUMENT: see buffer.
	//   - NOT_FOUND: see buffer. INVALID_MEMORY_ACCESS: a pointer is out of range.
	{name: "proxy_get_buffer_bytes", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		b, _, st := v.buffer(BufferType(uint32(s[0])))
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		start, length := uint64(uint32(s[1])), uint64(uint32(s[2]))
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
	//   - BAD_ARGUMENT: start inside the body but not 0, or a buffer not writable now.
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
