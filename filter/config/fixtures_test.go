package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/filter/limit"
)

var update = flag.Bool("update", false, "rewrite the .summary files of testdata/config/valid")

const fixtures = "../../testdata/config"

// TestInvalidFixtures parses every testdata/config/invalid/NAME.json and compares the full
// error list with NAME.errors, line for line. It also checks that no key value of the
// fixture leaks into the messages.
func TestInvalidFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures, "invalid", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".errors")
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data)
			if err == nil {
				t.Fatalf("Parse accepted it: %d routes, %d plans, %d keys", len(c.Routes), len(c.Plans), len(c.Keys))
			}
			if c != nil {
				t.Errorf("Parse returned a config along with its errors")
			}
			if _, ok := err.(Errors); !ok {
				t.Errorf("error is %T, want config.Errors", err)
			}
			if got, want := err.Error(), strings.TrimRight(string(want), "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
			for _, v := range keyValues(data) {
				if strings.Contains(err.Error(), v) {
					t.Errorf("a key value (%d characters) leaks into the errors", len(v))
				}
			}
		})
	}
}

var (
	valueRe   = regexp.MustCompile(`"value"\s*:\s*"([^"]{4,})"`)
	stringRe  = regexp.MustCompile(`"[^"\\]*"`)
	keyLikeRe = regexp.MustCompile(`[A-Za-z0-9]{20,128}`)
)

// keyValues finds the strings given as "value" in a fixture (every key value), and every
// run of 20 to 128 letters and digits, a digit among them, in any other string (a key
// pasted in the wrong place, a member named by a key); the names of the format have no
// digit.
func keyValues(data []byte) []string {
	var out []string
	for _, m := range valueRe.FindAllSubmatch(data, -1) {
		out = append(out, string(m[1]))
	}
	for _, str := range stringRe.FindAll(data, -1) {
		for _, m := range keyLikeRe.FindAll(str, -1) {
			if bytes.ContainsAny(m, "0123456789") {
				out = append(out, string(m))
			}
		}
	}
	return out
}

// TestValidFixtures parses every testdata/config/valid/NAME.json (and the repository's
// plugin.json) and compares a summary of the tables it built with NAME.summary.
func TestValidFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures, "valid", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	files = append(files, "../../plugin.json")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := summary(c)
			golden := filepath.Join(fixtures, "valid", name+".summary")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it, then review it)", err)
			}
			if got != string(want) {
				t.Errorf("summary differs from %s:\n%s", golden, diffLines(string(want), got))
			}
		})
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var x, y string
		if i < len(w) {
			x = w[i]
		}
		if i < len(g) {
			y = g[i]
		}
		if x != y {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, x, y)
		}
	}
	return b.String()
}

func th(t *limit.Throttle) string {
	if t == nil {
		return "none"
	}
	return fmt.Sprintf("%g/s burst %d", t.Rate, t.Burst)
}

// summary renders everything Parse built, in a stable text form.
func summary(c *Config) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	for _, a := range c.APIs {
		p("api %s %q", a.ID, a.Name)
		for _, m := range a.Methods {
			p("  method %s apiKeyRequired=%v", m.ID, m.APIKeyRequired)
		}
		for _, s := range a.Stages {
			p("  stage %s default %s", s.ID, th(s.Throttle))
			for i, l := range s.methodLimits {
				if l != nil {
					p("    %s %s %s", a.Methods[i].ID, l.ID, th(&l.Throttle))
				}
			}
		}
	}
	for _, r := range c.Routes {
		target := "bypass"
		if r.Stage != nil {
			target = "-> " + r.Stage.ID
		}
		p("route %q routeName=%q host=%q pathPrefix=%q strip=%v %s", r.Name, r.RouteName, r.Host, r.PathPrefix, r.StripPathPrefix, target)
	}
	for _, pl := range c.Plans {
		q := "none"
		if pl.Quota != nil {
			q = fmt.Sprintf("limit %d offset %d period %s weekStart %s", pl.Quota.Limit, pl.Quota.Offset, [...]string{"?", "DAY", "WEEK", "MONTH"}[pl.Quota.Period], pl.Quota.WeekStart)
		}
		p("plan %s %q throttle %s quota %s", pl.ID, pl.Name, th(pl.Throttle), q)
		for _, s := range pl.Stages {
			p("  stage %s", s.ID)
		}
		for _, l := range pl.KeyLimits() {
			p("  %s %s perKey=%v %s", l.Level, l.ID, l.PerKey, th(&l.Throttle))
		}
	}
	for _, k := range c.Keys {
		var plans []string
		for _, pl := range c.Plans {
			for _, s := range pl.Stages {
				if k.Plan(s) == pl {
					plans = append(plans, pl.ID+"@"+s.ID)
				}
			}
		}
		p("key %s %q customer=%q enabled=%v plans=%v", k.ID, k.Name, k.CustomerID, k.Enabled, plans)
	}
	p("unmatchedRoute %s unmatchedResource %s", c.UnmatchedRoute, c.UnmatchedResource)
	if c.Account == nil {
		p("account off")
	} else {
		p("account %s %s", c.Account.ID, th(&c.Account.Throttle))
	}
	p("keySource %d header=%q property=%q query=%q", c.KeySource.Type, c.KeySource.Header, c.KeySource.Property, c.KeySource.QueryParameter)
	p("stripApiKey=%v identity=%+v rateLimitHeaders=%v shadow=%v failure=%s namespace=%q casRetries=%d",
		c.StripAPIKey, c.IdentityHeaders, c.RateLimitHeaders, c.ShadowMode, c.FailurePolicy, c.Namespace, c.CASRetries)
	for t := ResponseType(0); t < numResponseTypes; t++ {
		r := c.Response(t)
		p("response %s %d %v %s", t, r.Status, r.Headers, r.Body)
	}
	return b.String()
}
