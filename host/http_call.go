package host

import (
	"bytes"
	"context"
	"errors"
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
	// Sends a request to a cluster of Options.Clusters, as Envoy's Http::AsyncClient does.
	// :method, :path and :authority come from the headers (pairs serialisation); the URL is
	// the cluster's base URL + :path. A body gets a content-length header. The trailers
	// (pairs) follow the body on an HTTP/2 cluster (grpc://, or https:// when the server
	// picks h2); an http:// cluster speaks HTTP/1.1 and drops them, as Envoy's HTTP/1 codec
	// does without enable_trailers. timeout_ms bounds the whole exchange (0: none; above
	// 2^31-1, negative as Envoy's int sees it: BAD_ARGUMENT). The call's token (u32, never
	// 0) is stored at token_ptr.
	//
	// The call belongs to the caller's root context, as in proxy-wasm-cpp-host (exports.cc:
	// contextOrEffectiveContext()->root_context()): the stream that made it may end first,
	// and the answer still arrives, through proxy_on_http_call_response(root_id, token,
	// n_headers, body_size, n_trailers) on that root context, called under the VM's lock,
	// never beside another call into the VM. An answer for a root context that is gone (or a
	// VM closed or failed) is dropped, as Envoy's ~Context cancels the context's requests.
	// During that callback the response is readable as the HTTP-call header map (6, with
	// ":status"), trailers (7, absent when the response had none) and body buffer (4).
	//
	// Errors are delivered as Envoy's AsyncClient delivers them, whose router turns them into
	// local replies when no response headers came yet:
	//   - timeout: a 504 with content-length, content-type text/plain and the body
	//     "upstream request timeout";
	//   - no connection, or a reset before the headers: a 503 with the body "upstream connect
	//     error or disconnect/reset before headers. reset reason: connection failure" (Envoy
	//     appends details that vary by version);
	//   - for a gRPC request (content-type application/grpc, or application/grpc+... or ;...)
	//     those replies are trailers-only gRPC answers instead: :status 200, content-type
	//     application/grpc, grpc-status 14 (UNAVAILABLE, Envoy's mapping of 503 and 504) and
	//     the text as grpc-message, no body, no trailers;
	//   - a failure after the response headers (reset, or the timeout firing while the body
	//     arrives) is Envoy's onHttpCallFailure: 0 headers, 0 body bytes, 0 trailers, the
	//     response maps and body unavailable, and proxy_get_status answering
	//     BROKEN_CONNECTION (11) with the message "reset" during that callback.
	// A gRPC error the server answers itself arrives as the server sent it: grpc-status in
	// the trailers, or in the headers of a trailers-only response.
	//
	// Status:
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
		cl, known := v.rt.clusters[cluster]
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
		req, err := http.NewRequestWithContext(ctx, method, cl.base+path, bytes.NewReader(body))
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
		if len(trailers) > 0 && cl.trailers {
			req.Trailer = http.Header{}
			for _, p := range trailers {
				req.Trailer.Add(p[0], p[1])
			}
		}
		ct, _ := headers.Get("content-type")
		v.http.wg.Add(1)
		go v.runHTTPCall(cl.client, req, isGRPCContentType(ct), token, v.rootOf(v.contextID()), cancel)
		s[0] = uint64(StatusOK)
	}},
}

// isGRPCContentType is Envoy's Grpc::Common::hasGrpcContentType: application/grpc, alone or
// followed by "+" or ";".
func isGRPCContentType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// Local replies of Envoy's router inside the AsyncClient (router.cc, onUpstreamAbort).
const (
	timeoutReplyBody = "upstream request timeout"
	resetReplyBody   = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
)

// localReply is the response Envoy's AsyncClient delivers when its router answers for the
// upstream (Http::Utility::sendLocalReply): plain text, or trailers-only gRPC.
func localReply(code int, text string, grpc bool) *httpCallResponse {
	if grpc {
		return &httpCallResponse{headers: Headers{{":status", "200"}, {"content-type", "application/grpc"},
			{"grpc-status", "14"}, {"grpc-message", text}}}
	}
	return &httpCallResponse{
		headers: Headers{{":status", strconv.Itoa(code)}, {"content-length", strconv.Itoa(len(text))}, {"content-type", "text/plain"}},
		body:    []byte(text),
	}
}

// exchange performs the request and returns what Envoy's AsyncClient would deliver.
func exchange(client *http.Client, req *http.Request, grpc bool) *httpCallResponse {
	r, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return localReply(504, timeoutReplyBody, grpc)
		}
		return localReply(503, resetReplyBody, grpc)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return &httpCallResponse{failed: true} // headers came: Envoy resets the stream
	}
	resp := &httpCallResponse{body: body}
	resp.headers = append(Headers{{":status", strconv.Itoa(r.StatusCode)}}, sortedPairs(r.Header)...)
	if len(r.Trailer) > 0 {
		resp.trailers = sortedPairs(r.Trailer)
	}
	return resp
}

// runHTTPCall performs the exchange off the VM, then delivers the answer under the VM's lock.
func (v *VM) runHTTPCall(client *http.Client, req *http.Request, grpc bool, token, root uint32, cancel context.CancelFunc) {
	defer v.http.wg.Done()
	defer cancel()
	resp := exchange(client, req, grpc)
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
