package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// rewrites is a configuration where a route meters /v1 and a host, and a bypass route
// turns the filter off under /admin: the setting of the review's path-rewriting bypasses.
const rewrites = `{
  "apis": [{"id": "shop", "resources": [
      {"path": "/items", "resourceMethods": {"GET": {"apiKeyRequired": true}}},
      {"path": "/pets", "resourceMethods": {"GET": {"apiKeyRequired": true}}},
      {"path": "/pets/{petId}", "resourceMethods": {"GET": {"apiKeyRequired": true}}}],
    "stages": [{"stageName": "prod"}]}],
  "routes": [
    {"name": "admin", "match": {"pathPrefix": "/admin"}, "bypass": true},
    {"name": "v1", "match": {"pathPrefix": "/v1"}, "stripPathPrefix": true, "apiId": "shop", "stage": "prod"},
    {"name": "host", "match": {"host": "shop.example.com"}, "apiId": "shop", "stage": "prod"}
  ]
}`

// TestMatchNormalizes pins the review's bypasses (issue 3): each of these requests was
// matched on its raw path or host, so it passed unmetered as "no route matched" or reached
// the bypass route; the upstream resolves it to a metered resource.
func TestMatchNormalizes(t *testing.T) {
	c := mustParse(t, rewrites)
	tests := []struct {
		host, path      string
		route, methodID string // "" = nil
	}{
		{"", "/v1/items", "v1", "/items/GET"},
		{"", "//v1/items", "v1", "/items/GET"},
		{"", "/./v1/items", "v1", "/items/GET"},
		{"", "/v1//items", "v1", "/items/GET"},
		{"", "/v1/./items", "v1", "/items/GET"},
		{"", "/x/../v1/items", "v1", "/items/GET"},
		{"", "/%2e/v1/items", "v1", "/items/GET"},
		{"", "/v1/%2E/items", "v1", "/items/GET"},
		{"", "/%76%31/items", "v1", "/items/GET"}, // percent-encoded unreserved characters
		{"", "v1/items", "v1", "/items/GET"},      // no leading slash
		// A path that climbs above the root stays at the root.
		{"", "/../v1/items", "v1", "/items/GET"},
		{"", "/../../%2e%2e/v1/items", "v1", "/items/GET"},
		{"", "/../..", "", ""},
		// The query and fragment are cut before normalising.
		{"", "/v1/items?next=/../../admin", "v1", "/items/GET"},
		{"", "/v1/items#/../../admin", "v1", "/items/GET"},
		// "/v1/items/.." is "/v1/": the stage has no root resource.
		{"", "/v1/items/..", "v1", ""},
		// An encoded slash is not a separator (Envoy's path_with_escaped_slashes_action
		// decides what happens to it before the filter runs).
		{"", "/v1%2Fitems", "", ""},
		{"", "/v1/%2fitems", "v1", ""},
		// The bypass route is not reached by climbing out of it.
		{"shop.example.com", "/admin/pets", "admin", ""},
		{"shop.example.com", "/admin/../pets", "host", "/pets/GET"},
		{"shop.example.com", "/admin/%2e%2e/pets", "host", "/pets/GET"},
		{"shop.example.com", "/admin/%2E%2e/pets", "host", "/pets/GET"},
		{"shop.example.com", "/admin/.%2E/pets/7", "host", "/pets/{petId}/GET"},
		{"", "/admin/../v1/items", "v1", "/items/GET"},
		// A backslash is a slash, as Envoy's normalize_path reads it.
		{"shop.example.com", `/admin/..\pets`, "host", "/pets/GET"},
		{"shop.example.com", `/admin\..\pets\7`, "host", "/pets/{petId}/GET"},
		{"", `\v1\items`, "v1", "/items/GET"},
		{"shop.example.com", `/admin\pets`, "admin", ""},
		// Host: trailing dot, port and case.
		{"shop.example.com.", "/pets", "host", "/pets/GET"},
		{"SHOP.Example.com.:8443", "/pets", "host", "/pets/GET"},
		{"shop.example.com..", "/pets", "", ""},
		{"shop.example.com.evil", "/pets", "", ""},
	}
	for _, tt := range tests {
		m := c.Match("", tt.host, tt.path, "GET")
		var route, method string
		if m.Route != nil {
			route = m.Route.Name
		}
		if m.Method != nil {
			method = m.Method.ID
		}
		if route != tt.route || method != tt.methodID {
			t.Errorf("Match(host %q, path %q) = route %q method %q, want %q %q", tt.host, tt.path, route, method, tt.route, tt.methodID)
		}
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"/pets", "/pets"},
		{"/pets/", "/pets/"},
		{"//pets///42", "/pets/42"},
		{"/pets/./42", "/pets/42"},
		{"/pets/42/.", "/pets/42/"},
		{"/pets/42/..", "/pets/"},
		{"/a/b/../../c", "/c"},
		{"/..", "/"},
		{"/../..", "/"},
		{"/../a/..", "/"},
		{"/.../a", "/.../a"}, // three dots are a name
		{"/..a/a..", "/..a/a.."},
		{"/%2e%2E/%2E/a", "/a"},
		{"/a%2e%2e/b", "/a../b"},
		{"/%7euser/%5F%2d", "/~user/_-"},
		{"/a%2Fb/%2f..", "/a%2Fb/%2f.."}, // reserved escapes stay
		{"/%20/%zz/%2", "/%20/%zz/%2"},   // not unreserved, not an escape
		{"pets", "/pets"},
		{".", "/"},
		{"../pets", "/pets"},
		{`\pets`, "/pets"},
		{`/a\b`, "/a/b"},
		{`/a\\/b\`, "/a/b/"},
		{`/metrics/..\x`, "/x"},
		{`/a/.\b`, "/a/b"},
		{`/a/%5C..`, "/a/%5C.."}, // an escaped backslash is a name, as "%2F" is
		// A '%' that decoding puts in front of an escape stays encoded.
		{"%%370", "/%2570"},
		{"/%%37%30", "/%2570"},
		{"/%3%37", "/%2537"},
		{"/a/%%32e", "/a/%252e"},
		{"/a/%%32%65/b", "/a/%252e/b"},
		{"/%%%37%30", "/%%2570"},
		{"/%25%37%30", "/%2570"}, // "%25" is not decoded: the '%' was encoded already
		{"/%%32F", "/%2F"},       // "%2F" is not unreserved: nothing to re-encode
	}
	for _, tt := range tests {
		got := cleanPath(tt.in)
		if got != tt.want {
			t.Errorf("cleanPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if isCleanPath(tt.in) != (tt.in == tt.want) {
			t.Errorf("isCleanPath(%q) = %v, want %v", tt.in, !(tt.in == tt.want), tt.in == tt.want)
		}
		if !isCleanPath(got) || cleanPath(got) != got {
			t.Errorf("cleanPath(%q) = %q is not a fixed point", tt.in, got)
		}
	}
}

// idempotenceInputs are paths whose normal form once differed from its own normal form, or
// nearly did: decoding that completes an escape, dots made of escapes, backslashes.
var idempotenceInputs = []string{
	"%%370", "/%%37%30", "/%3%37", "/%%3%370", "/a/%%32e/..", "/a/%%32%65%%32%65/b",
	"/%%%37%30%30", "/%2%35%37%30", "/%%25%37%30", "/.%2e/%2e./%%32%65", `/a\%2e%2e\b`,
	"/%252e%252e/x", "%", "/%", "/%%", "/a%", "/a%4", "/%41%4", "//%2e%2e//%2E/",
}

// The normal form of a path is its own normal form (issue 3 review: "%%370" was "/%70",
// whose normal form is "/p"): matching must not depend on how often a path was normalised.
func TestCleanPathIdempotent(t *testing.T) {
	for _, p := range idempotenceInputs {
		checkCleanPath(t, p)
	}
}

func checkCleanPath(t *testing.T, p string) {
	t.Helper()
	c := cleanPath(p)
	if again := cleanPath(c); again != c {
		t.Errorf("cleanPath(%q) = %q, but cleanPath(%q) = %q", p, c, c, again)
	}
	if !isCleanPath(c) {
		t.Errorf("cleanPath(%q) = %q, which isCleanPath rejects", p, c)
	}
	if isCleanPath(p) != (c == p) {
		t.Errorf("isCleanPath(%q) = %v, but cleanPath gives %q", p, isCleanPath(p), c)
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, p := range idempotenceInputs {
		f.Add(p)
	}
	f.Add("/pets/./42//photos/%2e%2e/photos/7")
	f.Fuzz(checkCleanPath)
}

// The normal form a rejected pathPrefix's message suggests is itself accepted.
func TestPathPrefixSuggestionAccepted(t *testing.T) {
	suggested := regexp.MustCompile(`must be in normal form, here ("(?:[^"\\]|\\.)*")`)
	for _, prefix := range []string{"//v1", "/v1/./beta/", "/admin/%2e%2e", "/%76%31", "/%%370", "/a/%%32e",
		"/a/%%32%65/", "/a/b/..", "/a/%2e/"} {
		cfg := func(prefix string) string {
			return `{"apis": [{"id": "a", "resources": [{"path": "/x", "resourceMethods": {"GET": {}}}], "stages": [{"stageName": "s"}]}],
			  "routes": [{"match": {"pathPrefix": ` + strconv.Quote(prefix) + `}, "bypass": true}]}`
		}
		_, err := Parse([]byte(cfg(prefix)))
		if err == nil {
			t.Errorf("pathPrefix %q accepted", prefix)
			continue
		}
		m := suggested.FindStringSubmatch(err.Error())
		if m == nil {
			t.Errorf("pathPrefix %q: no suggestion in %v", prefix, err)
			continue
		}
		s, _ := strconv.Unquote(m[1])
		if _, err := Parse([]byte(cfg(s))); err != nil {
			t.Errorf("pathPrefix %q: suggested %q is rejected: %v", prefix, s, err)
		}
	}
}

// The options fixture bypasses /metrics/: a backslash does not climb out of it into a
// metered route, nor into it from outside (issue 3 review).
func TestBackslashBypass(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(fixtures, "valid", "options.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, string(data))
	for _, tt := range []struct{ path, route string }{
		{"/metrics/x", "metrics"},
		{`/metrics/..\orders`, "orders"},
		{`/metrics\..\orders`, "orders"},
		{`\metrics\x`, "metrics"},
	} {
		var route string
		if m := c.Match("orders-v1", "eu.orders.example.com", tt.path, "GET"); m.Route != nil {
			route = m.Route.Name
		}
		if route != tt.route {
			t.Errorf("Match(%q) = route %q, want %q", tt.path, route, tt.route)
		}
	}
}

func TestCleanHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"shop.example.com", "shop.example.com"},
		{"shop.example.com.", "shop.example.com"},
		{"shop.example.com.:443", "shop.example.com"},
		{"Shop.Example.com:443", "Shop.Example.com"},
		{"[::1]:80", "[::1]"},
		{"[::1]", "[::1]"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := cleanHost(tt.in); got != tt.want {
			t.Errorf("cleanHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Normal paths, the common case, are matched without allocating; one that needs
// normalising costs one allocation.
func TestMatchNormalizeAllocations(t *testing.T) {
	c := mustParse(t, rewrites)
	for _, tt := range []struct {
		path  string
		allow float64
	}{
		{"/v1/items?x=1", 0},
		{"/pets/42/", 0},
		{"/v1/./items", 1},
	} {
		allocs := testing.AllocsPerRun(100, func() { c.Match("", "shop.example.com.:443", tt.path, "GET") })
		if allocs != tt.allow {
			t.Errorf("Match(%q) allocates %v times, want %v", tt.path, allocs, tt.allow)
		}
	}
}

func BenchmarkCleanPath(b *testing.B) {
	for _, p := range []string{"/pets/42/photos/7", "/pets/./42//photos/%2e%2e/photos/7"} {
		b.Run(p, func(b *testing.B) {
			for b.Loop() {
				cleanPath(p)
			}
		})
	}
}
