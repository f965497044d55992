// Package host runs proxy-wasm HTTP filters on wazero the way Envoy does (ABI 0.2.1, with
// proxy-wasm-cpp-host as the reference where the specification is loose): it is the
// project's stand-in for Envoy, faithful rather than convenient.
//
// # Model
//
// A [Runtime] owns the wazero runtime, one compilation cache, the host modules ("env" and
// "wasi_snapshot_preview1" in the chosen [WASIProfile]), the clocks, the HTTP clusters and the
// process-wide shared-data stores, one per vm_id. [Runtime.Compile] validates and compiles a
// module once; [Runtime.NewPlugin] starts a [Plugin]: N [VM]s (Envoy's workers) of one
// (vm_id, root_id, module, configuration), each started like Envoy starts a VM:
//
//	_initialize
//	proxy_on_context_create(rootID, 0)
//	proxy_on_vm_start(rootID, len(vm configuration))     false: the VM fails to start
//	proxy_on_configure(rootID, len(plugin configuration)) false: the configuration is rejected
//
// Each request is a [Stream] on one VM:
//
//	s := vm.NewStream()                   proxy_on_context_create(id, rootID)
//	s.SetProperty("xds.route_name", []byte("r1"))
//	act, err := s.RequestHeaders(h, false) proxy_on_request_headers
//	s.RequestBody(b, true)                 proxy_on_request_body (and Trailers)
//	s.LocalResponse()                      non-nil once the filter answered itself
//	s.ResponseHeaders(h, false)            proxy_on_response_headers (and Body, Trailers)
//	s.Close()                              proxy_on_log, proxy_on_done, proxy_on_delete
//
// [VM.Do] and [Plugin.Do] run one whole request through all the callbacks, calling an
// [Upstream] only when the filter lets the request through, and return what the client
// would receive.
//
// # Concurrency
//
// A VM is single-threaded, as an Envoy worker is: every call into it (callbacks, ticks,
// HTTP-call answers) holds the VM's mutex, so a VM may be shared by goroutines. Shared data is
// guarded by one mutex per Runtime, as in Envoy. A Plugin routes streams to its current VMs;
// [Plugin.Swap] builds the next VMs first (same vm_id, so the shared data survives), then
// routes new streams to them and closes the old VMs when their last stream is closed.
//
// # Failures
//
// A trap in a callback fails that VM the way Envoy's FAIL_CLOSED does: the call returns an
// error carrying the guest's output (a Go panic trace arrives through fd_write), [VM.Failed]
// reports it, and every later stream on it gets a 503 local response with details
// "wasm_fail_stream". The host process never panics because of a guest.
//
// # Observation
//
// [VM.Logs], [VM.Metrics], [VM.WASICalls], [Plugin.Metrics] (summed over the plugin's VMs and
// versions) and [Runtime.SharedData] read the host's state from Go; [Options.LogSink] forwards
// every log line as it happens. [FakeClock] moves the wall and monotonic clocks in tests.
//
// # Host functions
//
// Each ABI area has its own file (lifecycle.go, headers.go, buffers.go, properties.go,
// shareddata.go, metrics.go, log.go, http_call.go, tick.go, wasi.go) documenting every host
// function: parameters, results, statuses, memory layout, and where Envoy's behaviour is
// followed rather than the specification's text.
package host
