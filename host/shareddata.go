package host

import (
	"sort"
	"sync"
)

// sharedData is Envoy's process-wide shared data: one map per vm_id, one mutex, and one CAS
// counter for all of them that starts at 1 and skips 0 when it wraps.
type sharedData struct {
	mu      sync.Mutex
	nextCAS uint32
	stores  map[string]map[string]sharedEntry
	refs    map[string]int // live VMs per vm_id
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

func newSharedData() *sharedData {
	return &sharedData{nextCAS: 1, stores: map[string]map[string]sharedEntry{}, refs: map[string]int{}}
}

func (d *sharedData) casLocked() uint32 {
	c := d.nextCAS
	d.nextCAS++
	if d.nextCAS == 0 {
		d.nextCAS = 1
	}
	return c
}

func (d *sharedData) acquire(vmID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refs[vmID]++
}

// release drops one VM of vmID; the last one takes the vm_id's data with it.
func (d *sharedData) release(vmID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refs[vmID]--
	if d.refs[vmID] <= 0 {
		delete(d.refs, vmID)
		delete(d.stores, vmID)
	}
}

func (d *sharedData) get(vmID, key string) ([]byte, uint32, Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.stores[vmID][key]
	if !ok {
		return nil, 0, StatusNotFound
	}
	return e.value, e.cas, StatusOK
}

// set follows Envoy's SharedData::set: cas 0 writes unconditionally, a cas that differs from
// the stored one is CAS_MISMATCH, and a missing key is written whatever the cas.
func (d *sharedData) set(vmID, key string, value []byte, cas uint32) Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.stores[vmID]
	if m == nil {
		m = map[string]sharedEntry{}
		d.stores[vmID] = m
	}
	if e, ok := m[key]; ok && cas != 0 && cas != e.cas {
		return StatusCasMismatch
	}
	m[key] = sharedEntry{value: value, cas: d.casLocked()}
	return StatusOK
}

var sharedDataFuncs = []hostFunc{
	// proxy_get_shared_data(key_ptr, key_size, value_ptr_ptr, value_size_ptr, cas_ptr) -> status
	//
	// Looks the key up in the calling VM's vm_id store. On OK the value is copied into memory
	// from proxy_on_memory_allocate (address at value_ptr_ptr, size at value_size_ptr, both
	// u32; an empty value is address 0, size 0) and its CAS is stored as a u32 at cas_ptr.
	//   - NOT_FOUND: no such key (nothing is written).
	//   - INVALID_MEMORY_ACCESS: a pointer or the key is out of range.
	{name: "proxy_get_shared_data", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		key, ok := v.readString(uint32(s[0]), uint32(s[1]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		value, cas, st := v.rt.shared.get(v.plugin.cfg.VMID, key)
		if st != StatusOK {
			s[0] = uint64(st)
			return
		}
		if st = v.copyOut(value, uint32(s[2]), uint32(s[3])); st != StatusOK {
			s[0] = uint64(st)
			return
		}
		if !v.writeU32(uint32(s[4]), cas) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(StatusOK)
	}},
	// proxy_set_shared_data(key_ptr, key_size, value_ptr, value_size, cas) -> status
	//
	// Stores the value under the key in the calling VM's vm_id store and gives it the next
	// value of the process-wide CAS counter (which skips 0).
	//   - CAS_MISMATCH: cas is not 0 and differs from the key's current CAS.
	//   - INVALID_MEMORY_ACCESS: the key or the value is out of range.
	// As in Envoy, cas 0 writes unconditionally and a missing key is written whatever cas is.
	// There is no delete.
	{name: "proxy_set_shared_data", params: i32s(5), results: statusResult, fn: func(v *VM, s []uint64) {
		key, ok := v.readString(uint32(s[0]), uint32(s[1]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		value, ok := v.read(uint32(s[2]), uint32(s[3]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(v.rt.shared.set(v.plugin.cfg.VMID, key, value, uint32(s[4])))
	}},
}

// SharedData is a Go view of one vm_id's shared data, for tests and admin pages.
type SharedData struct {
	d    *sharedData
	vmID string
}

// SharedData returns the view of vmID's store. The store exists while a VM of vmID runs.
func (r *Runtime) SharedData(vmID string) SharedData { return SharedData{d: r.shared, vmID: vmID} }

// Get returns a copy of the key's value and its CAS; ok is false for a missing key.
func (s SharedData) Get(key string) (value []byte, cas uint32, ok bool) {
	v, c, st := s.d.get(s.vmID, key)
	return append([]byte(nil), v...), c, st == StatusOK
}

// Set stores a value as proxy_set_shared_data does (same CAS rules), e.g. to seed a test. The
// store exists only while a VM of the vm_id runs: without one, Set is NOT_FOUND.
func (s SharedData) Set(key string, value []byte, cas uint32) Status {
	s.d.mu.Lock()
	live := s.d.refs[s.vmID] > 0
	s.d.mu.Unlock()
	if !live {
		return StatusNotFound
	}
	return s.d.set(s.vmID, key, append([]byte(nil), value...), cas)
}

// Keys returns the store's keys, sorted.
func (s SharedData) Keys() []string {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	keys := make([]string, 0, len(s.d.stores[s.vmID]))
	for k := range s.d.stores[s.vmID] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
