// Command filter is the usageplans proxy-wasm plugin. It only registers its contexts: the
// adapter to proxy-wasm is in this package's other files, the decisions in filter/core.
package main

import "github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

// version is stamped at link time (make build VERSION=...) and logged at configure, so that
// operators and the hot-swap tests can tell which build answers.
var version = "dev"

// A c-shared Wasm module never runs main.main: registration happens at _initialize.
func init() { proxywasm.SetVMContext(&vmContext{}) }

func main() {}
