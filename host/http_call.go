package host

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

type httpCallResponse struct {
	headers, trailers Headers
	body              []byte
	failed            bool // no response: Envoy's onHttpCallFailure
}

type httpCalls struct {
	next    uint32
	cancels map[uint32]context.CancelFunc
	wg      sync.WaitGroup
}

func (c *httpCalls) cancelAll() {
	for _, cancel := range c.cancels {
		cancel()
	}
}

var httpCallFuncs = []hostFunc{
	// proxy_http_call(cluster_ptr, cluster_size, headers_ptr, headers_size, body_ptr,
	//                 body_size, trailers_ptr, trailers_size, timeout_ms, token_ptr) -> status
	//
	// Sends an HTTP request to a cluster of Options.Clusters: :method, :path and :authority
	// come from the headers (pairs serialisation), the URL is the cluster's base URL + :path,
	// timeout_ms bounds the whole exchange (0: none; above 2^31-1, negative as Envoy's int
	// sees it: BAD_ARGUMENT). A body gets a content-length header. The call's token (u32,
	// never 0) is
	// stored at token_ptr. The answer arrives later through
	// proxy_on_http_call_response(root_id, token, n_headers, body_size, n_trailers) on the
	// root context, called under the VM's lock, never beside another call into the VM.
	// During that callback the response is readable as the HTTP-call header map (6, with
	// ":status"), trailers (7) and body buffer (4). A failed exchange (connection error,
	// timeout) is delivered as Envoy delivers it: 0 headers, 0 body bytes, 0 trailers, the
	// response maps and body unavailable, and proxy_get_status answering BROKEN_CONNECTION
	// (11) with the message "reset" during that callback.
	//   - BAD_ARGUMENT: unknown cluster, or :method, :path or :authority missing.
	//   - INVALID_MEMORY_ACCESS: an argument or token_ptr is out of range.
	{name: "proxy_http_call", params: i32s(10), results: statusResult, fn: func(v *VM, s []uint64) {
		cluster, ok1 := v.readString(uint32(s[0]), uint32(s[1]))
		hb, ok2 := v.mem.Read(uint32(s[2]), uint32(s[3]))
		body, ok3 := v.read(uint32(s[4]), uint32(s[5]))
		tb, ok4 := v.mem.Read(uint32(s[6]), uint32(s[7]))
		if !ok1 || !ok2 || !ok3 || !ok4 || !v.writeU32(uint32(s[9]), 0) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		headers, ok5 := unmarshalPairs(hb)
		trailers, ok6 := unmarshalPairs(tb)
		base, known := v.rt.opts.Clusters[cluster]
		method, _ := headers.Get(":method")
		path, _ := headers.Get(":path")
		authority, _ := headers.Get(":authority")
		if !ok5 || !ok6 || !known || method == "" || path == "" || authority == "" || int32(uint32(s[8])) < 0 {
			s[0] = uint64(StatusBadArgument)
			return
		}
		v.http.next++
		if v.http.next == 0 {
			v.http.next = 1
		}
		token := v.http.next
		v.writeU32(uint32(s[9]), token)
		ctx, cancel := context.WithCancel(context.Background())
		if ms := uint32(s[8]); ms > 0 {
			ctx, cancel = context.WithTimeout(context.Background(), time.Duration(ms)*time.Millisecond)
		}
		if v.http.cancels == nil {
			v.http.cancels = map[uint32]context.CancelFunc{}
		}
		v.http.cancels[token] = cancel
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
		if err != nil {
			delete(v.http.cancels, token)
			cancel()
			s[0] = uint64(StatusBadArgument)
			return
		}
		req.Host = authority
		for _, p := range headers {
			if !strings.HasPrefix(p[0], ":") {
				req.Header.Add(p[0], p[1])
			}
		}
		if len(trailers) > 0 {
			req.Trailer = http.Header{}
			for _, p := range trailers {
				req.Trailer.Add(p[0], p[1])
			}
		}
		v.http.wg.Add(1)
		// Envoy answers on the root context of the caller (exports.cc: root_context()).
		go v.runHTTPCall(req, token, v.rootOf(v.contextID()), cancel)
		s[0] = uint64(StatusOK)
	}},
}

// runHTTPCall performs the exchange off the VM, then delivers the answer under the VM's lock.
func (v *VM) runHTTPCall(req *http.Request, token, root uint32, cancel context.CancelFunc) {
	defer v.http.wg.Done()
	defer cancel()
	resp := &httpCallResponse{failed: true}
	if r, err := v.rt.client.Do(req); err == nil {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err == nil {
			resp.failed = false
			resp.headers = append(Headers{{":status", strconv.Itoa(r.StatusCode)}}, sortedPairs(r.Header)...)
			resp.body = body
			resp.trailers = sortedPairs(r.Trailer)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.http.cancels, token)
	if v.usableLocked() != nil || v.roots[root] == nil {
		return // Envoy cancels a context's callouts when it is deleted
	}
	v.callResp = resp
	// A trap here fails the VM, and VM.call gives every open stream its 503 (FAIL_CLOSED).
	v.call(v.fns.httpCallResponse, "proxy_on_http_call_response", root,
		uint64(root), uint64(token), uint64(len(resp.headers)), uint64(len(resp.body)), uint64(len(resp.trailers)))
	v.callResp = nil
}

// WaitHTTPCalls blocks until every proxy_http_call the VM made so far has been answered (or
// dropped because the VM closed or failed). It must not be called with the VM's lock held,
// e.g. from a LogSink.
func (v *VM) WaitHTTPCalls() { v.http.wg.Wait() }
