package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/usageplans/usageplans/filter/usage"
)

// startUsageReport sets the tick period the usage report needs: its interval, or no ticks.
func startUsageReport(seconds int) {
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(seconds) * 1000); err != nil {
		proxywasm.LogWarnf("usageplans: usage report: setting the tick period: %v", err)
	}
}

// OnTick writes the periodic usage report (usageLogSeconds): one worker's VM writes each
// interval's, the first to claim it in shared data.
func (p *pluginContext) OnTick() {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogErrorf("usageplans: usage report: panic: %v", r)
		}
	}()
	cfg := p.cfg
	if cfg == nil || cfg.UsageLogSeconds == 0 {
		return
	}
	t := now()
	ok, err := usage.ClaimReport(sharedData{}, cfg.Namespace, t.Unix()/int64(cfg.UsageLogSeconds))
	if err == nil && ok {
		err = usage.Report(cfg, usage.Local{Store: sharedData{}}, t, proxywasm.LogInfo)
	}
	if err != nil {
		proxywasm.LogWarnf("usageplans: usage report: %v", err)
	}
}
