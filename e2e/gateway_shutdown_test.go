package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/cli"
	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
)

// TestGatewayGracefulShutdown: a request in flight when shutdown starts finishes, /ready
// says DRAINING meanwhile, and a request still in flight at the deadline makes Shutdown
// report it.
func TestGatewayGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "late but whole")
	}))
	defer up.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.wasm"), filterWasm)
	writeFile(t, filepath.Join(dir, "c.json"), []byte(planConfig(10, 10)))
	log := &lockedBuffer{}
	g, err := gateway.Start(context.Background(), gateway.Options{
		Wasm: filepath.Join(dir, "f.wasm"), Config: filepath.Join(dir, "c.json"), Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Upstream: up.URL, Workers: 1, Log: log, WatchInterval: -1, CompilationCache: compileCache,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + g.Addr() + "/health")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	waitUntil(t, "the request is in flight", func() bool {
		return strings.Contains(httpGet(t, "http://"+g.AdminAddr()+"/stats"), "downstream_rq_active: 1\n")
	})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- g.Shutdown(ctx)
	}()
	waitUntil(t, "/ready says DRAINING", func() bool { return httpGet(t, "http://"+g.AdminAddr()+"/ready") == "503 DRAINING\n" })
	close(release)
	if r := <-got; r != "200 late but whole" {
		t.Errorf("the in-flight request got %q, want 200 late but whole", r)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}

	// A deadline that passes with a request in flight.
	release2 := make(chan struct{})
	up2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release2 }))
	defer up2.Close()
	defer close(release2)
	g2, err := gateway.Start(context.Background(), gateway.Options{
		Wasm: filepath.Join(dir, "f.wasm"), Config: filepath.Join(dir, "c.json"), Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Upstream: up2.URL, Workers: 1, WatchInterval: -1, CompilationCache: compileCache,
	})
	if err != nil {
		t.Fatal(err)
	}
	go http.Get("http://" + g2.Addr() + "/health")
	waitUntil(t, "the second request is in flight", func() bool {
		return strings.Contains(httpGet(t, "http://"+g2.AdminAddr()+"/stats"), "downstream_rq_active: 1\n")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g2.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "in-flight requests did not finish in time (1 still active)") {
		t.Errorf("Shutdown past its deadline: %v", err)
	}
}

// TestServeCommand runs `usageplans serve --print-demo` as `make run` does, on free ports,
// answers one request, and stops it by cancelling its context, as SIGINT does.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "f.wasm")
	writeFile(t, wasm, filterWasm)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	status := make(chan int, 1)
	go func() {
		status <- cli.Main(ctx, []string{"serve", "--wasm", wasm, "--config", "../plugin.json", "--routes", "../testdata/routes.json",
			"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--workers", "2", "--print-demo"}, stdout, stderr)
	}()
	serving := regexp.MustCompile(`serving on http://(\S+) \(admin http://(\S+)\)`)
	var m []string
	waitUntil(t, "serve logs its addresses", func() bool {
		m = serving.FindStringSubmatch(stderr.String())
		return m != nil
	})
	if !strings.Contains(stdout.String(), "FreeDemoKeyAlice000000000000001") || !strings.Contains(stdout.String(), "curl -i http://127.0.0.1:0/pets") {
		t.Errorf("--print-demo printed:\n%s", stdout.String())
	}
	if r := httpGet(t, "http://"+m[1]+"/pets"); r != `403 {"message":"Forbidden"}` {
		t.Errorf("GET /pets without a key: %q", r)
	}
	// SIGHUP reloads (serve catches it from before it says it serves).
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "serve logs the reload on SIGHUP", func() bool {
		return strings.Contains(stderr.String(), "gateway: reload (SIGHUP): module and configuration unchanged, version 1 keeps serving")
	})
	cancel()
	select {
	case st := <-status:
		if st != 0 {
			t.Errorf("serve exited with %d:\n%s", st, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s of its context ending")
	}
	if !strings.Contains(stderr.String(), "gateway: stopped (requests served: 1)") {
		t.Errorf("serve's log:\n%s", stderr.String())
	}
	noSecrets(t, "serve's log", stderr.String(), readString(t, "../plugin.json"))
}

func readString(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// waitUntil polls cond every 5ms for at most a minute (compiling the module without a
// cache takes a second, and much longer under the race detector).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for: %s", what)
		}
	}
}
