package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The request target reaches the filter as the client wrote it, as Envoy hands :path to
// filters: Go's r.URL.RequestURI() re-escapes ('\' becomes %5C), which would hide from the
// filter exactly the spellings its normal form must see. Envoy's HTTP connection manager may
// rewrite the path before the filters run (normalize_path, merge_slashes,
// path_with_escaped_slashes_action); PathOptions mirror those settings with Envoy's
// defaults, and the rewritten path is also what goes upstream, as Envoy forwards it.

// Values of PathOptions.EscapedSlashes, Envoy's PathWithEscapedSlashesAction.
const (
	KeepUnchanged       = "KEEP_UNCHANGED"        // Envoy's default
	RejectRequest       = "REJECT_REQUEST"        // 400
	UnescapeAndRedirect = "UNESCAPE_AND_REDIRECT" // 307 to the unescaped (and normalised) path
	UnescapeAndForward  = "UNESCAPE_AND_FORWARD"  // %2F and %5C decoded, then on
)

// EscapedSlashesActions lists the values of PathOptions.EscapedSlashes.
var EscapedSlashesActions = []string{KeepUnchanged, RejectRequest, UnescapeAndRedirect, UnescapeAndForward}

// PathOptions are the HTTP connection manager's path settings; the zero value is Envoy's
// default (all off, escaped slashes kept).
type PathOptions struct {
	// NormalizePath is Envoy's normalize_path: escaped unreserved characters decoded, dot
	// segments resolved, '\' read as '/', a relative path rooted; a path holding %00 is
	// answered 400. Other escapes and repeated slashes are left as they are.
	NormalizePath bool
	// MergeSlashes is Envoy's merge_slashes: repeated slashes of the path (not the query)
	// become one, after NormalizePath.
	MergeSlashes bool
	// EscapedSlashes is Envoy's path_with_escaped_slashes_action for %2F, %2f, %5C and %5c
	// in the path, applied before the other two; "" is KEEP_UNCHANGED.
	EscapedSlashes string
}

func (o PathOptions) check() error {
	if o.EscapedSlashes == "" {
		return nil
	}
	for _, a := range EscapedSlashesActions {
		if o.EscapedSlashes == a {
			return nil
		}
	}
	return fmt.Errorf("--path-with-escaped-slashes-action: want %s, got %q", strings.Join(EscapedSlashesActions, ", "), o.EscapedSlashes)
}

// pathAction is what the connection manager does with a request after looking at its path.
type pathAction int

const (
	pathContinue pathAction = iota
	pathReject              // 400, details path_normalization_failed
	pathRedirect            // 307 with location: the rewritten path
)

// rewrite applies the options to a request target (path and query) in Envoy's order:
// escaped slashes, then normalize_path, then merge_slashes. The query is never touched.
func (o PathOptions) rewrite(target string) (string, pathAction) {
	path, query, hasQuery := strings.Cut(target, "?")
	action := pathContinue
	if o.EscapedSlashes != "" && o.EscapedSlashes != KeepUnchanged {
		if p, found := unescapeSlashes(path); found {
			switch o.EscapedSlashes {
			case RejectRequest:
				return target, pathReject
			case UnescapeAndRedirect:
				action = pathRedirect
			}
			path = p
		}
	}
	if o.NormalizePath {
		p, ok := canonicalPath(path)
		if !ok {
			return target, pathReject
		}
		path = p
	}
	if o.MergeSlashes {
		path = mergeSlashes(path)
	}
	if hasQuery {
		path += "?" + query
	}
	return path, action
}

// unescapeSlashes decodes %2F and %5C (either case) into '/' and '\'.
func unescapeSlashes(path string) (string, bool) {
	var b strings.Builder
	found := false
	for i := 0; i < len(path); i++ {
		if path[i] == '%' && i+2 < len(path) && path[i+1] == '2' && (path[i+2] == 'f' || path[i+2] == 'F') {
			b.WriteByte('/')
			i += 2
			found = true
			continue
		}
		if path[i] == '%' && i+2 < len(path) && path[i+1] == '5' && (path[i+2] == 'c' || path[i+2] == 'C') {
			b.WriteByte('\\')
			i += 2
			found = true
			continue
		}
		b.WriteByte(path[i])
	}
	if !found {
		return path, false
	}
	return b.String(), true
}

// canonicalPath is normalize_path as Envoy's tests pin it (Chromium's path canonicaliser):
// "/a/b/../c" is "/a/c", "/a/..\c" is "/c", "/a/b/%2E%2E/c" is "/a/c", "a/b" is "/a/b",
// "/../a" is "/a"; escaped unreserved characters are decoded ("%7E" is "~"), other escapes
// stay as written ("/a/%2F%2f/c", "/%5c%25", "/%c0%af"). An escaped NUL fails, as in Envoy.
// Characters Chromium would percent-encode (bytes over 0x7f, '"', '<', '>') are left as
// received: the filter's own normal form does not depend on them.
func canonicalPath(path string) (string, bool) {
	if strings.Contains(path, "%00") {
		return "", false
	}
	path = decodeUnreserved(strings.ReplaceAll(path, `\`, "/"))
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	segs := strings.Split(path[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch dotSegment(s) {
		case 1:
			if last {
				out = append(out, "")
			}
		case 2:
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/"), true
}

// decodeUnreserved decodes the escapes of unreserved characters (RFC 3986 2.3), as
// Chromium's canonicaliser does; '%' itself and every other escape stay.
func decodeUnreserved(path string) string {
	if !strings.Contains(path, "%") {
		return path
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '%' && i+2 < len(path) {
			if c, err := strconv.ParseUint(path[i+1:i+3], 16, 8); err == nil && unreserved(byte(c)) {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// dotSegment is 1 for ".", 2 for "..", in any mix of '.' and %2e / %2E; 0 otherwise.
func dotSegment(s string) int {
	n := 0
	for i := 0; i < len(s); {
		switch {
		case s[i] == '.':
			i++
		case i+2 < len(s) && s[i] == '%' && s[i+1] == '2' && (s[i+2] == 'e' || s[i+2] == 'E'):
			i += 3
		default:
			return 0
		}
		n++
		if n > 2 {
			return 0
		}
	}
	return n
}

// mergeSlashes collapses runs of '/' into one.
func mergeSlashes(path string) string {
	if !strings.Contains(path, "//") {
		return path
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '/' && i > 0 && path[i-1] == '/' {
			continue
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

// requestTarget is :path as the client sent it on the request line: r.RequestURI, except
// that an absolute-form target ("GET http://host/p?q") gives its path and query, as
// Envoy's codec does (r.Host is then the URL's authority, as Envoy's :authority).
// Go's server has already refused, with 400 and before any handler, a target holding a
// control character (0x00-0x1f, 0x7f), an invalid escape in the path ("%zz"), or a relative
// path ("pets").
func requestTarget(r *http.Request) string {
	t := r.RequestURI
	if strings.HasPrefix(t, "/") || t == "*" {
		return t
	}
	if _, rest, ok := strings.Cut(t, "://"); ok {
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			if rest[i] == '?' {
				return "/" + rest[i:]
			}
			return rest[i:]
		}
		return "/"
	}
	return t
}

// targetURL is a URL whose RequestURI() is target byte for byte, so that Go's client
// writes the request line as Envoy would forward it: the decoded path with its raw form
// when Go keeps that form (RawPath), the target as an opaque URL when Go would re-escape it
// ('\', '"', '#', non-ASCII...).
func targetURL(target string) (*url.URL, error) {
	path, query, hasQuery := strings.Cut(target, "?")
	u := &url.URL{RawQuery: query, ForceQuery: hasQuery && query == ""}
	if p, err := url.PathUnescape(path); err == nil {
		u.Path, u.RawPath = p, path
		if u.EscapedPath() == path {
			return u, nil
		}
	}
	if strings.HasPrefix(path, "//") || !strings.HasPrefix(path, "/") {
		// An opaque "//x" would be written as an absolute URL; Go's client cannot send it.
		return nil, fmt.Errorf("the path (%d bytes) cannot be forwarded byte for byte", len(path))
	}
	u.Path, u.RawPath, u.Opaque = "", "", path
	return u, nil
}

// withoutQuery cuts a target at its query.
func withoutQuery(target string) string {
	p, _, _ := strings.Cut(target, "?")
	return p
}
