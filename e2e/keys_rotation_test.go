package e2e

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/host"
)

// `usageplans keys rotate` through the built module: the configuration it writes makes the
// filter accept the new value at once and the old one until the previousValues' until, by
// the host's clock, and answer 403 from that instant on.
func TestKeysRotateThroughTheFilter(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "plugin.json")
	if err := os.WriteFile(cfg, []byte(fltOptions()), 0o644); err != nil {
		t.Fatal(err)
	}
	st, out, errs := runCLI("keys", "rotate", "--config", cfg, "--id", "gold-key", "--grace", "1h")
	if st != 0 {
		t.Fatalf("rotate = %d %s%s", st, out, errs)
	}
	newValue := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "value:       ")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	_, until, ok := parsed.PreviousUntil(sha256.Sum256([]byte(fltGold)))
	if !ok {
		t.Fatalf("the rotated configuration has no previous value for gold-key:\n%s", data)
	}
	// The host's clock starts now (rotate read the real clock), a little before until.
	start := time.Now()
	if d := until.Sub(start); d <= 59*time.Minute || d > time.Hour+time.Second {
		t.Fatalf("until is %v after now, want about 1h", d)
	}
	e := startFilter(t, fltSetup{config: string(data), start: start})
	ident := func(path string) host.Headers {
		return host.Headers{{":method", "GET"}, {":path", path}, {":authority", "api.example.com"}, {":scheme", "http"},
			{"x-usageplans-key-id", "gold-key"}, {"x-usageplans-plan-id", "gold"}}
	}
	e.wantPassed(t, e.get("/pets", apiKey(newValue)), ident("/pets"), host.Headers{{"server", "upstream"}})
	e.wantPassed(t, e.get("/pets/1", apiKey(fltGold)), ident("/pets/1"), host.Headers{{"server", "upstream"}})
	e.clock.Advance(until.Sub(start) - time.Nanosecond)
	e.wantPassed(t, e.get("/pets/2", apiKey(fltGold)), ident("/pets/2"), host.Headers{{"server", "upstream"}})
	e.clock.Advance(time.Nanosecond)
	wantReply(t, e.get("/pets", apiKey(fltGold)), 403, fltForbidden, fltForbiddenBody)
	e.wantPassed(t, e.get("/pets/3", apiKey(newValue)), ident("/pets/3"), host.Headers{{"server", "upstream"}})
	e.wantCounters(t, map[string]uint64{"usageplans.requests.allowed": 4, "usageplans.requests.forbidden": 1})
}
