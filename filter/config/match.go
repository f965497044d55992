package config

import "strings"

// node is one segment of an API's resource tree. Matching walks it segment by segment,
// trying the literal child, then the {param} child, then the {proxy+} child, and backs
// off when a branch has no method for the request: AWS's most-specific-match rule.
type node struct {
	literal map[string]*node
	param   *node
	greedy  *node     // a {name+} child: matches one or more remaining segments
	methods []*Method // of the resource ending here
}

func (n *node) method(m string) *Method {
	var anyMethod *Method
	for _, x := range n.methods {
		if x.HTTPMethod == m {
			return x
		}
		if x.HTTPMethod == "ANY" {
			anyMethod = x
		}
	}
	return anyMethod
}

// match resolves a path (empty segments ignored) to a method, or nil.
func (n *node) match(path, method string) *Method {
	for len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	if path == "" {
		return n.method(method)
	}
	seg, rest := path, ""
	if i := strings.IndexByte(path, '/'); i >= 0 {
		seg, rest = path[:i], path[i:]
	}
	if c := n.literal[seg]; c != nil {
		if m := c.match(rest, method); m != nil {
			return m
		}
	}
	if n.param != nil {
		if m := n.param.match(rest, method); m != nil {
			return m
		}
	}
	if n.greedy != nil {
		return n.greedy.method(method)
	}
	return nil
}

// matches reports whether every condition of the route holds for the request.
func (r *Route) matches(routeName, host, path string) bool {
	if r.RouteName != "" && r.RouteName != routeName {
		return false
	}
	if r.Host != "" && !hostMatches(r.Host, host) {
		return false
	}
	return r.PathPrefix == "" || hasPathPrefix(path, r.PathPrefix)
}

// hostMatches compares a configured host (lower case, maybe "*.suffix") with a request's
// authority, ignoring case and port.
func hostMatches(pattern, host string) bool {
	host = stripPort(host)
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && strings.EqualFold(host[len(host)-len(suffix):], suffix)
	}
	return strings.EqualFold(host, pattern)
}

func stripPort(host string) string {
	if strings.HasPrefix(host, "[") { // [v6]:port
		if i := strings.IndexByte(host, ']'); i >= 0 {
			return host[:i+1]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// hasPathPrefix is a segment-wise prefix test: "/v1" matches "/v1" and "/v1/x", not "/v1x".
// Configured prefixes have no trailing slash (except "/" itself).
func hasPathPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix == "/" || path[len(prefix)] == '/'
}

// stripQuery cuts path at its query or fragment. A plain loop: strings.IndexAny with two
// characters makes a call per byte of the path, which Wasm feels.
func stripQuery(path string) string {
	for i := 0; i < len(path); i++ {
		if c := path[i]; c == '?' || c == '#' {
			return path[:i]
		}
	}
	return path
}
