package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// PluginConfig describes a plugin as Envoy's Wasm filter configuration does.
type PluginConfig struct {
	// Name is the plugin's name (property plugin_name).
	Name string
	// RootID is the root context id (property plugin_root_id).
	RootID string
	// VMID groups VMs that share data (property plugin_vm_id).
	VMID string
	// VMConfig is the VM configuration (proxy_on_vm_start, buffer 6).
	VMConfig []byte
	// Configuration is the plugin configuration (proxy_on_configure, buffer 7).
	Configuration []byte
	// Workers is the number of VMs, one per Envoy worker; 0 means 1.
	Workers int
	// Properties are plugin-wide property values by dotted path (e.g. "node.id").
	Properties map[string][]byte
	// Env is the environment the WASI environ functions expose, in order.
	Env [][2]string
	// AllowOnHeadersStopIteration is Envoy's PluginConfig.allow_on_headers_stop_iteration
	// (Envoy 1.35+, the cpp-host of 2026-07-01; NewPlugin refuses it under an older
	// profile). False, Envoy's default: a filter that pauses on the headers stops all
	// iteration (StopAllIterationAndWatermark): it gets no body or trailers callback until it
	// continues, and the proxy holds the body meanwhile (Stream.StoppedAll). True: the pause
	// is StopIteration, and the body and trailers reach the filter while it holds the headers.
	AllowOnHeadersStopIteration bool
}

// Plugin is a pool of VMs (Envoy's workers) running one (vm_id, root_id, module,
// configuration). Safe for concurrent use.
type Plugin struct {
	rt      *Runtime
	cfg     PluginConfig
	props   map[string][]byte
	metrics *metricStore

	swapMu   sync.Mutex // one Swap at a time
	mu       sync.RWMutex
	gen      *generation
	closed   bool
	next     atomic.Uint64
	retiring sync.WaitGroup
}

// generation is one version of the plugin: a module, a configuration, its base VM and its
// VMs.
type generation struct {
	version int
	module  *Module
	config  []byte
	base    *baseVM
	vms     []*VM
}

// NewPlugin starts the plugin as Envoy does (canary.go): the base VM of its vm_id, VM
// configuration and module (shared with other plugins of the same), the canary VM that tries
// the configuration first, then cfg.Workers VMs. Any of them failing to start (a trap, a
// false from proxy_on_vm_start, a configuration rejected by proxy_on_configure) fails the
// whole plugin, and the error says which VM and why; a configuration the canary rejects
// never reaches a worker.
func (r *Runtime) NewPlugin(ctx context.Context, m *Module, cfg PluginConfig) (*Plugin, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.AllowOnHeadersStopIteration && !r.profile.headersStopKnob {
		return nil, fmt.Errorf("host: plugin %s: allow_on_headers_stop_iteration is not in the cpp-host of %s (profile %s; Envoy has it from 1.35)", cfg.Name, r.profile.date, r.profile.name)
	}
	p := &Plugin{rt: r, cfg: cfg, props: map[string][]byte{}, metrics: r.metricStoreFor(cfg.Name)}
	for path, val := range cfg.Properties {
		p.props[propertyKey(path)] = append([]byte(nil), val...)
	}
	p.props["plugin_name"] = []byte(cfg.Name)
	p.props["plugin_root_id"] = []byte(cfg.RootID)
	p.props["plugin_vm_id"] = []byte(cfg.VMID)
	gen, err := p.build(ctx, 1, m, cfg.Configuration)
	if err != nil {
		return nil, err
	}
	p.gen = gen
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		p.closeGen(ctx, gen)
		r.releaseBase(ctx, gen.base)
		return nil, fmt.Errorf("host: plugin %s: %w", cfg.Name, errClosed)
	}
	r.plugins[p] = struct{}{}
	return p, nil
}

// build starts a generation: its base VM (acquired), the canary, then the workers. On error
// nothing of it is left running.
func (p *Plugin) build(ctx context.Context, version int, m *Module, config []byte) (*generation, error) {
	base, err := p.acquireBase(ctx, m)
	if err != nil {
		return nil, err
	}
	if err := p.canary(ctx, base, m, config); err != nil {
		p.rt.releaseBase(ctx, base)
		return nil, err
	}
	g := &generation{version: version, module: m, config: config, base: base}
	for i := 0; i < p.cfg.Workers; i++ {
		v, err := p.rt.startVM(ctx, vmSpec{plugin: p, module: m, version: version, worker: i, vmConfig: p.cfg.VMConfig, pluginConfig: config})
		if err != nil {
			p.closeGen(ctx, g)
			p.rt.releaseBase(ctx, base)
			return nil, err
		}
		g.vms = append(g.vms, v)
	}
	return g, nil
}

func (p *Plugin) closeGen(ctx context.Context, g *generation) error {
	var errs []error
	for _, v := range g.vms {
		errs = append(errs, v.Close(ctx))
	}
	return errors.Join(errs...)
}

// Config returns the plugin's configuration as given to NewPlugin.
func (p *Plugin) Config() PluginConfig { return p.cfg }

// Version counts the plugin's versions: 1 after NewPlugin, one more per successful Swap.
func (p *Plugin) Version() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.gen.version
}

// Module returns the module of the current version.
func (p *Plugin) Module() *Module {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.gen.module
}

// Configuration returns the plugin configuration of the current version.
func (p *Plugin) Configuration() []byte {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]byte(nil), p.gen.config...)
}

// VMs returns the current version's VMs, by worker.
func (p *Plugin) VMs() []*VM {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]*VM(nil), p.gen.vms...)
}

// NewStream opens a stream on the current VM of worker (modulo the number of workers). A
// stream stays on the VM it started on even if the plugin is swapped meanwhile.
func (p *Plugin) NewStream(worker int) (*Stream, error) {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return nil, fmt.Errorf("host: plugin %s: %w", p.cfg.Name, errClosed)
	}
	n := len(p.gen.vms)
	v := p.gen.vms[(worker%n+n)%n]
	// Under the read lock, so a Swap cannot retire v before this stream counts.
	counted := v.refs.acquire()
	p.mu.RUnlock()
	if !counted {
		return nil, fmt.Errorf("host: plugin %s: worker %d was retired", p.cfg.Name, worker)
	}
	return v.newStream()
}

// Do runs one whole request (see VM.Do) on the next worker, round robin.
func (p *Plugin) Do(ctx context.Context, req *Request, upstream Upstream) (*Response, error) {
	s, err := p.NewStream(int((p.next.Add(1) - 1) % uint64(p.cfg.Workers)))
	if s == nil {
		return nil, err
	}
	return s.do(ctx, req, upstream, err)
}

// Swap replaces the running version with a new module and/or plugin configuration (nil
// keeps the current one). It starts the new VMs first, with the same vm_id so the shared
// data survives, after the canary (canary.go) accepted the configuration on the base VM of
// the new module (the running one's when the module stays); if one fails (compile errors happen earlier, in Compile; a trap or a
// configuration rejected by proxy_on_configure happen here) the running version stays and
// the error is returned. Otherwise new streams go to the new VMs at once, and each old VM is
// closed once its last stream is closed (see WaitRetired).
func (p *Plugin) Swap(ctx context.Context, m *Module, configuration []byte) error {
	p.swapMu.Lock()
	defer p.swapMu.Unlock()
	p.mu.RLock()
	cur := p.gen
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return fmt.Errorf("host: plugin %s: swap: %w", p.cfg.Name, errClosed)
	}
	if m == nil {
		m = cur.module
	}
	if configuration == nil {
		configuration = cur.config
	}
	next, err := p.build(ctx, cur.version+1, m, configuration)
	if err != nil {
		return fmt.Errorf("host: plugin %s: swap to version %d failed, version %d stays: %w", p.cfg.Name, cur.version+1, cur.version, err)
	}
	p.mu.Lock()
	if p.closed {
		// Close ran while the new VMs were starting: it closed the running version only, so
		// the new one must not be installed (or it would run on, unreachable).
		p.mu.Unlock()
		p.closeGen(ctx, next)
		p.rt.releaseBase(ctx, next.base)
		return fmt.Errorf("host: plugin %s: swap to version %d: %w", p.cfg.Name, cur.version+1, errClosed)
	}
	old := p.gen
	p.gen = next
	p.mu.Unlock()
	p.retire(ctx, old)
	return nil
}

// retire closes each VM of g after its last stream, then lets go of g's base VM.
func (p *Plugin) retire(ctx context.Context, g *generation) {
	ctx = context.WithoutCancel(ctx)
	var closed sync.WaitGroup
	for _, v := range g.vms {
		p.retiring.Add(1)
		closed.Add(1)
		drained := v.refs.retire()
		go func(v *VM) {
			defer p.retiring.Done()
			defer closed.Done()
			<-drained
			v.Close(ctx)
		}(v)
	}
	p.retiring.Add(1)
	go func() {
		defer p.retiring.Done()
		closed.Wait()
		p.rt.releaseBase(ctx, g.base)
	}()
}

// WaitRetired blocks until every VM replaced by Swap has been closed.
func (p *Plugin) WaitRetired() { p.retiring.Wait() }

// Tick calls VM.Tick on every current VM.
func (p *Plugin) Tick(ctx context.Context) error {
	var errs []error
	for _, v := range p.VMs() {
		_, err := v.Tick(ctx)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Metrics returns the plugin's metrics: one value per name and type, shared by all its VMs
// and versions as Envoy's stats are (a counter is the sum of every VM's increments).
func (p *Plugin) Metrics() []Metric { return p.metrics.snapshot() }

// Logs returns the current VMs' captured log lines, worker by worker.
func (p *Plugin) Logs() []LogEntry {
	var out []LogEntry
	for _, v := range p.VMs() {
		out = append(out, v.Logs()...)
	}
	return out
}

// Close closes the plugin's current VMs without waiting for their open streams (as Envoy
// drops a VM). VMs retired by Swap still close after their last stream.
func (p *Plugin) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	g := p.gen
	p.mu.Unlock()
	err := errors.Join(p.closeGen(ctx, g), p.rt.releaseBase(ctx, g.base))
	p.rt.mu.Lock()
	delete(p.rt.plugins, p)
	p.rt.mu.Unlock()
	return err
}
