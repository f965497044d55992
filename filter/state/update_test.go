package state

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/limit"
)

// racingStore lets another writer change the key between every Get and Set, the worst
// interleaving a CAS loop can meet.
type racingStore struct {
	MemStore
	races int // how many of the coming Sets lose
}

func (r *racingStore) Set(key string, value []byte, cas uint32) error {
	if r.races > 0 {
		r.races--
		v, _, err := r.MemStore.Get(key)
		if err != nil {
			v = AppendEncode(nil, &Entry{})
		}
		_ = r.MemStore.Set(key, v, 0) // same value, new version
	}
	return r.MemStore.Set(key, value, cas)
}

func count(e *Entry) bool {
	e.Quota.Used++
	return true
}

func TestUpdateRetriesThenExhausts(t *testing.T) {
	for _, tt := range []struct {
		races, attempts int
		used            int64 // stored afterwards
		exhausted       bool
	}{
		{0, 3, 2, false},
		{2, 3, 2, false},
		{3, 3, 1, true},
		{1, 0, 1, true}, // at least one attempt, never zero
	} {
		s := &racingStore{}
		txn := Txn{Store: s, Attempts: tt.attempts}
		if err := txn.Update("ns:k", count); err != nil {
			t.Fatal(err)
		}
		s.races = tt.races
		err := txn.Update("ns:k", count)
		if got := errors.Is(err, ErrExhausted); got != tt.exhausted {
			t.Fatalf("races %d attempts %d: err = %v, want exhausted %v", tt.races, tt.attempts, err, tt.exhausted)
		}
		var e Entry
		v, _, _ := s.Get("ns:k")
		if err := Decode(v, &e); err != nil || e.Quota.Used != tt.used {
			t.Fatalf("races %d attempts %d: stored used = %d (%v), want %d", tt.races, tt.attempts, e.Quota.Used, err, tt.used)
		}
	}
	s := &racingStore{races: 5}
	err := (&Txn{Store: s, Attempts: 2}).Update("ns:k", count)
	if want := `state: compare-and-swap attempts exhausted: 2 attempts on "ns:k"`; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// TestUpdateCreateDoesNotErase: two writers both find the key missing; the second create
// must not erase the first one's write, as a cas-0 create would.
func TestUpdateCreateDoesNotErase(t *testing.T) {
	var s MemStore
	txn := Txn{Store: &s, Attempts: 4}
	calls := 0
	err := txn.Update("ns:k", func(e *Entry) bool {
		calls++
		if calls == 1 { // another worker creates the entry after our Get
			other := Entry{Quota: limit.Counter{Used: 10, Created: 1}}
			_ = s.Set("ns:k", AppendEncode(nil, &other), CreateCAS)
		}
		e.Quota.Used++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	v, _, _ := s.Get("ns:k")
	if err := Decode(v, &e); err != nil || e.Quota.Used != 11 || calls != 2 {
		t.Fatalf("used = %d after %d decisions (%v), want 11 after 2", e.Quota.Used, calls, err)
	}
}

func TestUpdateNoWrite(t *testing.T) {
	var s MemStore
	err := (&Txn{Store: &s, Attempts: 1}).Update("ns:k", func(*Entry) bool { return false })
	if err != nil || s.Keys() != 0 {
		t.Fatalf("err %v, %d keys; want nothing written", err, s.Keys())
	}
}

func TestUpdateCorruptEntry(t *testing.T) {
	var s MemStore
	_ = s.Set("ns:k", []byte{9, 1, 2}, 0)
	err := (&Txn{Store: &s, Attempts: 3}).Update("ns:k", count)
	want := `state: decode at byte 0: unknown encoding version 9 (this filter reads 1) (key "ns:k")`
	if !errors.Is(err, ErrVersion) || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if v, _, _ := s.Get("ns:k"); len(v) != 3 {
		t.Fatalf("the unreadable entry was overwritten: %x", v)
	}
}

// TestHammerQuota: goroutines race on one key for a quota of N; exactly N are admitted and
// the stored counter says N.
func TestHammerQuota(t *testing.T) {
	const workers, perWorker, n = 8, 400, 1000
	q := limit.Quota{Limit: n, Period: limit.Day}
	at := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	var s MemStore
	var admitted, exhausted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			txn := Txn{Store: &s, Attempts: 8}
			for range perWorker {
				var ok bool
				err := txn.Update("ns:key:free:k1", func(e *Entry) bool {
					e.Quota, ok = q.AllowN(e.Quota, at, 1)
					return ok
				})
				switch {
				case errors.Is(err, ErrExhausted):
					exhausted.Add(1)
				case err != nil:
					t.Error(err)
					return
				case ok:
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	var e Entry
	v, _, _ := s.Get("ns:key:free:k1")
	if err := Decode(v, &e); err != nil {
		t.Fatal(err)
	}
	if admitted.Load() != n || e.Quota.Used != n {
		t.Fatalf("admitted %d, stored used %d (%d exhausted); want exactly %d", admitted.Load(), e.Quota.Used, exhausted.Load(), n)
	}
}

// TestHammerBucket: goroutines race on one bucket under a shared virtual clock that every
// request moves forward; the admitted count never exceeds burst + rate × elapsed.
func TestHammerBucket(t *testing.T) {
	const workers, perWorker = 8, 500
	th := limit.Throttle{Rate: 200, Burst: 50} // one token per 5 ms
	start := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC).UnixNano()
	var clock atomic.Int64
	clock.Store(start)
	var s MemStore
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			txn := Txn{Store: &s, Attempts: 8}
			for range perWorker {
				at := time.Unix(0, clock.Add(int64(time.Millisecond)))
				var ok bool
				err := txn.Update("ns:account", func(e *Entry) bool {
					var b limit.Bucket
					b, ok = th.AllowN(e.Bucket("account"), at, 1)
					e.SetBucket("account", b)
					return ok
				})
				if err != nil && !errors.Is(err, ErrExhausted) {
					t.Error(err)
					return
				}
				if err == nil && ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Duration(clock.Load() - start) // 4000 ms of virtual time
	bound := th.Burst + int64(elapsed/(5*time.Millisecond))
	if got := admitted.Load(); got > bound || got < bound/2 {
		t.Fatalf("admitted %d in %v; want at most burst + rate × elapsed = %d (and not starved)", got, elapsed, bound)
	}
}

// TestCommitRefusesUnreadable (issue 3 review): an entry Decode would refuse is never
// written, whatever decide made of it: the key's stored entry stays as it was, readable.
func TestCommitRefusesUnreadable(t *testing.T) {
	long := string(make([]byte, MaxName+1))
	for _, tt := range []struct {
		name string
		edit func(e *Entry)
		msg  string // "" when the entry is written
	}{
		{"longest name", func(e *Entry) { e.SetBucket(string(make([]byte, MaxName)), limit.Bucket{Tokens: 1}) }, ""},
		{"name too long", func(e *Entry) { e.SetBucket(long, limit.Bucket{Tokens: 1}) },
			`state: invalid entry: bucket 1 has a name of 1025 bytes, longer than 1024 (key "ns:k")`},
		{"name twice", func(e *Entry) { e.Buckets = append(e.Buckets, Slot{Name: "plan:free"}) },
			`state: invalid entry: bucket "plan:free" twice (key "ns:k")`},
		{"negative tokens", func(e *Entry) { e.Buckets[0].Bucket.Tokens = -1 },
			`state: invalid entry: bucket "plan:free" has -1 tokens (key "ns:k")`},
		{"fraction out of range", func(e *Entry) { e.Buckets[0].Bucket.Frac = 1e15 },
			`state: invalid entry: bucket "plan:free" has a fraction of a token out of range (key "ns:k")`},
		{"negative quota count", func(e *Entry) { e.Quota.Used = -2 },
			`state: invalid entry: negative quota count -2 (key "ns:k")`},
	} {
		var s MemStore
		before := AppendEncode(nil, &Entry{Buckets: []Slot{{Name: "plan:free", Bucket: limit.Bucket{Tokens: 3, Last: 9}}}})
		_ = s.Set("ns:k", before, 0)
		err := (&Txn{Store: &s, Attempts: 3}).Update("ns:k", func(e *Entry) bool { tt.edit(e); return true })
		stored, _, _ := s.Get("ns:k")
		var back Entry
		if tt.msg == "" {
			if err != nil || Decode(stored, &back) != nil || len(back.Buckets) != 2 {
				t.Errorf("%s: err %v, stored %d buckets; want written and readable", tt.name, err, len(back.Buckets))
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || err.Error() != tt.msg {
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.msg)
		}
		if string(stored) != string(before) {
			t.Errorf("%s: the refused entry was written", tt.name)
		}
	}
}
