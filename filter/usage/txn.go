package usage

import (
	"errors"
	"fmt"

	"github.com/usageplans/usageplans/filter/state"
)

// EntryKey is the store key of one API key's usage in one plan: the namespace, then
// "usage:", so that it can never be a key entry ("key:") or a shared limit's ("plan:",
// "stage:", "account"). One per configured (plan, key) pair: bounded by the configuration.
func EntryKey(namespace, planID, keyID string) string {
	return namespace + ":usage:" + planID + ":" + keyID
}

// Snapshot is a Record as read from the store, with the version to write it back with.
type Snapshot struct {
	Key    string
	Record Record // the zero Record when the key was not found
	CAS    uint32 // state.CreateCAS when the key was not found
	Found  bool
}

// Txn runs the bounded read-decide-write loop of state.Txn on usage entries, with the same
// store, the same CAS rules and the same errors (state.ErrExhausted when every attempt
// lost); it reuses its buffer, so one Txn serves one caller at a time.
type Txn struct {
	Store    state.Store
	Attempts int // CAS attempts per Commit; at least 1 is used

	buf []byte
}

// Read fills s with key's record as stored now. Errors name key.
func (t *Txn) Read(key string, s *Snapshot) error {
	s.Key = key
	value, cas, err := t.Store.Get(key)
	switch {
	case errors.Is(err, state.ErrNotFound):
		s.Record.Day, s.Record.N = 0, 0
		s.CAS, s.Found = state.CreateCAS, false
		return nil
	case err != nil:
		return fmt.Errorf("usage: get %q: %w", key, err)
	}
	if err := Decode(value, &s.Record); err != nil {
		return fmt.Errorf("%w (key %q)", err, key)
	}
	s.CAS, s.Found = cas, true
	return nil
}

// Commit lets decide change s.Record and, if it returns true, writes it with the version s
// was read with; on a CAS mismatch it reads s again and decides again, up to Attempts writes
// in all, then returns state.ErrExhausted. decide must depend only on the record and values
// fixed for the call: it may run several times.
func (t *Txn) Commit(s *Snapshot, decide func(r *Record) (write bool)) error {
	attempts := max(t.Attempts, 1)
	for i := range attempts {
		if i > 0 {
			if err := t.Read(s.Key, s); err != nil {
				return err
			}
		}
		if !decide(&s.Record) {
			return nil
		}
		t.buf = AppendEncode(t.buf[:0], &s.Record)
		err := t.Store.Set(s.Key, t.buf, s.CAS)
		if errors.Is(err, state.ErrCASMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("usage: set %q: %w", s.Key, err)
		}
		s.Found = true
		return nil
	}
	return fmt.Errorf("%w: %d attempts on %q", state.ErrExhausted, attempts, s.Key)
}
