package config

// The key table: every worker VM parses the whole configuration, so what one key costs to
// load and to keep is paid once per VM. Keys are allocated in chunks (no allocation per
// key), the key's plans are a short slice rather than a map, and the index from digest to
// key is an open-addressing hash table of 32-bit positions instead of a Go map of pointers
// (BenchmarkParseManyKeys, BenchmarkKeyByValue).

// keyIndex finds keys by digest. slots holds positions in keys plus one (0: empty); its
// length is a power of two and at most half of it is in use, so a probe ends after about
// two slots. A SHA-256 is uniformly distributed, so its first 8 bytes are the hash. (A
// valueSha256 is written by the configuration's author, who could pick digests that share
// their first bytes: that slows down the lookups of that configuration only.)
type keyIndex struct {
	keys  []*Key // keys[i].digest is indexed; in the order added
	slots []uint32
}

func digestHash(d *Digest) uint64 {
	return uint64(d[0]) | uint64(d[1])<<8 | uint64(d[2])<<16 | uint64(d[3])<<24 |
		uint64(d[4])<<32 | uint64(d[5])<<40 | uint64(d[6])<<48 | uint64(d[7])<<56
}

// find returns the key with digest d, or nil. It does not allocate.
func (x *keyIndex) find(d *Digest) *Key {
	if len(x.slots) == 0 {
		return nil
	}
	mask := uint64(len(x.slots) - 1)
	for i := digestHash(d) & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return nil
		}
		if k := x.keys[s-1]; k.digest == *d {
			return k
		}
	}
}

// add indexes k by k.digest, which must not be indexed yet.
func (x *keyIndex) add(k *Key) {
	if 2*(len(x.keys)+1) > len(x.slots) {
		x.grow()
	}
	x.keys = append(x.keys, k)
	x.put(uint32(len(x.keys)))
}

func (x *keyIndex) put(pos uint32) {
	mask := uint64(len(x.slots) - 1)
	i := digestHash(&x.keys[pos-1].digest) & mask
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = pos
}

func (x *keyIndex) grow() {
	x.slots = make([]uint32, max(16, 2*len(x.slots)))
	for pos := range x.keys {
		x.put(uint32(pos + 1))
	}
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
