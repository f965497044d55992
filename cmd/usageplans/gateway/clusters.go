package gateway

import (
	"fmt"
	"sort"
)

// withClusters adds the --cluster clusters to the routes' ones; a name both declare is an
// error, as two Envoy clusters of one name are.
func withClusters(routes, extra map[string]string) (map[string]string, error) {
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make(map[string]string, len(routes)+len(extra))
	for name, u := range routes {
		out[name] = u
	}
	for _, name := range names {
		if _, dup := routes[name]; dup {
			return nil, fmt.Errorf("--cluster %s: a route's upstream cluster has that name", name)
		}
		out[name] = extra[name]
	}
	return out, nil
}
