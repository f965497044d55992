// Command initmetric defines a metric in a package-level variable, so its _initialize calls
// env.proxy_define_metric: proxy-wasm-cpp-host traps that with "restricted_callback".
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

var requests = proxywasm.DefineCounterMetric("init_requests")

func init() { proxywasm.SetVMContext(&types.DefaultVMContext{}) }

func main() { requests.Increment(1) }
