package host

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Stream is one HTTP request/response through a VM: an HTTP context of the guest. Its
// methods call the guest's callbacks in Envoy's order; each takes the VM's lock. A Stream is
// used by one goroutine at a time, except Wait*, which may run beside a pending HTTP call.
type Stream struct {
	vm   *VM
	id   uint32
	root uint32 // the root context it was created under; 0 until then

	// Guarded by vm.mu. The maps and bodies keep their last contents for the Go API; the
	// live flags say whether the guest may reach them now. Envoy hands a map to the filter
	// for its callback and takes it back once the filter lets it go (Continue, or
	// proxy_continue_stream), except in proxy_on_log, where the final headers are readable.
	created       int64             // request.time, Unix nanoseconds
	props         map[string][]byte // set by the embedder; nil until then
	guestProps    map[string][]byte // set by the guest: Envoy's filter state "wasm.<path>"
	reqHeaders    *Headers
	reqTrailers   *Headers
	respHeaders   *Headers
	respTrailers  *Headers
	reqBody       []byte
	respBody      []byte
	live          [4]bool // by MapType 0..3
	reqBodyLive   bool
	respBodyLive  bool
	reqEOS        bool
	respEOS       bool
	logPhase      bool
	respStatus    int    // response.code once the response started
	respDetails   string // response.code_details
	bufferingReq  bool
	bufferingResp bool
	stopped       [2]bool // by direction (StreamRequest, StreamResponse): headers or trailers stopped
	dataStopped   [2]bool // a body callback stopped (StopIterationAndBuffer)
	stoppedAll    [2]bool // the headers callback stopped all iteration: no body or trailers callback until continued
	watermark     [2]bool // the last body callback answered StopIterationAndWatermark (2)
	continued     [2]bool // proxy_continue_stream ran during the current callback
	inResponse    bool
	local         *LocalResponse
	pendingLocal  *LocalResponse
	reset         bool
	closed        bool
	counted       bool // holds a reference on the VM (see streamRefs)
	guestCreated  bool
	wake          chan struct{} // made by the first wait; signalled under vm.mu
}

// VM is the VM the stream runs on; it stays the same for the stream's whole life.
func (s *Stream) VM() *VM { return s.vm }

// LocalResponse is a response the filter made itself with proxy_send_local_response (or the
// host's FAIL_CLOSED 503). Headers and Body are what the client receives, after the reply
// went through the filter's own response callbacks, as in Envoy.
type LocalResponse struct {
	Status     int
	Headers    Headers // without ":status"
	Body       []byte
	Details    string
	GrpcStatus int32 // -1: none
}

// NewStream creates an HTTP context on the VM (proxy_on_context_create(id, rootID)). On a
// failed VM no guest code runs and the stream already holds the 503 local response; a trap in
// proxy_on_context_create fails the VM, gives the stream that 503 and returns the error. A VM
// retired by Plugin.Swap takes no new stream: the stream gets the 503 and an error.
func (v *VM) NewStream() (*Stream, error) {
	if !v.refs.acquire() {
		s := v.newStreamValue(false)
		s.failClosed()
		return s, fmt.Errorf("host: %s: VM was swapped out; open streams on the plugin", v.label)
	}
	return v.newStream()
}

func (v *VM) newStreamValue(counted bool) *Stream {
	return &Stream{vm: v, counted: counted, created: v.rt.clock.Now().UnixNano()}
}

// newStream creates a stream whose reference was already taken.
func (v *VM) newStream() (*Stream, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.newStreamValue(true)
	if err := v.usableLocked(); err != nil {
		s.failClosed()
		return s, nil
	}
	s.id = v.nextID
	v.nextID++
	v.streams[s.id] = s
	s.root = v.root
	v.roots[s.root].streams++
	if _, err := v.call(v.fns.contextCreate, "proxy_on_context_create", s.id, uint64(s.id), uint64(s.root)); err != nil {
		s.failClosed()
		return s, err
	}
	s.guestCreated = true
	return s, nil
}

// ID is the stream's context id.
func (s *Stream) ID() uint32 { return s.id }

// failClosed gives the stream Envoy's FAIL_CLOSED answer for a failed VM.
func (s *Stream) failClosed() {
	if s.local == nil {
		s.local = &LocalResponse{Status: 503, Headers: Headers{}, Body: []byte{}, Details: "wasm_fail_stream", GrpcStatus: -1}
		s.respStatus, s.respDetails = 503, "wasm_fail_stream"
	}
	s.signal()
}

func (s *Stream) signal() {
	if s.wake == nil {
		return // nobody waits yet; a waiter checks the state before sleeping
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// callbackKind says how Envoy reads a callback's return value.
type callbackKind int

const (
	headersCallback  callbackKind = iota // FilterHeadersStatus: all but 0 and 2 stop
	dataCallback                         // FilterDataStatus: all but 0 stop
	trailersCallback                     // FilterTrailersStatus: all but 0 stop
)

// stops reads a callback's result as cpp-host's convertVmCallResultTo*Status does: values
// above the last status of the type stop the stream too (as StopAllIterationAndWatermark,
// StopIterationNoBuffer, StopIteration), so only Continue (0) and, for headers,
// ContinueAndEndStream (2) let it go on.
func stops(kind callbackKind, raw uint32) bool {
	if kind == headersCallback {
		return raw != 0 && raw != 2
	}
	return raw != 0
}

// callback runs one HTTP callback of direction dir and records whether it stopped the
// stream. It returns ActionPause when the stream stopped (including by a local response,
// whatever the guest returned: Envoy's stopNextIteration) and ActionContinue otherwise;
// values other than 0 and 1 are read as Envoy reads them (see stops: e.g. 3,
// StopAllIterationAndBuffer, stops headers; 2, ContinueAndEndStream, does not; 7 stops).
func (s *Stream) callback(dir StreamType, kind callbackKind, fn api.Function, name string, args ...uint64) (Action, error) {
	v := s.vm
	if s.closed {
		return ActionPause, fmt.Errorf("host: %s: %s on closed stream %d", v.label, name, s.id)
	}
	if s.local != nil || s.reset {
		return ActionPause, nil
	}
	if err := v.usableLocked(); err != nil {
		s.failClosed()
		return ActionPause, nil
	}
	s.continued[dir] = false
	var argv [3]uint64
	argv[0] = uint64(s.id)
	n := 1 + copy(argv[1:], args)
	res, err := v.call(fn, name, s.id, argv[:n]...)
	if err != nil {
		s.failClosed()
		return ActionPause, err
	}
	if s.local != nil || s.reset {
		return ActionPause, nil
	}
	stop := fn != nil && stops(kind, uint32(res)) && !s.continued[dir]
	switch kind {
	case dataCallback:
		s.dataStopped[dir] = stop
		s.watermark[dir] = stop && uint32(res) == 2
	case headersCallback:
		s.stopped[dir] = stop
		// cpp-host reads a headers StopIteration (1) as StopAllIterationAndWatermark unless
		// allow_on_headers_stop_iteration; 3 and 4 are StopAll anyway.
		s.stoppedAll[dir] = stop && (uint32(res) != 1 || !s.allowHeadersStop())
	default:
		s.stopped[dir] = s.stopped[dir] || stop
	}
	if stop {
		return ActionPause, nil
	}
	return ActionContinue, nil
}

func boolArg(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// RequestHeaders delivers the request headers (names are lower-cased; include the pseudo
// headers :method, :path, :authority and :scheme as Envoy does) to proxy_on_request_headers.
func (s *Stream) RequestHeaders(h Headers, endOfStream bool) (Action, error) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	hh := h.lowered()
	s.reqHeaders = &hh
	s.live[MapRequestHeaders], s.reqEOS = true, endOfStream
	act, err := s.callback(StreamRequest, headersCallback, s.vm.fns.requestHeaders, "proxy_on_request_headers", uint64(len(hh)), boolArg(endOfStream))
	s.live[MapRequestHeaders] = s.live[MapRequestHeaders] && act != ActionContinue
	return act, err
}

func (s *Stream) allowHeadersStop() bool {
	return s.vm.plugin != nil && s.vm.plugin.cfg.AllowOnHeadersStopIteration
}

// StoppedAll reports whether the filter stopped all iteration of direction dir on its
// headers (Envoy's StopAllIterationAndWatermark, what a pause on the headers is unless
// PluginConfig.AllowOnHeadersStopIteration): its body and trailers wait, without a callback,
// until it continues, and the proxy stops reading them (flow control, not a 413). The body
// and trailer methods refuse to run meanwhile.
func (s *Stream) StoppedAll(dir StreamType) bool {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return s.stoppedAllLocked(dir)
}

// Watermarked reports whether the filter holds direction dir and its last body callback
// answered StopIterationAndWatermark (2): Envoy buffers the body with flow control, that is,
// it stops reading at its buffer limit instead of answering 413 (a proxy on this host does
// the same).
func (s *Stream) Watermarked(dir StreamType) bool {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return s.watermark[dir] && s.pausedLocked(dir)
}

func (s *Stream) stoppedAllLocked(dir StreamType) bool {
	return s.stoppedAll[dir] && s.pausedLocked(dir)
}

// errStoppedAll: a body or trailers callback was asked for while the filter stopped all
// iteration; Envoy would not make it.
func (s *Stream) errStoppedAll(name string) error {
	return fmt.Errorf("host: %s: %s on stream %d while the filter stopped all iteration on the headers (StopAllIterationAndWatermark): wait for it to continue (WaitRequest/WaitResponse)", s.vm.label, name, s.id)
}

// RequestBody delivers a chunk of the request body to proxy_on_request_body. While the filter
// keeps pausing, chunks accumulate and the guest sees the whole buffered body, as with
// Envoy's StopIterationAndBuffer. A filter that paused on the headers receives the body
// only with PluginConfig.AllowOnHeadersStopIteration; otherwise it stopped all iteration
// and RequestBody refuses until it continues (StoppedAll), as Envoy makes no callback.
func (s *Stream) RequestBody(chunk []byte, endOfStream bool) (Action, error) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return s.requestBody(chunk, endOfStream)
}

// RequestBodyWhilePaused is RequestBody for a request the filter still holds with
// StopIteration (PluginConfig.AllowOnHeadersStopIteration): it delivers the chunk only if
// the request is paused, and reports whether it did, so that a proxy reading the body while
// the filter holds the headers can tell, without a race, which chunks the filter's continue
// released (Body, until the next delivery) and which are still to stream. While the filter
// stopped all iteration it delivers nothing and returns RequestBody's error.
func (s *Stream) RequestBodyWhilePaused(chunk []byte, endOfStream bool) (delivered bool, _ Action, _ error) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	if !s.pausedLocked(StreamRequest) {
		return false, ActionContinue, nil
	}
	act, err := s.requestBody(chunk, endOfStream)
	return true, act, err
}

func (s *Stream) requestBody(chunk []byte, endOfStream bool) (Action, error) {
	if s.stoppedAllLocked(StreamRequest) {
		return ActionPause, s.errStoppedAll("proxy_on_request_body")
	}
	if s.bufferingReq {
		s.reqBody = append(s.reqBody, chunk...)
	} else {
		s.reqBody = append([]byte{}, chunk...)
	}
	s.reqBodyLive, s.reqEOS = true, endOfStream
	act, err := s.callback(StreamRequest, dataCallback, s.vm.fns.requestBody, "proxy_on_request_body", uint64(len(s.reqBody)), boolArg(endOfStream))
	s.bufferingReq = act == ActionPause && !endOfStream
	s.reqBodyLive = s.reqBodyLive && act != ActionContinue
	return act, err
}

// RequestTrailers delivers the request trailers to proxy_on_request_trailers.
func (s *Stream) RequestTrailers(t Headers) (Action, error) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	if s.stoppedAllLocked(StreamRequest) {
		return ActionPause, s.errStoppedAll("proxy_on_request_trailers")
	}
	tt := t.lowered()
	s.reqTrailers = &tt
	s.live[MapRequestTrailers] = true
	act, err := s.callback(StreamRequest, trailersCallback, s.vm.fns.requestTrailers, "proxy_on_request_trailers", uint64(len(tt)))
	s.live[MapRequestTrailers] = s.live[MapRequestTrailers] && act != ActionContinue
	return act, err
}

// ResponseHeaders delivers the upstream's response headers (with ":status") to
// proxy_on_response_headers.
func (s *Stream) ResponseHeaders(h Headers, endOfStream bool) (Action, error) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	hh := h.lowered()
	s.respHeaders = &hh
	s.inResponse = true
	if st, ok := hh.Get(":status"); ok && s.local == nil {
		s.respStatus, _ = strconv.Atoi(st)
		s.respDetails = "via_upstream"
	}
	s.live[MapResponseHeaders], s.respEOS = true, endOfStream
	act, err := s.callback(StreamResponse, headersCallback, s.vm.fns.responseHeaders, "proxy_on_response_headers", uint64(len(hh)), boolArg(endOfStream))
	s.live[MapResponseHeaders] = s.live[MapResponseHeaders] && act != ActionContinue
	return act, err
}

// ResponseBody delivers a chunk of the response body to proxy_on_response_body (buffered
// like RequestBody while the filter pauses).
func (s *Stream) ResponseBody(chunk []byte, endOfStream bool) (Action, error) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	if s.stoppedAllLocked(StreamResponse) {
		return ActionPause, s.errStoppedAll("proxy_on_response_body")
	}
	if s.bufferingResp {
		s.respBody = append(s.respBody, chunk...)
	} else {
		s.respBody = append([]byte{}, chunk...)
	}
	s.inResponse = true
	s.respBodyLive, s.respEOS = true, endOfStream
	act, err := s.callback(StreamResponse, dataCallback, s.vm.fns.responseBody, "proxy_on_response_body", uint64(len(s.respBody)), boolArg(endOfStream))
	s.bufferingResp = act == ActionPause && !endOfStream
	s.respBodyLive = s.respBodyLive && act != ActionContinue
	return act, err
}

// ResponseTrailers delivers the response trailers to proxy_on_response_trailers.
func (s *Stream) ResponseTrailers(t Headers) (Action, error) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	if s.stoppedAllLocked(StreamResponse) {
		return ActionPause, s.errStoppedAll("proxy_on_response_trailers")
	}
	tt := t.lowered()
	s.respTrailers = &tt
	s.inResponse = true
	s.live[MapResponseTrailers] = true
	act, err := s.callback(StreamResponse, trailersCallback, s.vm.fns.responseTrailers, "proxy_on_response_trailers", uint64(len(tt)))
	s.live[MapResponseTrailers] = s.live[MapResponseTrailers] && act != ActionContinue
	return act, err
}

// Paused reports whether the filter holds the request (StreamRequest) or the response
// (StreamResponse): a callback stopped it and neither proxy_continue_stream nor a later body
// callback released it.
func (s *Stream) Paused(dir StreamType) bool {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return s.pausedLocked(dir)
}

func (s *Stream) pausedLocked(dir StreamType) bool {
	return (s.stopped[dir] || s.dataStopped[dir]) && s.local == nil && !s.reset
}

// WaitRequest blocks while the request is paused: until the filter continues it
// (proxy_continue_stream), answers it locally, the VM fails, or ctx ends.
func (s *Stream) WaitRequest(ctx context.Context) error { return s.wait(ctx, StreamRequest) }

// WaitResponse is WaitRequest for the response.
func (s *Stream) WaitResponse(ctx context.Context) error { return s.wait(ctx, StreamResponse) }

func (s *Stream) wait(ctx context.Context, dir StreamType) error {
	for {
		s.vm.mu.Lock()
		if s.wake == nil {
			s.wake = make(chan struct{}, 1)
		}
		wake := s.wake
		done := !s.pausedLocked(dir)
		s.vm.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("host: %s: stream %d still paused by the filter: %w", s.vm.label, s.id, ctx.Err())
		}
	}
}

// LocalResponse returns the filter's own response, or nil while it has not made one.
func (s *Stream) LocalResponse() *LocalResponse {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	if s.local == nil {
		return nil
	}
	l := *s.local
	l.Headers = append(Headers{}, l.Headers...)
	l.Body = append([]byte{}, l.Body...)
	return &l
}

// Reset reports whether the filter reset the stream with proxy_close_stream.
func (s *Stream) Reset() bool {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return s.reset
}

// Headers returns a copy of a header map as the filter left it (nil if the stream never had
// it): e.g. MapRequestHeaders is what the upstream would receive.
func (s *Stream) Headers(t MapType) Headers {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	var h *Headers
	switch t {
	case MapRequestHeaders:
		h = s.reqHeaders
	case MapRequestTrailers:
		h = s.reqTrailers
	case MapResponseHeaders:
		h = s.respHeaders
	case MapResponseTrailers:
		h = s.respTrailers
	}
	if h == nil {
		return nil
	}
	return h.Clone()
}

// Body returns a copy of the request (BufferHTTPRequestBody) or response body as the filter
// left it.
func (s *Stream) Body(t BufferType) []byte {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	switch t {
	case BufferHTTPRequestBody:
		return append([]byte(nil), s.reqBody...)
	case BufferHTTPResponseBody:
		return append([]byte(nil), s.respBody...)
	}
	return nil
}

// Close ends the stream as Envoy does after the access log: proxy_on_log, proxy_on_done,
// proxy_on_delete. On a failed VM no guest code runs. Closing twice is a no-op.
//
// Deviation: when proxy_on_done returns false, Envoy waits for proxy_done before deleting the
// context; this host deletes it at once.
func (s *Stream) Close() error {
	v := s.vm
	v.mu.Lock()
	defer v.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.counted {
		defer v.refs.release()
	}
	defer delete(v.streams, s.id)
	if s.root != 0 {
		defer v.leaveRootLocked(s.root)
	}
	if !s.guestCreated || v.usableLocked() != nil {
		return nil
	}
	// proxy_on_log runs in Envoy's access-log phase: the final request and response headers
	// are readable, nothing is writable.
	s.logPhase = true
	_, err := v.call(v.fns.log, "proxy_on_log", s.id, uint64(s.id))
	s.logPhase = false
	if err != nil {
		return err
	}
	for _, c := range []struct {
		fn   api.Function
		name string
	}{{v.fns.done, "proxy_on_done"}, {v.fns.delete, "proxy_on_delete"}} {
		if _, err := v.call(c.fn, c.name, s.id, uint64(s.id)); err != nil {
			return err
		}
	}
	return nil
}

// leaveRootLocked counts a closed stream out of its root context, and ends a root context
// replaced by VM.Configure once its last stream is gone.
func (v *VM) leaveRootLocked(root uint32) {
	r := v.roots[root]
	if r == nil {
		return
	}
	r.streams--
	if r.streams == 0 && root != v.root && v.usableLocked() == nil {
		v.endRootLocked(root)
	}
}

// sendLocal runs after the VM call that asked for a local response returns (Envoy defers it
// the same way): the reply is built as Envoy's sendLocalReply builds it and, when it is sent
// while the request is being decoded, passes through the filter's own response callbacks
// before it is final.
func (s *Stream) sendLocal(l *LocalResponse) {
	v := s.vm
	h := Headers{{":status", strconv.Itoa(l.Status)}}
	h = append(h, l.Headers.lowered()...)
	if len(l.Body) > 0 {
		h = append(h, [2]string{"content-length", strconv.Itoa(len(l.Body))})
		if _, ok := h.Get("content-type"); !ok {
			h = append(h, [2]string{"content-type", "text/plain"})
		}
	}
	s.respHeaders = &h
	s.respBody = append([]byte{}, l.Body...)
	s.respStatus, s.respDetails = l.Status, l.Details
	if !s.inResponse && v.failed == nil {
		s.inResponse = true
		eos := len(l.Body) == 0
		s.live[MapResponseHeaders], s.respEOS = true, eos
		_, err := v.call(v.fns.responseHeaders, "proxy_on_response_headers", s.id, uint64(s.id), uint64(len(h)), boolArg(eos))
		s.live[MapResponseHeaders] = false
		if err == nil && !eos {
			s.respBodyLive, s.respEOS = true, true
			v.call(v.fns.responseBody, "proxy_on_response_body", s.id, uint64(s.id), uint64(len(s.respBody)), 1)
			s.respBodyLive = false
		}
	}
	if v.failed != nil {
		s.failClosed()
		return
	}
	final := *l
	final.Headers = nil
	for _, p := range *s.respHeaders {
		if p[0] == ":status" {
			if n, err := strconv.Atoi(p[1]); err == nil {
				final.Status = n
			}
			continue
		}
		final.Headers = append(final.Headers, p)
	}
	if final.Headers == nil {
		final.Headers = Headers{}
	}
	final.Body = append([]byte{}, s.respBody...)
	s.local = &final
	s.signal()
}

// Request is what a client sends, for Do.
type Request struct {
	// Headers must hold :method, :path and :authority (and usually :scheme), as Envoy hands
	// them to filters.
	Headers  Headers
	Body     []byte
	Trailers Headers
	// Properties are set on the stream before the first callback (see Stream.SetProperty).
	Properties map[string][]byte
}

// Response is what the client receives from Do.
type Response struct {
	Status   int
	Headers  Headers // without ":status"
	Body     []byte
	Trailers Headers
	// Local is the filter's own response when it answered (or the VM failed); nil when the
	// upstream's response went through.
	Local *LocalResponse
}

// Upstream answers a request the filter let through; it receives the request as the filter
// left it. Its Response.Headers need not hold ":status": Status is used.
type Upstream func(ctx context.Context, req *Request) (*Response, error)

// ErrStreamReset is returned by Do when the filter reset the stream (proxy_close_stream).
var ErrStreamReset = errors.New("host: stream reset by the filter")

// Do runs one whole request through the VM: context create, request headers, body and
// trailers (waiting while the filter pauses), the upstream unless the filter answered, the
// response callbacks, then log, done and delete. It returns what the client would receive;
// after a trap it returns the 503 the client receives together with the error.
func (v *VM) Do(ctx context.Context, req *Request, upstream Upstream) (*Response, error) {
	s, err := v.NewStream()
	return s.do(ctx, req, upstream, err)
}

func (s *Stream) do(ctx context.Context, req *Request, upstream Upstream, err error) (*Response, error) {
	v := s.vm
	defer s.Close()
	if err != nil {
		return s.localResponse(), err
	}
	for path, value := range req.Properties {
		s.SetProperty(path, value)
	}
	if resp, err, done := s.doRequest(ctx, req); done {
		return resp, err
	}
	up := &Request{Headers: s.Headers(MapRequestHeaders), Body: s.Body(BufferHTTPRequestBody), Trailers: s.Headers(MapRequestTrailers)}
	if len(req.Body) == 0 {
		up.Body = nil
	}
	uresp, err := upstream(ctx, up)
	if err != nil {
		return nil, fmt.Errorf("host: %s: upstream: %w", v.label, err)
	}
	if resp, err, done := s.doResponse(ctx, uresp); done {
		return resp, err
	}
	h := s.Headers(MapResponseHeaders)
	out := &Response{Status: uresp.Status, Body: s.Body(BufferHTTPResponseBody), Trailers: s.Headers(MapResponseTrailers)}
	for _, p := range h {
		if p[0] == ":status" {
			if n, err := strconv.Atoi(p[1]); err == nil {
				out.Status = n
			}
			continue
		}
		out.Headers = append(out.Headers, p)
	}
	if len(uresp.Body) == 0 && len(out.Body) == 0 {
		out.Body = nil
	}
	if err := s.Close(); err != nil {
		return out, err
	}
	return out, nil
}

func (s *Stream) localResponse() *Response {
	l := s.LocalResponse()
	if l == nil {
		return nil
	}
	return &Response{Status: l.Status, Headers: l.Headers, Body: l.Body, Local: l}
}

// ended reports whether the stream ended (a local response, a reset), as the response Do
// returns.
func (s *Stream) ended() (*Response, error, bool) {
	if s.Reset() {
		return nil, ErrStreamReset, true
	}
	if r := s.localResponse(); r != nil {
		return r, nil, true
	}
	return nil, nil, false
}

// deliver sends the parts of one direction as Envoy does (the filter gets the body and
// trailers while it holds the headers with StopIteration; after it continues when it
// stopped all iteration), then waits until the filter lets the direction go. done reports
// that the stream ended.
func (s *Stream) deliver(ctx context.Context, dir StreamType, h Headers, body []byte, trailers Headers) (*Response, error, bool) {
	hasBody, hasTrailers := len(body) > 0, len(trailers) > 0
	for part := 0; part < 3; part++ {
		var err error
		switch {
		case part == 0 && dir == StreamRequest:
			_, err = s.RequestHeaders(h, !hasBody && !hasTrailers)
		case part == 0:
			_, err = s.ResponseHeaders(h, !hasBody && !hasTrailers)
		case part == 1 && !hasBody, part == 2 && !hasTrailers:
			continue
		case s.StoppedAll(dir):
			// Envoy holds the body and trailers until the filter continues, then hands them
			// to it.
			if err := s.wait(ctx, dir); err != nil {
				return nil, err, true
			}
			if r, err, done := s.ended(); done {
				return r, err, true
			}
			part--
			continue
		case part == 1 && dir == StreamRequest:
			_, err = s.RequestBody(body, !hasTrailers)
		case part == 1:
			_, err = s.ResponseBody(body, !hasTrailers)
		case dir == StreamRequest:
			_, err = s.RequestTrailers(trailers)
		default:
			_, err = s.ResponseTrailers(trailers)
		}
		if err != nil {
			return s.localResponse(), err, true
		}
		if r, err, done := s.ended(); done {
			return r, err, true
		}
	}
	if err := s.wait(ctx, dir); err != nil {
		return nil, err, true
	}
	return s.ended()
}

func (s *Stream) doRequest(ctx context.Context, req *Request) (*Response, error, bool) {
	return s.deliver(ctx, StreamRequest, req.Headers, req.Body, req.Trailers)
}

func (s *Stream) doResponse(ctx context.Context, resp *Response) (*Response, error, bool) {
	h := Headers{{":status", strconv.Itoa(resp.Status)}}
	for _, p := range resp.Headers {
		if !strings.EqualFold(p[0], ":status") {
			h = append(h, p)
		}
	}
	return s.deliver(ctx, StreamResponse, h, resp.Body, resp.Trailers)
}
