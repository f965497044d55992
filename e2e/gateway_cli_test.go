package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/cmd/usageplans/cli"
	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
)

func runCLI(args ...string) (status int, stdout, stderr string) {
	var out, errb bytes.Buffer
	status = cli.Main(context.Background(), args, &out, &errb)
	return status, out.String(), errb.String()
}

// TestValidateInvalidFixtures runs `usageplans validate` on every invalid configuration of
// testdata/config/invalid: exit status 1, every expected message as "FILE: path: message" in
// order, a count, nothing on stdout, and no key value of the fixture anywhere.
func TestValidateInvalidFixtures(t *testing.T) {
	files, err := filepath.Glob("../testdata/config/invalid/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/config/invalid: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".errors")
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, l := range strings.Split(strings.TrimRight(string(want), "\n"), "\n") {
				lines = append(lines, f+": "+l)
			}
			noun := "problems"
			if len(lines) == 1 {
				noun = "problem"
			}
			lines = append(lines, f+": invalid: "+itoa(len(lines))+" "+noun)
			status, stdout, stderr := runCLI("validate", f)
			if status != 1 || stdout != "" || stderr != strings.Join(lines, "\n")+"\n" {
				t.Errorf("validate %s: status %d, stdout %q, stderr:\n%s\nwant status 1, no stdout, stderr:\n%s", f, status, stdout, stderr, strings.Join(lines, "\n"))
			}
			data, _ := os.ReadFile(f)
			noSecrets(t, "validate's output", stderr, string(data))
		})
	}
}

// TestValidateValid runs `usageplans validate` on the repository's plugin.json and on every
// valid fixture: exit status 0 and a one-line summary.
func TestValidateValid(t *testing.T) {
	status, stdout, stderr := runCLI("validate", "../plugin.json")
	if want := "../plugin.json: valid: 2 plans, 3 keys, 1 API, 2 routes\n"; status != 0 || stdout != want || stderr != "" {
		t.Errorf("validate plugin.json: %d %q %q, want 0 %q", status, stdout, stderr, want)
	}
	files, _ := filepath.Glob("../testdata/config/valid/*.json")
	for _, f := range files {
		status, stdout, stderr := runCLI("validate", f)
		if status != 0 || !strings.HasPrefix(stdout, f+": valid: ") || stderr != "" {
			t.Errorf("validate %s: %d %q %q, want 0 and a summary", f, status, stdout, stderr)
		}
	}
	if status, _, stderr := runCLI("validate", "../no/such.json"); status != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("validate of a missing file: %d %q, want 1 and the cause", status, stderr)
	}
}

// TestCLIUsage checks what `usageplans` prints without a command, with --help, and with bad
// arguments.
func TestCLIUsage(t *testing.T) {
	for _, c := range []struct {
		args     []string
		status   int
		outHas   string // in stdout
		errHas   string // in stderr
		noStdout bool
		noStderr bool
	}{
		{args: nil, status: 2, errHas: "usageplans serve [flags]", noStdout: true},
		{args: []string{"help"}, status: 0, outHas: "usageplans validate FILE", noStderr: true},
		{args: []string{"serve", "--help"}, status: 0, outHas: "-workers", noStderr: true},
		{args: []string{"validate", "--help"}, status: 0, outHas: "Usage: usageplans validate FILE", noStderr: true},
		{args: []string{"serve", "--nope"}, status: 2, errHas: "flag provided but not defined: -nope", noStdout: true},
		{args: []string{"validate"}, status: 2, errHas: "want exactly one FILE, got 0", noStdout: true},
		{args: []string{"frobnicate"}, status: 2, errHas: `unknown command "frobnicate"`, noStdout: true},
		{args: []string{"serve", "--log-level", "loud"}, status: 1, noStdout: true,
			errHas: `usageplans serve: --log-level: want trace, debug, info, warn, error or critical, got "loud"`},
		{args: []string{"serve", "--wasm", "../no/such.wasm", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, status: 1, noStdout: true,
			errHas: "usageplans serve: --wasm: open ../no/such.wasm: no such file or directory"},
		{args: []string{"serve", "--upstream", "localhost:1", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, status: 1, noStdout: true,
			errHas: `usageplans serve: --upstream: must be echo or an http(s) URL with a host, got "localhost:1"`},
	} {
		status, stdout, stderr := runCLI(c.args...)
		if status != c.status || !strings.Contains(stdout, c.outHas) || !strings.Contains(stderr, c.errHas) ||
			(c.noStdout && stdout != "") || (c.noStderr && stderr != "") {
			t.Errorf("usageplans %q: status %d\nstdout: %s\nstderr: %s", c.args, status, stdout, stderr)
		}
	}
	// The serve defaults are the ones the README and the Makefile promise.
	_, stdout, _ := runCLI("serve", "--help")
	for _, d := range []string{`-listen address`, `(default "127.0.0.1:8080")`, `(default "127.0.0.1:9901")`,
		`(default "echo")`, `(default "build/usageplans.wasm")`, `(default "plugin.json")`, `-vm-id`, `-root-id`, `-routes`, `-print-demo`} {
		if !strings.Contains(stdout, d) {
			t.Errorf("serve --help lacks %q:\n%s", d, stdout)
		}
	}
}

// TestPrintDemo checks what `make run` prints before it listens: the demo keys of
// plugin.json and the three curl lines of the README.
func TestPrintDemo(t *testing.T) {
	var out bytes.Buffer
	err := gateway.PrintDemo(&out, gateway.Options{Config: "../plugin.json", Routes: "../testdata/routes.json",
		Listen: "127.0.0.1:8080", Admin: "127.0.0.1:9901"})
	if err != nil {
		t.Fatal(err)
	}
	want := `Demo keys of ../plugin.json (your own configuration: shown because of --print-demo):
  alice  alice (free)           enabled   FreeDemoKeyAlice000000000000001
  bob    bob (pro)              enabled   ProDemoKeyBob0000000000000000002
  carol  carol (pro, disabled)  disabled  ProDemoKeyCarol00000000000000003

Try it (admin: http://127.0.0.1:9901/stats/prometheus):
  curl -i http://127.0.0.1:8080/pets
    # no key: 403 {"message":"Forbidden"}
  curl -i -H 'x-api-key: FreeDemoKeyAlice000000000000001' http://127.0.0.1:8080/pets
    # key alice: 200, the echo shows x-api-key stripped and the identity headers added
  for i in $(seq 1 10); do curl -s -o /dev/null -w '%{http_code} ' -H 'x-api-key: FreeDemoKeyAlice000000000000001' http://127.0.0.1:8080/pets; done; echo
    # a burst: 200 while the 5-token bucket lasts (it refills 2 per second), then 429 {"message":"Too Many Requests"}

`
	if out.String() != want {
		t.Errorf("PrintDemo:\n%s\nwant:\n%s", out.String(), want)
	}

	// Without a routes file every request has the route name "default", which plugin.json
	// does not route: the demo says what to do instead of printing curl lines that would
	// not show a 403.
	out.Reset()
	if err := gateway.PrintDemo(&out, gateway.Options{Config: "../plugin.json", Listen: "127.0.0.1:8080", Admin: "127.0.0.1:9901"}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); strings.Contains(s, "curl") || !strings.Contains(s, "pass --routes, e.g. --routes testdata/routes.json") {
		t.Errorf("PrintDemo without routes:\n%s", s)
	}
}

// validateDocRe is a documented `validate` command in a shell block.
var validateDocRe = regexp.MustCompile(`^\$ go run \./cmd/usageplans validate (\S+)$`)

// TestValidateAsDocumented runs every `go run ./cmd/usageplans validate FILE` shown in the
// README and the docs and compares what it prints, FILE: prefixes and summary line included,
// with what the text shows under it (issue 8, finding 7: the example had neither).
func TestValidateAsDocumented(t *testing.T) {
	found := 0
	for _, doc := range []string{"../README.md", "../docs/configuration.md", "../cmd/usageplans/README.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			m := validateDocRe.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			found++
			var want []string
			for _, o := range lines[i+1:] {
				if strings.HasPrefix(o, "$ ") || strings.HasPrefix(o, "```") {
					break
				}
				want = append(want, o)
			}
			_, stdout, stderr := runCLI("validate", "../"+m[1])
			got := strings.ReplaceAll(stdout+stderr, "../"+m[1], m[1])
			if got != strings.Join(want, "\n")+"\n" {
				t.Errorf("%s:%d: $ go run ./cmd/usageplans validate %s prints:\n%s\nthe text shows:\n%s", doc, i+1, m[1], got, strings.Join(want, "\n"))
			}
		}
	}
	if found < 3 {
		t.Errorf("found %d documented validate commands, want the 3 of README.md and docs/configuration.md", found)
	}
}

// helpFlagRe is one flag of `serve --help`: its name, and the rest of its entry.
var helpFlagRe = regexp.MustCompile(`(?m)^  -(\S+)[^\n]*\n((?:\s{4,}[^\n]*\n)*)`)

// TestServeFlagsDocumented: cmd/usageplans/README.md's table lists every serve flag with the
// default `serve --help` gives (issue 8: the new flags are documented with their defaults).
func TestServeFlagsDocumented(t *testing.T) {
	_, help, _ := runCLI("serve", "--help")
	doc, err := os.ReadFile("../cmd/usageplans/README.md")
	if err != nil {
		t.Fatal(err)
	}
	defaultRe := regexp.MustCompile(`\(default "?([^")]*)"?\)\s*$`)
	flags := helpFlagRe.FindAllStringSubmatch(help, -1)
	if len(flags) < 20 {
		t.Fatalf("found %d flags in serve --help:\n%s", len(flags), help)
	}
	for _, f := range flags {
		name, def := f[1], "false" // a bool flag's help line names no value and no default
		if first, _, _ := strings.Cut(f[0], "\n"); strings.TrimSpace(first) != "-"+name {
			def = "none" // a flag that takes a value and prints no default (--cluster)
		}
		if m := defaultRe.FindStringSubmatch(strings.TrimSpace(f[2])); m != nil {
			def = m[1]
		}
		switch name {
		case "workers":
			def = "GOMAXPROCS" // the machine's
		case "routes":
			def = "none"
		}
		if row := "| `--" + name + "` | `" + def + "` |"; !strings.Contains(string(doc), row) && !strings.Contains(string(doc), "| `--"+name+"` | "+def+" |") {
			t.Errorf("cmd/usageplans/README.md lacks the row %q", row)
		}
	}
}
