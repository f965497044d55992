//go:build wasip1 && usageplans_shim && usageplans_gcalloc

package internal

import "runtime"

// allocHook moves the goroutine stack inside every proxy_on_memory_allocate (test builds
// only: wasmbuild -tags usageplans_gcalloc). The host calls the allocator while a host call
// of the guest is paused on the same goroutine stack, so a stack move there leaves any stack
// address the guest handed to the host stale. Deep frames make the stack grow (copied to a
// larger one), and the forced collection shrinks it again (copied back to a smaller one), so
// the next allocation grows it anew. host/shim_gcalloc_test.go uses this
// build to prove the shim hands the host no stack address (hostcalls.go's package-level
// result slots).
func allocHook() {
	deepFrames(64)
	runtime.GC()
}

// deepFrames uses about depth KiB of stack.
//
//go:noinline
func deepFrames(depth int) byte {
	var frame [1024]byte
	frame[depth%len(frame)] = byte(depth)
	if depth == 0 {
		return frame[0]
	}
	return deepFrames(depth-1) + frame[depth%len(frame)]
}
