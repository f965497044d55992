// Package oci packs the filter's Wasm module as an OCI image in the Wasm "compat" variant
// that Istio's WasmPlugin pulls (one gzip tar layer holding plugin.wasm), reproducibly.
package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ModuleFile is the name Istio looks for in the layer of a compat-variant image.
const ModuleFile = "plugin.wasm"

// RefNameAnnotation names an image inside an OCI layout's index.json (OCI image-spec).
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Epoch is the default timestamp of every dated field, so that the same module always gives
// the same image digest (override with SOURCE_DATE_EPOCH in the command).
var Epoch = time.Unix(0, 0).UTC()

var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// Image builds the compat-variant image of module: an OCI manifest, an OCI config
// (architecture wasm, os wasip1) and one application/vnd.oci.image.layer.v1.tar+gzip layer
// whose tar holds exactly ModuleFile. Every timestamp is created.
func Image(module []byte, created time.Time) (v1.Image, error) {
	if !bytes.HasPrefix(module, wasmMagic) {
		return nil, errors.New("oci: module does not start with the Wasm magic \\0asm: not a .wasm file")
	}
	layerBlob, err := layerTarGz(module, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBlob)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("oci: layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "wasm",
		OS:           "wasip1",
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("oci: config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "usageplans build/oci: " + ModuleFile,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("oci: append layer: %w", err)
	}
	return img, nil
}

// layerTarGz writes the layer blob. The tar header and the gzip header carry no host
// details (owner, mtime of the file, OS), so the bytes depend only on module and created.
func layerTarGz(module []byte, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     ModuleFile,
		Mode:     0o644,
		Size:     int64(len(module)),
		ModTime:  created,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("oci: layer tar header: %w", err)
	}
	if _, err := tw.Write(module); err != nil {
		return nil, fmt.Errorf("oci: layer tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("oci: layer tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("oci: layer gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// ModuleSHA256 is the hex sha256 of the module file: the value of Envoy's remote
// `sha256` and of an Istio WasmPlugin that fetches the module over http(s).
func ModuleSHA256(module []byte) string {
	sum := sha256.Sum256(module)
	return hex.EncodeToString(sum[:])
}

// WriteLayout replaces dir with an OCI image layout holding img alone, named ref in
// index.json. Replacing (not appending) keeps the layout identical from build to build.
func WriteLayout(dir string, img v1.Image, ref string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("oci: clear layout %s: %w", dir, err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Annotations: map[string]string{RefNameAnnotation: ref}},
	})
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("oci: write layout %s: %w", dir, err)
	}
	// The library writes large blobs through private temporary files (mode 0600); make the
	// layout readable like any build output, for tools run as another user.
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o644)
	})
}

// WriteArchive packs the layout directory dir into one tar file at path (the
// "oci-archive" form that skopeo, podman and Docker 25+ load), with sorted entries and
// fixed metadata so that the archive is byte-identical across builds.
func WriteArchive(path, dir string, created time.Time) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("oci: archive %s: %w", dir, err)
	}
	sort.Strings(files)

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("oci: archive %s: %w", path, err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("oci: archive %s: %w", path, err)
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	for _, p := range files {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			f.Close()
			return err
		}
		if err := addArchiveEntry(tw, p, filepath.ToSlash(rel), created); err != nil {
			f.Close()
			return fmt.Errorf("oci: archive %s: %w", path, err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("oci: archive %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("oci: archive %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

func addArchiveEntry(tw *tar.Writer, p, rel string, created time.Time) error {
	info, err := os.Stat(p)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: rel, ModTime: created, Format: tar.FormatUSTAR}
	if info.IsDir() {
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, rel+"/", 0o755
		return tw.WriteHeader(hdr)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(data))
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}

// Push uploads img to ref (registry/repository:tag) with credentials from the default
// keychain (the Docker config: $DOCKER_CONFIG or ~/.docker/config.json, and its credential
// helpers) and returns the pushed reference pinned by digest.
func Push(ctx context.Context, img v1.Image, ref string, opts ...remote.Option) (name.Digest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("oci: push: image reference %q: %w", ref, err)
	}
	opts = append([]remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithContext(ctx)}, opts...)
	if err := remote.Write(r, img, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("oci: push %s: %w", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return r.Context().Digest(d.String()), nil
}
