package state

import (
	"bytes"
	"errors"
	"testing"
)

// TestMemStoreLikeEnvoy walks through Envoy's shared-data rules step by step.
func TestMemStoreLikeEnvoy(t *testing.T) {
	var s MemStore
	if _, _, err := s.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing key: %v, want ErrNotFound", err)
	}
	steps := []struct {
		key     string
		value   string
		cas     uint32
		err     error
		wantCAS uint32 // of key after the step
	}{
		{"a", "1", 0, nil, 1},            // cas 0: unconditional create
		{"b", "1", 77, nil, 2},           // a missing key is created whatever the cas
		{"a", "2", 1, nil, 3},            // matching cas; the counter is global
		{"a", "3", 1, ErrCASMismatch, 3}, // stale cas
		{"a", "4", 0, nil, 4},            // cas 0 overwrites
		{"b", "5", CreateCAS, ErrCASMismatch, 2},
	}
	for i, st := range steps {
		err := s.Set(st.key, []byte(st.value), st.cas)
		if !errors.Is(err, st.err) || (st.err == nil && err != nil) {
			t.Fatalf("step %d: Set = %v, want %v", i, err, st.err)
		}
		_, cas, err := s.Get(st.key)
		if err != nil || cas != st.wantCAS {
			t.Fatalf("step %d: Get cas = %d, %v; want %d", i, cas, err, st.wantCAS)
		}
	}
	v, _, _ := s.Get("a")
	if string(v) != "4" || s.Keys() != 2 {
		t.Fatalf("a = %q with %d keys, want \"4\" with 2", v, s.Keys())
	}
}

func TestMemStoreCopies(t *testing.T) {
	var s MemStore
	in := []byte("abc")
	_ = s.Set("k", in, 0)
	in[0] = 'x'
	out, _, _ := s.Get("k")
	out[1] = 'y'
	again, _, _ := s.Get("k")
	if !bytes.Equal(again, []byte("abc")) {
		t.Fatalf("stored value = %q, want \"abc\": the store shares memory with callers", again)
	}
}

func TestMemStoreCASSkipsZero(t *testing.T) {
	s := MemStore{cas: ^uint32(0) - 1}
	_ = s.Set("a", nil, 0)
	_ = s.Set("a", nil, 0)
	if _, cas, _ := s.Get("a"); cas != 1 {
		t.Fatalf("cas after wrapping = %d, want 1 (0 means no version)", cas)
	}
}
