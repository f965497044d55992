//go:build !wasip1

package main

import "time"

// wallClock is time.Now outside Wasm (the native tests replace now anyway).
var wallClock = time.Now
