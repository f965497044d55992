//go:build wasip1

package main

import (
	"time"
	"unsafe"
)

// clockTimeGet is WASI's clock_time_get: the time of clock id (0: realtime) in ns at *result.
//
//go:wasmimport wasi_snapshot_preview1 clock_time_get
func clockTimeGet(id uint32, precision uint64, result unsafe.Pointer) uint32

// clockNs is where the host writes the time: a package variable, never a stack slot (see
// build/wasmbuild on stacks that move during a host call).
var clockNs uint64

// wallClock is the host's realtime clock in one WASI call; time.Now makes two (realtime and
// monotonic), and no decision reads a monotonic reading.
func wallClock() time.Time {
	if clockTimeGet(0, 1, unsafe.Pointer(&clockNs)) != 0 {
		return time.Now()
	}
	return time.Unix(0, int64(clockNs))
}
