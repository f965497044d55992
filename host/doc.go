// Package host runs proxy-wasm HTTP filters on wazero the way Envoy does (ABI 0.2.1, with
// proxy-wasm-cpp-host and Envoy's context.cc as the reference where the specification is
// loose): the project's stand-in for Envoy, faithful rather than convenient.
//
// # Model
//
// A [Runtime] owns the wazero runtime, its compilation cache, the host modules ("env",
// "wasi_snapshot_preview1" and "wasi_unstable" as the chosen [WASIProfile]'s cpp-host offers
// them, restricted as its [Engine] does), the clock, the HTTP clusters and the process-wide
// shared data, one store per vm_id. [Runtime.Compile] validates and compiles a module;
// [Runtime.NewPlugin] starts a [Plugin] as cpp-host's createWasm does (canary.go): a base VM
// that only runs the module's start functions, a throw-away canary VM that tries the
// configuration, then N [VM]s (Envoy's workers) of one (vm_id, root_id, module,
// configuration), each started as Envoy starts a VM:
//
//	_initialize (then main(0, 0) if exported; _start instead when there is no _initialize)
//	proxy_on_context_create(rootID, 0)
//	proxy_on_vm_start(rootID, len(vm configuration))     false: the VM fails to start
//	proxy_on_configure(rootID, len(plugin configuration)) false: the configuration is rejected
//
// [VM.Configure] gives a running VM a new configuration the way cpp-host does: a new root
// context (context create, vm start, configure); the old one serves its open streams, then
// ends.
//
// Each request is a [Stream] on one VM:
//
//	s, err := p.NewStream(worker)          proxy_on_context_create(id, rootID)
//	s.SetProperty("xds.route_name", []byte("r1"))
//	act, err := s.RequestHeaders(h, false) proxy_on_request_headers (then Body, Trailers)
//	s.WaitRequest(ctx)                     while the filter holds the request
//	s.LocalResponse()                      non-nil once the filter answered itself
//	s.ResponseHeaders(h, false)            proxy_on_response_headers (then Body, Trailers)
//	s.Close()                              proxy_on_log, proxy_on_done, proxy_on_delete
//
// [VM.Do] and [Plugin.Do] run one whole request through all the callbacks, calling the
// [Upstream] only when the filter lets the request through, and return what the client would
// receive. [RequestHeadersFromHTTP] turns a net/http request into the headers Envoy gives.
//
// # Faithful, not convenient
//
// The host lends maps and bodies to the filter only while Envoy would: request headers until
// the filter lets them go (Continue, or proxy_continue_stream), the plugin configuration only
// during proxy_on_vm_start and proxy_on_configure, final headers read-only in proxy_on_log.
// A local response ends the stream after the callback, passes through the filter's own
// response callbacks, and never reaches the upstream. Shared data keeps Envoy's CAS rules,
// including that a set on a missing key ignores cas. As in cpp-host under V8, the module's
// start functions and proxy_on_memory_allocate may call only a few host functions
// (restrict.go); any other call traps the VM with "restricted_callback". Each host function's file says
// where it follows Envoy rather than the specification.
//
// # Concurrency
//
// A VM is single-threaded, as an Envoy worker is: every call into it (callbacks, ticks,
// HTTP-call answers) holds the VM's mutex, so VMs and plugins are safe for concurrent use.
// Shared data has one mutex per Runtime, as in Envoy. [Plugin.Swap] builds the next VMs first
// (same vm_id, so the shared data survives), then routes new streams to them, and closes each
// old VM once its last stream is closed.
//
// # Failures
//
// A trap fails that VM the way Envoy's FAIL_CLOSED does: the call returns an error carrying
// the guest's output (a Go panic trace arrives through fd_write), [VM.Failed] reports it, and
// every later stream on it gets a 503 local response with details "wasm_fail_stream". The
// host process never panics because of a guest.
//
// # Observation and time
//
// [VM.Logs], [VM.Metrics], [VM.WASICalls], [VM.HostCalls], [VM.GuestAllocations] (calls.go),
// [Plugin.Metrics] (shared by the plugin's VMs and versions, as Envoy's stats are) and
// [Runtime.SharedData] read the host's state from Go;
// [Options.LogSink] and [Options.LogWriter] forward log lines as they happen. [FakeClock] moves
// the wall and monotonic clocks in tests; ticks are explicit ([VM.Tick], [VM.TickDue]) or
// driven by [Plugin.RunTicks].
//
// # Host functions
//
// Each ABI area has its own file (lifecycle.go, headers.go, buffers.go, properties.go,
// shareddata.go, metrics.go, log.go, http_call.go, tick.go, wasi_funcs.go) documenting every
// host function: parameters, results, statuses and memory layout; wasi_profiles.go says which
// cpp-host commit offers which.
package host
