// Command badinit is a proxy-wasm plugin whose initialisation panics, so _initialize traps.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func init() {
	proxywasm.SetVMContext(&types.DefaultVMContext{})
	panic("badinit: init fails on purpose")
}

func main() {}
