//go:build wasip1 && usageplans_shim && !usageplans_gcalloc

package internal

// allocHook runs at the start of proxy_on_memory_allocate; in normal builds it does nothing
// (see allochook_gc.go for the test build).
func allocHook() {}
