package state

import (
	"errors"
	"fmt"
	"math"
)

// ErrExhausted means every attempt of a CAS loop lost to a concurrent writer; the failure
// policy decides the request and a metric counts it.
var ErrExhausted = errors.New("state: compare-and-swap attempts exhausted")

// CreateCAS is the version Update writes with when Get found no entry. Envoy creates a
// missing key whatever the version, but compares a non-zero version with an existing key,
// so when another worker created the entry in between this write fails with a mismatch
// instead of erasing it (cas 0 would). It is wrong only if that entry's version is exactly
// this value, one of 2^32.
const CreateCAS = math.MaxUint32

// Txn runs bounded read-decide-write loops against a Store, reusing its buffers; one Txn
// serves one request at a time.
type Txn struct {
	Store    Store
	Attempts int // CAS attempts per Commit; at least 1 is used

	snap Snapshot
	buf  []byte
}

// Snapshot is an entry as read from the store, with the version to write it back with.
type Snapshot struct {
	Key   string
	Entry Entry  // the zero Entry when the key was not found
	CAS   uint32 // CreateCAS when the key was not found
	Found bool
}

// Read fills s with key's entry as stored now. Errors name key.
func (t *Txn) Read(key string, s *Snapshot) error {
	s.Key = key
	value, cas, err := t.Store.Get(key)
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		s.Entry.Buckets = s.Entry.Buckets[:0]
		s.Entry.Quota = Entry{}.Quota
		s.CAS, s.Found = CreateCAS, false
		return nil
	case err != nil:
		return fmt.Errorf("state: get %q: %w", key, err)
	}
	if err := Decode(value, &s.Entry); err != nil {
		return fmt.Errorf("%w (key %q)", err, key)
	}
	s.CAS, s.Found = cas, true
	return nil
}

// Commit lets decide change s.Entry in place and, if it returns true, writes the entry with
// the version s was read with. On a CAS mismatch it reads s again and decides again, up to
// Attempts writes in all, then returns ErrExhausted. An entry that Check refuses is not
// written: the error (ErrInvalid) names the key. decide must depend only on the entry
// (and values fixed for the request): it may run several times. On return s holds the
// entry as last decided (its CAS is stale after a write).
func (t *Txn) Commit(s *Snapshot, decide func(e *Entry) (write bool)) error {
	attempts := max(t.Attempts, 1)
	for i := range attempts {
		if i > 0 {
			if err := t.Read(s.Key, s); err != nil {
				return err
			}
		}
		if !decide(&s.Entry) {
			return nil
		}
		if err := s.Entry.Check(); err != nil {
			return fmt.Errorf("%w (key %q)", err, s.Key)
		}
		t.buf = AppendEncode(t.buf[:0], &s.Entry)
		err := t.Store.Set(s.Key, t.buf, s.CAS)
		if errors.Is(err, ErrCASMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("state: set %q: %w", s.Key, err)
		}
		s.Found = true
		return nil
	}
	return fmt.Errorf("%w: %d attempts on %q", ErrExhausted, attempts, s.Key)
}

// Update is Read then Commit on key: one get and one set when nobody else writes it.
func (t *Txn) Update(key string, decide func(e *Entry) (write bool)) error {
	if err := t.Read(key, &t.snap); err != nil {
		return err
	}
	return t.Commit(&t.snap, decide)
}
