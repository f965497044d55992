package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// LogLevel is a proxy-wasm log level.
type LogLevel uint32

// Log levels of ABI 0.2.1.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

var logLevelNames = [...]string{"trace", "debug", "info", "warn", "error", "critical"}

func (l LogLevel) String() string {
	if int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint32(l))
}

// Options configure a Runtime. The zero value is usable: the oldest WASI profile, the V8
// engine's restrictions, real clocks, log level trace, no clusters.
type Options struct {
	// WASI is the cpp-host whose WASI the host reproduces (wasi_profiles.go); empty means
	// WASICppHost20241219.
	WASI WASIProfile
	// Engine is the Wasm engine whose behaviour the host reproduces (engine.go); empty means
	// EngineV8, the only one that enforces the restricted phases.
	Engine Engine
	// Clock is the wall and monotonic time source; nil means the system clock.
	Clock Clock
	// LogLevel is the level reported by proxy_get_log_level; lines below it are dropped, as
	// Envoy's logger drops them. The zero value is LogTrace; Envoy's default is LogInfo.
	LogLevel LogLevel
	// LogSink, if set, receives every log line (proxy_log, stdout, stderr) as it is captured.
	// It is called with the VM's lock held: it must not call back into the VM.
	LogSink func(LogEntry)
	// LogWriter, if set, receives every log line formatted as
	// "<plugin> <vm_id>#<worker> <level> <source>: <message>\n", one Write per line, never
	// two at once.
	LogWriter io.Writer
	// LogCapacity bounds the lines each VM keeps for VM.Logs (oldest dropped); 0 means 1000.
	LogCapacity int
	// Clusters maps the cluster names that proxy_http_call accepts to URLs: grpc://HOST:PORT
	// for an HTTP/2 cleartext (gRPC) cluster, http:// (HTTP/1.1) or https:// with an optional
	// path prefix; the request's :path is appended. NewRuntime rejects any other value.
	Clusters map[string]string
	// HTTPClient performs proxy_http_call requests to http:// and https:// clusters; nil
	// means a default client. grpc:// clusters use the host's own HTTP/2 cleartext client.
	HTTPClient *http.Client
	// CompilationCache is shared by runtimes that pass the same cache (tests pass one for the
	// whole binary); nil means a cache private to this runtime.
	CompilationCache wazero.CompilationCache
	// Interpreter selects wazero's interpreter instead of its compiler (for comparison only).
	Interpreter bool
}

// maxMemoryPages is 1 GiB in 64 KiB pages.
const maxMemoryPages = 1 << 30 / 65536

// Runtime owns the wazero runtime, the host modules and the process-wide shared data. Safe
// for concurrent use.
type Runtime struct {
	opts     Options
	clock    Clock
	wz       wazero.Runtime
	shared   *sharedData
	envMod   api.Module
	profile  *wasiProfile
	client   *http.Client
	clusters map[string]cluster

	logWriterMu sync.Mutex // one line at a time into Options.LogWriter

	mu      sync.Mutex
	closed  bool
	plugins map[*Plugin]struct{}
	metrics map[string]*metricStore // by plugin name: Envoy keeps stats per plugin scope
	basesMu sync.Mutex
	bases   map[baseKey]*baseVM // cpp-host's base_wasms (canary.go), under basesMu
}

// NewRuntime builds a runtime and instantiates its host modules.
func NewRuntime(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.WASI == "" {
		opts.WASI = WASICppHost20241219
	}
	profile, err := lookupWASIProfile(opts.WASI)
	if err != nil {
		return nil, err
	}
	if opts.Engine == "" {
		opts.Engine = EngineV8
	}
	if err := checkEngine(opts.Engine); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = NewSystemClock()
	}
	if opts.LogCapacity <= 0 {
		opts.LogCapacity = 1000
	}
	if opts.LogLevel > LogCritical {
		return nil, fmt.Errorf("host: Options.LogLevel: %d is above critical (5)", opts.LogLevel)
	}
	var cfg wazero.RuntimeConfig
	if opts.Interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	} else {
		cfg = wazero.NewRuntimeConfigCompiler()
	}
	cache := opts.CompilationCache
	if cache == nil {
		cache = wazero.NewCompilationCache()
	}
	// Envoy caps a VM's memory at 1 GiB (PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES).
	cfg = cfg.WithCompilationCache(cache).WithCloseOnContextDone(false).WithMemoryLimitPages(maxMemoryPages)
	r := &Runtime{
		opts:    opts,
		clock:   opts.Clock,
		wz:      wazero.NewRuntimeWithConfig(ctx, cfg),
		shared:  newSharedData(),
		plugins: map[*Plugin]struct{}{},
		metrics: map[string]*metricStore{},
		client:  opts.HTTPClient,
		profile: profile,
		bases:   map[baseKey]*baseVM{},
	}
	if r.client == nil {
		r.client = &http.Client{}
	}
	if r.clusters, err = resolveClusters(opts.Clusters, r.client); err != nil {
		r.wz.Close(ctx)
		return nil, err
	}
	if r.envMod, err = instantiateEnv(ctx, r.wz); err != nil {
		r.wz.Close(ctx)
		return nil, fmt.Errorf("host: instantiate env module: %w", err)
	}
	if err = instantiateWASI(ctx, r.wz, profile); err != nil {
		r.wz.Close(ctx)
		return nil, fmt.Errorf("host: instantiate wasi_snapshot_preview1 (%s): %w", opts.WASI, err)
	}
	return r, nil
}

// Options returns the options the runtime was built with, defaults filled in.
func (r *Runtime) Options() Options { return r.opts }

// Clock returns the runtime's clock.
func (r *Runtime) Clock() Clock { return r.clock }

// Close closes every plugin of the runtime and the wazero runtime.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	plugins := make([]*Plugin, 0, len(r.plugins))
	for p := range r.plugins {
		plugins = append(plugins, p)
	}
	r.mu.Unlock()
	var errs []error
	for _, p := range plugins {
		errs = append(errs, p.Close(ctx))
	}
	errs = append(errs, r.wz.Close(ctx))
	return errors.Join(errs...)
}

func (r *Runtime) metricStoreFor(plugin string) *metricStore {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.metrics[plugin]
	if m == nil {
		m = newMetricStore()
		r.metrics[plugin] = m
	}
	return m
}
