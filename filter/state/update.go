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
	Attempts int // CAS attempts per Update; at least 1 is used

	entry Entry
	buf   []byte
}

// Update reads key, lets decide change the entry in place (a missing key reads as the zero
// Entry), and writes it back if decide returns true, with the version it read. On a CAS
// mismatch it reads and decides again, up to Attempts times, then returns ErrExhausted.
// decide must be a pure function of the entry: it may run several times. Errors name key.
func (t *Txn) Update(key string, decide func(e *Entry) (write bool)) error {
	attempts := max(t.Attempts, 1)
	for range attempts {
		value, cas, err := t.Store.Get(key)
		switch {
		case errors.Is(err, ErrNotFound):
			t.entry.Buckets = t.entry.Buckets[:0]
			t.entry.Quota = Entry{}.Quota
			cas = CreateCAS
		case err != nil:
			return fmt.Errorf("state: get %q: %w", key, err)
		default:
			if err := Decode(value, &t.entry); err != nil {
				return fmt.Errorf("%w (key %q)", err, key)
			}
		}
		if !decide(&t.entry) {
			return nil
		}
		t.buf = AppendEncode(t.buf[:0], &t.entry)
		err = t.Store.Set(key, t.buf, cas)
		if errors.Is(err, ErrCASMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("state: set %q: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %d attempts on %q", ErrExhausted, attempts, key)
}
