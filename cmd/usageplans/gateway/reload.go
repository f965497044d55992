package gateway

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/usageplans/usageplans/host"
)

// ReloadResult says what a reload did.
type ReloadResult struct {
	// Changed is false when the files held what already serves (nothing was swapped).
	Changed bool
	// Version is the plugin version serving after the reload: the new one on success, the
	// old one when the reload failed or changed nothing.
	Version       int
	ModuleChanged bool
	ConfigChanged bool
	ModuleSHA256  string
	ConfigSHA256  string
}

// Reload re-reads the --wasm and --config files and, when either changed, swaps the plugin
// to them: new VMs with the same vm_id take new requests, in-flight requests finish on the
// old ones, shared data survives. A module that does not compile or a configuration the
// filter rejects leaves the running version serving; the error says why, and is logged and
// counted (gateway.reload.failure). With unchanged files, a reload still replaces the VMs
// when one of them failed (a trap). reason is for the log ("SIGHUP", "POST /reload", ...).
func (g *Gateway) Reload(ctx context.Context, reason string) (ReloadResult, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	start := time.Now()
	cur := g.active()
	res := ReloadResult{Version: cur.n, ModuleSHA256: cur.wasmSHA256, ConfigSHA256: cur.configSHA256}
	fail := func(err error) (ReloadResult, error) {
		g.stats.reloadFailed.Add(1)
		err = fmt.Errorf("reload (%s) failed, version %d keeps serving: %w", reason, cur.n, err)
		g.logf("%v", err)
		return res, err
	}
	if g.draining.Load() {
		return fail(fmt.Errorf("the gateway is shutting down"))
	}
	wasm, err := os.ReadFile(g.opts.Wasm)
	if err != nil {
		return fail(fmt.Errorf("--wasm: %w", err))
	}
	cfg, err := os.ReadFile(g.opts.Config)
	if err != nil {
		return fail(fmt.Errorf("--config: %w", err))
	}
	wd, cd := digest(wasm), digest(cfg)
	res.ModuleChanged, res.ConfigChanged = wd != cur.wasmSHA256, cd != cur.configSHA256
	failed := g.failedVMs()
	if !res.ModuleChanged && !res.ConfigChanged && failed == 0 {
		g.stats.reloadUnchanged.Add(1)
		g.logf("reload (%s): module and configuration unchanged, version %d keeps serving", reason, cur.n)
		return res, nil
	}
	var m *host.Module
	if res.ModuleChanged {
		if m, err = g.rt.Compile(ctx, wasm); err != nil {
			return fail(fmt.Errorf("--wasm %s: %w", g.opts.Wasm, err))
		}
	}
	var newCfg []byte
	if res.ConfigChanged {
		newCfg = cfg
	}
	if err := g.plugin.Swap(ctx, m, newCfg); err != nil {
		if m != nil {
			m.Close(context.WithoutCancel(ctx))
		}
		return fail(err)
	}
	next := (&active{n: g.plugin.Version(), module: cur.module, wasmSHA256: wd, config: cfg,
		configSHA256: cd, loaded: time.Now()}).withNames(cfg)
	if m != nil {
		next.module = m
		// The old module's code is released once the VMs it still runs have drained
		// (host.Module.Close waits for its last VM).
		cur.module.Close(context.WithoutCancel(ctx))
	}
	g.cur.Store(next)
	g.stats.reloadOK.Add(1)
	res.Changed, res.Version, res.ModuleSHA256, res.ConfigSHA256 = true, next.n, wd, cd
	what := "module and configuration"
	switch {
	case !res.ConfigChanged && !res.ModuleChanged:
		what = fmt.Sprintf("VMs for the %d that had failed", failed)
	case !res.ConfigChanged:
		what = "module"
	case !res.ModuleChanged:
		what = "configuration"
	}
	g.logf("reload (%s): swapped to version %d in %v (new %s; module sha256 %s, configuration sha256 %s); version %d finishes its in-flight requests",
		reason, next.n, time.Since(start).Round(time.Millisecond), what, short(wd), short(cd), cur.n)
	return res, nil
}

// failedVMs counts the serving VMs that a trap failed: they answer 503 (Envoy's
// FAIL_CLOSED) until a reload replaces them, even with unchanged files.
func (g *Gateway) failedVMs() int {
	n := 0
	for _, v := range g.plugin.VMs() {
		if v.Failed() != nil {
			n++
		}
	}
	return n
}

// fileStamp is what the watcher compares: a change of size, modification time or inode.
type fileStamp struct {
	size    int64
	modTime time.Time
	inode   uint64
	exists  bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime(), inode: inode(fi), exists: true}
}

// watch reloads when --wasm or --config changed and then stayed the same for one interval,
// so that a file still being written is not loaded half-way.
// last holds the stamps of the files as first loaded.
func (g *Gateway) watch(interval time.Duration, last [2]fileStamp) {
	defer g.background.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	stamps := func() [2]fileStamp { return [2]fileStamp{stampOf(g.opts.Wasm), stampOf(g.opts.Config)} }
	settling := false
	for {
		select {
		case <-g.stopWatch:
			return
		case <-t.C:
		}
		now := stamps()
		if now != last {
			last, settling = now, true
			continue
		}
		if settling && now[0].exists && now[1].exists {
			settling = false
			// The outcome is logged and counted by Reload.
			_, _ = g.Reload(context.Background(), "file change")
		}
	}
}
