package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
)

// guests are the plugins under testdata/, built once per test binary by the lead's wasmbuild.
var guests = []string{"noop", "abi", "badinit", "initmetric"}

var (
	guestDir  string
	testCache = wazero.NewCompilationCache() // one compilation per module per test binary
	wasmMu    sync.Mutex
	wasmBytes = map[string][]byte{}
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "host-guests-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	guestDir = dir
	root, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	tool := filepath.Join(dir, "wasmbuild")
	if out, err := command(root, "go", "build", "-o", tool, "./build/wasmbuild"); err != nil {
		return 0, fmt.Errorf("building wasmbuild: %v\n%s", err, out)
	}
	for _, g := range guests {
		if out, err := command(root, tool, "-o", filepath.Join(dir, g+".wasm"), "./host/testdata/"+g); err != nil {
			return 0, fmt.Errorf("building guest %s: %v\n%s", g, err, out)
		}
	}
	// abi-gcalloc: the abi guest with a runtime.GC() in every proxy_on_memory_allocate.
	if out, err := command(root, tool, "-o", filepath.Join(dir, "abi-gcalloc.wasm"), "-tags", "usageplans_gcalloc", "./host/testdata/abi"); err != nil {
		return 0, fmt.Errorf("building guest abi-gcalloc: %v\n%s", err, out)
	}
	defer testCache.Close(context.Background())
	return m.Run(), nil
}

func command(dir, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// guest returns the bytes of a built guest.
func guest(t testing.TB, name string) []byte {
	t.Helper()
	wasmMu.Lock()
	defer wasmMu.Unlock()
	if b, ok := wasmBytes[name]; ok {
		return b
	}
	b, err := os.ReadFile(filepath.Join(guestDir, name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	wasmBytes[name] = b
	return b
}

// newRuntime returns a runtime on the shared compilation cache, closed with the test.
func newRuntime(t testing.TB, opts Options) *Runtime {
	t.Helper()
	opts.CompilationCache = testCache
	rt, err := NewRuntime(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func compile(t testing.TB, rt *Runtime, name string) *Module {
	t.Helper()
	m, err := rt.Compile(context.Background(), guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newPlugin starts a plugin of guest name with defaults for what cfg leaves empty.
func newPlugin(t testing.TB, rt *Runtime, name string, cfg PluginConfig) *Plugin {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.VMID == "" {
		cfg.VMID = "vm1"
	}
	p, err := rt.NewPlugin(context.Background(), compile(t, rt, name), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// ok is an upstream that answers 200 "upstream body" and records the request it received.
type recorder struct {
	mu   sync.Mutex
	reqs []*Request
}

func (r *recorder) upstream(ctx context.Context, req *Request) (*Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return &Response{Status: 200, Headers: Headers{{"content-type", "text/plain"}}, Body: []byte("upstream body")}, nil
}

func (r *recorder) last(t testing.TB) *Request {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("the upstream was never called")
	}
	return r.reqs[len(r.reqs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// get builds a GET request with the abi guest's x-op header and extra headers.
func get(ops string, extra ...string) *Request {
	h := Headers{{":authority", "example.com"}, {":path", "/pets?id=1"}, {":method", "GET"}, {":scheme", "http"}, {"x-op", ops}}
	for i := 0; i+1 < len(extra); i += 2 {
		h = append(h, [2]string{extra[i], extra[i+1]})
	}
	return &Request{Headers: h}
}

// resultOf returns the abi guest's result for op from the request the upstream received.
func resultOf(t testing.TB, req *Request, op string) string {
	t.Helper()
	v, ok := req.Headers.Get("x-r-" + op)
	if !ok {
		t.Fatalf("no result for op %q in %v", op, req.Headers)
	}
	return v
}

func joinLogs(entries []LogEntry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Level.String() + " " + string(e.Source) + ": " + e.Message + "\n")
	}
	return b.String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
