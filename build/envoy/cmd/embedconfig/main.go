// Command embedconfig writes plugin.json into the marked blocks of the Envoy bootstraps and
// Istio manifests, or with -check reports which of them differ from it (exit status 1).
//
//	go run ./build/envoy/cmd/embedconfig                 (rewrite build/envoy/*.yaml build/envoy/lds/*.yaml build/istio/*.yaml)
//	go run ./build/envoy/cmd/embedconfig -check
//	go run ./build/envoy/cmd/embedconfig -plugin my.json out/envoy.yaml
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/usageplans/usageplans/build/envoy"
)

func main() {
	plugin := flag.String("plugin", "plugin.json", "the plugin configuration to embed")
	check := flag.Bool("check", false, "change nothing; exit 1 if a file differs from what would be written")
	flag.Parse()
	files := flag.Args()
	named := len(files) > 0
	if !named {
		for _, g := range []string{"build/envoy/*.yaml", "build/envoy/lds/*.yaml", "build/istio/*.yaml"} {
			m, _ := filepath.Glob(g)
			files = append(files, m...)
		}
	}
	if len(files) == 0 {
		fail(2, "no manifests found; run from the repository root or name the files")
	}
	cfg, err := os.ReadFile(*plugin)
	if err != nil {
		fail(2, err.Error())
	}
	stale := 0
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			fail(2, err.Error())
		}
		out, err := envoy.Embed(doc, cfg)
		if errors.Is(err, envoy.ErrNoBlock) && !named {
			continue // a default manifest without plugin.json, such as envoy-lds.yaml
		}
		if err != nil {
			fail(1, fmt.Sprintf("%s: %v", f, err))
		}
		if bytes.Equal(out, doc) {
			continue
		}
		if *check {
			fmt.Fprintf(os.Stderr, "%s: differs from %s; run go run ./build/envoy/cmd/embedconfig\n", f, *plugin)
			stale++
			continue
		}
		if err := os.WriteFile(f, out, 0o644); err != nil {
			fail(2, err.Error())
		}
		fmt.Printf("embedded %s in %s\n", *plugin, f)
	}
	if stale > 0 {
		os.Exit(1)
	}
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, "embedconfig:", msg)
	os.Exit(code)
}
