package config

import "hash/maphash"

// The key table: every worker VM parses the whole configuration, so what one key costs to
// load and to keep is paid once per VM. Keys are allocated in chunks (no allocation per
// key), the key's plans are a short slice rather than a map, and the indexes from digest
// and id to key are open-addressing hash tables of 32-bit positions instead of Go maps of
// pointers (BenchmarkParseManyKeys, BenchmarkKeyByValue).

// keyIndex finds keys by digest and by id: two open-addressing hash tables of positions in
// keys plus one (0: empty slot). Each table's length is a power of two and at most half of
// it is in use, so a probe ends after about two slots. A SHA-256 is uniformly distributed,
// so its first 8 bytes are its hash. (A valueSha256 is written by the configuration's
// author, who could pick digests that share their first bytes: that slows down the
// lookups of that configuration only.) Ids are hashed with a per-index random seed.
type keyIndex struct {
	keys     []*Key // in configuration order (Config.Keys)
	byDigest slots
	byID     slots
	seed     maphash.Seed
}

type slots struct {
	s []uint32
	n int // slots in use
}

func digestHash(d *Digest) uint64 {
	return uint64(d[0]) | uint64(d[1])<<8 | uint64(d[2])<<16 | uint64(d[3])<<24 |
		uint64(d[4])<<32 | uint64(d[5])<<40 | uint64(d[6])<<48 | uint64(d[7])<<56
}

// find returns the key with digest d, or nil. It does not allocate.
func (x *keyIndex) find(d *Digest) *Key {
	t := x.byDigest.s
	if len(t) == 0 {
		return nil
	}
	mask := uint64(len(t) - 1)
	for i := digestHash(d) & mask; ; i = (i + 1) & mask {
		s := t[i]
		if s == 0 {
			return nil
		}
		if k := x.keys[s-1]; k.digest == *d {
			return k
		}
	}
}

// findID returns the key with this id, or nil. It does not allocate.
func (x *keyIndex) findID(id string) *Key {
	t := x.byID.s
	if len(t) == 0 {
		return nil
	}
	mask := uint64(len(t) - 1)
	for i := maphash.String(x.seed, id) & mask; ; i = (i + 1) & mask {
		s := t[i]
		if s == 0 {
			return nil
		}
		if k := x.keys[s-1]; k.ID == id {
			return k
		}
	}
}

// addID appends k to keys and indexes it by id, which must not be indexed yet.
func (x *keyIndex) addID(k *Key) {
	if len(x.keys) == 0 {
		x.seed = maphash.MakeSeed()
	}
	k.ord = int32(len(x.keys))
	x.keys = append(x.keys, k)
	x.byID.add(k.ord, func(pos int32) uint64 { return maphash.String(x.seed, x.keys[pos].ID) })
}

// addDigest indexes k, already added by addID, by k.digest, which must not be indexed yet.
func (x *keyIndex) addDigest(k *Key) {
	x.byDigest.add(k.ord, func(pos int32) uint64 { return digestHash(&x.keys[pos].digest) })
}

// add puts position pos in the table; hash gives the hash of a position.
func (t *slots) add(pos int32, hash func(pos int32) uint64) {
	if 2*(t.n+1) > len(t.s) {
		old := t.s
		t.s = make([]uint32, max(16, 2*len(old)))
		for _, s := range old {
			if s != 0 {
				t.put(s, hash(int32(s-1)))
			}
		}
	}
	t.put(uint32(pos+1), hash(pos))
	t.n++
}

func (t *slots) put(s uint32, h uint64) {
	mask := uint64(len(t.s) - 1)
	i := h & mask
	for t.s[i] != 0 {
		i = (i + 1) & mask
	}
	t.s[i] = s
}

// chunks hands out values from arrays allocated a growing number at a time, so that many
// small values cost a few allocations. Values stay where they are: pointers to them remain
// valid.
type chunks[T any] struct{ cur []T }

// one returns a slice of one new zero value, its capacity 1 (appending to it copies).
func (c *chunks[T]) one() []T {
	if len(c.cur) == cap(c.cur) {
		c.cur = make([]T, 0, min(max(16, 2*cap(c.cur)), 4096))
	}
	n := len(c.cur)
	c.cur = c.cur[:n+1]
	return c.cur[n : n+1 : n+1]
}

// new returns a pointer to a new zero value.
func (c *chunks[T]) new() *T { return &c.one()[0] }
