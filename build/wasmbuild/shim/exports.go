//go:build wasip1 && usageplans_shim

// This file is added to the SDK's proxywasm/internal package in the Wasm build (see
// build/wasmbuild). Standard Go ignores the SDK's TinyGo //export comments, so the
// proxy-wasm 0.2.1 callbacks are exported here with //go:wasmexport, each forwarding to the
// SDK's unexported callback. Parameters and results are the ABI's i32/i64: Go's int and bool
// are converted here.

package internal

import "unsafe"

// pinned holds the buffers handed to the host by proxy_on_memory_allocate until the host call
// that asked for them returns and the wrapper turns the i32 address back into a typed
// pointer. In between, only the host refers to them, and a GC would free them.
var pinned [][]byte

func unpinAllocations() {
	clear(pinned)
	pinned = pinned[:0]
}

func boolToI32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

//go:wasmexport proxy_abi_version_0_2_1
func exportABIVersion() {}

// The SDK's allocator panics on size 0 (it returns &buf[0]); a host may ask for 0 bytes for an
// empty value, so round up to 1.
//
//go:wasmexport proxy_on_memory_allocate
func exportOnMemoryAllocate(size uint32) uint32 {
	allocHook()
	if size == 0 {
		size = 1
	}
	buf := make([]byte, size)
	pinned = append(pinned, buf)
	return uint32(uintptr(unsafe.Pointer(&buf[0])))
}

//go:wasmexport proxy_on_context_create
func exportOnContextCreate(contextID, parentContextID uint32) {
	proxyOnContextCreate(contextID, parentContextID)
}

//go:wasmexport proxy_on_vm_start
func exportOnVMStart(rootContextID, vmConfigurationSize uint32) uint32 {
	return boolToI32(bool(proxyOnVMStart(rootContextID, int(vmConfigurationSize))))
}

//go:wasmexport proxy_on_configure
func exportOnConfigure(rootContextID, pluginConfigurationSize uint32) uint32 {
	return boolToI32(bool(proxyOnConfigure(rootContextID, int(pluginConfigurationSize))))
}

//go:wasmexport proxy_on_request_headers
func exportOnRequestHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	return uint32(proxyOnRequestHeaders(contextID, int(numHeaders), endOfStream != 0))
}

//go:wasmexport proxy_on_request_body
func exportOnRequestBody(contextID, bodySize, endOfStream uint32) uint32 {
	return uint32(proxyOnRequestBody(contextID, int(bodySize), endOfStream != 0))
}

//go:wasmexport proxy_on_request_trailers
func exportOnRequestTrailers(contextID, numTrailers uint32) uint32 {
	return uint32(proxyOnRequestTrailers(contextID, int(numTrailers)))
}

//go:wasmexport proxy_on_response_headers
func exportOnResponseHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	return uint32(proxyOnResponseHeaders(contextID, int(numHeaders), endOfStream != 0))
}

//go:wasmexport proxy_on_response_body
func exportOnResponseBody(contextID, bodySize, endOfStream uint32) uint32 {
	return uint32(proxyOnResponseBody(contextID, int(bodySize), endOfStream != 0))
}

//go:wasmexport proxy_on_response_trailers
func exportOnResponseTrailers(contextID, numTrailers uint32) uint32 {
	return uint32(proxyOnResponseTrailers(contextID, int(numTrailers)))
}

//go:wasmexport proxy_on_log
func exportOnLog(contextID uint32) { proxyOnLog(contextID) }

//go:wasmexport proxy_on_done
func exportOnDone(contextID uint32) uint32 { return boolToI32(proxyOnDone(contextID)) }

//go:wasmexport proxy_on_delete
func exportOnDelete(contextID uint32) { proxyOnDelete(contextID) }

//go:wasmexport proxy_on_http_call_response
func exportOnHttpCallResponse(rootContextID, calloutID, numHeaders, bodySize, numTrailers uint32) {
	proxyOnHttpCallResponse(rootContextID, calloutID, int(numHeaders), int(bodySize), int(numTrailers))
}

//go:wasmexport proxy_on_queue_ready
func exportOnQueueReady(rootContextID, queueID uint32) { proxyOnQueueReady(rootContextID, queueID) }

//go:wasmexport proxy_on_tick
func exportOnTick(rootContextID uint32) { proxyOnTick(rootContextID) }
