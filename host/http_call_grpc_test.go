package host

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	rls "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/usageplans/usageplans/internal/rlstest"
)

// shouldRateLimit is a gRPC-framed envoy.service.ratelimit.v3.RateLimitRequest for domain
// with one descriptor plan=gold, key=<key>, its own limit of perDay requests a DAY, and
// hits_addend hits, built by hand as the filter builds it.
func shouldRateLimit(domain, key string, perDay, hits uint64) []byte {
	entry := func(k, v string) []byte {
		b := protowire.AppendTag(nil, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		return protowire.AppendString(b, v)
	}
	var limit []byte
	limit = protowire.AppendTag(limit, 1, protowire.VarintType) // requests_per_unit
	limit = protowire.AppendVarint(limit, perDay)
	limit = protowire.AppendTag(limit, 2, protowire.VarintType) // unit
	limit = protowire.AppendVarint(limit, 4)                    // DAY
	var addend []byte                                           // google.protobuf.UInt64Value
	addend = protowire.AppendTag(addend, 1, protowire.VarintType)
	addend = protowire.AppendVarint(addend, hits)
	var d []byte
	for _, e := range [][]byte{entry("plan", "gold"), entry("key", key)} {
		d = protowire.AppendTag(d, 1, protowire.BytesType)
		d = protowire.AppendBytes(d, e)
	}
	d = protowire.AppendTag(d, 2, protowire.BytesType)
	d = protowire.AppendBytes(d, limit)
	d = protowire.AppendTag(d, 3, protowire.BytesType)
	d = protowire.AppendBytes(d, addend)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendString(req, domain)
	req = protowire.AppendTag(req, 2, protowire.BytesType)
	req = protowire.AppendBytes(req, d)
	return grpcFrame(req)
}

// grpcFrame is gRPC's length-prefixed message: uncompressed flag 0, big-endian length.
func grpcFrame(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
}

// callResult splits the abi guest's describeCall string.
type callResult struct {
	nHeaders, nTrailers string
	headers, trailers   string
	body                []byte
}

func parseCall(t *testing.T, s string) callResult {
	t.Helper()
	f := strings.Split(s, "|")
	if len(f) != 5 {
		t.Fatalf("call result %q: want 5 fields", s)
	}
	body, err := hex.DecodeString(f[4])
	if err != nil {
		t.Fatalf("call result %q: body: %v", s, err)
	}
	return callResult{f[0], f[1], f[2], f[3], body}
}

// grpcCall sends body to cluster's path through the abi guest and returns the answer.
func grpcCall(t *testing.T, p *Plugin, cluster, path string, body []byte, extra ...string) callResult {
	t.Helper()
	var up recorder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := get("grpccall", append([]string{"x-cluster", cluster, "x-path", path, "x-body", hex.EncodeToString(body)}, extra...)...)
	if _, err := p.Do(ctx, req, up.upstream); err != nil {
		t.Fatal(err)
	}
	return parseCall(t, resultOf(t, up.last(t), "grpccall"))
}

const rlsPath = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"

// The abi guest calls the real RLS over a grpc:// (h2c) cluster with a hand-built request;
// the answer's headers, trailers and message are exactly RLS's, and with Redis stopped the
// gRPC error arrives as a trailers-only response.
func TestGRPCCallToRLS(t *testing.T) {
	env := rlstest.Start(t, rlstest.Options{})
	rt := newRuntime(t, Options{Clusters: map[string]string{"ratelimit": "grpc://" + env.RLS.GRPCAddr}})
	p := newPlugin(t, rt, "abi", PluginConfig{})

	want := func(code rls.RateLimitResponse_Code, remaining uint32) *rls.RateLimitResponse {
		return &rls.RateLimitResponse{OverallCode: code, Statuses: []*rls.RateLimitResponse_DescriptorStatus{{
			Code:           code,
			CurrentLimit:   &rls.RateLimitResponse_RateLimit{RequestsPerUnit: 2, Unit: rls.RateLimitResponse_RateLimit_DAY},
			LimitRemaining: remaining,
		}}}
	}
	for i, step := range []struct {
		hits uint64
		want *rls.RateLimitResponse
	}{
		{1, want(rls.RateLimitResponse_OK, 1)},
		{0, want(rls.RateLimitResponse_OK, 1)}, // check only
		{2, want(rls.RateLimitResponse_OVER_LIMIT, 0)},
	} {
		before := time.Now().UTC()
		r := grpcCall(t, p, "ratelimit", rlsPath, shouldRateLimit("usageplans", "k1", 2, step.hits))
		if r.nHeaders != "2" || r.headers != ":status=200;content-type=application/grpc" ||
			r.nTrailers != "2" || r.trailers != "grpc-message=;grpc-status=0" {
			t.Fatalf("step %d: headers %s %q, trailers %s %q; want RLS's 200 and grpc-status 0 in the trailers", i, r.nHeaders, r.headers, r.nTrailers, r.trailers)
		}
		if len(r.body) < 5 || r.body[0] != 0 || int(binary.BigEndian.Uint32(r.body[1:5])) != len(r.body)-5 {
			t.Fatalf("step %d: body %x is not one gRPC frame", i, r.body)
		}
		var got rls.RateLimitResponse
		if err := proto.Unmarshal(r.body[5:], &got); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		// RLS counts whole seconds: from the current second to the next UTC midnight.
		reset := before.Truncate(24*time.Hour).Add(24*time.Hour).Unix() - before.Unix()
		if len(got.Statuses) == 1 {
			if s := got.Statuses[0].DurationUntilReset.GetSeconds(); s != reset && s != reset-1 {
				t.Errorf("step %d: duration_until_reset %ds, want %ds", i, s, reset)
			}
			got.Statuses[0].DurationUntilReset = nil
		}
		if !proto.Equal(&got, step.want) {
			t.Errorf("step %d: RLS answered %v, want %v", i, &got, step.want)
		}
	}

	env.Redis.Stop()
	r := grpcCall(t, p, "ratelimit", rlsPath, shouldRateLimit("usageplans", "k1", 2, 1))
	// grpc-go answers an error before any message as trailers-only: one HEADERS frame.
	if r.headers != ":status=200;content-type=application/grpc;grpc-message=response returned from Conn: EOF;grpc-status=2" ||
		r.nTrailers != "0" || r.trailers != "none" || len(r.body) != 0 {
		t.Errorf("Redis down: %+v; want a trailers-only grpc-status 2 (UNKNOWN)", r)
	}
}

// h2cServer serves handler over HTTP/2 cleartext on 127.0.0.1 and returns its address.
func h2cServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handler, Protocols: &protos}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// The h2c cluster as Envoy's AsyncClient delivers it: request trailers, response trailers,
// a trailers-only answer, the timeout and a refused connection as Envoy's gRPC local
// replies, a reset after the headers as the call's failure.
func TestGRPCCallCluster(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := h2cServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status, X-Seen")
			w.Write(body)
			w.Header().Set("Grpc-Status", "0")
			// What the server saw: protocol, te, and the request trailer.
			w.Header().Set("X-Seen", r.Proto+" te="+r.Header.Get("Te")+" trailer="+r.Trailer.Get("X-Req-Trailer"))
		case "/denied":
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "7")
			w.Header().Set("Grpc-Message", "no")
			w.WriteHeader(200)
		case "/slow":
			<-release
		case "/reset":
			w.Header().Set("Content-Type", "application/grpc")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	})
	refused := func() string { // a port nobody listens on any more
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	rt := newRuntime(t, Options{Clusters: map[string]string{"svc": "grpc://" + addr, "gone": "grpc://" + refused}})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	msg := grpcFrame([]byte("hello"))

	for _, c := range []struct {
		name, cluster, path string
		extra               []string
		want                callResult
	}{
		{"trailers both ways", "svc", "/echo", []string{"x-trailer", "t1"}, callResult{
			"4", "2", ":status=200;content-length=10;content-type=application/grpc", "grpc-status=0;x-seen=HTTP/2.0 te=trailers trailer=t1", msg}},
		{"trailers-only answer", "svc", "/denied", nil, callResult{
			"6", "0", ":status=200;content-length=0;content-type=application/grpc;grpc-message=no;grpc-status=7", "none", nil}},
		{"timeout", "svc", "/slow", []string{"x-timeout", "50"}, callResult{
			"4", "0", ":status=200;content-type=application/grpc;grpc-status=14;grpc-message=upstream request timeout", "none", nil}},
		{"connection refused", "gone", "/echo", nil, callResult{
			"4", "0", ":status=200;content-type=application/grpc;grpc-status=14;grpc-message=" + resetReplyBody, "none", nil}},
		{"reset after the headers", "svc", "/reset", nil, callResult{"0", "0", "none", "none", nil}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := grpcCall(t, p, c.cluster, c.path, msg, c.extra...)
			if got.nHeaders != c.want.nHeaders || got.nTrailers != c.want.nTrailers || got.headers != c.want.headers ||
				got.trailers != c.want.trailers || string(got.body) != string(c.want.body) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// The call belongs to the root context: a stream that goes on without waiting ends first,
// and the host still delivers the answer to the root context afterwards, where
// proxy-wasm-go-sdk v0.24 drops it because the calling stream is gone (its
// proxyOnHttpCallResponse skips the callback of a deleted context, SDK issue 261). The
// filter must treat such an answer as lost. The VM stays healthy: the next call answers.
func TestGRPCCallAnswerAfterStreamEnd(t *testing.T) {
	release := make(chan struct{})
	addr := h2cServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "0")
		w.WriteHeader(200)
	})
	rt := newRuntime(t, Options{Clusters: map[string]string{"svc": "grpc://" + addr}})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	var up recorder
	resp, err := p.Do(context.Background(), get("grpccall-detached", "x-cluster", "svc", "x-path", "/wait"), up.upstream)
	if err != nil || resp.Status != 200 || up.count() != 1 {
		t.Fatalf("the stream: %+v, %v, upstream called %d times; want it done without waiting", resp, err, up.count())
	}
	close(release)
	for _, vm := range p.VMs() {
		vm.WaitHTTPCalls()
	}
	if got, _, ok := rt.SharedData("vm1").Get("grpccall"); ok {
		t.Errorf("the deleted stream's callback ran (%q): the SDK no longer drops it, revisit the filter's lost-answer handling", got)
	}
	r := grpcCall(t, p, "svc", "/now", nil)
	if r.headers != ":status=200;content-length=0;content-type=application/grpc;grpc-status=0" {
		t.Errorf("next call: %+v, want the server's answer", r)
	}
}

// Cluster URLs are checked when the runtime is built.
func TestClusterURLs(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"grpc://127.0.0.1:8081", ""},
		{"http://127.0.0.1:8080/prefix", ""},
		{"https://rls.example:443", ""},
		{"grpc://127.0.0.1", `host: Options.Clusters["c"]: "grpc://127.0.0.1": a grpc:// cluster is HOST:PORT and nothing else`},
		{"grpc://127.0.0.1:8081/x", `host: Options.Clusters["c"]: "grpc://127.0.0.1:8081/x": a grpc:// cluster is HOST:PORT and nothing else`},
		{"ftp://h:1", `host: Options.Clusters["c"]: "ftp://h:1": scheme "ftp", want grpc, http or https`},
		{"127.0.0.1:8081", `host: Options.Clusters["c"]: "127.0.0.1:8081": want grpc://HOST:PORT, http://HOST[:PORT][/prefix] or https://HOST[:PORT][/prefix]`},
	} {
		_, err := NewRuntime(context.Background(), Options{Clusters: map[string]string{"c": c.url}, CompilationCache: testCache})
		if got := ""; err != nil {
			got = err.Error()
			if got != c.want {
				t.Errorf("%s: %q, want %q", c.url, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("%s: accepted, want %q", c.url, c.want)
		}
	}
}

// An http:// cluster speaks HTTP/1.1, where Envoy's codec drops request trailers (without
// http_protocol_options.enable_trailers): the server sees none. (The host does not hand them
// to Go's client, which would not send them beside a content-length either.)
func TestHTTP1ClusterDropsRequestTrailers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Proto+" trailer="+r.Trailer.Get("X-Req-Trailer"))
	}))
	defer srv.Close()
	rt := newRuntime(t, Options{Clusters: map[string]string{"plain": srv.URL}})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	r := grpcCall(t, p, "plain", "/x", []byte("hi"), "x-trailer", "t1")
	if want := ":status=200;content-length=0;x-seen=HTTP/1.1 trailer="; r.headers != want {
		t.Errorf("headers %q, want %q", r.headers, want)
	}
}
