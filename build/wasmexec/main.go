// Command wasmexec runs a WASI (GOOS=wasip1) command module under wazero's compiler, the
// engine the host uses: `go test -exec` with it runs a package's tests and benchmarks in
// Wasm, where the filter's guest code runs, rather than natively (make bench-wasm).
//
// Usage: wasmexec module.wasm [args...]. The module sees the host's file system at "/", the
// environment (PWD included, which Go's wasip1 runtime takes as its working directory), the
// real wall and monotonic clocks, sleep and crypto/rand; its exit code is wasmexec's.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wasmexec module.wasm [args...]")
		os.Exit(2)
	}
	code, err := run(os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmexec:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(path string, args []string) (int, error) {
	ctx := context.Background()
	bin, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	cfg := wazero.NewRuntimeConfigCompiler()
	if dir, err := os.UserCacheDir(); err == nil {
		// Compiling a test binary takes seconds; the cache keeps it across runs.
		if cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "usageplans-wasmexec")); err == nil {
			cfg = cfg.WithCompilationCache(cache)
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	mc := wazero.NewModuleConfig().
		WithName("").
		WithArgs(append([]string{filepath.Base(path)}, args...)...).
		WithStdin(os.Stdin).WithStdout(os.Stdout).WithStderr(os.Stderr).
		WithFSConfig(wazero.NewFSConfig().WithDirMount("/", "/")).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			mc = mc.WithEnv(k, v)
		}
	}
	_, err = rt.InstantiateModule(ctx, mod, mc)
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return int(exit.ExitCode()), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
