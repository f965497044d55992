package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestBuildIsReproducible builds the no-op plugin twice and once with a version stamped in:
// the same source must give the same bytes (the OCI digest and the manifests' sha256 depend
// on it), and -ldflags must reach the linker (the hot-swap tests tell builds apart by it).
func TestBuildIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Wasm modules")
	}
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// build resolves the repository from the working directory, as `go run` from the root.
	t.Chdir(filepath.Join(wd, "..", ".."))
	build1, build2, stamped := filepath.Join(dir, "a.wasm"), filepath.Join(dir, "b.wasm"), filepath.Join(dir, "v.wasm")
	for _, b := range []struct{ out, ldflags string }{{build1, ""}, {build2, ""}, {stamped, "-X main.version=v2"}} {
		if err := build("./filter", b.out, b.ldflags, "", false); err != nil {
			t.Fatal(err)
		}
	}
	a, b, v := read(t, build1), read(t, build2), read(t, stamped)
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of the same source differ (%d and %d bytes)", len(a), len(b))
	}
	if bytes.Equal(a, v) {
		t.Error("-ldflags -X main.version=v2 did not change the module")
	}
	if !bytes.Contains(v, []byte("v2")) || !bytes.HasPrefix(a, []byte("\x00asm")) {
		t.Error("the stamped module does not look like a Wasm module carrying its version")
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
