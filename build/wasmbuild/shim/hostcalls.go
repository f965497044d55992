//go:build wasip1 && usageplans_shim

// This file replaces the SDK's TinyGo-only proxywasm/internal/abi_hostcalls.go in the Wasm
// build (see build/wasmbuild). It declares the proxy-wasm 0.2.1 host functions with
// //go:wasmimport and wraps them in the SDK's Go signatures.
//
// Two hazards of the standard Go toolchain shape it:
//   - wasmimport allows only 32/64-bit integers, floats and unsafe.Pointer: Go's int and
//     pointers are 64-bit on wasm while the ABI passes i32, so every size is converted here.
//   - The host may call proxy_on_memory_allocate while one of these calls is paused, on the
//     same goroutine stack. If the allocator grows that stack, the stack is copied and any
//     stack address already handed to the host goes stale. So the slots the host writes
//     results into are package variables (the guest is single-threaded and host calls do not
//     nest), and the imports are not //go:noescape, which keeps callers' buffers on the heap.

package internal

import "unsafe"

// Result slots written by the host. Package-level on purpose: see the file comment.
var (
	retData  uint32
	retSize  uint32
	retCas   uint32
	retID    uint32
	retValue uint64
)

// takeBytes turns the (pointer, size) pair the host wrote into a Go pointer, then releases
// the allocation pins: from here on the typed pointer keeps the buffer alive.
func takeBytes(data **byte, size *int) {
	if retSize == 0 {
		*data, *size = nil, 0
	} else {
		*data = (*byte)(unsafe.Pointer(uintptr(retData)))
		*size = int(retSize)
	}
	unpinAllocations()
}

// resetSlots clears the result slots and any pin left by a call that failed after the host
// had allocated.
func resetSlots() {
	retData, retSize, retCas, retID, retValue = 0, 0, 0, 0, 0
	unpinAllocations()
}

func ptr(p *byte) unsafe.Pointer { return unsafe.Pointer(p) }

//go:wasmimport env proxy_log
func hostLog(level uint32, msg unsafe.Pointer, msgSize uint32) uint32

func ProxyLog(logLevel LogLevel, messageData *byte, messageSize int) Status {
	return Status(hostLog(uint32(logLevel), ptr(messageData), uint32(messageSize)))
}

//go:wasmimport env proxy_send_local_response
func hostSendLocalResponse(status uint32, details unsafe.Pointer, detailsSize uint32,
	body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32

func ProxySendLocalResponse(statusCode uint32, statusCodeDetailData *byte, statusCodeDetailsSize int,
	bodyData *byte, bodySize int, headersData *byte, headersSize int, grpcStatus int32) Status {
	return Status(hostSendLocalResponse(statusCode, ptr(statusCodeDetailData), uint32(statusCodeDetailsSize),
		ptr(bodyData), uint32(bodySize), ptr(headersData), uint32(headersSize), grpcStatus))
}

//go:wasmimport env proxy_get_shared_data
func hostGetSharedData(key unsafe.Pointer, keySize uint32, retData, retSize, retCas unsafe.Pointer) uint32

func ProxyGetSharedData(keyData *byte, keySize int, returnValueData **byte, returnValueSize *int, returnCas *uint32) Status {
	resetSlots()
	st := Status(hostGetSharedData(ptr(keyData), uint32(keySize),
		unsafe.Pointer(&retData), unsafe.Pointer(&retSize), unsafe.Pointer(&retCas)))
	if st == StatusOK {
		takeBytes(returnValueData, returnValueSize)
		*returnCas = retCas
	}
	return st
}

//go:wasmimport env proxy_set_shared_data
func hostSetSharedData(key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32, cas uint32) uint32

func ProxySetSharedData(keyData *byte, keySize int, valueData *byte, valueSize int, cas uint32) Status {
	return Status(hostSetSharedData(ptr(keyData), uint32(keySize), ptr(valueData), uint32(valueSize), cas))
}

//go:wasmimport env proxy_register_shared_queue
func hostRegisterSharedQueue(name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) uint32

func ProxyRegisterSharedQueue(nameData *byte, nameSize int, returnID *uint32) Status {
	resetSlots()
	st := Status(hostRegisterSharedQueue(ptr(nameData), uint32(nameSize), unsafe.Pointer(&retID)))
	if st == StatusOK {
		*returnID = retID
	}
	return st
}

//go:wasmimport env proxy_resolve_shared_queue
func hostResolveSharedQueue(vmID unsafe.Pointer, vmIDSize uint32, name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) uint32

func ProxyResolveSharedQueue(vmIDData *byte, vmIDSize int, nameData *byte, nameSize int, returnID *uint32) Status {
	resetSlots()
	st := Status(hostResolveSharedQueue(ptr(vmIDData), uint32(vmIDSize), ptr(nameData), uint32(nameSize), unsafe.Pointer(&retID)))
	if st == StatusOK {
		*returnID = retID
	}
	return st
}

//go:wasmimport env proxy_dequeue_shared_queue
func hostDequeueSharedQueue(queueID uint32, retData, retSize unsafe.Pointer) uint32

func ProxyDequeueSharedQueue(queueID uint32, returnValueData **byte, returnValueSize *int) Status {
	resetSlots()
	st := Status(hostDequeueSharedQueue(queueID, unsafe.Pointer(&retData), unsafe.Pointer(&retSize)))
	if st == StatusOK {
		takeBytes(returnValueData, returnValueSize)
	}
	return st
}

//go:wasmimport env proxy_enqueue_shared_queue
func hostEnqueueSharedQueue(queueID uint32, value unsafe.Pointer, valueSize uint32) uint32

func ProxyEnqueueSharedQueue(queueID uint32, valueData *byte, valueSize int) Status {
	return Status(hostEnqueueSharedQueue(queueID, ptr(valueData), uint32(valueSize)))
}

//go:wasmimport env proxy_get_header_map_value
func hostGetHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, retData, retSize unsafe.Pointer) uint32

func ProxyGetHeaderMapValue(mapType MapType, keyData *byte, keySize int, returnValueData **byte, returnValueSize *int) Status {
	resetSlots()
	st := Status(hostGetHeaderMapValue(uint32(mapType), ptr(keyData), uint32(keySize),
		unsafe.Pointer(&retData), unsafe.Pointer(&retSize)))
	if st == StatusOK {
		takeBytes(returnValueData, returnValueSize)
	}
	return st
}

//go:wasmimport env proxy_add_header_map_value
func hostAddHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

func ProxyAddHeaderMapValue(mapType MapType, keyData *byte, keySize int, valueData *byte, valueSize int) Status {
	return Status(hostAddHeaderMapValue(uint32(mapType), ptr(keyData), uint32(keySize), ptr(valueData), uint32(valueSize)))
}

//go:wasmimport env proxy_replace_header_map_value
func hostReplaceHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

func ProxyReplaceHeaderMapValue(mapType MapType, keyData *byte, keySize int, valueData *byte, valueSize int) Status {
	return Status(hostReplaceHeaderMapValue(uint32(mapType), ptr(keyData), uint32(keySize), ptr(valueData), uint32(valueSize)))
}

//go:wasmimport env proxy_remove_header_map_value
func hostRemoveHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32) uint32

func ProxyRemoveHeaderMapValue(mapType MapType, keyData *byte, keySize int) Status {
	return Status(hostRemoveHeaderMapValue(uint32(mapType), ptr(keyData), uint32(keySize)))
}

//go:wasmimport env proxy_get_header_map_pairs
func hostGetHeaderMapPairs(mapType uint32, retData, retSize unsafe.Pointer) uint32

func ProxyGetHeaderMapPairs(mapType MapType, returnValueData **byte, returnValueSize *int) Status {
	resetSlots()
	st := Status(hostGetHeaderMapPairs(uint32(mapType), unsafe.Pointer(&retData), unsafe.Pointer(&retSize)))
	if st == StatusOK {
		takeBytes(returnValueData, returnValueSize)
	}
	return st
}

//go:wasmimport env proxy_set_header_map_pairs
func hostSetHeaderMapPairs(mapType uint32, pairs unsafe.Pointer, pairsSize uint32) uint32

func ProxySetHeaderMapPairs(mapType MapType, mapData *byte, mapSize int) Status {
	return Status(hostSetHeaderMapPairs(uint32(mapType), ptr(mapData), uint32(mapSize)))
}

//go:wasmimport env proxy_get_buffer_bytes
func hostGetBufferBytes(bufferType uint32, start uint32, maxSize uint32, retData, retSize unsafe.Pointer) uint32

func ProxyGetBufferBytes(bufferType BufferType, start int, maxSize int, returnBufferData **byte, returnBufferSize *int) Status {
	resetSlots()
	st := Status(hostGetBufferBytes(uint32(bufferType), uint32(start), uint32(maxSize),
		unsafe.Pointer(&retData), unsafe.Pointer(&retSize)))
	if st == StatusOK {
		takeBytes(returnBufferData, returnBufferSize)
	}
	return st
}

//go:wasmimport env proxy_set_buffer_bytes
func hostSetBufferBytes(bufferType uint32, start uint32, maxSize uint32, data unsafe.Pointer, size uint32) uint32

func ProxySetBufferBytes(bufferType BufferType, start int, maxSize int, bufferData *byte, bufferSize int) Status {
	return Status(hostSetBufferBytes(uint32(bufferType), uint32(start), uint32(maxSize), ptr(bufferData), uint32(bufferSize)))
}

//go:wasmimport env proxy_continue_stream
func hostContinueStream(streamType uint32) uint32

func ProxyContinueStream(streamType StreamType) Status {
	return Status(hostContinueStream(uint32(streamType)))
}

//go:wasmimport env proxy_close_stream
func hostCloseStream(streamType uint32) uint32

func ProxyCloseStream(streamType StreamType) Status {
	return Status(hostCloseStream(uint32(streamType)))
}

//go:wasmimport env proxy_http_call
func hostHttpCall(upstream unsafe.Pointer, upstreamSize uint32, headers unsafe.Pointer, headersSize uint32,
	body unsafe.Pointer, bodySize uint32, trailers unsafe.Pointer, trailersSize uint32, timeout uint32, retID unsafe.Pointer) uint32

func ProxyHttpCall(upstreamData *byte, upstreamSize int, headerData *byte, headerSize int,
	bodyData *byte, bodySize int, trailersData *byte, trailersSize int, timeout uint32, calloutIDPtr *uint32,
) Status {
	resetSlots()
	st := Status(hostHttpCall(ptr(upstreamData), uint32(upstreamSize), ptr(headerData), uint32(headerSize),
		ptr(bodyData), uint32(bodySize), ptr(trailersData), uint32(trailersSize), timeout, unsafe.Pointer(&retID)))
	if st == StatusOK {
		*calloutIDPtr = retID
	}
	return st
}

//go:wasmimport env proxy_call_foreign_function
func hostCallForeignFunction(name unsafe.Pointer, nameSize uint32, param unsafe.Pointer, paramSize uint32, retData, retSize unsafe.Pointer) uint32

func ProxyCallForeignFunction(funcNamePtr *byte, funcNameSize int, paramPtr *byte, paramSize int, returnData **byte, returnSize *int) Status {
	resetSlots()
	st := Status(hostCallForeignFunction(ptr(funcNamePtr), uint32(funcNameSize), ptr(paramPtr), uint32(paramSize),
		unsafe.Pointer(&retData), unsafe.Pointer(&retSize)))
	if st == StatusOK {
		takeBytes(returnData, returnSize)
	}
	return st
}

//go:wasmimport env proxy_set_tick_period_milliseconds
func hostSetTickPeriodMilliseconds(period uint32) uint32

func ProxySetTickPeriodMilliseconds(period uint32) Status {
	return Status(hostSetTickPeriodMilliseconds(period))
}

//go:wasmimport env proxy_set_effective_context
func hostSetEffectiveContext(contextID uint32) uint32

func ProxySetEffectiveContext(contextID uint32) Status {
	return Status(hostSetEffectiveContext(contextID))
}

//go:wasmimport env proxy_done
func hostDone() uint32

func ProxyDone() Status { return Status(hostDone()) }

//go:wasmimport env proxy_define_metric
func hostDefineMetric(metricType uint32, name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) uint32

func ProxyDefineMetric(metricType MetricType, metricNameData *byte, metricNameSize int, returnMetricIDPtr *uint32) Status {
	resetSlots()
	st := Status(hostDefineMetric(uint32(metricType), ptr(metricNameData), uint32(metricNameSize), unsafe.Pointer(&retID)))
	if st == StatusOK {
		*returnMetricIDPtr = retID
	}
	return st
}

//go:wasmimport env proxy_increment_metric
func hostIncrementMetric(metricID uint32, offset int64) uint32

func ProxyIncrementMetric(metricID uint32, offset int64) Status {
	return Status(hostIncrementMetric(metricID, offset))
}

//go:wasmimport env proxy_record_metric
func hostRecordMetric(metricID uint32, value uint64) uint32

func ProxyRecordMetric(metricID uint32, value uint64) Status {
	return Status(hostRecordMetric(metricID, value))
}

//go:wasmimport env proxy_get_metric
func hostGetMetric(metricID uint32, retValue unsafe.Pointer) uint32

func ProxyGetMetric(metricID uint32, returnMetricValue *uint64) Status {
	resetSlots()
	st := Status(hostGetMetric(metricID, unsafe.Pointer(&retValue)))
	if st == StatusOK {
		*returnMetricValue = retValue
	}
	return st
}

//go:wasmimport env proxy_get_property
func hostGetProperty(path unsafe.Pointer, pathSize uint32, retData, retSize unsafe.Pointer) uint32

func ProxyGetProperty(pathData *byte, pathSize int, returnValueData **byte, returnValueSize *int) Status {
	resetSlots()
	st := Status(hostGetProperty(ptr(pathData), uint32(pathSize), unsafe.Pointer(&retData), unsafe.Pointer(&retSize)))
	if st == StatusOK {
		takeBytes(returnValueData, returnValueSize)
	}
	return st
}

//go:wasmimport env proxy_set_property
func hostSetProperty(path unsafe.Pointer, pathSize uint32, value unsafe.Pointer, valueSize uint32) uint32

func ProxySetProperty(pathData *byte, pathSize int, valueData *byte, valueSize int) Status {
	return Status(hostSetProperty(ptr(pathData), uint32(pathSize), ptr(valueData), uint32(valueSize)))
}
