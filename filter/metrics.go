package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/usageplans/usageplans/filter/config"
)

// outcome is what happened to one request the filter decided: exactly one per request, and
// the same name in the log line (outcome=), the filter state (usageplans_outcome) and the
// metrics (usageplans.requests.<outcome>). Why it happened is the log line's reason; the
// causes worth counting (cas_exhausted, giveback_failed) are counters of their own, next to
// the request's outcome and never instead of it.
type outcome uint8

const (
	outcomeAllowed outcome = iota
	outcomeForbidden
	outcomeThrottled
	outcomeQuotaExceeded
	outcomeShadowDenied // shadow mode: would have been rejected, was let through
	outcomeFailure      // a state or internal failure (including a recovered panic); the failure policy answered it
	outcomeUnmatched    // no resource/method matched and the configuration denies that
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"allowed", "forbidden", "throttled", "quota_exceeded", "shadow_denied", "failure", "unmatched",
}

func (o outcome) String() string { return outcomeNames[o] }

// outcomeBytes are outcomeNames as bytes, for the filter state without an allocation.
var outcomeBytes = func() (b [numOutcomes][]byte) {
	for o := range numOutcomes {
		b[o] = []byte(outcomeNames[o])
	}
	return b
}()

// metrics are Envoy-style counters: usageplans.requests.<outcome> for every request the
// filter decided, and usageplans.plan.<plan id>.<outcome> for those that reached a plan.
// Their number is bounded by the configuration (plans × outcomes), never by keys or traffic.
// Two cause counters sit beside the outcomes: usageplans.requests.cas_exhausted (and per
// plan) counts requests of which a compare-and-swap loop gave up, whether the request then
// failed (the key's own entry: outcome failure) or was admitted without a shared bucket's
// token (outcome allowed); usageplans.requests.giveback_failed counts denied requests that
// could not give a shared bucket its token back (the bucket stays a token short until it
// refills).
type metrics struct {
	total           [numOutcomes]proxywasm.MetricCounter
	perPlan         map[*config.Plan]*planMetrics
	casExhausted    proxywasm.MetricCounter
	panicsRecovered proxywasm.MetricCounter
	giveBackFailed  proxywasm.MetricCounter
	usage           [numUsageCounters]proxywasm.MetricCounter
}

// The usage counters: usageplans.usage.failed counts requests whose usage entry could not
// be read or written (on an admitted one, a request missing from its day's used in
// GetUsage); usageplans.usage_api.requests and .forbidden count the filter's usage API
// requests and those refused for want of an admin key.
const (
	usageFailed = iota
	usageRequests
	usageForbidden
	numUsageCounters
)

var usageCounterNames = [numUsageCounters]string{"usageplans.usage.failed", "usageplans.usage_api.requests", "usageplans.usage_api.forbidden"}

func (m *metrics) usageAPI(c int) {
	defer func() { _ = recover() }()
	m.usage[c].Increment(1)
}

type planMetrics struct {
	outcomes     [numOutcomes]proxywasm.MetricCounter
	casExhausted proxywasm.MetricCounter
}

// casExhaustedName is the cause counter's last name segment, as in usageplans.requests.cas_exhausted.
const casExhaustedName = "cas_exhausted"

// newMetrics defines the counters of cfg. Defining a name twice (a reconfiguration) gives
// back the same counter, so counts carry over.
func newMetrics(cfg *config.Config) *metrics {
	m := &metrics{perPlan: make(map[*config.Plan]*planMetrics, len(cfg.Plans))}
	for o := range numOutcomes {
		m.total[o] = proxywasm.DefineCounterMetric("usageplans.requests." + o.String())
	}
	m.casExhausted = proxywasm.DefineCounterMetric("usageplans.requests." + casExhaustedName)
	for _, p := range cfg.Plans {
		c := &planMetrics{}
		for o := range numOutcomes {
			c.outcomes[o] = proxywasm.DefineCounterMetric("usageplans.plan." + p.ID + "." + o.String())
		}
		c.casExhausted = proxywasm.DefineCounterMetric("usageplans.plan." + p.ID + "." + casExhaustedName)
		m.perPlan[p] = c
	}
	m.panicsRecovered = proxywasm.DefineCounterMetric("usageplans.panics_recovered")
	m.giveBackFailed = proxywasm.DefineCounterMetric("usageplans.requests.giveback_failed")
	for c, name := range usageCounterNames {
		m.usage[c] = proxywasm.DefineCounterMetric(name)
	}
	return m
}

// count adds one request to its outcome. A metric the host refuses must not turn a decided
// request into a failure (the SDK panics on any metric status), so that panic stops here.
func (m *metrics) count(o outcome, plan *config.Plan) {
	defer func() { _ = recover() }()
	m.total[o].Increment(1)
	if c := m.perPlan[plan]; c != nil {
		c.outcomes[o].Increment(1)
	}
}

// casExhaustion counts a request of which a CAS loop gave up, beside its outcome.
func (m *metrics) casExhaustion(plan *config.Plan) {
	defer func() { _ = recover() }()
	m.casExhausted.Increment(1)
	if c := m.perPlan[plan]; c != nil {
		c.casExhausted.Increment(1)
	}
}

// configRejected counts a rejected configuration; it needs no accepted one, so that the very
// first configuration of a plugin is counted too when it is rejected.
func configRejected() {
	defer func() { _ = recover() }()
	proxywasm.DefineCounterMetric("usageplans.config.rejected").Increment(1)
}

func (m *metrics) panicRecovered() {
	defer func() { _ = recover() }()
	m.panicsRecovered.Increment(1)
}

func (m *metrics) giveBackFailure() {
	defer func() { _ = recover() }()
	m.giveBackFailed.Increment(1)
}
