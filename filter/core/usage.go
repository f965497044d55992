package core

import (
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/state"
	"github.com/usageplans/usageplans/filter/usage"
)

// meter is the request's usage entry (filter/usage): the key's per-day counts and quota
// grants in its plan. Reading it is the first half of the CAS that records an admitted
// request, so a plan with a quota reads it before deciding (its grant may raise or lower
// the limit) and the record of an admitted request writes over that very read: two host
// calls per admitted request, a get and a set, plus a get and a set per lost CAS race.
type meter struct {
	txn  usage.Txn
	snap usage.Snapshot
	read bool  // snap holds the entry as read for this request
	err  error // why the entry could not be read, or nil
}

// usageEntry is usage.EntryKey of the plan and key, built once per configuration.
func (dc *Decider) usageEntry(cfg *config.Config, plan *config.Plan, key *config.Key) string {
	name, ok := dc.usageNames[keyName{plan, key}]
	if !ok {
		name = usage.EntryKey(cfg.Namespace, plan.ID, key.ID)
		dc.usageNames[keyName{plan, key}] = name
	}
	return name
}

// readUsage reads the key's usage entry for this request; an entry that cannot be read
// leaves no grant (the key's quota alone decides) and is reported in Decision.UsageErr.
func (dc *Decider) readUsage(cfg *config.Config, d *Decision, store state.Store) {
	m := &dc.meter
	m.txn.Store, m.txn.Attempts = store, cfg.CASRetries
	m.err = m.txn.Read(dc.usageEntry(cfg, d.Plan, d.Key), &m.snap)
	m.read = m.err == nil
}

// grant is the grant in force now in the quota window of qa, from the entry readUsage read.
func (dc *Decider) grant(now time.Time) int64 {
	if !dc.meter.read {
		return 0
	}
	start, _ := dc.quota.Window()
	return dc.meter.snap.Record.GrantAt(usage.DayOf(start), usage.DayOf(now))
}

// recordUsage counts an admitted request in its key's usage entry, for its UTC day, with the
// bounded CAS loop: exactly once when it returns nil. An error (the loop gave up, the entry
// does not decode, the store failed) goes to Decision.UsageErr: the request stays admitted
// and counted in its quota, and that day's used misses it.
func (dc *Decider) recordUsage(cfg *config.Config, d *Decision, now time.Time, store state.Store) {
	if d.Plan == nil || d.Key == nil {
		return
	}
	m := &dc.meter
	if !m.read {
		if m.err != nil { // read before deciding, and unreadable
			d.UsageErr = m.err
			return
		}
		dc.readUsage(cfg, d, store)
		if m.err != nil {
			d.UsageErr = m.err
			return
		}
	}
	today := usage.DayOf(now)
	d.UsageErr = m.txn.Commit(&m.snap, func(r *usage.Record) bool { return r.Count(today, 1) })
}
