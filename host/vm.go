package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// rootContextID is the id of the VM's first root (plugin) context. Like proxy-wasm-cpp-host,
// ids come from one counter per VM; the first root context takes the first, streams and the
// root contexts of later configurations (VM.Configure) the next ones.
const rootContextID = 1

// rootContext is one live root context of a VM: one per plugin configuration, as cpp-host
// keys root contexts by plugin (root_id, configuration, ...).
type rootContext struct {
	streams int // open streams created under it
}

// VM is one instance of a module: one Envoy worker's copy of the plugin, with its root context
// and its streams. Every call into the guest holds the VM's mutex, so a VM is safe for
// concurrent use and never runs two callbacks at once.
type VM struct {
	rt      *Runtime
	plugin  *Plugin
	module  *Module
	version int // the plugin version this VM belongs to (Plugin.Version)
	worker  int
	label   string // "<plugin> <vm_id>#<worker>" for logs and errors
	ctx     context.Context
	mod     api.Module
	mem     api.Memory
	fns     guestFuncs

	allocStack [1]uint64
	callStack  [16]uint64

	// mu serialises guest calls; the fields below it are guarded by it.
	mu           sync.Mutex
	nextID       uint32
	root         uint32                  // the root context new streams are created under
	roots        map[uint32]*rootContext // live root contexts, by id
	streams      map[uint32]*Stream
	current      uint32 // context id of the running callback
	effective    uint32 // set by proxy_set_effective_context for the rest of the callback
	failed       error
	closed       bool
	vmConfig     []byte
	pluginConfig []byte
	configuring  bool // proxy_on_vm_start or proxy_on_configure is running
	restricted   restriction
	tickPeriod   time.Duration
	lastTick     time.Time    // on the Runtime's clock
	output       bytes.Buffer // guest output of the current top-level call, for errors
	afterCall    []func()     // work Envoy defers until the VM call returns
	callDepth    int
	http         httpCalls
	callResp     *httpCallResponse // set while proxy_on_http_call_response runs
	metricIDs    vmMetrics

	logMu sync.Mutex
	logs  []LogEntry // ring of the last Options.LogCapacity entries
	logAt int

	failedOut  atomic.Pointer[error] // &failed once set, for Failed without the lock
	wasiCounts [wasiFuncCount]atomic.Uint64
	calls      callCounts // env host calls and allocation re-entries (calls.go)
	refs       streamRefs // open streams, so a swapped-out VM closes after the last
}

type guestFuncs struct {
	initialize, main, mainVoid, start, alloc, contextCreate, vmStart, configure, tick, done, log, delete,
	requestHeaders, requestBody, requestTrailers, responseHeaders, responseBody,
	responseTrailers, httpCallResponse api.Function
}

// vmSpec is what a VM needs to start.
type vmSpec struct {
	plugin       *Plugin
	module       *Module
	version      int
	worker       int // WorkerBase, WorkerCanary, or the worker's index
	vmConfig     []byte
	pluginConfig []byte
}

// The Worker of the two VMs that are no worker's (canary.go): cpp-host's base VM, which only
// runs the module's start functions, and the throw-away canary that tries a configuration
// first. Their log lines carry these values in LogEntry.Worker.
const (
	WorkerBase   = -1
	WorkerCanary = -2
)

// vmLabel is "<plugin> <vm_id>#<worker>", with "base" and "canary" for those VMs.
func vmLabel(plugin, vmID string, worker int) string {
	switch worker {
	case WorkerBase:
		return plugin + " " + vmID + "#base"
	case WorkerCanary:
		return plugin + " " + vmID + "#canary"
	}
	return fmt.Sprintf("%s %s#%d", plugin, vmID, worker)
}

// startVM starts a worker's VM: instantiate, then Envoy's start sequence (boot).
func (r *Runtime) startVM(ctx context.Context, s vmSpec) (*VM, error) {
	v, err := r.instantiateVM(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := v.boot(s.vmConfig, s.pluginConfig); err != nil {
		v.closeLocked(ctx)
		return nil, err
	}
	return v, nil
}

// instantiateVM instantiates the module for a VM without calling into it. The VM has one
// root context id reserved (rootContextID) that boot creates in the guest.
func (r *Runtime) instantiateVM(ctx context.Context, s vmSpec) (*VM, error) {
	p := s.plugin
	v := &VM{
		rt:      r,
		plugin:  p,
		module:  s.module,
		version: s.version,
		worker:  s.worker,
		label:   vmLabel(p.cfg.Name, p.cfg.VMID, s.worker),
		nextID:  rootContextID + 1,
		root:    rootContextID,
		roots:   map[uint32]*rootContext{rootContextID: {}},
		streams: map[uint32]*Stream{},
		calls:   newCallCounts(),
	}
	v.ctx = context.WithValue(context.Background(), vmKey{}, v)
	v.metricIDs.init()
	// The host's WASI functions (wasi_funcs.go) read the Runtime's clock and write through
	// the VM's log; nothing here reaches wazero's own WASI.
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	if !s.module.acquireVM() {
		return nil, fmt.Errorf("host: %s: module %.12s was closed", v.label, s.module.digest)
	}
	// The shared-data store of the vm_id lives as long as one VM of it does.
	r.shared.acquire(p.cfg.VMID)
	mod, err := r.wz.InstantiateModule(v.ctx, s.module.compiled, mc)
	if err != nil {
		r.shared.release(p.cfg.VMID)
		s.module.releaseVM(ctx)
		return nil, fmt.Errorf("host: %s: instantiate: %w", v.label, err)
	}
	v.mod = mod
	v.mem = mod.Memory()
	f := func(name string) api.Function { return mod.ExportedFunction(name) }
	v.fns = guestFuncs{
		initialize: f("_initialize"), main: f("main"), mainVoid: f("__main_void"), start: f("_start"), alloc: f("proxy_on_memory_allocate"),
		contextCreate: f("proxy_on_context_create"), vmStart: f("proxy_on_vm_start"),
		configure: f("proxy_on_configure"), tick: f("proxy_on_tick"), done: f("proxy_on_done"),
		log: f("proxy_on_log"), delete: f("proxy_on_delete"),
		requestHeaders: f("proxy_on_request_headers"), requestBody: f("proxy_on_request_body"),
		requestTrailers: f("proxy_on_request_trailers"), responseHeaders: f("proxy_on_response_headers"),
		responseBody: f("proxy_on_response_body"), responseTrailers: f("proxy_on_response_trailers"),
		httpCallResponse: f("proxy_on_http_call_response"),
	}
	return v, nil
}

// boot runs Envoy's start sequence: _initialize, the root context, vm start, configure.
func (v *VM) boot(vmConfig, pluginConfig []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.startModule(); err != nil {
		return err
	}
	if err := v.startRootLocked(vmConfig, pluginConfig); err != nil {
		return err
	}
	return v.configureLocked(rootContextID, pluginConfig)
}

// startRootLocked creates the first root context in the guest and starts it, as cpp-host's
// WasmBase::start and ContextBase::onStart: proxy_on_context_create(root, 0), then
// proxy_on_vm_start(root, len(vm configuration)); false there fails the VM's start.
func (v *VM) startRootLocked(vmConfig, pluginConfig []byte) error {
	if _, err := v.call(v.fns.contextCreate, "proxy_on_context_create", rootContextID, rootContextID, 0); err != nil {
		return err
	}
	v.vmConfig = vmConfig
	v.pluginConfig = pluginConfig // Envoy's temp_plugin_ is set for vm start too
	v.configuring = true
	ok, err := v.call(v.fns.vmStart, "proxy_on_vm_start", rootContextID, rootContextID, uint64(len(vmConfig)))
	v.configuring = false
	if err != nil {
		return err
	}
	if v.fns.vmStart != nil && uint32(ok) == 0 {
		return fmt.Errorf("host: %s: proxy_on_vm_start returned false: the VM failed to start%s", v.label, v.outputSuffix())
	}
	return nil
}

// startModule runs the module's start functions as cpp-host's WasmBase::startVm does, with
// host calls restricted under V8 (see restrict.go): a WASI reactor's _initialize, then its
// main(0, 0) if it exports one, else (from the cpp-host of 2026) its __main_void(); a module
// without _initialize has its _start (a WASI command) called instead. A module with neither
// starts without a call.
func (v *VM) startModule() error {
	saved := v.enter(restrictStart)
	defer func() { v.restricted = saved }()
	if v.fns.initialize != nil {
		if _, err := v.call(v.fns.initialize, "_initialize", 0); err != nil {
			return err
		}
		if v.fns.main == nil && v.rt.profile.mainVoid {
			_, err := v.call(v.fns.mainVoid, "__main_void", 0)
			return err
		}
		_, err := v.call(v.fns.main, "main", 0, 0, 0)
		return err
	}
	_, err := v.call(v.fns.start, "_start", 0)
	return err
}

// Configure gives the running VM a new plugin configuration as Envoy does when a plugin's
// configuration changes while its VM (same vm_id, VM configuration and code) keeps running:
// cpp-host keys root contexts by plugin, so the new configuration gets a NEW root context
// (WasmBase::start, then configure: proxy_on_context_create(newRootID, 0),
// proxy_on_vm_start(newRootID, len(vm configuration)) as ContextBase::onStart does for every
// root context, proxy_on_configure(newRootID, len(configuration))). When vm start or configure
// returns false the configuration is rejected: the new root context gets proxy_on_done and
// proxy_on_delete, the error says why with the guest's output, and the previous root context
// keeps serving. Otherwise new streams are created under the new root context, and the
// previous one gets proxy_on_done and proxy_on_delete once its last stream closed (Envoy
// shuts a plugin's root context down when its last filter chain drains).
//
// Envoy first tries a new configuration on a throw-away clone of the VM (the canary) and
// never sends a rejected one to the workers' VMs; Configure is the worker-side step, so a
// rejection here is what the canary would have reported. Plugin.Swap is the plugin-wide,
// all-or-nothing form with new VMs; a VM configured directly no longer matches
// Plugin.Configuration.
func (v *VM) Configure(ctx context.Context, pluginConfig []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.usableLocked(); err != nil {
		return err
	}
	id := v.nextID
	v.nextID++
	v.roots[id] = &rootContext{}
	if _, err := v.call(v.fns.contextCreate, "proxy_on_context_create", id, uint64(id), 0); err != nil {
		return err
	}
	previous := v.pluginConfig
	v.pluginConfig = pluginConfig
	v.configuring = true
	ok, err := v.call(v.fns.vmStart, "proxy_on_vm_start", id, uint64(id), uint64(len(v.vmConfig)))
	v.configuring = false
	v.pluginConfig = previous
	if err != nil {
		return err
	}
	if v.fns.vmStart != nil && uint32(ok) == 0 {
		err := fmt.Errorf("host: %s: proxy_on_vm_start returned false on the new root context %d: the plugin configuration was rejected%s", v.label, id, v.outputSuffix())
		v.endRootLocked(id)
		return err
	}
	if err := v.configureLocked(id, pluginConfig); err != nil {
		if v.failed == nil {
			v.endRootLocked(id)
		}
		return err
	}
	old := v.root
	v.root = id
	if v.roots[old] != nil && v.roots[old].streams == 0 {
		v.endRootLocked(old)
	}
	return nil
}

// endRootLocked ends a root context as cpp-host's startShutdown does: proxy_on_done, then
// proxy_on_delete (this host does not wait when proxy_on_done returns false).
func (v *VM) endRootLocked(id uint32) {
	delete(v.roots, id)
	if v.failed != nil {
		return
	}
	if _, err := v.call(v.fns.done, "proxy_on_done", id, uint64(id)); err != nil {
		return
	}
	v.call(v.fns.delete, "proxy_on_delete", id, uint64(id))
}

// rootOf returns the root context of context id: itself for a root context, a stream's
// root, else the current root.
func (v *VM) rootOf(id uint32) uint32 {
	if v.roots[id] != nil {
		return id
	}
	if s := v.streams[id]; s != nil {
		return s.root
	}
	return v.root
}

func (v *VM) configureLocked(root uint32, pluginConfig []byte) error {
	previous := v.pluginConfig
	v.pluginConfig = pluginConfig
	v.configuring = true
	ok, err := v.call(v.fns.configure, "proxy_on_configure", root, uint64(root), uint64(len(pluginConfig)))
	v.configuring = false
	if err != nil {
		return err
	}
	if v.fns.configure != nil && uint32(ok) == 0 {
		if previous != nil {
			v.pluginConfig = previous
		}
		return fmt.Errorf("host: %s: proxy_on_configure returned false: the plugin configuration was rejected%s", v.label, v.outputSuffix())
	}
	return nil
}

func (v *VM) outputSuffix() string {
	if v.output.Len() == 0 {
		return " (the guest logged nothing)"
	}
	return "; guest output:\n" + v.output.String()
}

// call invokes a guest export with the VM's lock held. ctxID is the context the callback runs
// for (0 for _initialize); a missing export is a no-op returning 0, as in cpp-host. A trap
// fails the VM (FAIL_CLOSED) and is returned with the guest's output.
func (v *VM) call(fn api.Function, name string, ctxID uint32, args ...uint64) (uint64, error) {
	if fn == nil {
		return 0, nil
	}
	if v.failed != nil {
		return 0, v.failed
	}
	outer := v.callDepth == 0
	if outer {
		v.output.Reset()
	}
	savedCurrent, savedEffective := v.current, v.effective
	v.current, v.effective = ctxID, 0
	v.callDepth++
	stack := v.callStack[:]
	copy(stack, args)
	err := fn.CallWithStack(v.ctx, stack)
	v.callDepth--
	v.current, v.effective = savedCurrent, savedEffective
	if err != nil {
		v.failed = fmt.Errorf("host: %s: %s trapped, VM failed: %w%s", v.label, name, err, v.outputSuffix())
		v.failedOut.Store(&v.failed)
		v.afterCall = nil
		v.failStreamsLocked()
		return 0, v.failed
	}
	res := stack[0]
	if outer {
		for len(v.afterCall) > 0 && v.failed == nil {
			f := v.afterCall[0]
			v.afterCall = v.afterCall[1:]
			f()
		}
	}
	return res, nil
}

// failStreamsLocked gives every open stream the FAIL_CLOSED 503 and wakes its waiter: once
// the VM failed or closed no callback can continue a paused stream, so none may wait on.
func (v *VM) failStreamsLocked() {
	for _, s := range v.streams {
		s.failClosed()
	}
}

func (v *VM) usableLocked() error {
	if v.closed {
		return fmt.Errorf("host: %s: VM is closed", v.label)
	}
	return v.failed
}

// Version is the plugin version (see Plugin.Version) this VM was started for: it tells an
// embedder which version answered a stream, even when a Swap happened meanwhile.
func (v *VM) Version() int { return v.version }

// Failed returns the error that failed the VM (a trap), or nil while it is healthy. It takes
// no lock, so a metrics scrape never waits behind the VM's calls.
func (v *VM) Failed() error {
	if p := v.failedOut.Load(); p != nil {
		return *p
	}
	return nil
}

// Worker is the VM's index among its plugin's workers.
func (v *VM) Worker() int { return v.worker }

// Module is the module the VM runs.
func (v *VM) Module() *Module { return v.module }

// PluginConfiguration returns the plugin configuration in force (the last one accepted).
func (v *VM) PluginConfiguration() []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]byte(nil), v.pluginConfig...)
}

// MemoryPages is the guest's linear memory size in 64 KiB pages.
func (v *VM) MemoryPages() uint32 { return v.mem.Size() / 65536 }

// Closed reports whether the VM was closed (by Close, Plugin.Close, or retirement after a
// Swap).
func (v *VM) Closed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closed
}

// Close ends the VM as Envoy shuts a VM down: a healthy VM's root context gets
// proxy_on_done and proxy_on_delete (the SDK's OnPluginDone; this host does not wait when it
// returns false), pending HTTP calls are cancelled, open streams are dropped without
// callbacks (each gets the FAIL_CLOSED 503, so a paused one stops waiting), and when it is
// the vm_id's last VM its shared data is erased.
func (v *VM) Close(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closeLocked(ctx)
}

func (v *VM) closeLocked(ctx context.Context) error {
	if v.closed {
		return nil
	}
	// Every live root context ends, oldest first, as in cpp-host's startShutdown.
	ids := make([]uint32, 0, len(v.roots))
	for id := range v.roots {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		v.endRootLocked(id)
	}
	v.closed = true
	v.failStreamsLocked()
	v.http.cancelAll()
	err := v.mod.Close(ctx)
	v.rt.shared.release(v.plugin.cfg.VMID)
	v.module.releaseVM(ctx)
	return err
}

// context resolution, as cpp-host's ContextOrEffectiveContext: the effective context when
// one is set and still exists, else the context of the running callback.
func (v *VM) contextID() uint32 {
	if v.effective != 0 {
		if v.roots[v.effective] != nil || v.streams[v.effective] != nil {
			return v.effective
		}
	}
	return v.current
}

// stream returns the stream of the resolved context, nil for the root context.
func (v *VM) stream() *Stream { return v.streams[v.contextID()] }

var errClosed = errors.New("host: closed")

// streamRefs counts a VM's open streams. Once the VM is retired (swapped out) it takes no
// new stream, and drained is closed when the last one closes.
type streamRefs struct {
	mu      sync.Mutex
	n       int
	retired bool
	drained chan struct{}
}

func (r *streamRefs) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired {
		return false
	}
	r.n++
	return true
}

func (r *streamRefs) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n--
	if r.n == 0 && r.retired {
		close(r.drained)
	}
}

// retire stops new streams and returns a channel closed once the open ones are gone.
func (r *streamRefs) retire() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.retired {
		r.retired = true
		r.drained = make(chan struct{})
		if r.n == 0 {
			close(r.drained)
		}
	}
	return r.drained
}
