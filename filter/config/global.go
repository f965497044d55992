package config

import (
	"math"
	"strings"

	"github.com/tidwall/gjson"
)

// Global turns on global mode: every plan's quota is one count per key across the fleet,
// kept by the Rate Limit Service (envoyproxy/ratelimit) behind Cluster; throttles stay local
// to each proxy, their rate and burst divided by Proxies. nil in a Config: local mode.
type Global struct {
	Cluster   string // the HTTP/2 cluster serving RLS's gRPC API (Envoy cluster name)
	Domain    string // the RLS domain; the only thing RLS's own configuration must declare
	TimeoutMS uint32 // one RLS call, from the request to its answer's trailers
	Mode      GlobalMode
	// MaxChunk is the largest lease (LEASE): how many requests of one key one proxy may
	// reserve at once. Leases shrink as the key's remaining quota falls, down to 1.
	MaxChunk int64
	// Proxies is how many proxies share the plans: throttles are divided by it, and so is
	// what LOCAL admits while RLS cannot answer.
	Proxies     int64
	FailureMode GlobalFailure
}

// GlobalMode is how a proxy asks RLS for quota.
type GlobalMode uint8

const (
	Sync  GlobalMode = iota + 1 // one RLS call per request that needs quota
	Lease                       // reserve chunks with hits_addend, serve requests from them
)

func (m GlobalMode) String() string {
	switch m {
	case Sync:
		return "SYNC"
	case Lease:
		return "LEASE"
	}
	return "GlobalMode(?)"
}

// GlobalFailure is what a request needing quota gets when RLS cannot answer (timeout,
// connection failure, a gRPC error such as Redis down, an answer that does not decode).
type GlobalFailure uint8

const (
	GlobalClosed GlobalFailure = iota + 1 // the FAILURE response (AWS's 500 unless configured)
	GlobalOpen                            // admitted, uncounted
	GlobalLocal                           // counted locally against the limit divided by Proxies, replayed to RLS later
)

func (f GlobalFailure) String() string {
	switch f {
	case GlobalClosed:
		return "CLOSED"
	case GlobalOpen:
		return "OPEN"
	case GlobalLocal:
		return "LOCAL"
	}
	return "GlobalFailure(?)"
}

// Defaults and bounds of the global section.
const (
	DefaultGlobalTimeoutMS = 200
	MaxGlobalTimeoutMS     = 60000
	DefaultLeaseMaxChunk   = 20
	MaxLeaseChunk          = 100000
	MaxProxies             = 10000
	maxDomainLen           = 128
	// MaxGlobalQuota is the largest quota limit RLS can hold: requests_per_unit is a uint32.
	MaxGlobalQuota = math.MaxUint32
)

var (
	globalFields    = []string{"cluster", "domain", "timeoutMs", "mode", "lease", "proxies", "failureMode"}
	leaseFields     = []string{"maxChunk"}
	globalModes     = []string{"SYNC", "LEASE"}
	globalFailures  = []string{"CLOSED", "OPEN", "LOCAL"} // in GlobalFailure order
	globalModeNames = []string{"SYNC", "LEASE"}           // in GlobalMode order
)

// global reads the global section; it runs after the plans are read, whose quotas it checks.
func (p *parser) global(v gjson.Result, path string) {
	f, ok := p.object(v, path, globalFields, nil)
	if !ok {
		return
	}
	g := &Global{TimeoutMS: DefaultGlobalTimeoutMS, Mode: Sync, MaxChunk: DefaultLeaseMaxChunk,
		Proxies: 1, FailureMode: GlobalClosed}
	good := true
	if c, ok := f.get("cluster"); !ok {
		p.add(field(path, "cluster"), "required: the name of the HTTP/2 cluster serving the Rate Limit Service's gRPC API")
		good = false
	} else if s, ok := p.str(c, field(path, "cluster")); !ok {
		good = false
	} else if s == "" || strings.ContainsAny(s, "\x00\r\n") || len(s) > maxNameLen {
		p.add(field(path, "cluster"), "must be a cluster name of 1 to %d characters, got %s", maxNameLen, p.describe(c))
		good = false
	} else {
		g.Cluster = s
	}
	if d, ok := f.get("domain"); !ok {
		p.add(field(path, "domain"), "required: the RLS domain (usageplans ratelimit-config prints RLS's configuration for it)")
		good = false
	} else if s, ok := p.str(d, field(path, "domain")); !ok {
		good = false
	} else if !rlsDomain(s) {
		p.add(field(path, "domain"), "must be 1 to %d letters, digits, '-' and '.' (RLS joins its Redis keys with '_'), got %s", maxDomainLen, p.describe(d))
		good = false
	} else {
		g.Domain = s
	}
	if t, ok := f.get("timeoutMs"); ok {
		if n, ok := p.integer(t, field(path, "timeoutMs"), 1, MaxGlobalTimeoutMS); ok {
			g.TimeoutMS = uint32(n)
		} else {
			good = false
		}
	}
	if m, ok := f.get("mode"); ok {
		if s, ok := p.enum(m, field(path, "mode"), globalModes); ok {
			g.Mode = GlobalMode(indexOf(globalModeNames, s) + 1)
		} else {
			good = false
		}
	}
	if l, ok := f.get("lease"); ok {
		lp := field(path, "lease")
		if g.Mode != Lease {
			p.add(lp, "only used when mode is LEASE")
			good = false
		} else if lf, ok := p.object(l, lp, leaseFields, nil); !ok {
			good = false
		} else if c, ok := lf.get("maxChunk"); ok {
			if n, ok := p.integer(c, field(lp, "maxChunk"), 1, MaxLeaseChunk); ok {
				g.MaxChunk = n
			} else {
				good = false
			}
		}
	}
	if n, ok := f.get("proxies"); ok {
		if v, ok := p.integer(n, field(path, "proxies"), 1, MaxProxies); ok {
			g.Proxies = v
		} else {
			good = false
		}
	}
	if m, ok := f.get("failureMode"); ok {
		if s, ok := p.enum(m, field(path, "failureMode"), globalFailures); ok {
			g.FailureMode = GlobalFailure(indexOf(globalFailures, s) + 1)
		} else {
			good = false
		}
	}
	for _, pl := range p.cfg.Plans {
		q := pl.Quota
		if q == nil {
			continue
		}
		qp := p.quotaPaths[pl]
		if q.Limit > MaxGlobalQuota {
			p.add(field(qp, "limit"), "must be at most %d in global mode (RLS counts in 32 bits), got %d", int64(MaxGlobalQuota), q.Limit)
			good = false
		}
		if q.Offset != 0 {
			p.add(field(qp, "offset"), "not supported in global mode: the initial period would be each proxy's own; leave it out")
			good = false
		}
	}
	if good {
		p.cfg.Global = g
		divideThrottles(p.cfg, g.Proxies)
	}
}

// noteQuotaPath remembers where a plan's quota is, for the global section's errors.
func (p *parser) noteQuotaPath(pl *Plan, path string) {
	if p.quotaPaths == nil {
		p.quotaPaths = make(map[*Plan]string)
	}
	p.quotaPaths[pl] = path
}

func rlsDomain(s string) bool {
	if s == "" || len(s) > maxDomainLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlpha(c) || isDigit(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// divideThrottles makes every token bucket a proxy's share of it: rate divided by proxies,
// burst divided rounding up (so that no share of a positive burst is 0, which would admit
// nothing). Across n proxies the fleet then admits at most the configured rate, and a burst
// of up to n-1 tokens more than configured. Buckets stay local: AWS calls its throttles
// best effort, and a call to RLS per request for a throttle would cost what leases save.
func divideThrottles(c *Config, n int64) {
	if n <= 1 {
		return
	}
	div := func(l *Limit) {
		if l == nil {
			return
		}
		l.Throttle.Rate /= float64(n)
		if l.Throttle.Rate > 0 && l.Throttle.Rate < minRate {
			l.Throttle.Rate = minRate
		}
		l.Throttle.Burst = (l.Throttle.Burst + n - 1) / n
	}
	div(c.Account)
	seen := make(map[*Limit]bool)
	once := func(l *Limit) {
		if l != nil && !seen[l] {
			seen[l] = true
			div(l)
		}
	}
	for _, pl := range c.Plans {
		once(pl.limit)
		for _, ls := range pl.overrides {
			for _, l := range ls {
				once(l)
			}
		}
		for _, l := range pl.keyLimits {
			once(l)
		}
		if pl.limit != nil {
			t := pl.limit.Throttle
			pl.Throttle = &t
		}
	}
	for _, a := range c.APIs {
		for _, s := range a.Stages {
			for _, l := range s.methodLimits {
				once(l)
			}
		}
	}
}
