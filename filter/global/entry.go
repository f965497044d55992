package global

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/usageplans/usageplans/filter/state"
)

// Entry is one proxy's share of one key's global quota, in shared data (all workers of the
// proxy see it): what the proxy admitted in the period, what it still owes RLS, its lease
// and its one call in flight that carries them. Every count is in requests, never negative.
type Entry struct {
	Period int64 // start of the calendar period the entry counts in (Unix s); 0 = never used
	Engine int64 // start of the RLS window the proxy last counted into (Unix s)
	// Admitted is what this proxy admitted in Period: requests RLS allowed (SYNC), leases RLS
	// granted (LEASE), requests admitted locally while RLS could not answer (LOCAL). At an RLS
	// window boundary inside the period it is added to Pending: the carry-over.
	Admitted int64
	// Pending is owed to RLS and not yet sent: carry-over and what LOCAL admitted. The next
	// call the proxy owns adds it to its hits_addend.
	Pending int64
	// Outage is what LOCAL admitted since RLS last answered; it ends when RLS answers.
	Outage int64
	// Remaining is RLS's last limit_remaining for the key in Period as this proxy saw it, or
	// -1 when it has seen none.
	Remaining int64
	Lease     int64 // requests of a granted lease not yet served (LEASE)
	// FlightUntil is set (Unix ms) while the proxy's owned call (the one that carries
	// FlightPending and, in LEASE, asks for a lease) is in flight: past it the answer is taken
	// as lost, FlightPending goes back to Pending and another call may be owned.
	FlightUntil   int64
	FlightPending int64
	// Failing is 1 while the proxy's last call got no usable answer: Pending waits for a
	// call that RLS answers before it is sent, so that the burst of failures around an
	// outage's end (RLS's stale Redis connections fail after counting) does not send it
	// again and again.
	Failing int64
	// Over is 1 + the limit RLS last said OVER_LIMIT against in the current RLS window, 0
	// when it did not. RLS's count only grows within a window, so while the plan's limit is
	// at most that, every request would be refused: the proxy refuses it without a call.
	Over int64
}

// EntryVersion is the encoding Encode writes: a version byte, then the eleven counts as
// unsigned varints (Remaining + 1, so that -1 encodes as 0).
const EntryVersion = 1

var (
	ErrEntryVersion = errors.New("global: unknown entry version")
	ErrEntryCorrupt = errors.New("global: corrupt entry")
)

// AppendEncode appends e's encoding to dst.
func AppendEncode(dst []byte, e *Entry) []byte {
	vs := [...]int64{e.Period, e.Engine, e.Admitted, e.Pending, e.Outage, e.Remaining + 1, e.Lease, e.FlightUntil, e.FlightPending, e.Failing, e.Over}
	return appendCounts(dst, EntryVersion, vs[:])
}

// appendCounts appends the encoding of every entry of this package: a version byte, then
// the counts as unsigned varints.
func appendCounts(dst []byte, version byte, vs []int64) []byte {
	dst = append(dst, version)
	for _, v := range vs {
		dst = binary.AppendUvarint(dst, uint64(v))
	}
	return dst
}

// decodeCounts reads what appendCounts wrote with version into vs, each count at most
// max, and returns the bytes after the last one. what names the entry in errors ("" for
// the quota entry).
func decodeCounts(b []byte, version byte, what string, max uint64, vs []int64) ([]byte, error) {
	if len(b) == 0 {
		if what != "" {
			return nil, fmt.Errorf("%w: empty %s", ErrEntryCorrupt, what)
		}
		return nil, fmt.Errorf("%w: empty", ErrEntryCorrupt)
	}
	if b[0] != version {
		if what != "" {
			return nil, fmt.Errorf("%w %d (%s)", ErrEntryVersion, b[0], what)
		}
		return nil, fmt.Errorf("%w %d", ErrEntryVersion, b[0])
	}
	b = b[1:]
	for i := range vs {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > max {
			if what != "" {
				return nil, fmt.Errorf("%w: %s count %d", ErrEntryCorrupt, what, i)
			}
			return nil, fmt.Errorf("%w: count %d", ErrEntryCorrupt, i)
		}
		vs[i], b = int64(v), b[n:]
	}
	return b, nil
}

// Decode reads an entry Encode wrote. Another version, a truncated count, a count out of
// range or bytes after the last one is an error.
func Decode(b []byte, e *Entry) error {
	var vs [11]int64
	b, err := decodeCounts(b, EntryVersion, "", 1<<62, vs[:])
	if err != nil {
		return err
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last count", ErrEntryCorrupt, len(b))
	}
	*e = Entry{Period: vs[0], Engine: vs[1], Admitted: vs[2], Pending: vs[3], Outage: vs[4],
		Remaining: vs[5] - 1, Lease: vs[6], FlightUntil: vs[7], FlightPending: vs[8], Failing: vs[9], Over: vs[10]}
	return nil
}

// EntryKey is the shared-data key of one proxy's share of one key's quota in one plan:
// bounded by the configuration (plans × keys), never by time or traffic. Its prefix differs
// from every key filter/state writes (":key:" entries, limit ids "plan:", "stage:",
// "account").
func EntryKey(namespace, planID, keyID string) string {
	return namespace + ":global:" + planID + ":" + keyID
}

// update runs a bounded read-decide-write loop on key, as state.Txn does for the local
// entries: decide may run once per attempt and must depend only on the entry it is given.
func update(store state.Store, key string, attempts int, buf *[]byte, decide func(e *Entry) bool) error {
	return readDecideWrite(store, key, attempts, buf, func(e *Entry) { e.Remaining = -1 }, Decode, AppendEncode, decide)
}

// readDecideWrite is update for any entry type: fresh sets up an entry not found.
func readDecideWrite[E any](store state.Store, key string, attempts int, buf *[]byte, fresh func(*E),
	decode func([]byte, *E) error, encode func([]byte, *E) []byte, decide func(e *E) bool) error {
	for range max(attempts, 1) {
		var e E
		value, cas, err := store.Get(key)
		switch {
		case errors.Is(err, state.ErrNotFound):
			cas = state.CreateCAS
			fresh(&e)
		case err != nil:
			return fmt.Errorf("global: get %q: %w", key, err)
		default:
			if err := decode(value, &e); err != nil {
				return fmt.Errorf("%w (key %q)", err, key)
			}
		}
		if !decide(&e) {
			return nil
		}
		*buf = encode((*buf)[:0], &e)
		err = store.Set(key, *buf, cas)
		if errors.Is(err, state.ErrCASMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("global: set %q: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %d attempts on %q", state.ErrExhausted, max(attempts, 1), key)
}
