package config

import "testing"

// The spellings of issue 8 (finding 1) that upstreams read differently, and their near
// misses, which stay unambiguous.
func TestAmbiguousSpelling(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		// Encoded slash and backslash, any case, anywhere.
		{"/admin/..%2fpets", true},
		{"/admin/..%2Fpets", true},
		{"/admin/..%5cpets", true},
		{"/admin/..%5Cpets", true},
		{"%2f", true},
		{"/admin/x%2F", true},
		// Double encoding: %25 followed by an escape.
		{"/admin/%252e%252e/pets", true},
		{"/admin/%252F", true},
		{"/admin/%2525", true},
		{"/admin/%25ff", true},
		{"/admin/%25", false},   // a '%' encoded, and nothing to decode after it
		{"/admin/%252", false},  // "%2" is not an escape
		{"/admin/%25zz", false}, // nor is "%zz"
		{"/admin/%2%66", false}, // one spelling; its normal form "%2f" is caught (TestAmbiguousPath)
		// ';' next to a dot segment.
		{"/admin/..;/pets", true},
		{"/admin/..;jsessionid=1/pets", true},
		{"/admin/.;/x", true},
		{"/admin/x/..;", true},
		{"/admin/%2e%2e;/pets", true},
		{"/admin/.%2E;/pets", true},
		{"/admin/;/../pets", true},
		{"/admin/;x/../pets", true},
		{"/admin/;/%2e%2e/pets", true},
		{"/admin/;//../pets", true},  // the empty segment merges away
		{`/admin/;\..\pets`, true},   // a backslash ends a segment, as the normal form reads it
		{"/admin/../;/pets", true},   // the dot segment before the parameters
		{"/admin/;a/;b/../p", true},  // parameters only, then a dot segment
		{"/admin/users;v=1", false},  // parameters on a name
		{"/admin;/../pets", false},   // "admin;" is a name: everyone removes it with ".."
		{"/admin/;/pets", false},     // parameters only, no dot segment next to it
		{"/admin/;x", false},         //
		{"/admin/...;/pets", false},  // "..." is a name
		{"/admin/.x;/pets", false},   //
		{"/admin/%2e%2ex;/p", false}, //
		{"/admin/../pets", false},    // a dot segment without parameters is the normal form's business
		{"/admin/./users", false},
		// Other escapes.
		{"/admin/a%20b", false},
		{"/admin/%2e%2e", false},
		{"/admin/%", false},
		{"/admin/%2", false},
		{"", false},
		{"/", false},
	}
	for _, tt := range tests {
		if got := ambiguousSpelling(tt.path); got != tt.want {
			t.Errorf("ambiguousSpelling(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// ambiguousPath looks at the normal form too: normalising can make an ambiguous spelling.
func TestAmbiguousPath(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/admin/%2%66", true},        // "%2" then "%66" ('f') is "%2f"
		{"/admin/%%32e%%32e/p", true}, // "%2e" nested: "%252e"
		{"/admin/%2e%2e;/p", true},
		{"/admin/%75sers", false},
		{"/admin/./users", false},
		{"//admin", false},
	} {
		if got := ambiguousPath(tt.path, cleanPath(tt.path)); got != tt.want {
			t.Errorf("ambiguousPath(%q, %q) = %v, want %v", tt.path, cleanPath(tt.path), got, tt.want)
		}
	}
}

// TestBypassOpensOnlyForUnambiguousPaths (issue 8 finding 1): under rewrites, whose bypass
// route /admin comes first, an ambiguous path under /admin skips the bypass route and goes
// to the route after it that selects the request (host: metered, with no resource of that
// name; v1: metered by resource), or to none. Before the rule each of these was the
// bypass's.
func TestBypassOpensOnlyForUnambiguousPaths(t *testing.T) {
	c := mustParse(t, rewrites)
	tests := []struct {
		host, path      string
		route, methodID string // "" = nil
	}{
		{"shop.example.com", "/admin/..%2fpets", "host", ""},
		{"shop.example.com", "/admin/..%5Cpets", "host", ""},
		{"shop.example.com", "/admin/%252e%252e/pets", "host", ""},
		{"shop.example.com", "/admin/..;/pets", "host", ""},
		{"shop.example.com", "/admin/;/../pets", "host", ""},
		{"shop.example.com", "/admin/.;/../pets", "host", ""},
		{"shop.example.com", "/admin/%%32e%%32e/pets", "host", ""},
		{"", "/admin/..%2fpets", "", ""}, // no route after the bypass selects it
		{"", "/admin/..;/pets?x=1", "", ""},
		// The bypass still opens for its own paths.
		{"shop.example.com", "/admin/users", "admin", ""},
		{"shop.example.com", "/admin/users;v=1", "admin", ""},
		{"shop.example.com", "/admin/a%20b?next=%2F..%2F", "admin", ""}, // the query is not the path
		{"", "/admin/./users", "admin", ""},
		// Metered routes take ambiguous paths as they come: the rule is the bypass's.
		{"shop.example.com", "/pets/..%2f7", "host", "/pets/{petId}/GET"},
		{"", "/v1/items;v=1", "v1", ""},
		{"", "/v1/items", "v1", "/items/GET"},
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
			t.Errorf("Match(%q, %q) = route %q method %q, want %q %q", tt.host, tt.path, route, method, tt.route, tt.methodID)
		}
	}
}

// Deciding the bypass costs no allocation for a normal path.
func TestBypassDecisionAllocations(t *testing.T) {
	c := mustParse(t, rewrites)
	for _, path := range []string{"/admin/users", "/admin/..%2fpets", "/admin/..;/pets"} {
		if allocs := testing.AllocsPerRun(100, func() { c.Match("", "shop.example.com", path, "GET") }); allocs != 0 {
			t.Errorf("Match(%q) allocates %v times, want 0", path, allocs)
		}
	}
}

func TestNormalPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/admin/%2e%2e/pets?x=/..", "/pets"},
		{`/admin/..\pets`, "/pets"},
		{"/admin/..%2fpets#frag", "/admin/..%2fpets"},
		{"", "/"},
	} {
		if got := NormalPath(tt.in); got != tt.want {
			t.Errorf("NormalPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// BenchmarkBypassMatch measures Match for a request a bypass route selects (the path is
// scanned for ambiguous spellings) next to a metered one of the same length (not scanned).
func BenchmarkBypassMatch(b *testing.B) {
	c := mustParse(b, rewrites)
	for _, path := range []string{"/v1/items/users/42/photos", "/admin/users/42/photos/7/x", "/admin/users/..;/photos/x"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				c.Match("", "shop.example.com", path, "GET")
			}
		})
	}
}
