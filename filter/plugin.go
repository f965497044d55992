package main

import (
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/core"
	"github.com/usageplans/usageplans/filter/global"
)

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

// pluginContext holds the configuration in force. proxy_on_configure replaces it only when
// the new one is valid: a rejected configuration leaves the previous one serving.
type pluginContext struct {
	types.DefaultPluginContext
	cfg     *config.Config
	metrics *metrics
	decider core.Decider // one per VM: a VM runs one callback at a time
	logBuf  []byte       // the decision log line being built; reused, like decider
	quota   global.Quota // global mode's decisions, one per VM like decider
	gm      globalMetrics
}

func (p *pluginContext) OnPluginStart(int) (status types.OnPluginStartStatus) {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogCriticalf("usageplans %s: configuration rejected: panic: %v", version, r)
			status = types.OnPluginStartStatusFailed
		}
	}()
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("usageplans %s: configuration rejected: reading it: %v", version, err)
		return types.OnPluginStartStatusFailed
	}
	if !p.configure(data) {
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

// configure parses data and, when it is valid, puts it in force; otherwise it logs every
// problem and leaves the configuration in force (if any) unchanged.
func (p *pluginContext) configure(data []byte) bool {
	cfg, err := config.Parse(data)
	if err != nil {
		// Every problem, one log line each, so that Envoy's log shows the whole list.
		lines := strings.Split(err.Error(), "\n")
		proxywasm.LogCriticalf("usageplans %s: configuration rejected: %d problem(s)", version, len(lines))
		for _, l := range lines {
			proxywasm.LogCriticalf("usageplans: config: %s", l)
		}
		configRejected()
		return false
	}
	if cfg.Global != nil && !checkGlobal(cfg) {
		configRejected()
		return false
	}
	p.cfg = cfg
	p.metrics = newMetrics(cfg)
	startUsageReport(cfg)
	if cfg.Global != nil {
		p.gm = newGlobalMetrics()
	}
	proxywasm.LogInfof("usageplans %s: configuration accepted: %d plan(s), %d key(s), %d route(s), shadow=%t, failure policy %s",
		version, len(cfg.Plans), len(cfg.Keys), len(cfg.Routes), cfg.ShadowMode, cfg.FailurePolicy)
	return true
}

func (p *pluginContext) NewHttpContext(contextID uint32) types.HttpContext {
	return &httpContext{plugin: p, cfg: p.cfg, metrics: p.metrics}
}
