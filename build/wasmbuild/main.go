// Command wasmbuild builds a proxy-wasm plugin written against proxy-wasm-go-sdk v0.24.0 into
// a Wasm module with the standard Go toolchain (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared).
//
// The SDK was written for TinyGo: its host calls are body-less TinyGo declarations and its
// callbacks are //export comments that standard Go ignores. wasmbuild makes a throw-away
// build in which an empty module stands in for the SDK (a replace in a generated copy of
// go.mod, passed with -modfile) and an overlay fills that module with the SDK's own files from
// the module cache, except that the TinyGo host calls are swapped for shim/hostcalls.go,
// the mock host is left out, and shim/exports.go adds the //go:wasmexport callbacks. Nothing
// of the SDK is copied into the repository, and native builds never see the shim.
//
//	go run ./build/wasmbuild [-o build/usageplans.wasm] [-ldflags '-X main.version=v2'] [-tags t1,t2] [./filter]
//
// -tags adds build tags to the shim's own; usageplans_gcalloc makes proxy_on_memory_allocate
// force a garbage collection first (a test build that proves the shim survives stack moves).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	sdkModule = "github.com/tetratelabs/proxy-wasm-go-sdk"
	shimDir   = "build/out/sdkshim" // relative to the repository root
)

// sdkPackages are the SDK packages a plugin links; proxytest is native-only.
var sdkPackages = []string{"proxywasm", "proxywasm/types", "proxywasm/internal"}

// replaced maps SDK files to the shim file that takes their place ("" = dropped).
var replaced = map[string]string{
	"proxywasm/internal/abi_hostcalls.go":            "hostcalls.go",
	"proxywasm/internal/abi_hostcalls_mock.go":       "empty.go",
	"proxywasm/internal/abi_callback_test_export.go": "empty.go",
	"proxywasm/internal/vmstate_test_export.go":      "empty.go",
}

// added are shim files that join the SDK's internal package.
var added = map[string]string{
	"proxywasm/internal/zz_usageplans_exports.go":      "exports.go",
	"proxywasm/internal/zz_usageplans_allochook.go":    "allochook.go",
	"proxywasm/internal/zz_usageplans_allochook_gc.go": "allochook_gc.go",
}

func main() {
	out := flag.String("o", "build/usageplans.wasm", "output `file`")
	ldflags := flag.String("ldflags", "", "extra linker `flags` (e.g. -X main.version=v2)")
	keep := flag.Bool("keep", false, "keep the generated build directory and print its path")
	tags := flag.String("tags", "", "extra comma-separated build `tags` (e.g. usageplans_gcalloc)")
	flag.Parse()
	pkg := "./filter"
	if flag.NArg() > 1 {
		fatal(errors.New("at most one package"))
	} else if flag.NArg() == 1 {
		pkg = flag.Arg(0)
	}
	if err := build(pkg, *out, *ldflags, *tags, *keep); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "wasmbuild:", err)
	os.Exit(1)
}

func build(pkg, out, ldflags, tags string, keep bool) error {
	buildTags := "usageplans_shim"
	for _, t := range strings.Split(tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			buildTags += "," + t
		}
	}
	gomod, err := goOutput("env", "GOMOD")
	if err != nil {
		return err
	}
	if gomod == "" || gomod == os.DevNull {
		return errors.New("run inside the usageplans module (go env GOMOD is empty)")
	}
	root := filepath.Dir(gomod)
	shimSrc := filepath.Join(root, "build", "wasmbuild", "shim")

	sdkDir, err := sdkSourceDir()
	if err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "usageplans-wasmbuild-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "wasmbuild: build directory", work)
	} else {
		defer os.RemoveAll(work)
	}

	// The stand-in module: a go.mod and empty package directories; the overlay fills them.
	// Its path is recorded in the module's build info, so it is fixed (and git-ignored) to
	// keep builds reproducible; its content is the same for every build, so concurrent
	// builds may share it.
	shim := filepath.Join(root, filepath.FromSlash(shimDir))
	if err := writeShimModule(shim); err != nil {
		return err
	}

	overlay := map[string]string{}
	for _, p := range sdkPackages {
		entries, err := os.ReadDir(filepath.Join(sdkDir, p))
		if err != nil {
			return fmt.Errorf("reading the SDK in the module cache: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			rel := p + "/" + name
			src := filepath.Join(sdkDir, p, name)
			if r, ok := replaced[rel]; ok {
				src = filepath.Join(shimSrc, r)
			}
			overlay[filepath.Join(shim, filepath.FromSlash(rel))] = src
		}
	}
	for rel := range replaced {
		if _, ok := overlay[filepath.Join(shim, filepath.FromSlash(rel))]; !ok {
			return fmt.Errorf("SDK file %s not found in %s: the shim expects SDK v0.24.0", rel, sdkDir)
		}
	}
	for rel, r := range added {
		overlay[filepath.Join(shim, filepath.FromSlash(rel))] = filepath.Join(shimSrc, r)
	}
	for _, src := range overlay {
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("overlay source: %w", err)
		}
	}
	overlayJSON, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		return err
	}
	overlayFile := filepath.Join(work, "overlay.json")
	if err := os.WriteFile(overlayFile, overlayJSON, 0o644); err != nil {
		return err
	}

	// A copy of go.mod with the replace, and go.sum beside it (the go command looks for the
	// sum file next to the -modfile).
	mod, err := os.ReadFile(gomod)
	if err != nil {
		return err
	}
	mod = append(mod, []byte(fmt.Sprintf("\nreplace %s => ./%s\n", sdkModule, shimDir))...)
	modFile := filepath.Join(work, "go.mod")
	if err := os.WriteFile(modFile, mod, 0o644); err != nil {
		return err
	}
	if sum, err := os.ReadFile(filepath.Join(root, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(work, "go.sum"), sum, 0o644); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(absOut), 0o755); err != nil {
		return err
	}
	args := []string{"build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false",
		"-tags=" + buildTags, "-modfile=" + modFile, "-overlay=" + overlayFile,
		"-ldflags=" + strings.TrimSpace("-s "+ldflags), "-o", absOut, pkg}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// writeShimModule lays out the stand-in SDK module: a go.mod and the empty package
// directories that the overlay fills.
func writeShimModule(dir string) error {
	for _, p := range sdkPackages {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			return err
		}
	}
	want := []byte("module " + sdkModule + "\n\ngo 1.24\n")
	modPath := filepath.Join(dir, "go.mod")
	if have, err := os.ReadFile(modPath); err == nil && string(have) == string(want) {
		return nil
	}
	tmp, err := os.CreateTemp(dir, "go.mod.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(want); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), modPath) // atomic: a concurrent build never sees half a file
}

// sdkSourceDir downloads the SDK version go.mod requires, if needed, and returns its
// directory in the module cache.
func sdkSourceDir() (string, error) {
	js, err := goOutput("mod", "download", "-json", sdkModule)
	if err != nil {
		return "", err
	}
	var m struct{ Dir, Version, Error string }
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", sdkModule, err)
	}
	if m.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", sdkModule, m.Error)
	}
	if m.Version != "v0.24.0" {
		return "", fmt.Errorf("the shim is written for %s v0.24.0, go.mod asks for %s", sdkModule, m.Version)
	}
	return m.Dir, nil
}

func goOutput(args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}
