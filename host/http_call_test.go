package host

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The guest dispatches an HTTP call and pauses the request; the answer arrives on the root
// context, and the guest resumes the request from its callback.
func TestHTTPCall(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String()+" host="+r.Host+" x-from="+r.Header.Get("x-from")+" body="+string(body))
		mu.Unlock()
		if r.URL.Query().Get("x") == "slow" {
			<-release
		}
		w.Header().Set("X-Answer", "42")
		w.WriteHeader(201)
		io.WriteString(w, "pong")
	}))
	defer srv.Close()
	defer close(release)
	rt := newRuntime(t, Options{Clusters: map[string]string{"auth": srv.URL}})
	p := newPlugin(t, rt, "abi", PluginConfig{})

	t.Run("resume", func(t *testing.T) {
		var up recorder
		resp, err := p.Do(context.Background(), get("httpcall", "x-cluster", "auth", "x-timeout", "5000"), up.upstream)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 200 {
			t.Errorf("status = %d, want 200", resp.Status)
		}
		// 5 headers: :status, content-length, content-type, date, x-answer.
		if got := resultOf(t, up.last(t), "httpcall"); got != "5|201|pong" {
			t.Errorf("callout result = %q, want 5|201|pong", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := "POST /call?x=1 host=svc.local x-from=guest body=ping"; len(seen) != 1 || seen[0] != want {
			t.Errorf("the cluster saw %q, want [%q]", seen, want)
		}
	})
	t.Run("body held while the filter stops all iteration", func(t *testing.T) {
		// Envoy's default (no allow_on_headers_stop_iteration): a pause on the headers is
		// StopAllIterationAndWatermark, so the body reaches the guest only once the callout
		// resumed the request; it still rewrites it, and the upstream gets both.
		s, err := p.NewStream(0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if act, err := s.RequestHeaders(get("httpcall,body", "x-cluster", "auth").Headers, false); act != ActionPause || err != nil {
			t.Fatalf("headers: %v %v, want paused", act, err)
		}
		if !s.StoppedAll(StreamRequest) {
			t.Fatal("StoppedAll = false after a pause on the headers")
		}
		_, err = s.RequestBody([]byte("quiet"), true)
		if want := "proxy_on_request_body on stream"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "StopAllIterationAndWatermark") {
			t.Fatalf("body while stopped all: %v, want an error naming %q", err, want)
		}
		if err := s.WaitRequest(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.StoppedAll(StreamRequest) {
			t.Fatal("StoppedAll = true after the callout resumed the request")
		}
		if act, err := s.RequestBody([]byte("quiet"), true); act != ActionContinue || err != nil {
			t.Fatalf("body after the resume: %v %v", act, err)
		}
		if got := string(s.Body(BufferHTTPRequestBody)); got != "QUIET" {
			t.Errorf("body = %q, want QUIET", got)
		}
		var up recorder
		req := get("httpcall,body", "x-cluster", "auth")
		req.Body = []byte("quiet")
		if _, err := p.Do(context.Background(), req, up.upstream); err != nil {
			t.Fatal(err)
		}
		last := up.last(t)
		if got := resultOf(t, last, "httpcall"); got != "5|201|pong" || string(last.Body) != "QUIET" {
			t.Errorf("Do: upstream got callout %q and body %q, want 5|201|pong and QUIET", got, last.Body)
		}
	})
	t.Run("body delivered while the headers wait, with allow_on_headers_stop_iteration", func(t *testing.T) {
		rt := newRuntime(t, Options{WASI: WASICppHost20260701, Clusters: map[string]string{"auth": srv.URL}})
		p := newPlugin(t, rt, "abi", PluginConfig{AllowOnHeadersStopIteration: true})
		s, err := p.NewStream(0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if act, err := s.RequestHeaders(get("httpcall,body", "x-cluster", "auth").Headers, false); act != ActionPause || err != nil {
			t.Fatalf("headers: %v %v, want paused", act, err)
		}
		if s.StoppedAll(StreamRequest) {
			t.Fatal("StoppedAll = true with allow_on_headers_stop_iteration")
		}
		if act, err := s.RequestBody([]byte("quiet"), false); act != ActionPause || err != nil {
			t.Fatalf("body while the headers wait: %v %v, want buffered", act, err)
		}
		if err := s.WaitRequest(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("local response from the callback", func(t *testing.T) {
		var up recorder
		resp, err := p.Do(context.Background(), get("httpcall-local", "x-cluster", "auth"), up.upstream)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 401 || string(resp.Body) != "callout said 201" || up.count() != 0 {
			t.Errorf("response = %d %q (upstream called %d times), want 401 \"callout said 201\" and no upstream", resp.Status, resp.Body, up.count())
		}
	})
	t.Run("unknown cluster", func(t *testing.T) {
		var up recorder
		if _, err := p.Do(context.Background(), get("httpcall", "x-cluster", "nope"), up.upstream); err != nil {
			t.Fatal(err)
		}
		if got := resultOf(t, up.last(t), "httpcall"); got != "dispatch:bad_argument" {
			t.Errorf("result = %q, want dispatch:bad_argument", got)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		// The handler blocks until the test ends, so only the call's own timeout ends it;
		// Envoy's AsyncClient then answers with its router's local reply, a 504.
		slow := &Request{Headers: Headers{{":authority", "a"}, {":path", "/"}, {":method", "GET"},
			{"x-op", "httpcall"}, {"x-cluster", "slowauth"}, {"x-timeout", "50"}}}
		rt := newRuntime(t, Options{Clusters: map[string]string{"slowauth": srv.URL + "/?x=slow&"}})
		p := newPlugin(t, rt, "abi", PluginConfig{})
		var up recorder
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := p.Do(ctx, slow, up.upstream); err != nil {
			t.Fatal(err)
		}
		if got := resultOf(t, up.last(t), "httpcall"); got != "3|504|upstream request timeout" {
			t.Errorf("result after the timeout = %q, want 3|504|upstream request timeout", got)
		}
	})
}

// A paused stream waits for the filter; a context ending first is reported.
func TestWaitReportsContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	rt := newRuntime(t, Options{Clusters: map[string]string{"auth": srv.URL}})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var up recorder
	_, err := p.Do(ctx, get("httpcall", "x-cluster", "auth"), up.upstream)
	if err == nil || !strings.Contains(err.Error(), "still paused by the filter: context canceled") {
		t.Errorf("err = %v, want the paused stream reported", err)
	}
}

// Answers to HTTP calls arrive beside concurrent requests on the same VM, never at the same
// time as another call into it (run with -race).
func TestHTTPCallsBesideTraffic(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	rt := newRuntime(t, Options{Clusters: map[string]string{"auth": srv.URL}})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	if st := rt.SharedData("vm1").Set("n", []byte("0"), 0); st != StatusOK {
		t.Fatal(st)
	}
	const clients, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan string, clients*each)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var up recorder
			ops := "httpcall"
			if c%2 == 1 {
				ops = "cas-incr"
			}
			for i := 0; i < each; i++ {
				if _, err := p.Do(context.Background(), get(ops, "x-cluster", "auth", "x-key", "n"), up.upstream); err != nil {
					errs <- err.Error()
					return
				}
				up.mu.Lock()
				got, _ := up.reqs[len(up.reqs)-1].Headers.Get("x-r-" + ops)
				up.mu.Unlock()
				if ops == "httpcall" && got != "4|200|ok" {
					errs <- "httpcall answered " + got
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if v, _, _ := rt.SharedData("vm1").Get("n"); string(v) != "50" {
		t.Errorf("n = %s, want 50", v)
	}
}

// A stream paused on an HTTP call must not wait forever when its VM stops: review finding 6,
// where stream B's trap failed the VM but stream A, paused on a callout, never woke (the
// callout's answer was dropped on the failed VM without signalling). The same holds when the
// plugin is closed. The context's deadline only guards the test against that hang.
func TestPausedStreamWakesWhenTheVMStops(t *testing.T) {
	for _, stop := range []string{"trap", "close"} {
		t.Run(stop, func(t *testing.T) {
			arrived, release := make(chan struct{}, 1), make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-release
			}))
			defer srv.Close()
			defer close(release)
			rt := newRuntime(t, Options{WASI: WASICppHost20260701, Clusters: map[string]string{"auth": srv.URL}})
			p := newPlugin(t, rt, "abi", PluginConfig{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			type result struct {
				resp *Response
				err  error
			}
			done := make(chan result, 1)
			var up recorder
			go func() {
				resp, err := p.Do(ctx, get("httpcall", "x-cluster", "auth"), up.upstream)
				done <- result{resp, err}
			}()
			<-arrived // stream A is paused on its callout
			if stop == "trap" {
				resp, err := p.Do(context.Background(), get("panic"), up.upstream)
				if err == nil || resp == nil || resp.Status != 503 {
					t.Fatalf("stream B: %+v, %v; want the trap's 503", resp, err)
				}
			} else if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("stream A: %v, want its 503 without error", r.err)
			}
			if r.resp == nil || r.resp.Status != 503 || r.resp.Local == nil || r.resp.Local.Details != "wasm_fail_stream" {
				t.Fatalf("stream A: %+v, want the FAIL_CLOSED 503", r.resp)
			}
			if n := up.count(); n != 0 {
				t.Errorf("the upstream was called %d times, want 0", n)
			}
		})
	}
}
