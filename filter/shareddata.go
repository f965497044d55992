package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/usageplans/usageplans/filter/state"
)

// sharedData is the proxy's shared data as a state.Store: process-wide across the workers'
// VMs of one vm_id, which is what makes counts exact across workers.
type sharedData struct{}

func (sharedData) Get(key string) ([]byte, uint32, error) {
	v, cas, err := proxywasm.GetSharedData(key)
	return v, cas, storeError(err)
}

func (sharedData) Set(key string, value []byte, cas uint32) error {
	return storeError(proxywasm.SetSharedData(key, value, cas))
}

func storeError(err error) error {
	switch err {
	case nil:
		return nil
	case types.ErrorStatusNotFound:
		return state.ErrNotFound
	case types.ErrorStatusCasMismatch:
		return state.ErrCASMismatch
	}
	return err
}
