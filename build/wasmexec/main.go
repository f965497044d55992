// Command wasmexec runs a GOOS=wasip1 program, typically a test binary, under wazero (the
// engine the host package embeds), with the host's file system mounted at / and the
// environment and working directory passed on, so that package tests and benchmarks run
// in Wasm as they do natively:
//
//	go build -o build/out/bin/wasmexec ./build/wasmexec
//	GOOS=wasip1 GOARCH=wasm go test -exec $PWD/build/out/bin/wasmexec -run '^$' -bench . ./filter/config
//
// Compiled modules are cached in $WASMEXEC_CACHE (default: the user cache directory).
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
	cfg := wazero.NewRuntimeConfig()
	dir := os.Getenv("WASMEXEC_CACHE")
	if dir == "" {
		if c, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(c, "usageplans-wasmexec")
		}
	}
	if dir != "" {
		if cache, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
			cfg = cfg.WithCompilationCache(cache)
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)

	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	mc := wazero.NewModuleConfig().
		WithArgs(append([]string{filepath.Base(path)}, args...)...).
		WithStdin(os.Stdin).WithStdout(os.Stdout).WithStderr(os.Stderr).
		WithFSConfig(wazero.NewFSConfig().WithDirMount("/", "/")).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(rand.Reader)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			mc = mc.WithEnv(k, v)
		}
	}
	mc = mc.WithEnv("PWD", wd)
	_, err = rt.InstantiateWithConfig(ctx, bin, mc)
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return int(exit.ExitCode()), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
