package host

// Stream control, effective context and status: the env functions of the HTTP lifecycle.
// The callbacks themselves are called from vm.go (start, configure) and stream.go.

import (
	"strings"
	"unicode"
)

// StreamType selects a direction for proxy_continue_stream and proxy_close_stream.
type StreamType uint32

// Stream types of ABI 0.2.1.
const (
	StreamRequest    StreamType = 0
	StreamResponse   StreamType = 1
	StreamDownstream StreamType = 2
	StreamUpstream   StreamType = 3
)

func (v *VM) continueStream(t StreamType) Status {
	switch t {
	case StreamDownstream:
		return StatusOK // Envoy: a network filter's read side; an HTTP stream has none
	case StreamUpstream:
		return StatusUnimplemented
	}
	if t > StreamUpstream {
		return StatusBadArgument
	}
	s := v.stream()
	if s == nil {
		// Envoy's root context has no stream to continue; the call is accepted and does nothing.
		return StatusOK
	}
	s.stopped[t], s.dataStopped[t], s.stoppedAll[t], s.watermark[t], s.continued[t] = false, false, false, false, true
	if t == StreamRequest {
		s.bufferingReq = false // the buffered body goes on; the next chunk starts a new buffer
	}
	// As in Envoy, continuing either direction takes the request maps back from the filter.
	s.live[MapRequestHeaders], s.live[MapRequestTrailers], s.reqBodyLive = false, false, false
	s.signal()
	return StatusOK
}

var lifecycleFuncs = []hostFunc{
	// proxy_send_local_response(status_code, details_ptr, details_size, body_ptr, body_size,
	//                           headers_ptr, headers_size, grpc_status) -> status
	//
	// Answers the stream with status_code, the body, the extra headers (pairs
	// serialisation, see headers.go) and the response-code details. As in Envoy the reply is
	// sent after the current callback returns, that callback's action becomes Pause whatever
	// the guest returns, and the upstream is never called. A reply sent while the request is
	// decoded goes through the filter's own proxy_on_response_headers/_body (Envoy's
	// sendLocalReplyViaFilterChain) with ":status", the extra headers, content-length and,
	// for a non-empty body without one, content-type: text/plain. A reply sent while the
	// response is encoded replaces the response without further callbacks.
	// Whitespace in the details becomes "_" (Envoy's replaceAllEmptySpace). From the root
	// context (no stream) the call is OK and does nothing, as in Envoy. When a stream already
	// has a local response, a further one is OK and has no effect: the client got the first.
	// Header pairs that do not parse are read as no pairs (cpp-host's toPairs returns {}): the
	// reply is sent without extra headers and the call is OK.
	//   - INVALID_MEMORY_ACCESS: an argument is out of range.
	{name: "proxy_send_local_response", params: i32s(8), results: statusResult, fn: func(v *VM, s []uint64) {
		st := v.stream()
		details, ok1 := v.readString(uint32(s[1]), uint32(s[2]))
		body, ok2 := v.read(uint32(s[3]), uint32(s[4]))
		pairs, ok3 := v.mem.Read(uint32(s[5]), uint32(s[6]))
		if !ok1 || !ok2 || !ok3 {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		h, ok := unmarshalPairs(pairs)
		if !ok {
			h = nil
		}
		if st == nil || st.local != nil || st.pendingLocal != nil {
			s[0] = uint64(StatusOK)
			return
		}
		details = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return '_'
			}
			return r
		}, details)
		l := &LocalResponse{Status: int(uint32(s[0])), Headers: h, Body: body, Details: details, GrpcStatus: int32(uint32(s[7]))}
		st.pendingLocal = l
		v.afterCall = append(v.afterCall, func() { st.sendLocal(l) })
		s[0] = uint64(StatusOK)
	}},
	// proxy_continue_stream(stream_type) -> status
	//
	// Resumes a paused request (0) or response (1) of the resolved context's stream. As in
	// Envoy's Context::continueStream, downstream (2) is OK and does nothing for an HTTP
	// stream (it continues a network filter's reading).
	//   - BAD_ARGUMENT: stream_type above 3. UNIMPLEMENTED: upstream (3).
	{name: "proxy_continue_stream", params: i32s(1), results: statusResult, fn: func(v *VM, s []uint64) {
		s[0] = uint64(v.continueStream(StreamType(uint32(s[0]))))
	}},
	// proxy_continue_request() -> status: ABI 0.1 form of proxy_continue_stream(0).
	{name: "proxy_continue_request", params: nil, results: statusResult, fn: func(v *VM, s []uint64) {
		s[0] = uint64(v.continueStream(StreamRequest))
	}},
	// proxy_continue_response() -> status: ABI 0.1 form of proxy_continue_stream(1).
	{name: "proxy_continue_response", params: nil, results: statusResult, fn: func(v *VM, s []uint64) {
		s[0] = uint64(v.continueStream(StreamResponse))
	}},
	// proxy_close_stream(stream_type) -> status
	//
	// Resets the resolved context's stream (Envoy's resetStream): no response reaches the
	// client (Do returns ErrStreamReset). As in Envoy's Context::closeStream, downstream (2)
	// and upstream (3), which close a network filter's connection, are OK and do nothing for
	// an HTTP stream.
	//   - BAD_ARGUMENT: stream_type above 3.
	{name: "proxy_close_stream", params: i32s(1), results: statusResult, fn: func(v *VM, s []uint64) {
		t := StreamType(uint32(s[0]))
		switch {
		case t > StreamUpstream:
			s[0] = uint64(StatusBadArgument)
		case t > StreamResponse:
			s[0] = uint64(StatusOK)
		default:
			if st := v.stream(); st != nil {
				st.reset = true
				if st.respDetails == "" {
					st.respDetails = "wasm_close_stream"
				}
				st.signal()
			}
			s[0] = uint64(StatusOK)
		}
	}},
	// proxy_set_effective_context(context_id) -> status
	//
	// Makes the following host calls of the current callback act for context_id (e.g. the
	// stream that dispatched an HTTP call, from proxy_on_http_call_response). The setting
	// ends with the callback, as in cpp-host.
	//   - BAD_ARGUMENT: no live context has that id.
	{name: "proxy_set_effective_context", params: i32s(1), results: statusResult, fn: func(v *VM, s []uint64) {
		id := uint32(s[0])
		if v.roots[id] == nil && v.streams[id] == nil {
			s[0] = uint64(StatusBadArgument)
			return
		}
		v.effective = id
		s[0] = uint64(StatusOK)
	}},
	// proxy_done() -> status
	//
	// Ends a context whose proxy_on_done returned false. This host never waits for it (see
	// Stream.Close), so there is never such a context: NOT_FOUND, as Envoy answers for a
	// context that is not waiting.
	{name: "proxy_done", params: nil, results: statusResult, fn: func(v *VM, s []uint64) {
		s[0] = uint64(StatusNotFound)
	}},
	// proxy_get_status(code_ptr, message_ptr_ptr, message_size_ptr) -> status
	//
	// Stores the status of the call being answered: code (u32 at code_ptr) and message (copied
	// like a value). During proxy_on_http_call_response for a failed call: 11
	// (BROKEN_CONNECTION) and "reset", as Envoy's onHttpCallFailure sets them; otherwise 0 and
	// an empty message (address 0, size 0).
	{name: "proxy_get_status", params: i32s(3), results: statusResult, fn: func(v *VM, s []uint64) {
		code, msg := uint32(0), []byte(nil)
		if v.callResp != nil && v.callResp.failed {
			code, msg = uint32(StatusBrokenConnection), []byte("reset")
		}
		if !v.writeU32(uint32(s[0]), code) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(v.copyOut(msg, uint32(s[1]), uint32(s[2])))
	}},
	// proxy_clear_route_cache() -> status
	//
	// Envoy recomputes the route after header changes; this host has no routing: OK.
	{name: "proxy_clear_route_cache", params: nil, results: statusResult, fn: func(v *VM, s []uint64) {
		s[0] = uint64(StatusOK)
	}},
}

// unsupportedFuncs are offered so that modules importing them load, as they load in Envoy, but
// do nothing here. Each is documented with what it answers.
var unsupportedFuncs = []hostFunc{
	// proxy_register_shared_queue(name_ptr, name_size, token_ptr) -> UNIMPLEMENTED (no queues).
	{name: "proxy_register_shared_queue", params: i32s(3), results: statusResult, fn: unimplemented},
	// proxy_resolve_shared_queue(vm_id_ptr, vm_id_size, name_ptr, name_size, token_ptr) -> NOT_FOUND.
	{name: "proxy_resolve_shared_queue", params: i32s(5), results: statusResult, fn: notFound},
	// proxy_dequeue_shared_queue(token, data_ptr_ptr, data_size_ptr) -> NOT_FOUND.
	{name: "proxy_dequeue_shared_queue", params: i32s(3), results: statusResult, fn: notFound},
	// proxy_enqueue_shared_queue(token, data_ptr, data_size) -> NOT_FOUND.
	{name: "proxy_enqueue_shared_queue", params: i32s(3), results: statusResult, fn: notFound},
	// proxy_grpc_call(service_ptr, service_size, service_name_ptr, service_name_size,
	//   method_ptr, method_size, metadata_ptr, metadata_size, message_ptr, message_size,
	//   timeout_ms, token_ptr) -> BAD_ARGUMENT: this host knows no gRPC services.
	{name: "proxy_grpc_call", params: i32s(12), results: statusResult, fn: badArgument},
	// proxy_grpc_stream(service_ptr, service_size, service_name_ptr, service_name_size,
	//   method_ptr, method_size, metadata_ptr, metadata_size, token_ptr) -> BAD_ARGUMENT.
	{name: "proxy_grpc_stream", params: i32s(9), results: statusResult, fn: badArgument},
	// proxy_grpc_send(token, message_ptr, message_size, end_of_stream) -> NOT_FOUND.
	{name: "proxy_grpc_send", params: i32s(4), results: statusResult, fn: notFound},
	// proxy_grpc_cancel(token) -> NOT_FOUND.
	{name: "proxy_grpc_cancel", params: i32s(1), results: statusResult, fn: notFound},
	// proxy_grpc_close(token) -> NOT_FOUND.
	{name: "proxy_grpc_close", params: i32s(1), results: statusResult, fn: notFound},
	// proxy_call_foreign_function(name_ptr, name_size, args_ptr, args_size, results_ptr_ptr,
	//   results_size_ptr) -> NOT_FOUND: no foreign functions are registered (as Envoy answers
	//   for an unknown name).
	{name: "proxy_call_foreign_function", params: i32s(6), results: statusResult, fn: notFound},
}

func unimplemented(_ *VM, s []uint64) { s[0] = uint64(StatusUnimplemented) }
func notFound(_ *VM, s []uint64)      { s[0] = uint64(StatusNotFound) }
func badArgument(_ *VM, s []uint64)   { s[0] = uint64(StatusBadArgument) }
