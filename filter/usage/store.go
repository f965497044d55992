package usage

import (
	"errors"
	"fmt"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/state"
)

// View is what the usage API needs of one key in one plan.
type View struct {
	Record Record        // admitted requests and grants per day
	Quota  limit.Counter // the key's quota counter, the one the decision counts in (zero when never used)
	// Fleet is set when Record is the fleet's usage as RLS counts it (global mode, see
	// fleet.go): days from FleetFrom on, no grants, Quota unused; QuotaCount is RLS's count
	// of the key's quota in the current period (-1 unknown), QuotaLimit its effective limit
	// (the grant in force, or the quota's).
	Fleet      bool
	FleetFrom  int64
	QuotaCount int64
	QuotaLimit int64
}

// Store is where the usage API reads and grants: Local is one proxy's shared data. A
// fleet-wide implementation (the counts in envoyproxy/ratelimit's Redis) can answer the same
// API by implementing it.
type Store interface {
	// Read fills v with key's usage in plan.
	Read(cfg *config.Config, plan *config.Plan, key *config.Key, v *View) error
	// SetRemaining makes key's remaining quota in plan n for the rest of the quota period
	// that holds now (Unix seconds), atomically against concurrent requests and admins, and
	// fills v with the usage as written. plan has a quota. (No time.Time in the methods of
	// a type held in an interface: the module's linker would then keep every method of
	// time.Time, its parser and formatter among them, some 100 KB.)
	SetRemaining(cfg *config.Config, plan *config.Plan, key *config.Key, now int64, n int64, v *View) error
}

// Local is the usage of one proxy: the key entries (filter/state) and usage entries of the
// configuration's namespace in a state.Store (proxy-wasm shared data in the filter, the
// host's shared data in the gateway).
type Local struct{ Store state.Store }

// Read implements Store.
func (l Local) Read(cfg *config.Config, plan *config.Plan, key *config.Key, v *View) error {
	var ks state.Snapshot
	kt := state.Txn{Store: l.Store}
	if err := kt.Read(state.KeyEntry(cfg.Namespace, plan.ID, key.ID), &ks); err != nil {
		return err
	}
	var us Snapshot
	ut := Txn{Store: l.Store}
	if err := ut.Read(EntryKey(cfg.Namespace, plan.ID, key.ID), &us); err != nil {
		return err
	}
	v.Quota, v.Record = ks.Entry.Quota, us.Record
	return nil
}

// SetRemaining implements Store: each attempt reads the key's quota counter, works out the
// grant that leaves n requests (n minus what the limit alone leaves) and writes it into
// today's day of the usage entry with the CAS of its read. A lost race (a request recorded,
// another admin granted) reads both again, so the grant is neither lost nor applied twice;
// requests admitted between the read of the counter and the write take from n.
func (l Local) SetRemaining(cfg *config.Config, plan *config.Plan, key *config.Key, unix int64, n int64, v *View) error {
	now := time.Unix(unix, 0)
	q := plan.Quota.At(now)
	today := DayOf(now)
	kt := state.Txn{Store: l.Store}
	ut := Txn{Store: l.Store, Attempts: 1}
	keyName := state.KeyEntry(cfg.Namespace, plan.ID, key.ID)
	var ks state.Snapshot
	var us Snapshot
	var err error
	attempts := max(cfg.CASRetries, 1)
	for range attempts {
		if err = kt.Read(keyName, &ks); err != nil {
			return err
		}
		c := q.Advance(ks.Entry.Quota)
		grant := min(max(n-(plan.Quota.LimitOf(c)-c.Used), -maxCount), maxCount)
		if err = ut.Read(EntryKey(cfg.Namespace, plan.ID, key.ID), &us); err != nil {
			return err
		}
		err = ut.Commit(&us, func(r *Record) bool { return r.SetGrant(today, grant) })
		if err == nil {
			v.Quota, v.Record = ks.Entry.Quota, us.Record
			return nil
		}
		if !errors.Is(err, state.ErrExhausted) {
			return err
		}
	}
	return fmt.Errorf("%w: %d attempts on %q", state.ErrExhausted, attempts, us.Key)
}
