package config

// A bypass route is a door without a lock, so it opens only for a path that every upstream
// reads the same way (issue 8). The normal form (normalize.go) is how Envoy's
// normalize_path reads a path; some upstreams read more into it: one that decodes "%2F" or
// "%5C" climbs out of /admin with /admin/..%2fpets, one that decodes twice reads
// %252e%252e as "..", and a servlet container strips path parameters (";...") from each
// segment before it resolves dot segments, so /admin/..;/pets and /admin/;/../pets are
// /pets there. Envoy warns of the first two and offers path_with_escaped_slashes_action;
// the filter does not rely on it. A path with such a spelling skips every bypass route and
// is matched on by the routes after them, like any other request.

// ambiguousPath reports whether the request path (query cut) or its normal form holds an
// encoded '/' or '\' ("%2F", "%5C", either case), a double encoding ("%25" followed by an
// escape, "%252e"), or a ';' next to a dot segment: a segment that is "." or ".." (dots
// maybe encoded) followed by path parameters ("..;", ".;x"), or a segment of path
// parameters only (";", ";x") next to a dot segment. Both forms are looked at: the normal
// form can hide a spelling ("/admin/;/../pets" is "/admin/pets": the ';' segment is gone)
// and make one ("%%32e" is "%252e"). A normal path is its own normal form, so the usual
// request costs one scan. Match calls it only when a bypass route selects the request.
func ambiguousPath(raw, normal string) bool {
	return ambiguousSpelling(raw) || normal != raw && ambiguousSpelling(normal)
}

// ambiguousSpelling is ambiguousPath of one spelling. '/' and '\' both end a segment, as
// the normal form reads them; empty segments are skipped, as merged slashes are.
func ambiguousSpelling(path string) bool {
	// Most paths hold neither '%' nor ';', and then nothing to look at segment by segment.
	i := 0
	for i < len(path) && path[i] != '%' && path[i] != ';' {
		i++
	}
	if i == len(path) {
		return false
	}
	start := 0 // of the current segment
	prevDot, prevParams := false, false
	for i := 0; i <= len(path); i++ {
		if i < len(path) {
			switch path[i] {
			case '%':
				if encodedSlash(path, i) || doubleEncoding(path, i) {
					return true
				}
				continue
			case '/', '\\':
			default:
				continue
			}
		}
		seg := path[start:i]
		start = i + 1
		if seg == "" {
			continue
		}
		name, params := seg, false
		for j := 0; j < len(seg); j++ {
			if seg[j] == ';' {
				name, params = seg[:j], true
				break
			}
		}
		dot := isDotSegment(name)
		onlyParams := params && name == ""
		if params && dot || onlyParams && prevDot || prevParams && dot {
			return true
		}
		prevDot, prevParams = dot, onlyParams
	}
	return false
}

// encodedSlash reports whether path[i:] starts with "%2F" or "%5C", in either case.
func encodedSlash(path string, i int) bool {
	if i+2 >= len(path) {
		return false
	}
	lo := path[i+2] | 0x20
	return path[i+1] == '2' && lo == 'f' || path[i+1] == '5' && lo == 'c'
}

// doubleEncoding reports whether path[i:] starts with "%25" followed by an escape: a '%'
// that one decoding turns into the start of another escape.
func doubleEncoding(path string, i int) bool {
	if i+4 >= len(path) || path[i+1] != '2' || path[i+2] != '5' {
		return false
	}
	_, ok1 := unhex(path[i+3])
	_, ok2 := unhex(path[i+4])
	return ok1 && ok2
}

// isDotSegment reports whether a segment is "." or "..", each dot maybe written "%2E" (or
// "%2e").
func isDotSegment(seg string) bool {
	dots := 0
	for i := 0; i < len(seg); dots++ {
		switch {
		case seg[i] == '.':
			i++
		case i+2 < len(seg) && seg[i] == '%' && seg[i+1] == '2' && seg[i+2]|0x20 == 'e':
			i += 3
		default:
			return false
		}
	}
	return dots == 1 || dots == 2
}

// NormalPath is the normal form of a request path that routes and resources are matched
// against (query and fragment dropped; see cleanPath), for logs that show what was matched.
func NormalPath(path string) string { return cleanPath(stripQuery(path)) }
