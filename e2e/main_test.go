// Package e2e tests the built module, build/usageplans.wasm, in the host: the native tests
// are fast, these are the truth. `make test` builds the module first and points the tests at
// it; a missing module fails the suite, it never skips it.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

var (
	// compileCache compiles each module once for the whole test binary; every runtime the
	// tests start shares it.
	compileCache = wazero.NewCompilationCache()

	filterWasm []byte // build/usageplans.wasm
	noopWasm   []byte // host/testdata/noop built the same way: the floor for benchmarks
)

func TestMain(m *testing.M) {
	var err error
	if filterWasm, err = readModule("USAGEPLANS_WASM", "../build/usageplans.wasm"); err == nil {
		noopWasm, err = readModule("USAGEPLANS_NOOP_WASM", "../build/out/noop.wasm")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err, "(run `make test`, which builds the modules first)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func readModule(env, fallback string) ([]byte, error) {
	path := os.Getenv(env)
	if path == "" {
		path = fallback
	}
	b, err := os.ReadFile(path)
	if err != nil {
		abs, _ := filepath.Abs(path)
		return nil, fmt.Errorf("reading the module %s (%s): %w", abs, env, err)
	}
	return b, nil
}
