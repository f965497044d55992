package config

import "strings"

// Requests are matched on a normal form of their path and host, so that a spelling the
// upstream resolves to the same resource cannot dodge a route (metering skipped) or reach a
// bypass route it does not belong to. Normal paths (the common case) are returned as they
// are, without allocating.

// cleanPath returns the normal form of a request path (query and fragment already cut):
//   - it starts with "/" (a relative path gets one, "" becomes "/");
//   - percent-encoded unreserved characters (RFC 3986 2.3: letters, digits, '-', '.', '_',
//     '~', in either hex case) are decoded, so "%2e" and "%2E" are dots; other escapes,
//     "%2F" among them, stay as they are and never separate segments;
//   - a backslash is a slash, as Envoy's normalize_path (Chromium's path canonicaliser)
//     reads it: /admin/..\pets is /pets;
//   - repeated slashes collapse to one;
//   - "." segments are dropped and ".." removes the segment before it; a ".." at the root
//     stays at the root ("/../v1" is "/v1"), as RFC 3986's remove_dot_segments and Envoy's
//     normalize_path do;
//   - a trailing slash, or a trailing "." or ".." segment, leaves a trailing slash;
//   - a '%' that decoding turned into the start of an escaped unreserved character ("%%370"
//     decodes to "%70") is encoded as "%25" ("/%2570"), as Chromium's CheckForNestedEscapes
//     does, so that the normal form is its own normal form and a second normalisation (a
//     proxy or upstream after us) cannot read another path into it.
func cleanPath(path string) string {
	if isCleanPath(path) {
		return path
	}
	if path == "" {
		return "/"
	}
	out := make([]byte, 0, len(path)+1)
	start := 0 // in out, of the current segment's '/'
	trailing := false
	decoded := false
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' && path[i] != '\\' {
			if i == 0 {
				out = append(out, '/') // a relative path's first segment
			}
			if c, ok := unreservedEscape(path, i); ok {
				out = append(out, c)
				i += 2
				decoded = true
			} else {
				out = append(out, path[i])
			}
			continue
		}
		// End of the segment out[start+1:], decoded.
		switch string(out[min(start+1, len(out)):]) {
		case "", ".":
			out = out[:start]
			trailing = true
		case "..":
			out = out[:max(0, lastSlash(out[:start]))]
			trailing = true
		default:
			trailing = false
		}
		start = len(out)
		out = append(out, '/')
	}
	out = out[:start] // the '/' appended after the last segment
	if len(out) == 0 || trailing {
		out = append(out, '/')
	}
	if decoded {
		return keepNestedEscapes(string(out))
	}
	return string(out)
}

// keepNestedEscapes encodes as "%25" each '%' of a decoded path that starts an escaped
// unreserved character. Inserting "25" after a '%' makes no new one: an earlier '%' that
// reaches this one already saw a '%', which is not a hex digit.
func keepNestedEscapes(path string) string {
	var out []byte
	done := 0 // path[:done] is in out
	for i := 0; i < len(path); i++ {
		if _, ok := unreservedEscape(path, i); ok {
			out = append(append(out, path[done:i+1]...), "25"...)
			done = i + 1
		}
	}
	if out == nil {
		return path
	}
	return string(append(out, path[done:]...))
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

// isCleanPath reports whether cleanPath would return path unchanged. One pass, looking
// only at '/', '\\', '.' and '%': it runs for every request.
func isCleanPath(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	for i := 1; i < len(path); i++ {
		switch path[i] {
		case '\\':
			return false
		case '/':
			if path[i-1] == '/' {
				return false
			}
		case '.':
			// A segment that is "." or "..".
			if path[i-1] == '/' {
				rest := path[i+1:]
				if rest == "" || rest[0] == '/' || rest[0] == '.' && (len(rest) == 1 || rest[1] == '/') {
					return false
				}
			}
		case '%':
			if _, ok := unreservedEscape(path, i); ok {
				return false
			}
		}
	}
	return true
}

// unreservedEscape decodes the escape "%XX" at path[i] when it encodes an unreserved
// character.
func unreservedEscape(path string, i int) (byte, bool) {
	if path[i] != '%' || i+2 >= len(path) {
		return 0, false
	}
	hi, ok1 := unhex(path[i+1])
	lo, ok2 := unhex(path[i+2])
	if !ok1 || !ok2 {
		return 0, false
	}
	c := hi<<4 | lo
	if isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~' {
		return c, true
	}
	return 0, false
}

func unhex(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return (c | 0x20) - 'a' + 10, true
	}
	return 0, false
}

// cleanHost returns a request authority without its port and without the trailing dot of
// a fully qualified name ("Shop.example.com.:443" is "Shop.example.com"); case is left to
// the comparison, which ignores it. No allocation.
func cleanHost(host string) string {
	host = stripPort(host)
	if strings.HasSuffix(host, ".") && !strings.HasPrefix(host, "[") {
		host = host[:len(host)-1]
	}
	return host
}
