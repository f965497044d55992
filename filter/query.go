package main

import (
	"net/url"
	"strings"
)

// queryParam returns the first value of the query parameter name in path, decoded; "" when
// absent or malformed.
func queryParam(path, name string) string {
	_, query, ok := strings.Cut(path, "?")
	if !ok {
		return ""
	}
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			if dv, err := url.QueryUnescape(v); err == nil {
				return dv
			}
			return ""
		}
	}
	return ""
}

// removeQueryParam returns path without every occurrence of the query parameter name, and
// whether it removed any. The other parameters keep their order and encoding.
func removeQueryParam(path, name string) (string, bool) {
	base, query, ok := strings.Cut(path, "?")
	if !ok {
		return path, false
	}
	var kept []string
	removed := false
	for _, kv := range strings.Split(query, "&") {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			removed = true
			continue
		}
		kept = append(kept, kv)
	}
	if !removed {
		return path, false
	}
	if len(kept) == 0 {
		return base, true
	}
	return base + "?" + strings.Join(kept, "&"), true
}
