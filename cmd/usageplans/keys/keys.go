// Package keys is `usageplans keys`: generate, hash, check, import and rotate API keys,
// editing a plugin configuration in place with digests only (valueSha256, never a value).
package keys

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Exit statuses, as the rest of the command line.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// Env is what a command reads and writes; nil Now and Rand mean the real clock and
// crypto/rand.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Now            func() time.Time
	Rand           io.Reader
}

func (e Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

func (e Env) rand() io.Reader {
	if e.Rand == nil {
		return rand.Reader
	}
	return e.Rand
}

const usage = `Usage:
  usageplans keys generate [--prefix P] [--config FILE --id ID [--plan PLAN]...]
                                  a new key value, printed once, and its valueSha256
  usageplans keys hash            the valueSha256 of a value read from stdin
  usageplans keys check           whether a value read from stdin carries a valid checksum
  usageplans keys import --config FILE [--plan PLAN]... [--dry-run] KEYFILE
                                  AWS's API key CSV, or AWS's ApiKey JSON, merged as digests
  usageplans keys rotate --config FILE --id ID [--grace 72h] [--prefix P]
                                  a new value for a key; the old one works for the grace period

Key values are never printed, except the one generate and rotate have just made. Every
command that edits FILE checks the result with the filter's own parser, writes it
atomically and leaves the rest of the document as it was.
`

// Main runs `usageplans keys` with args (after "keys") and returns the exit status.
func Main(args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return exitUsage
	}
	var run func([]string, Env) int
	switch args[0] {
	case "generate":
		run = generateCmd
	case "hash":
		run = hashCmd
	case "check":
		run = checkCmd
	case "import":
		run = importCmd
	case "rotate":
		run = rotateCmd
	case "help", "-h", "-help", "--help":
		fmt.Fprint(env.Stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(env.Stderr, "usageplans keys: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return run(args[1:], env)
}

// parseFlags parses a command's flags; --help prints its usage to stdout.
func parseFlags(fs *flag.FlagSet, text string, args []string, env Env) (int, bool) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text)
		if hasFlags(fs) {
			fmt.Fprint(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(env.Stdout)
			fs.Usage()
			return exitOK, false
		}
		fmt.Fprintf(env.Stderr, "usageplans keys %s: %v\n", fs.Name(), err)
		fs.SetOutput(env.Stderr)
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// fail prints a command's error and returns exitFail.
func fail(env Env, cmd string, err error) int {
	var inv *invalidError
	if errors.As(err, &inv) {
		fmt.Fprintln(env.Stderr, err)
	} else {
		fmt.Fprintf(env.Stderr, "usageplans keys %s: %v\n", cmd, err)
	}
	return exitFail
}

func usageError(env Env, cmd, format string, args ...any) int {
	fmt.Fprintf(env.Stderr, "usageplans keys %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return exitUsage
}

// plans is a repeatable --plan flag; each use may also list ids separated by commas.
type plans []string

func (p *plans) String() string { return strings.Join(*p, ",") }

func (p *plans) Set(s string) error {
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*p = append(*p, id)
		}
	}
	return nil
}

// printValue prints a new value, once, and its digest: the only place a value is printed.
func printValue(w io.Writer, value string) {
	fmt.Fprintf(w, "value:       %s\nvalueSha256: %s\n", value, digest(value))
}
