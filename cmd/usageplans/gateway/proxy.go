package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/host"
)

// chunks are the 32 KiB buffers response bodies stream through. (A request body's buffer is
// not pooled: the transport may still read it after the exchange is over.)
var chunks = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// hopByHop are the connection-level headers a proxy neither hands to filters nor forwards.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"upgrade": true, "te": true, "trailer": true,
}

// Filter state the access log reads, as Envoy's %FILTER_STATE(wasm.NAME:PLAIN)% would: a
// filter may set these one-segment properties with proxy_set_property to say what it
// decided and for which key, rejections included.
const (
	propOutcome = "usageplans_outcome"
	propKeyID   = "usageplans_key_id"
	propPlanID  = "usageplans_plan_id"
)

// exchange is what one request did, for the access log and the counters.
type exchange struct {
	path    string // the request target as received (query and all)
	matched string // the path the filter matched, in its normal form
	timers  *streamTimers
	status  int
	end     string
	outcome string // the filter's decision, from its filter state; "" when it did not say
	details string // the local response's details, or ""
	keyID   string
	planID  string
	route   string
	worker  int
	version int // the plugin version that ran the request; 0 when unknown
}

// serveHTTP runs one request as Envoy's HTTP connection manager with the Wasm filter and a
// router would: request callbacks, then either the filter's local response or the upstream,
// whose response goes through the response callbacks while its body streams to the client.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	g.stats.rqActive.Add(1)
	defer g.stats.rqActive.Add(-1)
	x := exchange{worker: workerOf(r.Context()), end: endClientGone, path: requestTarget(r)}
	x.timers = g.newStreamTimers(w, r)
	defer func() { // also when the exchange is aborted with http.ErrAbortHandler
		x.timers.stop()
		d := time.Since(start)
		g.stats.record(x.status, x.end, d)
		g.accessLog(r, &x, d)
	}()
	g.proxy(w, r, &x)
}

func workerOf(ctx context.Context) int {
	w, _ := ctx.Value(workerKey{}).(int)
	return w
}

func (g *Gateway) proxy(w http.ResponseWriter, r *http.Request, x *exchange) {
	// The connection manager's path settings run before any filter, as in Envoy.
	path, action := g.opts.Path.rewrite(x.path)
	switch action {
	case pathReject:
		g.stats.rqPathFailed.Add(1)
		x.details = "path_normalization_failed"
		g.plain(w, x, http.StatusBadRequest, endLocal, "")
		return
	case pathRedirect:
		g.stats.rqPathRedirected.Add(1)
		w.Header().Set("Location", path)
		x.details = "path_redirected_with_normalized_path"
		g.plain(w, x, http.StatusTemporaryRedirect, endLocal, "")
		return
	}
	x.matched = config.NormalPath(path)
	route := matchRoute(g.routes, r.Host, withoutQuery(path))
	s, err := g.plugin.NewStream(x.worker)
	if s == nil {
		g.logf("no stream for %s %s: %v", r.Method, logPath(x.path), err)
		x.details = "no_filter"
		g.plain(w, x, http.StatusServiceUnavailable, endLocal, "no healthy upstream")
		return
	}
	x.version = s.VM().Version()
	defer func() {
		if err := s.Close(); err != nil {
			g.logf("filter failed closing the stream of %s %s: %v", r.Method, logPath(x.path), err)
		}
	}()
	defer filterState(s, x) // before Close, while the stream's filter state exists
	if err != nil {
		g.logf("filter failed creating a stream: %v", err)
	}
	if route != nil {
		x.route = route.Name
		s.SetProperty("xds.route_name", []byte(route.Name))
		s.SetProperty("xds.cluster_name", []byte(route.Cluster))
	}
	setConnectionProperties(s, r)

	ctx := x.timers.ctx
	eos := r.ContentLength == 0 && len(r.Trailer) == 0
	if !eos {
		x.timers.armRequest()
	}
	act, err := s.RequestHeaders(requestHeaders(r, path), eos)
	held, act, err := g.holdBody(s, r, x, eos, act, err)
	if held.tooLarge {
		x.details = "request_payload_too_large"
		g.plain(w, x, http.StatusRequestEntityTooLarge, endLocal, "Payload Too Large")
		return
	}
	if g.filterDone(w, s, x, act, err, s.WaitRequest, ctx) {
		return
	}
	if route == nil {
		x.details = "route_not_found"
		g.plain(w, x, http.StatusNotFound, endNoRoute, "")
		return
	}
	up := s.Headers(host.MapRequestHeaders)
	a := g.active()
	x.keyID = headerOr(up, a.identity.KeyID)
	x.planID = headerOr(up, a.identity.PlanID)
	var body io.Reader = http.NoBody
	var released []byte // what the filter left of the chunks it was given while it held the headers
	if held.started {
		released = s.Body(host.BufferHTTPRequestBody)
	}
	switch {
	case held.whole:
		body = bytes.NewReader(released)
	case !eos:
		body = &filterBody{s: s, src: held.rest, ctx: ctx, buf: make([]byte, 32<<10), timers: x.timers, pending: released}
	}
	req, err := upstreamRequest(ctx, up, body)
	if err != nil {
		g.logf("%s %s: the filter left an unusable request: %v", r.Method, logPath(x.path), err)
		x.details = "filter_bad_request"
		g.plain(w, x, http.StatusBadRequest, endLocal, "bad request\n")
		return
	}
	resp, err := route.up.RoundTrip(req)
	if err != nil {
		if l := s.LocalResponse(); l != nil { // answered while the body streamed
			g.writeLocal(w, x, l)
			return
		}
		if g.timedOut(w, x) {
			return
		}
		if ctx.Err() != nil {
			x.status, x.end = 0, endClientGone
			return
		}
		g.logf("upstream %s for %s %s: %v", route.Cluster, r.Method, logPath(x.path), withoutURL(err))
		x.details = "upstream_reset_before_response_started"
		g.plain(w, x, http.StatusServiceUnavailable, endUpstreamFail,
			"upstream connect error or disconnect/reset before headers. reset reason: connection failure")
		return
	}
	defer resp.Body.Close()
	g.respond(w, r, s, x, resp)
}

// filterState reads what the filter said about the request in its filter state; the
// identity headers it added to the upstream request are the fallback for the key and plan.
func filterState(s *host.Stream, x *exchange) {
	if v, ok := s.Property(propOutcome); ok {
		x.outcome = string(v)
	}
	if v, ok := s.Property(propKeyID); ok {
		x.keyID = string(v)
	}
	if v, ok := s.Property(propPlanID); ok {
		x.planID = string(v)
	}
}

// filterDone handles what a callback may end with: a wait while the filter pauses, a reset,
// or a local response (the filter's, or the 503 of a failed VM). It reports whether the
// exchange is over.
func (g *Gateway) filterDone(w http.ResponseWriter, s *host.Stream, x *exchange, act host.Action, err error, wait func(context.Context) error, ctx context.Context) bool {
	if err != nil {
		g.logf("filter failed (its VM now answers 503, as Envoy's FAIL_CLOSED): %v", err)
	}
	if act == host.ActionPause {
		if err := wait(ctx); err != nil {
			if !g.timedOut(w, x) {
				x.status, x.end = 0, endClientGone
			}
			return true
		}
	}
	if s.Reset() {
		x.status, x.end = 0, endReset
		panic(http.ErrAbortHandler) // no response at all: the connection is reset
	}
	if l := s.LocalResponse(); l != nil {
		g.writeLocal(w, x, l)
		return true
	}
	return false
}

// respond runs the upstream's response through the response callbacks and streams it.
func (g *Gateway) respond(w http.ResponseWriter, r *http.Request, s *host.Stream, x *exchange, resp *http.Response) {
	h := host.Headers{{":status", strconv.Itoa(resp.StatusCode)}}
	h = appendHeaders(h, resp.Header)
	eos := resp.ContentLength == 0 || r.Method == http.MethodHead ||
		resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	x.timers.touch()
	act, err := s.ResponseHeaders(h, eos)
	if g.filterDone(w, s, x, act, err, s.WaitResponse, x.timers.ctx) {
		return
	}
	out := s.Headers(host.MapResponseHeaders)
	status := resp.StatusCode
	for _, p := range out {
		if p[0] == ":status" {
			if n, err := strconv.Atoi(p[1]); err == nil {
				status = n
			}
			continue
		}
		w.Header().Add(p[0], p[1])
	}
	x.status, x.end = status, endUpstream
	x.timers.responseStarted()
	w.WriteHeader(status)
	if eos {
		return
	}
	flusher, _ := w.(http.Flusher)
	bp := chunks.Get().(*[]byte)
	defer chunks.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		last := rerr == io.EOF
		if rerr != nil && !last {
			if x.timers.fired() != "" {
				x.end, x.details = endTimeout, x.timers.fired()
				panic(http.ErrAbortHandler) // Envoy resets a stream whose response has started
			}
			x.end, x.details = endUpstreamFail, "upstream_reset_after_response_started"
			g.logf("upstream body of %s %s broke off: %v", r.Method, logPath(x.path), rerr)
			panic(http.ErrAbortHandler) // the client must see a truncated response, as with Envoy
		}
		if n == 0 && !last {
			continue
		}
		act, err := s.ResponseBody(buf[:n], last)
		if err != nil {
			g.logf("filter failed in the response body: %v", err)
			panic(http.ErrAbortHandler)
		}
		if act == host.ActionPause && !last {
			continue // the filter buffers: the host accumulates until it continues
		}
		if act == host.ActionPause {
			if err := s.WaitResponse(x.timers.ctx); err != nil {
				x.end = endClientGone
				if x.timers.fired() != "" {
					x.end, x.details = endTimeout, x.timers.fired()
				}
				return
			}
		}
		x.timers.touch()
		if _, err := w.Write(s.Body(host.BufferHTTPResponseBody)); err != nil {
			x.end = endClientGone
			if x.timers.fired() != "" {
				x.end, x.details = endTimeout, x.timers.fired()
			}
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if last {
			return
		}
	}
}

// writeLocal writes a response the filter made, exactly as it made it.
func (g *Gateway) writeLocal(w http.ResponseWriter, x *exchange, l *host.LocalResponse) {
	for _, p := range l.Headers {
		w.Header().Add(p[0], p[1])
	}
	x.status, x.end, x.details = l.Status, endLocal, l.Details
	x.timers.responseStarted()
	w.WriteHeader(l.Status)
	w.Write(l.Body)
}

// plain writes a response of the gateway itself (no route, upstream failures).
func (g *Gateway) plain(w http.ResponseWriter, x *exchange, status int, end, body string) {
	if body != "" {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	x.status, x.end = status, end
	x.timers.responseStarted()
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// requestHeaders are the request's headers as Envoy hands them to filters: the pseudo
// headers first (:path is the target as received, or as the connection manager's path
// settings rewrote it; :authority the Host as received), then the others lower-cased
// (sorted, since Go does not keep their order), with x-forwarded-proto and an x-request-id
// added as Envoy adds them.
func requestHeaders(r *http.Request, path string) host.Headers {
	h := host.Headers{{":authority", r.Host}, {":path", path}, {":method", r.Method}, {":scheme", "http"}}
	h = appendHeaders(h, r.Header)
	if _, ok := r.Header["X-Request-Id"]; !ok {
		h = append(h, [2]string{"x-request-id", requestID()})
	}
	if _, ok := r.Header["X-Forwarded-Proto"]; !ok {
		h = append(h, [2]string{"x-forwarded-proto", "http"})
	}
	return h
}

func appendHeaders(h host.Headers, from http.Header) host.Headers {
	names := make([]string, 0, len(from))
	for name := range from {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		lower := strings.ToLower(name)
		if hopByHop[lower] {
			continue
		}
		for _, v := range from[name] {
			h = append(h, [2]string{lower, v})
		}
	}
	return h
}

// requestID is a random UUID (version 4), like the one Envoy generates.
func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// setConnectionProperties sets the attributes Envoy knows from the connection.
func setConnectionProperties(s *host.Stream, r *http.Request) {
	s.SetProperty("request.protocol", []byte(r.Proto))
	if _, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		s.SetProperty("source.address", []byte(r.RemoteAddr))
		setPort(s, "source.port", port)
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		s.SetProperty("destination.address", []byte(a.String()))
		if _, port, err := net.SplitHostPort(a.String()); err == nil {
			setPort(s, "destination.port", port)
		}
	}
}

func setPort(s *host.Stream, path, port string) {
	n, err := strconv.ParseInt(port, 10, 64)
	if err != nil {
		return
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n)) // integers are 8-byte little-endian, as in Envoy
	s.SetProperty(path, b[:])
}

func headerOr(h host.Headers, name string) string {
	if name == "" {
		return ""
	}
	v, _ := h.Get(name)
	return v
}

// upstreamRequest builds the request to the upstream from the headers the filter left.
func upstreamRequest(ctx context.Context, h host.Headers, body io.Reader) (*http.Request, error) {
	method, _ := h.Get(":method")
	path, _ := h.Get(":path")
	authority, _ := h.Get(":authority")
	u, err := targetURL(path)
	if err != nil {
		return nil, err // it names the length, not the value: its query may hold a key
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://upstream", body)
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.Host = authority
	req.ContentLength = -1
	if body == http.NoBody {
		req.ContentLength = 0
	}
	for _, p := range h {
		switch {
		case strings.HasPrefix(p[0], ":"):
		case p[0] == "content-length":
			if n, err := strconv.ParseInt(p[1], 10, 64); err == nil && body != http.NoBody {
				req.ContentLength = n
			}
		case p[0] == "host":
		default:
			req.Header.Add(p[0], p[1])
		}
	}
	return req, nil
}

// errAnswered ends the upstream request when the filter answered during the request body.
var errAnswered = errors.New("the filter answered the request itself")

// filterBody streams the client's body to the upstream through proxy_on_request_body, chunk
// by chunk; while the filter pauses, the host buffers and the upstream waits.
type filterBody struct {
	timers  *streamTimers
	s       *host.Stream
	src     io.Reader
	ctx     context.Context
	buf     []byte
	pending []byte
	done    bool
}

func (b *filterBody) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		if b.done {
			return 0, io.EOF
		}
		n, err := b.src.Read(b.buf)
		last := err == io.EOF
		if err != nil && !last {
			return 0, err
		}
		b.timers.touch()
		if last {
			b.timers.requestReceived()
		}
		if n == 0 && !last {
			continue
		}
		act, err := b.s.RequestBody(b.buf[:n], last)
		if err != nil || b.s.LocalResponse() != nil {
			return 0, errAnswered
		}
		if act == host.ActionPause {
			if !last {
				continue
			}
			if err := b.s.WaitRequest(b.ctx); err != nil {
				return 0, err
			}
			if b.s.LocalResponse() != nil {
				return 0, errAnswered
			}
		}
		b.pending = b.s.Body(host.BufferHTTPRequestBody)
		b.done = last
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// accessLog writes one line per request: outcome is the filter's decision (when it said),
// end how the exchange ended (local, upstream, upstream_error, route_not_found, reset,
// client_gone, timeout). path is the target as the client sent it, without its query string
// (it may carry an API key: apiKeyQueryParameter) and quoted, so that control characters
// and non-UTF-8 bytes are escaped; matched_path follows when the filter matched another
// spelling (its normal form, after the gateway's path settings). Keys appear only as their
// id.
func (g *Gateway) accessLog(r *http.Request, x *exchange, d time.Duration) {
	matched := ""
	if p := cutQuery(x.path); x.matched != "" && x.matched != p {
		matched = " matched_path=" + strconv.Quote(x.matched)
	}
	fmt.Fprintf(g.access, "%s access method=%s path=%s%s status=%d outcome=%s end=%s details=%s key_id=%s plan_id=%s route=%s worker=%d version=%s duration_ms=%.3f\n",
		time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), r.Method, logPath(x.path), matched, x.status, field(x.outcome), x.end, field(x.details),
		field(x.keyID), field(x.planID), field(x.route), x.worker, versionString(x.version), float64(d)/float64(time.Millisecond))
}

// cutQuery cuts a request target at its query or fragment.
func cutQuery(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		return target[:i]
	}
	return target
}

// logPath is a request target for a log line: without its query, quoted.
func logPath(target string) string { return strconv.Quote(cutQuery(target)) }

// field is a log value: "-" when empty, quoted when it could break the line's format (the
// identity headers reach here from the upstream request, which a client may have shaped).
func field(s string) string {
	if s == "" {
		return "-"
	}
	for _, c := range s {
		if c <= ' ' || c == '"' || c == '=' || c >= 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}

func versionString(n int) string {
	if n == 0 {
		return "?"
	}
	return strconv.Itoa(n)
}

// withoutURL drops the URL from a transport error: its query may carry an API key.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
