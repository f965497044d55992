package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/usage"
)

// flushSeconds is the tick period of global mode: each second one worker of the proxy
// sends RLS the usage its keys admitted and have not sent with a call of their own.
const flushSeconds = 1

// startUsageReport sets the tick period the configuration needs: the usage report's
// interval, global mode's flush (the shorter), or no ticks.
func startUsageReport(cfg *config.Config) {
	seconds := cfg.UsageLogSeconds
	if cfg.Global != nil {
		seconds = flushSeconds
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(seconds) * 1000); err != nil {
		proxywasm.LogWarnf("usageplans: usage report: setting the tick period: %v", err)
	}
}

// OnTick writes the periodic usage report (usageLogSeconds): one worker's VM writes each
// interval's, the first to claim it in shared data; in global mode it also flushes the
// proxy's unsent usage (flushUsage).
func (p *pluginContext) OnTick() {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogErrorf("usageplans: usage report: panic: %v", r)
		}
	}()
	cfg := p.cfg
	if cfg == nil {
		return
	}
	t := now()
	if cfg.Global != nil {
		p.flushUsage(cfg, t.Unix())
	}
	if cfg.UsageLogSeconds == 0 {
		return
	}
	ok, err := usage.ClaimReport(sharedData{}, cfg.Namespace, t.Unix()/int64(cfg.UsageLogSeconds))
	if err == nil && ok {
		err = usage.Report(cfg, usage.Local{Store: sharedData{}}, t, proxywasm.LogInfo)
	}
	if err != nil {
		proxywasm.LogWarnf("usageplans: usage report: %v", err)
	}
}

// flushUsage sends, once a second per proxy (the worker that claims the second), the usage
// that keys admitted and no call of theirs carried yet (the last requests of a key gone
// quiet), so that the fleet's per-day usage in RLS catches up within about a second.
func (p *pluginContext) flushUsage(cfg *config.Config, unix int64) {
	ok, err := usage.ClaimInterval(sharedData{}, cfg.Namespace+":global-flush", unix/flushSeconds)
	if err != nil || !ok {
		return
	}
	f, err := p.quota.BeginFlush(cfg, sharedData{})
	if err != nil {
		p.gm.inc(p.gm.stateErrors)
		proxywasm.LogWarnf("usageplans: global: usage flush: %v", err)
	}
	if f == nil {
		return
	}
	p.gm.inc(p.gm.flushes)
	g := cfg.Global
	finish := func(a global.Answer) {
		lost, err := p.quota.FinishFlush(cfg, f, a, sharedData{})
		if err != nil {
			p.gm.inc(p.gm.stateErrors)
			proxywasm.LogWarnf("usageplans: global: usage flush: %v", err)
		}
		p.usageLost(lost, "a usage flush")
	}
	_, err = proxywasm.DispatchHttpCall(g.Cluster, rls.Headers(g.Cluster), f.Body, nil, g.TimeoutMS, func(_, bodySize, _ int) {
		defer func() {
			if r := recover(); r != nil {
				proxywasm.LogErrorf("usageplans: global: panic reading a usage flush's answer: %v", r)
			}
		}()
		finish(readAnswer(bodySize))
	})
	if err != nil {
		finish(global.Answer{Failed: true})
	}
}

// usageLost counts admitted requests that will never be in the fleet's usage (a call that
// carried them got no answer), and says so without naming a key.
func (p *pluginContext) usageLost(n int64, what string) {
	if n <= 0 {
		return
	}
	p.gm.add(p.gm.usageLost, n)
	proxywasm.LogWarnf("usageplans: global: %d admitted request(s) left out of the fleet's usage: %s got no answer from RLS, and RLS has no idempotency (usageplans.global.usage_lost)", n, what)
}
