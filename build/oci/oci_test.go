package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	extensions "istio.io/api/extensions/v1alpha1"

	"github.com/usageplans/usageplans/build/istio"
)

// fakeModule is a small byte slice that passes the Wasm magic check Istio applies
// (\0asm + version 1) and is distinct per seed.
func fakeModule(seed byte) []byte {
	m := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	for i := 0; i < 3000; i++ {
		m = append(m, byte(i*31)^seed)
	}
	return m
}

func writeModule(t *testing.T, module []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "usageplans.wasm")
	if err := os.WriteFile(p, module, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// printed parses Build's output into label -> first word of the value.
func printed(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 14 {
			t.Fatalf("short output line %q", line)
		}
		got[strings.TrimSpace(line[:14])] = strings.Fields(line[14:])[0]
	}
	return got
}

// checkCompatImage asserts the Wasm "compat" shape that Istio's image fetcher accepts
// and that the single layer carries exactly module as plugin.wasm.
func checkCompatImage(t *testing.T, img v1.Image, module []byte) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %q, want %q", m.MediaType, types.OCIManifestSchema1)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config media type %q, want %q", m.Config.MediaType, types.OCIConfigJSON)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("manifest has %d layers, want 1", len(m.Layers))
	}
	if m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("layer media type %q, want %q", m.Layers[0].MediaType, types.OCILayer)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "wasm" || cfg.OS != "wasip1" || len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("config: architecture %q os %q diff_ids %d, want wasm wasip1 1", cfg.Architecture, cfg.OS, len(cfg.RootFS.DiffIDs))
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("layer tar: %v", err)
		}
		names = append(names, h.Name)
		if h.Name != ModuleFile {
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: type %c mode %o uid %d gid %d, want regular 0644 root", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, module) {
			t.Errorf("%s in the layer differs from the module (%d bytes, want %d)", ModuleFile, len(body), len(module))
		}
	}
	if len(names) != 1 || names[0] != ModuleFile {
		t.Errorf("layer tar entries %q, want exactly [%q]", names, ModuleFile)
	}
}

func imageFromLayout(t *testing.T, dir, wantRef string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read layout %s: %v", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("layout index has %d manifests, want 1", len(im.Manifests))
	}
	if got := im.Manifests[0].Annotations[RefNameAnnotation]; got != wantRef {
		t.Errorf("layout ref %q, want %q", got, wantRef)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// untar extracts an OCI archive so that go-containerregistry can read it as a layout.
func untar(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatalf("archive %s: %v", archive, err)
		}
		if !h.ModTime.Equal(Epoch) {
			t.Errorf("archive entry %s dated %v, want %v", h.Name, h.ModTime, Epoch)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// buildAndCheck runs Build on module and checks every output against the printed values.
func buildAndCheck(t *testing.T, module []byte) (*Result, map[string]string) {
	t.Helper()
	var out bytes.Buffer
	o := Options{Module: writeModule(t, module), OutDir: t.TempDir(), Ref: "usageplans:test", Created: Epoch}
	res, err := Build(context.Background(), o, &out)
	if err != nil {
		t.Fatal(err)
	}
	p := printed(t, out.String())
	sum := sha256.Sum256(module)
	if want := hex.EncodeToString(sum[:]); p["module sha256"] != want || res.ModuleSHA256 != want {
		t.Errorf("printed module sha256 %q (result %q), want %q", p["module sha256"], res.ModuleSHA256, want)
	}

	err = filepath.WalkDir(res.Layout, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err != nil || info.Mode().Perm() != 0o644 {
				t.Errorf("%s: mode %v (%v), want 0644", p, info.Mode().Perm(), err)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fromLayout := imageFromLayout(t, res.Layout, o.Ref)
	checkCompatImage(t, fromLayout, module)
	if got := digestOf(t, fromLayout); got != p["image digest"] || got != res.ImageDigest {
		t.Errorf("layout image digest %s, printed %s", got, p["image digest"])
	}
	fromArchive := imageFromLayout(t, untar(t, res.Archive), o.Ref)
	checkCompatImage(t, fromArchive, module)
	if got := digestOf(t, fromArchive); got != p["image digest"] {
		t.Errorf("archive image digest %s, printed %s", got, p["image digest"])
	}
	return res, p
}

func TestBuildFromGeneratedModule(t *testing.T) {
	buildAndCheck(t, fakeModule(1))
}

// The same module must give the same digest and the same archive bytes on every build,
// and a different module a different digest.
func TestBuildIsReproducible(t *testing.T) {
	a, _ := buildAndCheck(t, fakeModule(1))
	b, _ := buildAndCheck(t, fakeModule(1))
	c, _ := buildAndCheck(t, fakeModule(2))
	if a.ImageDigest != b.ImageDigest {
		t.Errorf("two builds of one module: digests %s and %s", a.ImageDigest, b.ImageDigest)
	}
	if a.ImageDigest == c.ImageDigest {
		t.Errorf("two different modules share the digest %s", a.ImageDigest)
	}
	ab, err := os.ReadFile(a.Archive)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b.Archive)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ab, bb) {
		t.Errorf("two builds of one module gave different archives (%d and %d bytes)", len(ab), len(bb))
	}
}

func TestImageRejectsNonWasm(t *testing.T) {
	_, err := Image([]byte("#!/bin/sh\necho not wasm\n"), Epoch)
	if err == nil || !strings.Contains(err.Error(), "not a .wasm file") {
		t.Fatalf("Image(shell script) error = %v, want one saying it is not a .wasm file", err)
	}
}

func TestCreatedDatesTheImage(t *testing.T) {
	when := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	img, err := Image(fakeModule(1), when)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Created.Time.Equal(when) || len(cfg.History) != 1 || !cfg.History[0].Created.Time.Equal(when) {
		t.Errorf("config created %v, history %+v; want every date %v", cfg.Created.Time, cfg.History, when)
	}
}

// Push goes to an in-process registry (go-containerregistry's own) over real HTTP; pulling
// the image back by tag gives the printed digest and the module byte for byte.
func TestPushToRegistry(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // an empty Docker config: anonymous, never the user's
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/team/usageplans:v1"
	module := fakeModule(3)

	var out bytes.Buffer
	manifests, err := filepath.Glob(filepath.Join("..", "istio", "*.yaml"))
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no Istio manifests to pin (%v)", err)
	}
	o := Options{Module: writeModule(t, module), OutDir: t.TempDir(), Ref: "usageplans:v1", Push: ref, Created: Epoch, Manifests: manifests}
	res, err := Build(context.Background(), o, &out)
	if err != nil {
		t.Fatal(err)
	}
	p := printed(t, out.String())
	if want := host + "/team/usageplans@" + p["image digest"]; p["pushed"] != want || res.Pushed != want {
		t.Errorf("printed pushed %q (result %q), want %q", p["pushed"], res.Pushed, want)
	}
	if want := "url: oci://" + ref + "  sha256: " + strings.TrimPrefix(p["image digest"], "sha256:"); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks the Istio line %q:\n%s", want, out.String())
	}

	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if got := digestOf(t, pulled); got != p["image digest"] {
		t.Errorf("pulled digest %s, printed %s", got, p["image digest"])
	}
	checkCompatImage(t, pulled, module)

	// The pinned manifests point at what was pushed, and still pass the Istio checks.
	if len(res.Pinned) != len(manifests) {
		t.Fatalf("pinned %q, want one per manifest %q", res.Pinned, manifests)
	}
	for _, m := range res.Pinned {
		objs, err := istio.Load(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objs {
			wp, ok := obj.Spec.(*extensions.WasmPlugin)
			if !ok {
				continue
			}
			if wp.GetUrl() != "oci://"+ref || "sha256:"+wp.GetSha256() != p["image digest"] {
				t.Errorf("%s: url %q sha256 %q, want oci://%s and the printed digest %s", m, wp.GetUrl(), wp.GetSha256(), ref, p["image digest"])
			}
			if err := istio.CheckWasmPlugin(wp); err != nil {
				t.Errorf("%s: %v", m, err)
			}
		}
	}
}

func TestPushRejectsBadReference(t *testing.T) {
	img, err := Image(fakeModule(1), Epoch)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Push(context.Background(), img, "Not A Reference")
	if err == nil || !strings.Contains(err.Error(), `image reference "Not A Reference"`) {
		t.Fatalf("Push(bad ref) error = %v, want one naming the reference", err)
	}
}

// TestRealModule packs the module that `make build` wrote. `make test` sets
// USAGEPLANS_REQUIRE_WASM=1 so that a missing module fails instead of skipping.
func TestRealModule(t *testing.T) {
	path := os.Getenv("USAGEPLANS_WASM")
	if path == "" {
		path = filepath.Join("..", "usageplans.wasm")
	}
	module, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("USAGEPLANS_REQUIRE_WASM") == "1" {
			t.Fatalf("USAGEPLANS_REQUIRE_WASM=1 and the module is unreadable: %v", err)
		}
		t.Skipf("no built module (%v); run make build, or set USAGEPLANS_REQUIRE_WASM=1 to fail here", err)
	}
	buildAndCheck(t, module)
}
