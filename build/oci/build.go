package oci

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/usageplans/usageplans/build/istio"
)

// Options says what the image command builds and where it puts it.
type Options struct {
	Module  string    // path of the .wasm file, e.g. build/usageplans.wasm
	OutDir  string    // the layout goes to OutDir/oci, the archive to OutDir/usageplans-image.tar
	Ref     string    // name of the image in the layout's index.json, e.g. usageplans:dev
	Push    string    // when set, registry/repository:tag to push the image to
	Created time.Time // every timestamp in the image; Epoch for reproducible builds

	// Manifests are Istio manifests (build/istio/*.yaml) to pin to the pushed image: each
	// is written to OutDir/istio/ with its WasmPlugin's url and sha256 set. Push only.
	Manifests []string

	RemoteOptions []remote.Option // extra options for Push (tests use a transport)
}

// Result is what Build printed.
type Result struct {
	ModuleSHA256 string   // hex sha256 of the module file
	ImageDigest  string   // sha256:... of the image manifest
	Layout       string   // directory of the OCI layout
	Archive      string   // path of the tar of the layout
	Pushed       string   // registry/repository@sha256:... when pushed
	Pinned       []string // the pinned Istio manifests written
}

// Paths of the outputs under Options.OutDir.
const (
	LayoutDir   = "oci"
	ArchiveFile = "usageplans-image.tar"
)

// Build reads the module, writes the layout and the archive, pushes when asked, and prints
// on w the values the deployment manifests need: the module sha256 (Envoy remote code,
// Istio over http) and the image digest (Istio's WasmPlugin sha256 for an oci:// url).
func Build(ctx context.Context, o Options, w io.Writer) (*Result, error) {
	module, err := os.ReadFile(o.Module)
	if err != nil {
		return nil, fmt.Errorf("oci: read module: %w", err)
	}
	img, err := Image(module, o.Created)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Module, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("oci: image digest: %w", err)
	}
	res := &Result{
		ModuleSHA256: ModuleSHA256(module),
		ImageDigest:  digest.String(),
		Layout:       filepath.Join(o.OutDir, LayoutDir),
		Archive:      filepath.Join(o.OutDir, ArchiveFile),
	}
	if err := WriteLayout(res.Layout, img, o.Ref); err != nil {
		return nil, err
	}
	if err := WriteArchive(res.Archive, res.Layout, o.Created); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "module        %s (%d bytes)\n", o.Module, len(module))
	fmt.Fprintf(w, "module sha256 %s\n", res.ModuleSHA256)
	fmt.Fprintf(w, "image digest  %s\n", res.ImageDigest)
	fmt.Fprintf(w, "oci layout    %s (ref %s)\n", res.Layout, o.Ref)
	fmt.Fprintf(w, "oci archive   %s\n", res.Archive)
	if o.Push != "" {
		pushed, err := Push(ctx, img, o.Push, o.RemoteOptions...)
		if err != nil {
			return nil, err
		}
		res.Pushed = pushed.String()
		fmt.Fprintf(w, "pushed        %s\n", res.Pushed)
		fmt.Fprintf(w, "istio         url: oci://%s  sha256: %s\n", o.Push, digest.Hex)
		for _, m := range o.Manifests {
			doc, err := os.ReadFile(m)
			if err != nil {
				return nil, fmt.Errorf("oci: %w", err)
			}
			pinned, err := istio.Pin(doc, o.Push, digest.Hex)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m, err)
			}
			dst := filepath.Join(o.OutDir, "istio", filepath.Base(m))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, fmt.Errorf("oci: %w", err)
			}
			if err := os.WriteFile(dst, pinned, 0o644); err != nil {
				return nil, fmt.Errorf("oci: %w", err)
			}
			res.Pinned = append(res.Pinned, dst)
			fmt.Fprintf(w, "istio pinned  %s\n", dst)
		}
	}
	return res, nil
}
