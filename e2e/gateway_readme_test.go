package e2e

// The README's quickstart, run for real: its commands are parsed out of README.md and sent
// to a gateway set up as `make run` sets it up, and the answers are compared with what the
// README prints (issue 8, finding 3: the demo's bypass route never matched, and the counts
// assumed pauses the text did not state). The test fails when the README drifts.

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
)

// The addresses the README uses; the test maps them to the gateway's.
const (
	readmeListen = "127.0.0.1:8080"
	readmeAdmin  = "127.0.0.1:9901"
)

// readmeStep is one "$ command" of a shell block and the output printed under it.
type readmeStep struct {
	cmd string
	out string
}

// readmeSteps parses the first ``` block after heading in a Markdown file.
func readmeSteps(t *testing.T, file, heading string) []readmeStep {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s: no heading %q", file, heading)
	}
	var block []string
	in := false
	for _, l := range strings.Split(rest, "\n") {
		if strings.HasPrefix(l, "```") {
			if in && len(block) > 0 && strings.HasPrefix(block[0], "$ ") {
				break
			}
			in, block = !in, nil
			continue
		}
		if in {
			block = append(block, l)
		}
	}
	var steps []readmeStep
	for _, l := range block {
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			steps = append(steps, readmeStep{cmd: cmd})
			continue
		}
		if len(steps) == 0 {
			t.Fatalf("%s: output before the first command: %q", file, l)
		}
		steps[len(steps)-1].out += l + "\n"
	}
	for i := range steps {
		steps[i].out = strings.TrimRight(steps[i].out, "\n")
	}
	if len(steps) == 0 {
		t.Fatalf("%s: no commands under %q", file, heading)
	}
	return steps
}

// shellWords splits a command line as sh does for the quoting the README uses ('...').
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	word, quoted := false, false
	for _, c := range s {
		switch {
		case c == '\'':
			quoted, word = !quoted, true
		case c == ' ' && !quoted:
			if word {
				out = append(out, cur.String())
				cur.Reset()
				word = false
			}
		default:
			cur.WriteRune(c)
			word = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %q", s)
	}
	if word {
		out = append(out, cur.String())
	}
	return out
}

// curl runs a curl command line of the README the way curl sends it (request line as
// written, Host, User-Agent, Accept, then -H headers) and prints what curl would print.
func curl(t *testing.T, g *gwTest, line string) string {
	t.Helper()
	args := shellWords(t, line)
	if args[0] != "curl" {
		t.Fatalf("not a curl command: %q", line)
	}
	include, devNull, write := false, false, ""
	var headers []string
	url := ""
	for i := 1; i < len(args); i++ {
		switch a := args[i]; a {
		case "-i":
			include = true
		case "-si", "-is":
			include = true
		case "-s", "--path-as-is":
		case "-H":
			i++
			headers = append(headers, args[i])
		case "-o":
			i++
			devNull = args[i] == "/dev/null"
		case "-w":
			i++
			write = args[i]
		default:
			if strings.HasPrefix(a, "-") || url != "" {
				t.Fatalf("curl option the test does not know: %q in %q", a, line)
			}
			url = a
		}
	}
	hostport, target, _ := strings.Cut(strings.TrimPrefix(url, "http://"), "/")
	addr := map[string]string{readmeListen: g.Addr(), readmeAdmin: g.AdminAddr()}[hostport]
	if addr == "" {
		t.Fatalf("the README sends to %q, not %s or %s", hostport, readmeListen, readmeAdmin)
	}
	head := "GET /" + target + " HTTP/1.1\r\nHost: " + hostport + "\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
	for _, h := range headers {
		head += h + "\r\n"
	}
	r := rawRequest(t, addr, head+"\r\n")
	var out strings.Builder
	if include {
		fmt.Fprintf(&out, "HTTP/1.1 %d %s\n", r.status, statusText(r.status))
		var names []string
		for name := range r.header {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			for _, v := range r.header[name] {
				fmt.Fprintf(&out, "%s: %s\n", name, v)
			}
		}
		out.WriteString("\n")
	}
	if !devNull {
		out.WriteString(r.body)
	}
	if write != "" {
		out.WriteString(strings.ReplaceAll(write, "%{http_code}", strconv.Itoa(r.status)))
	}
	return out.String()
}

func statusText(code int) string {
	return map[int]string{200: "OK", 307: "Temporary Redirect", 403: "Forbidden", 429: "Too Many Requests"}[code]
}

var (
	loopRe = regexp.MustCompile(`^for i in \$\(seq 1 (\d+)\); do (curl .*); done; echo(?:; (curl .*))?$`)
	grepRe = regexp.MustCompile(`^(curl .*) \| grep -E '([^']*)'$`)
	uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)
)

// run runs one step and returns its output as a terminal would show it.
func (g *gwTest) runStep(t *testing.T, cmd string) string {
	t.Helper()
	if s, ok := strings.CutPrefix(cmd, "sleep "); ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("sleep %q", s)
		}
		g.clock.Advance(time.Duration(n) * time.Second)
		return ""
	}
	if m := loopRe.FindStringSubmatch(cmd); m != nil {
		n, _ := strconv.Atoi(m[1])
		var out strings.Builder
		for range n {
			out.WriteString(curl(t, g, m[2]))
		}
		out.WriteString("\n")
		if m[3] != "" {
			out.WriteString(curl(t, g, m[3]))
		}
		return out.String()
	}
	if m := grepRe.FindStringSubmatch(cmd); m != nil {
		re := regexp.MustCompile(m[2])
		var lines []string
		for _, l := range strings.Split(curl(t, g, m[1]), "\n") {
			if re.MatchString(l) {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	return curl(t, g, cmd)
}

// comparable blanks what differs between runs (dates, request ids), and trailing spaces.
func comparable(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(l, "Date: ") {
			continue
		}
		lines = append(lines, strings.TrimRight(uuidRe.ReplaceAllString(l, "UUID"), " "))
	}
	return strings.Join(lines, "\n")
}

// TestREADMEQuickstart walks the README's quickstart through the gateway set up as
// `make run` does: plugin.json, testdata/routes.json, the echo upstream and the path settings
// of the shipped Envoy bootstraps (the Makefile's run recipe is checked to say so). The
// clock only moves where the README says to pause ("sleep N").
func TestREADMEQuickstart(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe := strings.ReplaceAll(string(mk), "\\\n\t\t", "")
	for _, flag := range []string{"--config $(CONFIG)", "--upstream echo", "--routes testdata/routes.json", "--normalize-path", "--merge-slashes",
		"--path-with-escaped-slashes-action UNESCAPE_AND_REDIRECT"} {
		if !strings.Contains(recipe, flag) {
			t.Fatalf("the Makefile's run recipe lacks %q: the test no longer sets up what make run does", flag)
		}
	}
	plugin, err := os.ReadFile("../plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := os.ReadFile("../testdata/routes.json")
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gwSetup{config: string(plugin), routes: string(routes), options: func(o *gateway.Options) {
		o.Path = gateway.PathOptions{NormalizePath: true, MergeSlashes: true, EscapedSlashes: gateway.UnescapeAndRedirect}
	}})
	steps := readmeSteps(t, "../README.md", "## Quickstart")
	for i, s := range steps {
		got := g.runStep(t, s.cmd)
		if comparable(got) != comparable(s.out) {
			t.Errorf("README quickstart step %d: $ %s\ngot:\n%s\nthe README prints:\n%s", i+1, s.cmd, got, s.out)
		}
	}
	if len(steps) < 8 {
		t.Errorf("the quickstart has %d commands; the test expects at least the 8 it was written for", len(steps))
	}
}
