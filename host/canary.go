package host

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
)

// How a plugin's VMs come to be, as proxy-wasm-cpp-host's createWasm and
// getOrCreateThreadLocalPlugin (src/wasm.cc, same at commits c4d7bb0 of 2024-12-19 and
// 52a0291 of 2026-07-01) start them in Envoy:
//
//  1. The base VM. One per vm_key (vm_id, VM configuration, code), shared by every plugin
//     that has that key and kept while one of them lives (cpp-host's base_wasms). It only
//     runs the module's start functions (_initialize, main), restricted; it never gets a root
//     context. It holds the vm_id's shared data, as the base WasmBase holds cpp-host's
//     vm_id handle.
//  2. The canary (WasmHandleBase::canary), once per plugin key (root_id and configuration)
//     and base: a throw-away VM runs _initialize, proxy_on_context_create, proxy_on_vm_start
//     and proxy_on_configure, and is then dropped without proxy_on_done or proxy_on_delete
//     (a handle killed on success, a failed VM on rejection). Its shared-data writes stay (the
//     store is the vm_id's) and so do the metrics it defined (the plugin's). A configuration
//     it rejects (proxy_on_configure false or a trap there) is remembered and refused again
//     without a canary; one it accepted is not tried again.
//  3. The workers: each a VM of its own running the whole start sequence (vm.go's boot).
//
// So with N workers the guest sees N+2 _initialize and N+1 proxy_on_vm_start and
// proxy_on_configure calls for a plugin's first configuration.
//
// Where this host differs: cpp-host's plugin key also holds a key Envoy supplies, and its
// vm_key holds no environment; here the base key includes PluginConfig.Env, so every VM's
// environ is its own plugin's, and its code is the compiled Module, not a digest. Plugin.Swap always starts new worker VMs, where Envoy keeps a
// worker's VM for a change of plugin configuration alone (same vm_key) and gives it a new
// root context instead (VM.Configure is that step).

// baseKey is cpp-host's vm_key (makeVmKey: vm_id, VM configuration, code), with the
// environment. The code is the compiled Module rather than its digest, so that a Module's
// code is released when its own VMs are gone (Module.Close) even if the same bytes were
// compiled again.
type baseKey struct {
	vmID     string
	vmConfig [32]byte
	code     *Module
	env      [32]byte
}

// baseVM is one base VM and its canary verdicts (cpp-host's plugin_canary_cache_).
type baseVM struct {
	key  baseKey
	vm   *VM
	refs int // plugin generations using it, under Runtime.basesMu

	mu       sync.Mutex        // one canary at a time; guards verdicts
	verdicts map[[32]byte]bool // plugin key digest -> accepted
}

func envDigest(env [][2]string) [32]byte {
	h := sha256.New()
	for _, kv := range env {
		fmt.Fprintf(h, "%d:%s%d:%s", len(kv[0]), kv[0], len(kv[1]), kv[1])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// acquireBase returns the base VM of the plugin's vm_key for module m, starting it (and its
// start functions) when no plugin generation holds one. Envoy fails the configuration when
// the base VM fails to start, and so does the caller.
func (p *Plugin) acquireBase(ctx context.Context, m *Module) (*baseVM, error) {
	r := p.rt
	key := baseKey{vmID: p.cfg.VMID, vmConfig: sha256.Sum256(p.cfg.VMConfig), code: m, env: envDigest(p.cfg.Env)}
	// Held while the base starts, as cpp-host holds base_wasms_mutex through load and
	// initialize: a second plugin of the same key waits and shares it.
	r.basesMu.Lock()
	defer r.basesMu.Unlock()
	if b := r.bases[key]; b != nil {
		b.refs++
		return b, nil
	}
	v, err := r.instantiateVM(ctx, vmSpec{plugin: p, module: m, worker: WorkerBase, vmConfig: p.cfg.VMConfig})
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	err = v.startModule()
	delete(v.roots, rootContextID) // the base never gets a root context
	if err != nil {
		v.closeLocked(ctx)
		v.mu.Unlock()
		return nil, fmt.Errorf("host: plugin %s: the base VM failed to start (Envoy: \"Failed to initialize Wasm code\"): %w", p.cfg.Name, err)
	}
	v.mu.Unlock()
	b := &baseVM{key: key, vm: v, refs: 1, verdicts: map[[32]byte]bool{}}
	r.bases[key] = b
	return b, nil
}

// releaseBase drops a generation's hold on b and closes it with the last one.
func (r *Runtime) releaseBase(ctx context.Context, b *baseVM) error {
	if b == nil {
		return nil
	}
	r.basesMu.Lock()
	b.refs--
	last := b.refs == 0
	if last {
		delete(r.bases, b.key)
	}
	r.basesMu.Unlock()
	if !last {
		return nil
	}
	return b.vm.Close(ctx)
}

// canary tries configuration on a throw-away VM of module m (step 2 above) unless b already
// has a verdict for it. It returns nil when the configuration may go to the workers.
func (p *Plugin) canary(ctx context.Context, b *baseVM, m *Module, configuration []byte) error {
	key := sha256.Sum256(append([]byte(p.cfg.RootID+"||"), configuration...))
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok, seen := b.verdicts[key]; seen {
		if ok {
			return nil
		}
		return fmt.Errorf("host: plugin %s: the canary VM rejected this configuration before (Envoy keeps the verdict): no worker VM was started", p.cfg.Name)
	}
	v, err := p.rt.instantiateVM(ctx, vmSpec{plugin: p, module: m, worker: WorkerCanary, vmConfig: p.cfg.VMConfig, pluginConfig: configuration})
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	defer v.killLocked(ctx)
	fail := func(err error) error {
		return fmt.Errorf("host: plugin %s: the canary VM rejected the configuration, no worker VM was started: %w", p.cfg.Name, err)
	}
	if err := v.startModule(); err != nil {
		return fail(err)
	}
	if err := v.startRootLocked(p.cfg.VMConfig, configuration); err != nil {
		return fail(err)
	}
	if err := v.configureLocked(rootContextID, configuration); err != nil {
		b.verdicts[key] = false
		return fail(err)
	}
	b.verdicts[key] = true
	return nil
}

// killLocked drops the VM without calling into it again, as cpp-host drops its canary: no
// proxy_on_done or proxy_on_delete for its root context; the rest as closeLocked.
func (v *VM) killLocked(ctx context.Context) error {
	clear(v.roots)
	return v.closeLocked(ctx)
}
