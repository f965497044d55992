package gateway

import (
	"net/http"
	"testing"
)

// TestPathRewrite pins the connection manager's path settings on Envoy's own examples
// (test/common/http/path_utility_test.cc and conn_manager_utility's order: escaped slashes,
// then normalize_path, then merge_slashes; the query is never touched).
func TestPathRewrite(t *testing.T) {
	norm := PathOptions{NormalizePath: true}
	merge := PathOptions{MergeSlashes: true}
	both := PathOptions{NormalizePath: true, MergeSlashes: true}
	for _, c := range []struct {
		o      PathOptions
		in     string
		out    string
		action pathAction
	}{
		{PathOptions{}, `/admin/..\pets//x?q=%2F`, `/admin/..\pets//x?q=%2F`, pathContinue},
		{norm, "/a/b/../c", "/a/c", pathContinue},
		{norm, "/a/b/./c", "/a/b/c", pathContinue},
		{norm, "a/b/../c", "/a/c", pathContinue},
		{norm, "/a/b/../../../../c", "/c", pathContinue},
		{norm, `/a/..\c`, "/c", pathContinue},
		{norm, "/%c0%af", "/%c0%af", pathContinue},
		{norm, "/%5c%25", "/%5c%25", pathContinue},
		{norm, "/a/b/%2E%2E/c", "/a/c", pathContinue},
		{norm, "/a/b/%2E./c", "/a/c", pathContinue},
		{norm, "/a/b/%2E/c", "/a/b/c", pathContinue},
		{norm, "..", "/", pathContinue},
		{norm, "/../a/b", "/a/b", pathContinue},
		{norm, "/./a/b", "/a/b", pathContinue},
		{norm, "/a/.", "/a/", pathContinue},
		{norm, "/a/%2F%2f/c", "/a/%2F%2f/c", pathContinue},
		{norm, "/A/B/C", "/A/B/C", pathContinue},
		{norm, "/%61dmin/%7Eb%2d%5F/%2e%2E/x", "/admin/x", pathContinue},
		{norm, "/%41%2f%25%20", "/A%2f%25%20", pathContinue},
		{norm, "/a/%2+x/%", "/a/%2+x/%", pathContinue},
		{norm, "//a//b", "//a//b", pathContinue},
		{norm, "/a/../b?x=/../y", "/b?x=/../y", pathContinue},
		{norm, "/xyz/.%00../abc", "/xyz/.%00../abc", pathReject},
		{merge, "//a//b/c//", "/a/b/c/", pathContinue},
		{merge, "/a//b?a=///c", "/a/b?a=///c", pathContinue},
		{merge, "/a/../b", "/a/../b", pathContinue},
		{both, "//admin/..//pets", "/pets", pathContinue},
		{PathOptions{EscapedSlashes: KeepUnchanged}, "/a%2Fb", "/a%2Fb", pathContinue},
		{PathOptions{EscapedSlashes: RejectRequest}, "/a%2fb", "/a%2fb", pathReject},
		{PathOptions{EscapedSlashes: RejectRequest}, "/a?b=%2F", "/a?b=%2F", pathContinue},
		{PathOptions{EscapedSlashes: UnescapeAndForward}, "/a%2Fb%5cc", `/a/b\c`, pathContinue},
		{PathOptions{EscapedSlashes: UnescapeAndRedirect, NormalizePath: true}, "/admin/..%2fpets?x", "/pets?x", pathRedirect},
		{PathOptions{EscapedSlashes: UnescapeAndRedirect, NormalizePath: true}, "/admin/../pets", "/pets", pathContinue},
		{PathOptions{EscapedSlashes: UnescapeAndRedirect, NormalizePath: true, MergeSlashes: true}, "/a/..%5C%5Cpets", "/pets", pathRedirect},
	} {
		out, action := c.o.rewrite(c.in)
		if out != c.out || action != c.action {
			t.Errorf("%+v rewrite(%q) = %q, %d; want %q, %d", c.o, c.in, out, action, c.out, c.action)
		}
	}
	if err := (PathOptions{EscapedSlashes: "UNESCAPE"}).check(); err == nil || err.Error() != `--path-with-escaped-slashes-action: want KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT, UNESCAPE_AND_FORWARD, got "UNESCAPE"` {
		t.Errorf("check: %v", err)
	}
}

// TestTargetURL: the URL Go's client writes for a target carries it byte for byte.
func TestTargetURL(t *testing.T) {
	for _, target := range []string{"/pets", "/pets?", "/pets?a=1&b=%2F", `/admin/..\pets`, "/admin/..%2fpets", "/admin/%5C",
		"/é", "/a\"b<c>", "/pets#frag", "//pets", "//pets?x", "/a;b=c/..;/d", "/%252e"} {
		u, err := targetURL(target)
		if err != nil {
			t.Errorf("targetURL(%q): %v", target, err)
			continue
		}
		if got := u.RequestURI(); got != target {
			t.Errorf("targetURL(%q).RequestURI() = %q", target, got)
		}
	}
	if _, err := targetURL(`//a\b`); err == nil || err.Error() != "the path (5 bytes) cannot be forwarded byte for byte" {
		t.Errorf(`targetURL("//a\\b"): %v`, err)
	}
}

// TestRequestTarget: :path is what was on the request line; an absolute-form target gives
// its path and query, as Envoy's codec does.
func TestRequestTarget(t *testing.T) {
	for in, want := range map[string]string{
		`/admin/..\pets?x=1`:                `/admin/..\pets?x=1`,
		"http://evil.example/pets?x=1":      "/pets?x=1",
		"http://evil.example?x=1":           "/?x=1",
		"http://evil.example":               "/",
		"https://a.example:8443/a/..%2fb#f": "/a/..%2fb#f",
		"*":                                 "*",
	} {
		if got := requestTarget(&http.Request{RequestURI: in}); got != want {
			t.Errorf("requestTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCheckAdminAddr: loopback only, unless allowed.
func TestCheckAdminAddr(t *testing.T) {
	for _, c := range []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:9901", false, true}, {"[::1]:9901", false, true}, {"localhost:9901", false, true}, {"127.0.0.2:0", false, true},
		{"0.0.0.0:9901", false, false}, {":9901", false, false}, {"[::]:9901", false, false}, {"10.1.2.3:9901", false, false},
		{"0.0.0.0:9901", true, true}, {":9901", true, true},
	} {
		if err := checkAdminAddr(c.addr, c.remote); (err == nil) != c.ok {
			t.Errorf("checkAdminAddr(%q, %v) = %v, want ok %v", c.addr, c.remote, err, c.ok)
		}
	}
}
