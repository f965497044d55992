// Command usageplans runs the filter locally: `serve` is a small Envoy stand-in gateway with
// hot swap, `validate` checks a plugin configuration with the filter's own parser.
package main

import (
	"context"
	"os"

	"github.com/usageplans/usageplans/cmd/usageplans/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
