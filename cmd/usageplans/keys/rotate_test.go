package keys

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
)

func TestRotate(t *testing.T) {
	const old = "ExistingKeyValue00000000000001"
	cfg := tempConfig(t, "plugin.json")
	t0 := time.Date(2026, 12, 3, 18, 0, 0, 500e6, time.UTC)
	rnd := &counting{}
	st, out, errs := run(t, "", t0, rnd, "rotate", "--config", cfg, "--id", "existing", "--grace", "72h")
	v1, _ := generate(&counting{}, "")
	until1 := "2026-12-06T18:00:01Z" // rounded up to the second: the grace is at least 72h
	if st != 0 || out != "value:       "+v1+"\nvalueSha256: "+digest(v1)+"\n" ||
		errs != cfg+": key \"existing\" rotated; its previous value is accepted until "+until1+"\n" {
		t.Fatalf("rotate = %d %q %q", st, out, errs)
	}
	want := strings.Replace(read(t, "testdata/plugin.json"),
		`{"id": "existing", "name": "Existing", "value": "ExistingKeyValue00000000000001", "customerId": "cust-1", "tags": {"team": "a"}}`,
		`{"id": "existing", "name": "Existing", "valueSha256": "`+digest(v1)+`", "customerId": "cust-1", "tags": {"team": "a"}, "previousValues": [{"valueSha256": "`+digest(old)+`", "until": "`+until1+`"}]}`, 1)
	if got := read(t, cfg); got != want {
		t.Fatalf("after rotate:\n%s\nwant:\n%s", got, want)
	}
	c, err := config.Parse([]byte(read(t, cfg)))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := time.Parse(time.RFC3339, until1)
	for _, tt := range []struct {
		value string
		at    time.Time
		found bool
	}{
		{v1, t0, true},
		{old, t0, true},
		{old, u.Add(-time.Nanosecond), true},
		{old, u, false},
	} {
		if k := c.KeyByValueAt(tt.value, tt.at); (k != nil) != tt.found || k != nil && k.ID != "existing" {
			t.Errorf("KeyByValueAt(%d-character value, %v) = %v, want found %t", len(tt.value), tt.at, k, tt.found)
		}
	}

	// A day later: a second rotation keeps the first previous value (still in force) and adds
	// the second; after both have expired, a third drops them, and --grace 0 adds none.
	t1 := t0.Add(24 * time.Hour)
	st, out, _ = run(t, "", t1, rnd, "rotate", "--config", cfg, "--id", "existing", "--grace", "1h")
	v2 := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "value:       ")
	if st != 0 {
		t.Fatal("second rotate failed")
	}
	c, err = config.Parse([]byte(read(t, cfg)))
	if err != nil {
		t.Fatal(err)
	}
	if k, u, ok := c.PreviousUntil(sha256.Sum256([]byte(old))); !ok || k.ID != "existing" || u.Format(time.RFC3339) != until1 {
		t.Errorf("the first previous value: %v %v %t", k, u, ok)
	}
	if _, u, ok := c.PreviousUntil(sha256.Sum256([]byte(v1))); !ok || !u.Equal(t1.Add(time.Hour).Truncate(time.Second).Add(time.Second)) {
		t.Errorf("the second previous value: until %v %t", u, ok)
	}
	st, out, errs = run(t, "", u, rnd, "rotate", "--config", cfg, "--id", "existing", "--grace", "0")
	v3 := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "value:       ")
	if st != 0 || errs != cfg+": key \"existing\" rotated; its previous value no longer works; dropped 2 expired previous value(s)\n" {
		t.Fatalf("third rotate = %d %q", st, errs)
	}
	want = strings.Replace(read(t, "testdata/plugin.json"),
		`{"id": "existing", "name": "Existing", "value": "ExistingKeyValue00000000000001", "customerId": "cust-1", "tags": {"team": "a"}}`,
		`{"id": "existing", "name": "Existing", "valueSha256": "`+digest(v3)+`", "customerId": "cust-1", "tags": {"team": "a"}}`, 1)
	if got := read(t, cfg); got != want {
		t.Errorf("after the third rotate:\n%s\nwant:\n%s", got, want)
	}
	for _, v := range []string{old, v1, v2} {
		if strings.Contains(read(t, cfg), v) {
			t.Errorf("a value is in the configuration")
		}
	}

	for _, tt := range []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"rotate", "--config", cfg, "--id", "nobody"}, 1, "usageplans keys rotate: " + cfg + " has no key with id \"nobody\"\n"},
		{[]string{"rotate", "--config", cfg}, 2, "usageplans keys rotate: needs --config FILE and --id ID\n"},
		{[]string{"rotate", "--config", cfg, "--id", "existing", "--grace", "-1h"}, 2, "usageplans keys rotate: --grace must not be negative, got -1h0m0s\n"},
	} {
		before := read(t, cfg)
		st, out, errs := run(t, "", t0, nil, tt.args...)
		if st != tt.status || out != "" || errs != tt.stderr || read(t, cfg) != before {
			t.Errorf("%q = %d %q %q, want %d %q (and no change)", tt.args, st, out, errs, tt.status, tt.stderr)
		}
	}
}

// Writing keeps what the commands do not own: the file's mode, a symlink to it, CRLF line
// ends, AWS's {"items": [...]} form of apiKeys, and a missing usagePlanKeys is created.
func TestWriteKeepsTheDocument(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	doc := "{\r\n  \"usagePlans\": [{\"id\": \"p\"}],\r\n  \"apiKeys\": {\"items\": [\r\n    {\"id\": \"a\", \"valueSha256\": \"" + digest("AAAAAAAAAAAAAAAAAAAA1") + "\"}\r\n  ]},\r\n  \"accountThrottle\": false\r\n}\r\n"
	if err := os.WriteFile(real, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "plugin.json")
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	st, out, errs := run(t, "", time.Time{}, &counting{}, "generate", "--config", link, "--id", "b", "--plan", "p")
	if st != 0 {
		t.Fatalf("generate = %d %q %q", st, out, errs)
	}
	v, _ := generate(&counting{}, "")
	want := "{\r\n  \"usagePlans\": [{\"id\": \"p\"}],\r\n  \"apiKeys\": {\"items\": [\r\n    {\"id\": \"a\", \"valueSha256\": \"" + digest("AAAAAAAAAAAAAAAAAAAA1") + "\"},\r\n" +
		"    {\"id\": \"b\", \"valueSha256\": \"" + digest(v) + "\", \"enabled\": true}\r\n  ]},\r\n  \"accountThrottle\": false,\r\n" +
		"  \"usagePlanKeys\": [\r\n    {\"usagePlanId\": \"p\", \"keyId\": \"b\", \"keyType\": \"API_KEY\"}\r\n  ]\r\n}\r\n"
	if got := read(t, real); got != want {
		t.Errorf("document:\n%q\nwant:\n%q", got, want)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(real); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (%v)", fi.Mode().Perm(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files in the directory, want 2 (no temporary file left)", len(ents))
	}
	// An invalid configuration is not edited.
	if err := os.WriteFile(real, []byte(`{"apiKeys": [{"id": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	st, out, errs = run(t, "", time.Time{}, nil, "generate", "--config", link, "--id", "b")
	if want := link + ": apiKeys[0]: key \"x\": needs value or valueSha256 (aws apigateway get-api-keys prints values only with --include-values)\n" +
		link + ": invalid before any change: 1 problem(s); nothing written\n"; st != 1 || out != "" || errs != want {
		t.Errorf("generate into an invalid file = %d %q\n%s\nwant\n%s", st, out, errs, want)
	}
}

// A BOM is kept when the filter's parser reads the file with it, and a file it refuses is
// not edited.
func TestWriteKeepsBOM(t *testing.T) {
	doc := bom + `{"usagePlans": [{"id": "p"}], "accountThrottle": false}`
	cfg := filepath.Join(t.TempDir(), "plugin.json")
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	st, out, errs := run(t, "", time.Time{}, &counting{}, "generate", "--config", cfg, "--id", "b")
	if _, err := config.Parse([]byte(doc)); err != nil {
		if st != 1 || out != "" || !strings.HasSuffix(errs, ": invalid before any change: 1 problem(s); nothing written\n") || read(t, cfg) != doc {
			t.Errorf("the parser refuses a BOM, so must generate: %d %q %q", st, out, errs)
		}
		return
	}
	v, _ := generate(&counting{}, "")
	want := bom + `{"usagePlans": [{"id": "p"}], "accountThrottle": false, "apiKeys": [{"id": "b", "valueSha256": "` + digest(v) + `", "enabled": true}]}`
	if got := read(t, cfg); st != 0 || got != want {
		t.Errorf("generate = %d %q %q, document:\n%q\nwant:\n%q", st, out, errs, got, want)
	}
}
