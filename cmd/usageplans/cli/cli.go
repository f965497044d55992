// Package cli is the usageplans command line: argument parsing, signals and exit statuses
// of its subcommands, kept out of package main so that tests can run it in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
	"github.com/usageplans/usageplans/cmd/usageplans/keys"
	"github.com/usageplans/usageplans/filter/config"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitFail  = 1 // an invalid configuration, or serve failed
	ExitUsage = 2 // bad arguments, as package flag does
)

const usage = `usageplans: AWS API Gateway usage plans and API keys as a proxy-wasm filter.

Usage:
  usageplans serve [flags]      serve the filter locally, like one Envoy with N workers
  usageplans validate FILE      check a plugin configuration with the filter's own parser
  usageplans keys COMMAND       generate, hash, check, import and rotate API keys
  usageplans ratelimit-config FILE
                                print the Rate Limit Service configuration its global mode needs

Run "usageplans COMMAND --help" for the flags of a command.
`

// Main runs the command line args (without the program name) and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "keys":
		return keys.Main(args[1:], keys.Env{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr})
	case "ratelimit-config":
		return ratelimitConfig(args[1:], stdout, stderr, time.Now())
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "usageplans: unknown command %q\n\n%s", args[0], usage)
	return ExitUsage
}

// parse parses a subcommand's flags; --help prints the usage to stdout and is not an error.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (status int, ok bool) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return ExitOK, false
		}
		fmt.Fprintf(stderr, "usageplans %s: %v\n", fs.Name(), err)
		fs.SetOutput(stderr)
		fs.Usage()
		return ExitUsage, false
	}
	return 0, true
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: usageplans validate FILE

Parses FILE, a plugin configuration (the JSON given to the filter), with the filter's own
code, and prints every problem as "FILE: json.path: message". Exit status 0 when it is
valid (a summary goes to stdout), 1 when it is not or cannot be read, 2 on bad arguments.
`)
	}
	if st, ok := parse(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "usageplans validate: want exactly one FILE, got %d arguments\n", fs.NArg())
		return ExitUsage
	}
	file := fs.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "usageplans validate: %v\n", err)
		return ExitFail
	}
	cfg, err := config.Parse(data)
	if err != nil {
		lines := strings.Split(err.Error(), "\n")
		for _, l := range lines {
			fmt.Fprintf(stderr, "%s: %s\n", file, l)
		}
		fmt.Fprintf(stderr, "%s: invalid: %s\n", file, plural(len(lines), "problem"))
		return ExitFail
	}
	fmt.Fprintf(stdout, "%s: valid: %s, %s, %s, %s\n", file, plural(len(cfg.Plans), "plan"),
		plural(len(cfg.Keys), "key"), plural(len(cfg.APIs), "API"), plural(len(cfg.Routes), "route"))
	return ExitOK
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var o gateway.Options
	fs.StringVar(&o.Wasm, "wasm", "build/usageplans.wasm", "the filter module `FILE`")
	fs.StringVar(&o.Config, "config", "plugin.json", "the plugin configuration `FILE` (JSON)")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "the gateway's `address`")
	fs.StringVar(&o.Admin, "admin", "127.0.0.1:9901", "the admin endpoint's `address` (/ready, /stats, /stats/prometheus, /config_dump, POST /reload)")
	fs.StringVar(&o.Upstream, "upstream", "echo", "where admitted requests go: a base `URL`, or echo (answers 200 with a JSON echo of what it received)")
	fs.IntVar(&o.Workers, "workers", runtime.GOMAXPROCS(0), "worker VMs, like Envoy's worker threads; they share one shared-data store")
	fs.StringVar(&o.Routes, "routes", "", "a routes `FILE` (JSON) mapping host and path prefixes to route names (xds.route_name) and upstreams; default: one route named \"default\"")
	fs.StringVar(&o.VMID, "vm-id", "usageplans", "the `vm_id`: VMs with the same vm_id share data")
	fs.StringVar(&o.RootID, "root-id", "usageplans", "the `root_id` (plugin_root_id)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "the filter's log `level`: trace, debug, info, warn, error or critical")
	o.Clusters = clusterFlag{}
	fs.Var(clusterFlag(o.Clusters), "cluster", "a cluster `NAME=URL` the filter may call (repeatable): grpc://HOST:PORT (HTTP/2 cleartext, e.g. envoyproxy/ratelimit's gRPC port), http://... or https://...")
	demo := fs.Bool("print-demo", false, "before listening, print the demo keys of the configuration and curl lines to try them")
	watch := fs.Duration("watch", time.Second, "how often to check --wasm and --config for changes (0 turns it off)")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish on SIGINT/SIGTERM")
	limits := serveLimits(fs, &o)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: usageplans serve [flags]

Serves the filter on --listen with --workers VMs, proxies admitted requests to --upstream,
and reloads the module and configuration (hot swap, no counted request lost) on SIGHUP,
on POST /reload to the admin endpoint, or when --wasm or --config changes. SIGINT or
SIGTERM stop it gracefully.

Flags:
`)
		fs.PrintDefaults()
	}
	if st, ok := parse(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "usageplans serve: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	o.WatchInterval = *watch
	if *watch == 0 {
		o.WatchInterval = -1
	}
	limits()
	o.Log = stderr
	if *demo {
		if err := gateway.PrintDemo(stdout, o); err != nil {
			fmt.Fprintf(stderr, "usageplans serve: --print-demo: %v\n", err)
			return ExitFail
		}
	}

	// Both are caught from before the gateway starts, so that no signal finds the default
	// action (which ends the process) once the gateway has said it serves.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g, err := gateway.Start(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "usageplans serve: %v\n", err)
		return ExitFail
	}
	for {
		select {
		case <-hup:
			// The gateway logs the outcome; a failed reload keeps the running version.
			_, _ = g.Reload(ctx, "SIGHUP")
			continue
		case <-ctx.Done():
		case <-g.Done():
		}
		break
	}
	stop() // a second Ctrl-C kills the process the default way
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := g.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "usageplans serve: %v\n", err)
		return ExitFail
	}
	return ExitOK
}
