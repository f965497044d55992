// Command wasmimage packs the built filter as a Wasm OCI image (compat variant), writes it
// as an OCI layout and an OCI archive, and optionally pushes it; no Docker engine needed.
//
//	go run ./build/oci/cmd/wasmimage -wasm build/usageplans.wasm -out build/out
//	go run ./build/oci/cmd/wasmimage -wasm build/usageplans.wasm -out build/out -push registry/repo:tag
//
// With -push it also writes build/out/istio/*.yaml: build/istio's manifests with the
// WasmPlugin url and sha256 set to the pushed image, ready for kubectl apply.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/usageplans/usageplans/build/oci"
)

func main() {
	var o oci.Options
	flag.StringVar(&o.Module, "wasm", "build/usageplans.wasm", "the Wasm module to pack")
	flag.StringVar(&o.OutDir, "out", "build/out", "output directory (layout in OUT/oci, archive OUT/usageplans-image.tar)")
	flag.StringVar(&o.Ref, "ref", "usageplans:dev", "name of the image inside the OCI layout")
	flag.StringVar(&o.Push, "push", "", "registry/repository:tag to push to, with Docker config credentials (optional)")
	manifests := flag.String("istio", "build/istio/*.yaml", "with -push: Istio manifests (a glob) to write to OUT/istio/ pinned to the pushed image")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "wasmimage: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if o.Push != "" && *manifests != "" {
		m, err := filepath.Glob(*manifests)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wasmimage: -istio:", err)
			os.Exit(2)
		}
		o.Manifests = m
	}
	created, err := sourceDateEpoch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmimage:", err)
		os.Exit(2)
	}
	o.Created = created
	if _, err := oci.Build(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wasmimage:", err)
		os.Exit(1)
	}
}

// sourceDateEpoch follows the reproducible-builds convention: SOURCE_DATE_EPOCH (seconds)
// dates the image when set, the Unix epoch otherwise.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return oci.Epoch, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}
