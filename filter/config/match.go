package config

import "strings"

// node is one segment of an API's resource tree. Matching walks it segment by segment,
// trying the literal child, then the {param} child, then the {proxy+} child, and backs
// off when a branch has no method for the request: AWS's most-specific-match rule.
type node struct {
	few     []literalChild   // the literal children while there are at most maxFew
	literal map[string]*node // the literal children beyond that, all of them
	param   *node
	greedy  *node     // a {name+} child: matches one or more remaining segments
	methods []*Method // of the resource ending here
}

// child is the literal child for segment seg, or nil. A node's literal children are a
// short list, scanned, while there are few (the usual resource tree), and a map beyond
// that: a Go map lookup hashes the segment, which in Wasm (no AES hashing) costs more than
// comparing a few strings (BenchmarkMatch).
func (n *node) child(seg string) *node {
	for i := range n.few {
		if n.few[i].seg == seg {
			return n.few[i].node
		}
	}
	if n.literal != nil {
		return n.literal[seg]
	}
	return nil
}

type literalChild struct {
	seg  string
	node *node
}

// maxFew is how many literal children a node lists before it puts them in a map.
const maxFew = 8

// addChild adds a literal child, which child must not find yet.
func (n *node) addChild(seg string, c *node) {
	if n.literal == nil && len(n.few) < maxFew {
		n.few = append(n.few, literalChild{seg, c})
		return
	}
	if n.literal == nil {
		n.literal = make(map[string]*node, 2*maxFew)
		for _, x := range n.few {
			n.literal[x.seg] = x.node
		}
		n.few = nil
	}
	n.literal[seg] = c
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
	if c := n.child(seg); c != nil {
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
