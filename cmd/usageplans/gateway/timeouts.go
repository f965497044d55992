package gateway

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Envoy's timeouts and connection limit, so that a slow or idle client cannot hold the
// gateway's connections and workers for as long as it likes (issue 8, finding 5).
//
// Defaults: Envoy's own where it has one that bounds anything (stream_idle_timeout 5 min,
// the connection idle_timeout 1 h), and the values of Envoy's edge best practices where
// Envoy's default is "off" (request_timeout 300 s, 50,000 connections).
const (
	DefaultRequestTimeout        = 300 * time.Second
	DefaultStreamIdleTimeout     = 5 * time.Minute
	DefaultIdleTimeout           = time.Hour
	DefaultRequestHeadersTimeout = 30 * time.Second
	DefaultMaxConnections        = 50000
)

// endTimeout: request_timeout or stream_idle_timeout ended the exchange (a 408 before the
// response started, a reset after).
const endTimeout = "timeout"

// Details of the timeouts' local replies and resets, as Envoy names them.
const (
	detailsRequestTimeout = "request_overall_timeout"
	detailsIdleTimeout    = "stream_idle_timeout"
)

// streamTimers are one request's request_timeout and stream_idle_timeout. When one fires,
// a pending read of the request body returns at once, ctx is cancelled (the filter's waits
// and the upstream request end), and, once the response has started, a pending write
// returns too.
type streamTimers struct {
	ctx    context.Context
	cancel context.CancelFunc
	rc     *http.ResponseController

	mu            sync.Mutex
	request, idle *time.Timer // nil when off
	idleFor       time.Duration
	requestFor    time.Duration
	started       bool   // the response has started
	firedWith     string // details of the timer that fired, or ""
	firedAtomic   atomic.Pointer[string]
	stopped       bool
}

func (g *Gateway) newStreamTimers(w http.ResponseWriter, r *http.Request) *streamTimers {
	t := &streamTimers{rc: http.NewResponseController(w), idleFor: g.opts.StreamIdleTimeout, requestFor: g.opts.RequestTimeout}
	t.ctx, t.cancel = context.WithCancel(r.Context())
	if t.idleFor > 0 {
		t.idle = time.AfterFunc(t.idleFor, func() { t.fire(detailsIdleTimeout) })
	}
	return t
}

// armRequest starts request_timeout: the whole request must be received within it. Envoy
// arms it with the request; a request without a body is received with its headers.
func (t *streamTimers) armRequest() {
	if t.requestFor <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped && !t.started && t.request == nil {
		t.request = time.AfterFunc(t.requestFor, func() { t.fire(detailsRequestTimeout) })
	}
}

// touch is an event on the stream (body data read, response headers or data): the idle
// timer starts again.
func (t *streamTimers) touch() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle != nil && !t.stopped && t.firedWith == "" {
		t.idle.Reset(t.idleFor)
	}
}

// requestReceived disarms request_timeout: the last byte of the body arrived.
func (t *streamTimers) requestReceived() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.request != nil {
		t.request.Stop()
	}
}

// responseStarted disarms request_timeout, as Envoy does when the response begins; from
// now on a firing idle timer resets the stream instead of answering 408.
func (t *streamTimers) responseStarted() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started = true
	if t.request != nil {
		t.request.Stop()
	}
}

func (t *streamTimers) fire(details string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.firedWith != "" {
		return
	}
	t.firedWith = details
	t.firedAtomic.Store(&details)
	now := time.Now()
	t.rc.SetReadDeadline(now) // a body read blocked on a slow client returns
	if t.started {
		t.rc.SetWriteDeadline(now) // a write blocked on a client that does not read returns
	}
	t.cancel()
}

// fired is the details of the timer that fired, or "".
func (t *streamTimers) fired() string {
	if p := t.firedAtomic.Load(); p != nil {
		return *p
	}
	return ""
}

func (t *streamTimers) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.request != nil {
		t.request.Stop()
	}
	if t.idle != nil {
		t.idle.Stop()
	}
	t.cancel()
}

// timedOut answers a request whose timer fired before the response started as Envoy does
// (408 with "request timeout" or "stream timeout", and the connection closed), and
// reports whether one fired.
func (g *Gateway) timedOut(w http.ResponseWriter, x *exchange) bool {
	details := x.timers.fired()
	if details == "" {
		return false
	}
	g.stats.rqTimeout.Add(1)
	x.details = details
	body := "request timeout"
	if details == detailsIdleTimeout {
		body = "stream timeout"
	}
	w.Header().Set("Connection", "close") // the rest of the body is not read
	g.plain(w, x, http.StatusRequestTimeout, endTimeout, body)
	return true
}

// limitListener is Envoy's connection limit: a connection accepted beyond max is closed at
// once (Envoy's listener closes it too and counts downstream_cx_overflow), so that the ones
// already open keep their workers.
type limitListener struct {
	net.Listener
	max      int64
	active   atomic.Int64
	overflow *atomic.Uint64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) > l.max {
			l.active.Add(-1)
			l.overflow.Add(1)
			c.Close()
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

// Close frees the connection's place before closing it, so that a client that saw it close
// finds the place free.
func (c *limitConn) Close() error {
	c.once.Do(func() { c.l.active.Add(-1) })
	return c.Conn.Close()
}
