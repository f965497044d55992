//go:build wasip1 && usageplans_shim

// This file stands in, in the Wasm build, for each of the SDK's !tinygo files
// (abi_hostcalls_mock.go, abi_callback_test_export.go, vmstate_test_export.go): they hold
// the mock host of proxytest, which must not be linked into the real module.

package internal
