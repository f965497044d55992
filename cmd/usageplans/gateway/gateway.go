// Package gateway is `usageplans serve`: an HTTP gateway that runs the filter module in the
// proxy-wasm host the way Envoy runs it (N worker VMs sharing one shared-data store), with an
// admin endpoint and hot swap of the module and configuration under traffic.
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/host"
)

// Options configure a gateway; the zero values of the optional ones are the CLI's defaults.
type Options struct {
	Wasm   string // the filter module file; re-read on reload
	Config string // the plugin configuration file (JSON); re-read on reload
	Listen string // the gateway's address, e.g. "127.0.0.1:8080" ("127.0.0.1:0" picks a port)
	Admin  string // the admin endpoint's address

	// Upstream is where admitted requests go: a base URL, or "echo" (the default).
	Upstream string
	// Clusters are clusters the filter may call with proxy_http_call besides the routes'
	// upstreams (host.CheckClusterURL): name to URL. A name may not be a route's cluster.
	Clusters map[string]string
	// Routes is an optional routes file; without it every request has the route name
	// "default" and goes to Upstream.
	Routes string
	// Workers is the number of worker VMs; 0 means GOMAXPROCS.
	Workers int
	// VMID and RootID default to "usageplans".
	VMID, RootID string

	// Log receives the gateway's and the filter's log lines; nil discards them.
	Log io.Writer
	// LogLevel is the filter's log level (proxy_get_log_level; lower lines are dropped):
	// trace, debug, info, warn, error or critical; "" means info, Envoy's default.
	LogLevel string
	// AccessLog receives one line per request; nil means Log.
	AccessLog io.Writer
	// WatchInterval is how often Wasm and Config are checked for changes (size and
	// modification time); 0 means one second, a negative value turns watching off.
	WatchInterval time.Duration
	// TickInterval is how often the gateway checks whether a VM's proxy_on_tick is due (the
	// period the filter set with proxy_set_tick_period_milliseconds, on Clock); 0 means
	// 10 ms, a negative value turns ticks off.
	TickInterval time.Duration
	// Clock is the filter's wall and monotonic time; nil means the system clock. Tests pass
	// a host.FakeClock so that token buckets and quota periods do not move under them.
	Clock host.Clock
	// CompilationCache lets tests share compiled modules between gateways; nil means a
	// cache private to the gateway.
	CompilationCache wazero.CompilationCache

	// Path are the connection manager's path settings (Envoy's normalize_path,
	// merge_slashes, path_with_escaped_slashes_action); the zero value is Envoy's default.
	Path PathOptions
	// RequestTimeout is Envoy's request_timeout: the whole request (headers and body) must
	// arrive within it, or 408; StreamIdleTimeout is stream_idle_timeout: no event on a
	// request for that long ends it (408 before the response started, a reset after);
	// IdleTimeout closes a keep-alive connection without requests for that long (Envoy's
	// common_http_protocol_options.idle_timeout); RequestHeadersTimeout bounds the request
	// line and headers (Envoy's request_headers_timeout). 0 means the default (see
	// DefaultRequestTimeout...), a negative value turns one off.
	RequestTimeout, StreamIdleTimeout, IdleTimeout, RequestHeadersTimeout time.Duration
	// MaxConnections caps the gateway's open connections; one more is closed as soon as it
	// is accepted. 0 means DefaultMaxConnections, a negative value no cap.
	MaxConnections int
	// AllowOnHeadersStopIteration is Envoy's PluginConfig.allow_on_headers_stop_iteration
	// (Envoy 1.35+): a filter that pauses on the request headers still gets the body. It
	// runs the host with the newest cpp-host profile, the one that has the knob.
	AllowOnHeadersStopIteration bool
	// AdminAllowRemote lets Admin be an address other than loopback. The admin endpoint can
	// reload the gateway and shows its configuration: it binds loopback unless told.
	AdminAllowRemote bool
}

// Gateway is a running `usageplans serve`.
type Gateway struct {
	opts   Options
	rt     *host.Runtime
	plugin *host.Plugin
	routes []*Route
	stats  *stats
	log    *syncWriter
	access *syncWriter

	cur      atomic.Pointer[active]
	reloadMu sync.Mutex

	ln, adminLn  net.Listener
	srv, admin   *http.Server
	nextWorker   atomic.Uint64
	draining     atomic.Bool
	stopWatch    chan struct{}
	stopTicks    context.CancelFunc // nil when ticks are off
	background   sync.WaitGroup
	done         chan struct{} // closed when the gateway stops serving
	serveErr     error
	shutdownOnce sync.Once
	shutdownErr  error
}

// active is what serves now: one plugin version.
type active struct {
	n            int // the plugin's version: 1 at start, +1 per successful swap
	module       *host.Module
	wasmSHA256   string
	config       []byte
	configSHA256 string
	identity     config.IdentityHeaders // from the native parse, for the access log
	keyHeader    string                 // where keys come from, for the echo's redaction
	keyQuery     string
	loaded       time.Time
	parsed       *config.Config // the configuration as the filter's parser reads it; nil when it does not parse
}

func (g *Gateway) active() *active { return g.cur.Load() }

// Start loads the module and configuration, starts the workers, listens on Listen and Admin,
// and serves until Shutdown. Addr and AdminAddr give the bound addresses.
func Start(ctx context.Context, o Options) (*Gateway, error) {
	o = o.withDefaults()
	g := &Gateway{opts: o, stats: newStats(), log: &syncWriter{w: o.Log}, stopWatch: make(chan struct{}), done: make(chan struct{})}
	g.access = g.log
	if o.AccessLog != nil {
		g.access = &syncWriter{w: o.AccessLog}
	}
	var err error
	if g.routes, err = loadRoutes(o.Routes, o.Upstream); err != nil {
		return nil, err
	}
	for _, r := range g.routes {
		if e, ok := r.up.(*echoUpstream); ok {
			e.keyNames = g.keyNames
		}
	}
	if err := o.Path.check(); err != nil {
		return nil, err
	}
	if _, err := logLevel(o.LogLevel); err != nil {
		return nil, err
	}
	// Bound before the module is compiled and the VMs start, so that a busy port is
	// reported at once.
	if err := g.bind(); err != nil {
		return nil, err
	}
	// Stamped before reading, so that a change made while starting is seen by the watcher.
	stamps := [2]fileStamp{stampOf(o.Wasm), stampOf(o.Config)}
	if err := g.load(ctx); err != nil {
		g.ln.Close()
		g.adminLn.Close()
		return nil, err
	}
	g.serve()
	if o.WatchInterval > 0 {
		g.background.Add(1)
		go g.watch(o.WatchInterval, stamps)
	}
	if o.TickInterval > 0 {
		// Envoy fires each root context's tick timer on its worker; the host's driver does
		// the same for every current VM (Plugin.RunTicks).
		tickCtx, stop := context.WithCancel(context.Background())
		g.stopTicks = stop
		g.background.Add(1)
		go func() {
			defer g.background.Done()
			g.plugin.RunTicks(tickCtx, o.TickInterval)
		}()
	}
	a := g.active()
	g.logf("serving on http://%s (admin http://%s): %d workers, vm_id %s, root_id %s, module %s sha256 %s, configuration %s",
		g.ln.Addr(), g.adminLn.Addr(), o.Workers, o.VMID, o.RootID, o.Wasm, short(a.wasmSHA256), o.Config)
	return g, nil
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.VMID == "" {
		o.VMID = "usageplans"
	}
	if o.RootID == "" {
		o.RootID = "usageplans"
	}
	if o.Upstream == "" {
		o.Upstream = "echo"
	}
	if o.WatchInterval == 0 {
		o.WatchInterval = time.Second
	}
	if o.TickInterval == 0 {
		o.TickInterval = 10 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	o.RequestTimeout = orDefault(o.RequestTimeout, DefaultRequestTimeout)
	o.StreamIdleTimeout = orDefault(o.StreamIdleTimeout, DefaultStreamIdleTimeout)
	o.IdleTimeout = orDefault(o.IdleTimeout, DefaultIdleTimeout)
	o.RequestHeadersTimeout = orDefault(o.RequestHeadersTimeout, DefaultRequestHeadersTimeout)
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	return o
}

// orDefault is d for 0, and 0 (off) for a negative duration.
func orDefault(v, d time.Duration) time.Duration {
	switch {
	case v == 0:
		return d
	case v < 0:
		return 0
	}
	return v
}

// load reads the module and the configuration and starts the plugin's workers on a new
// runtime.
func (g *Gateway) load(ctx context.Context) error {
	o := g.opts
	level, err := logLevel(o.LogLevel)
	if err != nil {
		return err
	}
	wasm, err := os.ReadFile(o.Wasm)
	if err != nil {
		return fmt.Errorf("--wasm: %w", err)
	}
	cfg, err := os.ReadFile(o.Config)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	all, err := withClusters(clusters(g.routes), o.Clusters)
	if err != nil {
		return err
	}
	var wasi host.WASIProfile
	if o.AllowOnHeadersStopIteration {
		wasi = host.WASICppHost20260701
	}
	g.rt, err = host.NewRuntime(ctx, host.Options{
		WASI:     wasi,
		LogLevel: level,
		Clock:    o.Clock,
		Clusters: all,
		LogSink: func(e host.LogEntry) {
			fmt.Fprintf(g.log, "%s filter %s#%d %s: %s\n", e.Time.UTC().Format(time.RFC3339), e.VMID, e.Worker, e.Level, e.Message)
		},
		CompilationCache: o.CompilationCache,
	})
	if err != nil {
		return err
	}
	m, err := g.rt.Compile(ctx, wasm)
	if err == nil {
		g.plugin, err = g.rt.NewPlugin(ctx, m, host.PluginConfig{
			Name: "usageplans", RootID: o.RootID, VMID: o.VMID, Configuration: cfg, Workers: o.Workers,
			Properties:                  map[string][]byte{"node.id": []byte("usageplans-gateway")},
			AllowOnHeadersStopIteration: o.AllowOnHeadersStopIteration,
		})
		if err != nil {
			err = fmt.Errorf("starting %d workers of %s with %s: %w", o.Workers, o.Wasm, o.Config, err)
		}
	} else {
		err = fmt.Errorf("--wasm %s: %w", o.Wasm, err)
	}
	if err != nil {
		g.rt.Close(context.WithoutCancel(ctx))
		return err
	}
	g.cur.Store((&active{n: g.plugin.Version(), module: m, wasmSHA256: digest(wasm), config: cfg,
		configSHA256: digest(cfg), loaded: time.Now()}).withNames(cfg))
	return nil
}

// bind binds the gateway's and the admin's addresses.
func (g *Gateway) bind() error {
	if err := checkAdminAddr(g.opts.Admin, g.opts.AdminAllowRemote); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", g.opts.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if g.adminLn, err = net.Listen("tcp", g.opts.Admin); err != nil {
		ln.Close()
		return fmt.Errorf("--admin: %w", err)
	}
	g.ln = ln
	if g.opts.MaxConnections > 0 {
		g.ln = &limitListener{Listener: ln, max: int64(g.opts.MaxConnections), overflow: &g.stats.cxOverflow}
	}
	return nil
}

// serve starts serving the bound listeners.
func (g *Gateway) serve() {
	workers := uint64(g.opts.Workers)
	g.srv = &http.Server{
		Handler: http.HandlerFunc(g.serveHTTP),
		// Go's ReadHeaderTimeout ends a connection whose request line and headers do not
		// arrive in time, as Envoy's request_headers_timeout; the body is the stream
		// timers' (request_timeout, stream_idle_timeout).
		ReadHeaderTimeout: g.opts.RequestHeadersTimeout,
		IdleTimeout:       g.opts.IdleTimeout,
		// Envoy binds a connection to one worker for its lifetime; so does the gateway.
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, workerKey{}, int((g.nextWorker.Add(1)-1)%workers))
		},
	}
	g.admin = &http.Server{Handler: g.loopbackHosts(g.adminMux()), ReadHeaderTimeout: 10 * time.Second}
	g.background.Add(2)
	go func() {
		defer g.background.Done()
		err := g.srv.Serve(g.ln)
		if !errors.Is(err, http.ErrServerClosed) {
			g.serveErr = fmt.Errorf("serving %s: %w", g.ln.Addr(), err)
		}
		close(g.done)
	}()
	go func() {
		defer g.background.Done()
		g.admin.Serve(g.adminLn)
	}()
}

type workerKey struct{}

func logLevel(name string) (host.LogLevel, error) {
	if name == "" {
		return host.LogInfo, nil
	}
	for l := host.LogTrace; l <= host.LogCritical; l++ {
		if l.String() == name {
			return l, nil
		}
	}
	return 0, fmt.Errorf("--log-level: want trace, debug, info, warn, error or critical, got %q", name)
}

// clusters lets the filter reach the routes' URL upstreams with proxy_http_call by their
// cluster names, as Envoy's clusters.
func clusters(routes []*Route) map[string]string {
	out := map[string]string{}
	for _, r := range routes {
		if u, ok := r.up.(*httpUpstream); ok {
			out[r.Cluster] = strings.TrimSuffix(u.base.String(), "/")
		}
	}
	return out
}

// Addr is the gateway's bound address ("127.0.0.1:8080").
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// AdminAddr is the admin endpoint's bound address.
func (g *Gateway) AdminAddr() string { return g.adminLn.Addr().String() }

// Plugin is the host plugin serving the requests (for tests: logs, metrics, shared data).
func (g *Gateway) Plugin() *host.Plugin { return g.plugin }

// Runtime is the host runtime (for tests: SharedData).
func (g *Gateway) Runtime() *host.Runtime { return g.rt }

// Done is closed when the gateway stops serving: after Shutdown, or when its listener fails
// (Err says why).
func (g *Gateway) Done() <-chan struct{} { return g.done }

// Err is why the gateway stopped serving on its own, or nil.
func (g *Gateway) Err() error {
	select {
	case <-g.done:
		return g.serveErr
	default:
		return nil
	}
}

// Shutdown stops accepting requests, lets in-flight requests finish until ctx ends, then
// closes the workers. /ready answers 503 from the start of the drain.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.shutdownOnce.Do(func() {
		g.draining.Store(true)
		g.logf("shutting down: draining in-flight requests")
		close(g.stopWatch)
		if g.stopTicks != nil {
			g.stopTicks()
		}
		err := g.srv.Shutdown(ctx)
		if err != nil {
			g.srv.Close()
			err = fmt.Errorf("shutdown: in-flight requests did not finish in time (%d still active), closed them: %w", g.stats.rqActive.Load(), err)
		}
		g.admin.Close()
		g.background.Wait()
		g.shutdownErr = errors.Join(err, g.plugin.Close(context.WithoutCancel(ctx)), g.rt.Close(context.WithoutCancel(ctx)))
		for _, r := range g.routes {
			if u, ok := r.up.(*httpUpstream); ok {
				u.close()
			}
		}
		g.logf("stopped (requests served: %d)", g.stats.rqTotal.Load())
	})
	return g.shutdownErr
}

// Run starts a gateway and serves until ctx ends, then shuts it down within grace.
func Run(ctx context.Context, o Options, grace time.Duration) error {
	g, err := Start(ctx, o)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-g.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	return errors.Join(g.Err(), g.Shutdown(sctx))
}

func (g *Gateway) logf(format string, a ...any) {
	fmt.Fprintf(g.log, "%s gateway: %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, a...))
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func short(d string) string { return d[:12] }

// withNames fills in the header names of configuration data as the filter's own parser
// reads them: the identity headers and where keys come from; the defaults when it does not
// parse (the filter has the last word on the configuration).
func (a *active) withNames(data []byte) *active {
	a.identity = config.IdentityHeaders{KeyID: config.DefaultKeyIDHeader, PlanID: config.DefaultPlanIDHeader}
	a.keyHeader = config.DefaultAPIKeyHeader
	if c, err := config.Parse(data); err == nil {
		a.parsed = c
		a.identity, a.keyHeader, a.keyQuery = c.IdentityHeaders, c.KeySource.Header, c.KeySource.QueryParameter
	}
	return a
}

func (g *Gateway) keyNames() (header, query string) {
	a := g.active()
	return a.keyHeader, a.keyQuery
}

// syncWriter serialises writes of whole lines from concurrent requests and VMs.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
