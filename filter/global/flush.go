package global

import (
	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/state"
)

// MaxFlushKeys bounds the keys one flush call carries; the others wait for the next tick.
const MaxFlushKeys = 64

// Flush is one call that carries the proxy's unsent usage of keys gone quiet (no request
// since their last admitted one sent it): the root context sends one a tick.
type Flush struct {
	Body   []byte // the framed request, owned by the Flush
	claims []flushClaim
	descs  int
}

type flushClaim struct {
	entry string
	c     UsageClaim
}

// Requests is the admitted requests the flush carries.
func (f *Flush) Requests() (n int64) {
	for i := range f.claims {
		n += f.claims[i].c.Total()
	}
	return n
}

// BeginFlush claims the unsent usage of up to MaxFlushKeys (plan, key) pairs of plans with
// a quota, in configuration order, and returns the call that carries it, or nil when there
// is none. Claims are CAS writes: a request's own call and a flush never carry the same
// requests.
func (qt *Quota) BeginFlush(cfg *config.Config, store state.Store) (*Flush, error) {
	f := &Flush{}
	var descs []rls.Descriptor
	var firstErr error
	for _, p := range cfg.Plans {
		if p.Quota == nil {
			continue
		}
		for _, k := range p.Keys() {
			if len(f.claims) == MaxFlushKeys {
				break
			}
			n := qt.namesFor(cfg, p, k)
			var c UsageClaim
			if err := qt.claimUsage(cfg, n.usage, &c, store); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			if c.Total() == 0 {
				continue
			}
			f.claims = append(f.claims, flushClaim{entry: n.usage, c: c})
			for i := range c.N {
				if c.N[i] > 0 {
					descs = append(descs, UsageDescriptor(n.plan, n.key, c.Day[i], c.N[i]))
				}
			}
		}
	}
	if len(f.claims) == 0 {
		return nil, firstErr
	}
	f.descs = len(descs)
	f.Body = rls.AppendRequestFrame(nil, &rls.Request{Domain: cfg.Global.Domain, Descriptors: descs})
	return f, firstErr
}

// FinishFlush settles the claims of f from the call's answer: done when RLS answered,
// lost (not sent again) when it did not. It returns the requests lost.
func (qt *Quota) FinishFlush(cfg *config.Config, f *Flush, a Answer, store state.Store) (lost int64, err error) {
	var resp rls.Response
	call := answeredCall
	if ReadAnswer(a, &resp, f.descs) != nil {
		call = unansweredCall
	}
	for i := range f.claims {
		n, e := qt.countUsage(cfg, f.claims[i].entry, 0, 0, &f.claims[i].c, call, store)
		lost += n
		if err == nil {
			err = e
		}
	}
	return lost, err
}
