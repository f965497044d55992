package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A generated key value is printed exactly once in a whole generate, configure, validate and
// rotate session, and never written: stdout and stderr of every command hold it once (the
// line that hands it over), the configuration only its digest. The same holds for the value
// rotate makes, and the rotated-out value is not printed again.
func TestKeyValuePrintedOnce(t *testing.T) {
	plugin, err := os.ReadFile("../../../plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "plugin.json")
	if err := os.WriteFile(cfg, plugin, 0o644); err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer // every byte any command wrote, stdout and stderr
	cmd := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if st := Main(context.Background(), args, &out, &errb); st != want {
			t.Fatalf("%q = %d, want %d: %s%s", args, st, want, out.String(), errb.String())
		}
		all.Write(out.Bytes())
		all.Write(errb.Bytes())
		return out.String()
	}
	valueOf := func(out string) string {
		line, _, _ := strings.Cut(out, "\n")
		v, ok := strings.CutPrefix(line, "value:       ")
		if !ok || len(v) != 40 {
			t.Fatalf("no value line in %q", out)
		}
		return v
	}
	v1 := valueOf(cmd(0, "keys", "generate", "--config", cfg, "--id", "dave", "--plan", "free", "--prefix", "demo"))
	cmd(0, "validate", cfg)
	cmd(1, "keys", "generate", "--config", cfg, "--id", "dave") // taken: fails, prints no value
	v2 := valueOf(cmd(0, "keys", "rotate", "--config", cfg, "--id", "dave", "--grace", "72h"))
	cmd(0, "validate", cfg)

	files := ""
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("%d files in the directory (%v), want only plugin.json", len(ents), err)
	}
	b, _ := os.ReadFile(cfg)
	files += string(b)
	for _, v := range []string{v1, v2} {
		if n := strings.Count(all.String(), v); n != 1 {
			t.Errorf("a generated value appears %d times in the output, want 1", n)
		}
		if strings.Contains(files, v) {
			t.Errorf("a generated value is in the configuration")
		}
		d := sha256.Sum256([]byte(v))
		if !strings.Contains(files, hex.EncodeToString(d[:])) {
			t.Errorf("the configuration lacks a generated value's digest")
		}
	}
	if !strings.Contains(all.String(), "plugin.json: valid: 2 plans, 4 keys, 1 API, 2 routes\n") {
		t.Errorf("validate did not accept the result:\n%s", all.String())
	}
}
