package state

import (
	"errors"
	"sync"
)

// Store is proxy-wasm shared data as Envoy implements it: one process-wide map with a
// compare-and-swap version per key, and no delete.
type Store interface {
	// Get returns the value of key and its CAS version, or ErrNotFound.
	Get(key string) (value []byte, cas uint32, err error)
	// Set stores value under key. With cas 0 it is unconditional; otherwise it fails with
	// ErrCASMismatch when key exists with another version. Like Envoy, it creates a missing
	// key whatever cas is: there is no atomic "create if absent".
	Set(key string, value []byte, cas uint32) error
}

// Errors a Store returns; the adapter maps the host's statuses onto them.
var (
	ErrNotFound    = errors.New("state: shared data key not found")
	ErrCASMismatch = errors.New("state: shared data CAS mismatch")
)

// MemStore is an in-memory Store that behaves like Envoy's shared data: one mutex, one
// global CAS counter that skips 0. The zero value is empty and ready; it is safe for
// concurrent use.
type MemStore struct {
	mu   sync.Mutex
	cas  uint32
	data map[string]memValue
}

type memValue struct {
	value []byte
	cas   uint32
}

// Get implements Store; the returned value is a copy.
func (m *MemStore) Get(key string) ([]byte, uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[key]
	if !ok {
		return nil, 0, ErrNotFound
	}
	return append([]byte(nil), v.value...), v.cas, nil
}

// Set implements Store; it keeps a copy of value.
func (m *MemStore) Set(key string, value []byte, cas uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.data[key]; ok && cas != 0 && cas != v.cas {
		return ErrCASMismatch
	}
	m.cas++
	if m.cas == 0 { // wrapped: 0 means "no version"
		m.cas++
	}
	if m.data == nil {
		m.data = make(map[string]memValue)
	}
	m.data[key] = memValue{value: append([]byte(nil), value...), cas: m.cas}
	return nil
}

// Keys returns the number of keys stored, for tests that check the key space is bounded.
func (m *MemStore) Keys() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}
