package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
)

// run runs `usageplans keys args...` with stdin and a clock at now, and returns the exit
// status and everything written to stdout and stderr.
func run(t *testing.T, stdin string, now time.Time, rnd io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Rand: rnd}
	if !now.IsZero() {
		env.Now = func() time.Time { return now }
	}
	st := Main(args, env)
	return st, out.String(), errb.String()
}

// tempConfig copies testdata/NAME into a temporary directory and returns its path.
func tempConfig(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "plugin.json")
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// counting is a random source that yields 0, 1, 2, ... 255, 0, ...
type counting struct{ n byte }

func (c *counting) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

func TestGenerateValues(t *testing.T) {
	// Bytes 0..247 map to alphabet[b%62]; 248..255 are dropped so each character is as likely.
	st, out, errs := run(t, "", time.Time{}, &counting{}, "generate")
	want := "value:       0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd\nvalueSha256: " + digest("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd") + "\n"
	if st != 0 || out != want || errs != "" {
		t.Fatalf("generate = %d %q %q, want 0 %q", st, out, errs, want)
	}
	b, err := randomChars(&counting{n: 246}, 4)
	if err != nil || string(b) != "yz01" { // 246, 247, then 248..255 skipped, then 0, 1
		t.Errorf("randomChars after 246 = %q %v, want \"yz01\"", b, err)
	}

	v, err := generate(&counting{}, "acme")
	if err != nil {
		t.Fatal(err)
	}
	body := "acme" + "0123456789ABCDEFGHIJKLMNOPQRST"
	sum := crc32.ChecksumIEEE([]byte(body))
	var want6 []byte
	for range 6 {
		want6 = append([]byte{alphabet[sum%62]}, want6...)
		sum /= 62
	}
	if v != body+string(want6) {
		t.Errorf("generate(acme) = %q, want %q", v, body+string(want6))
	}
	if p, err := checkChecksum(v); p != "acme" || err != nil {
		t.Errorf("checkChecksum(generated) = %q %v", p, err)
	}
	// Every one-character change is caught.
	for i := range len(v) {
		for _, c := range []byte("0aZ") {
			if v[i] == c {
				continue
			}
			bad := v[:i] + string(c) + v[i+1:]
			if _, err := checkChecksum(bad); err == nil {
				t.Errorf("checkChecksum accepted %q (character %d changed)", bad, i)
			}
		}
	}
	// Real randomness: 40 letters and digits, never twice the same.
	seen := map[string]bool{}
	for range 100 {
		v, err := generate(strings.NewReader(strings.Repeat("x", 0)), "")
		if err == nil {
			t.Fatalf("an empty random source gave %d characters", len(v))
		}
		_, out, _ := run(t, "", time.Time{}, nil, "generate")
		v = strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "value:       ")
		if len(v) != 40 || !alnum(v) || seen[v] {
			t.Fatalf("generated %d characters (alphanumeric %t, repeated %t)", len(v), alnum(v), seen[v])
		}
		seen[v] = true
	}
}

func TestGenerateBadArguments(t *testing.T) {
	cfg := tempConfig(t, "plugin.json")
	before := read(t, cfg)
	for _, tt := range []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"generate", "--prefix", "a"}, 2, "usageplans keys generate: --prefix must be 2 to 32 letters and digits (key values may hold nothing else), got 1 characters\n"},
		{[]string{"generate", "--prefix", "ac_me"}, 2, "usageplans keys generate: --prefix must be 2 to 32 letters and digits (key values may hold nothing else), got 5 characters\n"},
		{[]string{"generate", "--id", "x"}, 2, "usageplans keys generate: --id, --name, --description and --plan need --config\n"},
		{[]string{"generate", "--config", cfg}, 2, "usageplans keys generate: --config needs --id, the new key's id\n"},
		{[]string{"generate", "--config", cfg, "--id", "existing"}, 1, "usageplans keys generate: there is already a key with id \"existing\" (keys rotate gives it a new value)\n"},
		{[]string{"generate", "--config", cfg, "--id", "new", "--plan", "gold"}, 1, "usageplans keys generate: no usage plan with id \"gold\"\n"},
		// Two plans granting the same stage: the filter's parser refuses, nothing is written,
		// and the value made for it is never printed.
		{[]string{"generate", "--config", cfg, "--id", "new", "--plan", "c7y23b,silver"}, 1, cfg + ": usagePlanKeys[2]: key \"new\" is in usage plans \"c7y23b\" and \"silver\", which both grant API stage \"shop/prod\": a key may belong to one plan per API stage\n" +
			cfg + ": the result is invalid: 1 problem(s); nothing written\n"},
	} {
		st, out, errs := run(t, "", time.Time{}, nil, tt.args...)
		if st != tt.status || out != "" || errs != tt.stderr {
			t.Errorf("%q = %d, stdout %q, stderr\n%s\nwant %d, no stdout, stderr\n%s", tt.args, st, out, errs, tt.status, tt.stderr)
		}
	}
	if got := read(t, cfg); got != before {
		t.Errorf("a failed generate changed the configuration")
	}
}

func TestGenerateIntoConfig(t *testing.T) {
	cfg := tempConfig(t, "plugin.json")
	st, out, errs := run(t, "", time.Time{}, &counting{}, "generate", "--config", cfg, "--id", "newkey", "--name", "New <key>", "--plan", "c7y23b", "--plan", "glvrsr", "--prefix", "shop")
	v, _ := generate(&counting{}, "shop")
	if st != 0 || out != "value:       "+v+"\nvalueSha256: "+digest(v)+"\n" ||
		errs != cfg+": added key \"newkey\" in usage plans [\"c7y23b\" \"glvrsr\"] (its digest only)\n" {
		t.Fatalf("generate = %d %q %q", st, out, errs)
	}
	want := strings.Replace(read(t, "testdata/plugin.json"),
		`"tags": {"team": "a"}}`,
		`"tags": {"team": "a"}},
    {"id": "newkey", "name": "New <key>", "valueSha256": "`+digest(v)+`", "enabled": true}`, 1)
	want = strings.Replace(want, `{"usagePlanId": "silver", "keyId": "existing"}`, `{"usagePlanId": "silver", "keyId": "existing"},
    {"usagePlanId": "c7y23b", "keyId": "newkey", "keyType": "API_KEY"},
    {"usagePlanId": "glvrsr", "keyId": "newkey", "keyType": "API_KEY"}`, 1)
	if got := read(t, cfg); got != want {
		t.Errorf("configuration:\n%s\nwant:\n%s", got, want)
	}
	c, err := config.Parse([]byte(read(t, cfg)))
	if err != nil {
		t.Fatal(err)
	}
	if k := c.KeyByValue(v); k == nil || k.ID != "newkey" || k.Name != "New <key>" || k.Plan(c.APIs[0].Stages[1]).ID != "glvrsr" {
		t.Errorf("the filter does not find the generated key as configured: %+v", k)
	}
}

func TestHashAndCheck(t *testing.T) {
	const v = "HashMeValue000000000000000001"
	d := sha256.Sum256([]byte(v))
	hexd := digest(v)
	if hexd != hex.EncodeToString(d[:]) {
		t.Fatalf("digest(%q) = %s", v, hexd)
	}
	pv, _ := generate(&counting{}, "acme")
	for _, tt := range []struct {
		name   string
		stdin  string
		args   []string
		status int
		stdout string
		stderr string
	}{
		{"plain", v, []string{"hash"}, 0, hexd + "\n", ""},
		{"one newline stripped", v + "\n", []string{"hash"}, 0, hexd + "\n", ""},
		{"CRLF stripped", v + "\r\n", []string{"hash"}, 0, hexd + "\n", ""},
		{"only one newline", v + "\n\n", []string{"hash"}, 1, "", "usageplans keys hash: the value on stdin must be 20 to 128 letters and digits, found another character\n"},
		{"a space is kept, and refused", v + " ", []string{"hash"}, 1, "", "usageplans keys hash: the value on stdin must be 20 to 128 letters and digits, found another character\n"},
		{"too short", "short\n", []string{"hash"}, 1, "", "usageplans keys hash: the value on stdin must be 20 to 128 letters and digits, got 5 characters\n"},
		{"empty", "", []string{"hash"}, 1, "", "usageplans keys hash: stdin is empty: printf %s \"$KEY\" | usageplans keys hash\n"},
		{"value as an argument refused, not echoed", "", []string{"hash", v}, 2, "", "usageplans keys hash: reads the value from stdin, not from 1 argument(s) (a key on the command line lands in the shell's history): printf %s \"$KEY\" | usageplans keys hash\n"},
		{"prefixed value with its checksum", pv, []string{"hash", "--prefix", "acme"}, 0, digest(pv) + "\n", ""},
		{"prefixed value mistyped", pv[:10] + "X" + pv[11:], []string{"hash", "--prefix", "acme"}, 1, "", "usageplans keys hash: the value starts with \"acme\" but the checksum (the last 6 characters) does not match: mistyped, or not a value generated with --prefix\n"},
		{"other values are not checked", v, []string{"hash", "--prefix", "acme"}, 0, hexd + "\n", ""},
		{"check", pv + "\n", []string{"check"}, 0, "checksum valid, prefix \"acme\"\n", ""},
		{"check with the prefix", pv, []string{"check", "--prefix", "acme"}, 0, "checksum valid, prefix \"acme\"\n", ""},
		{"check, shorter prefix given", pv, []string{"check", "--prefix", "ac"}, 1, "", "usageplans keys check: the checksum holds, but for prefix \"acme\", not \"ac\"\n"},
		{"check, other prefix", pv, []string{"check", "--prefix", "shop"}, 1, "", "usageplans keys check: the value does not start with \"shop\"\n"},
		{"check, no checksum", v + "0000000000", []string{"check"}, 1, "", "usageplans keys check: the checksum (the last 6 characters) does not match: mistyped, or not a value generated with --prefix\n"},
		{"check, too short", v, []string{"check"}, 1, "", "usageplans keys check: 29 characters: too short for a prefixed value (a prefix of 2 to 32, then 36)\n"},
		{"check refuses an argument", "", []string{"check", pv}, 2, "", "usageplans keys check: reads the value from stdin, not from 1 argument(s) (a key on the command line lands in the shell's history): printf %s \"$KEY\" | usageplans keys check\n"},
	} {
		st, out, errs := run(t, tt.stdin, time.Time{}, nil, tt.args...)
		if st != tt.status || out != tt.stdout || errs != tt.stderr {
			t.Errorf("%s: %d %q %q\nwant  %d %q %q", tt.name, st, out, errs, tt.status, tt.stdout, tt.stderr)
		}
	}
}
