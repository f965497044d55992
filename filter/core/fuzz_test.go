package core

import (
	"regexp"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/state"
)

// bypassFirst bypasses /admin, then meters everything else: every resource of stage
// api/prod needs a key, and k1 has one.
const bypassFirst = `{
  "apis": [{"id": "api", "resources": [
    {"path": "/", "resourceMethods": {"ANY": {"apiKeyRequired": true}}},
    {"path": "/pets/{petId}", "resourceMethods": {"GET": {"apiKeyRequired": true}}},
    {"path": "/{proxy+}", "resourceMethods": {"ANY": {"apiKeyRequired": true}}}
  ], "stages": [{"stageName": "prod"}]}],
  "routes": [
    {"name": "admin", "match": {"pathPrefix": "/admin"}, "bypass": true},
    {"name": "api", "apiId": "api", "stage": "prod"}
  ],
  "usagePlans": [{"id": "p", "apiStages": [{"apiId": "api", "stage": "prod"}],
    "throttle": {"rateLimit": 1000, "burstLimit": 1000}}],
  "apiKeys": [{"id": "k1", "value": "` + k1 + `"}],
  "usagePlanKeys": [{"usagePlanId": "p", "keyId": "k1"}],
  "accountThrottle": false
}`

// FuzzDecidePath sends arbitrary paths (and methods) through the decision (issue 8) under
// bypassFirst: it never panics, and a request is Pass (the bypass) exactly when the normal
// form of its path is under /admin and the path spells nothing that upstreams read
// differently (wantBypass, written apart from the filter's own check); every other request
// is metered: Forbidden without a key, Allow with k1.
func FuzzDecidePath(f *testing.F) {
	for _, p := range []string{"/admin", "/admin/users", "/admin/./users", "/pets/7", "/", "", "admin",
		`/admin/..\pets`, "/admin/..%2fpets", "/admin/..%5Cpets", "/admin/%252e%252e/pets", "/admin/%2e%2e%5cpets",
		"/admin/;/../pets", "/admin/..;/pets", "/admin/.;/x", "/admin/x/..;", "/admin/%%32e%%32e/pets", "/admin/%2%66",
		"/admin/users;v=1", "/admin;/../pets", "/admin?x=/../pets", "/admin/%2F/../pets", "//admin//x", "/ADMIN"} {
		f.Add("GET", p, false)
		f.Add("POST", p, true)
	}
	cfg, err := config.Parse([]byte(bypassFirst))
	if err != nil {
		f.Fatal(err)
	}
	var dc Decider
	f.Fuzz(func(t *testing.T, method, path string, withKey bool) {
		req := Request{Method: method, Path: path}
		if withKey {
			req.Key = k1
		}
		d := dc.Decide(cfg, req, t0, &state.MemStore{})
		normal := config.NormalPath(path)
		want := Forbidden
		switch {
		case wantBypass(path, normal):
			want = Pass
		case withKey:
			want = Allow
		}
		if d.Outcome != want {
			t.Fatalf("%s %q (normal form %q, key %t): %v (%s), want %v", method, path, normal, withKey, d.Outcome, d.Reason, want)
		}
	})
}

var encodedSlashOrDouble = regexp.MustCompile(`(?i)%2f|%5c|%25[0-9a-f]{2}`)

// wantBypass is the bypass rule read from docs/configuration.md: the normal form is under
// /admin, and neither the path as sent (query cut) nor its normal form holds an encoded
// slash or backslash, a double encoding, or a ';' next to a dot segment.
func wantBypass(path, normal string) bool {
	if normal != "/admin" && !strings.HasPrefix(normal, "/admin/") {
		return false
	}
	sent, _, _ := strings.Cut(path, "?")
	sent, _, _ = strings.Cut(sent, "#")
	for _, p := range []string{sent, normal} {
		if encodedSlashOrDouble.MatchString(p) || semicolonNextToDots(p) {
			return false
		}
	}
	return true
}

// semicolonNextToDots splits at '/' and '\', drops empty segments, and looks for a dot
// segment with path parameters ("..;x") or a parameters-only segment (";x") beside a dot
// segment.
func semicolonNextToDots(p string) bool {
	var segs []string
	for _, s := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		segs = append(segs, s)
	}
	dot := func(s string) bool {
		name, _, _ := strings.Cut(s, ";")
		name = strings.ReplaceAll(strings.ReplaceAll(name, "%2e", "."), "%2E", ".")
		return name == "." || name == ".."
	}
	for i, s := range segs {
		if !strings.Contains(s, ";") {
			continue
		}
		if dot(s) {
			return true
		}
		if strings.HasPrefix(s, ";") && (i > 0 && dot(segs[i-1]) || i+1 < len(segs) && dot(segs[i+1])) {
			return true
		}
	}
	return false
}
