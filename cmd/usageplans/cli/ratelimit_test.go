package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const rlsPlugin = `{
  "apis": [{"id": "a", "resources": [{"path": "/x", "resourceMethods": {"GET": {"apiKeyRequired": true}}}], "stages": [{"stageName": "s"}]}],
  "routes": [{"match": {"pathPrefix": "/"}, "apiId": "a", "stage": "s"}],
  "usagePlans": [
    {"id": "daily", "apiStages": [{"apiId": "a", "stage": "s"}], "quota": {"limit": 100, "period": "DAY"}},
    {"id": "monthly", "apiStages": [{"apiId": "a", "stage": "s"}], "quota": {"limit": 1000, "period": "MONTH"}},
    {"id": "free", "apiStages": [{"apiId": "a", "stage": "s"}]}
  ],
  "global": {"cluster": "ratelimit", "domain": "usageplans", "mode": "LEASE", "proxies": 3}
}`

func TestRateLimitConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugin.json")
	if err := os.WriteFile(file, []byte(rlsPlugin), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	st := ratelimitConfig([]string{file}, &out, &errb, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	want := `# envoyproxy/ratelimit configuration for usageplans global mode (mode LEASE, 3 proxies).
# Descriptors carry their own limits: only the domain must be known here.
# plan daily: 100 a DAY, counted on RLS unit DAY (exact: the RLS window is the period)
# plan monthly: 1000 a MONTH, counted on RLS unit YEAR, carried over at RLS YEAR starts: 2026-12-18T00:00:00Z
domain: usageplans
descriptors:
  # the filter's configure-time check: an answer with this limit proves RLS loaded the domain
  - key: usageplans-check
    value: domain
    rate_limit:
      unit: YEAR
      requests_per_unit: 1
`
	if st != ExitOK || out.String() != want || errb.Len() != 0 {
		t.Errorf("status %d, stderr %q, stdout\n%s\nwant\n%s", st, errb.String(), out.String(), want)
	}

	local := filepath.Join(dir, "local.json")
	_ = os.WriteFile(local, []byte(strings.Replace(rlsPlugin, `"global"`, `"shadowMode": false, "x"`, 1)), 0o600)
	out.Reset()
	errb.Reset()
	if st := ratelimitConfig([]string{local}, &out, &errb, time.Now()); st != ExitFail || !strings.Contains(errb.String(), `x: unknown field`) {
		t.Errorf("invalid file: status %d, %q", st, errb.String())
	}
	nog := filepath.Join(dir, "noglobal.json")
	_ = os.WriteFile(nog, []byte(rlsPlugin[:strings.Index(rlsPlugin, `,
  "global"`)]+"}"), 0o600)
	errb.Reset()
	if st := ratelimitConfig([]string{nog}, &out, &errb, time.Now()); st != ExitFail || errb.String() != nog+": no global section: local mode needs no Rate Limit Service\n" {
		t.Errorf("no global: status %d, %q", st, errb.String())
	}
	if st := Main(t.Context(), []string{"ratelimit-config"}, &out, &errb); st != ExitUsage {
		t.Errorf("no FILE: status %d", st)
	}
}
