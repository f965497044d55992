package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/usageplans/usageplans/host"
)

// clusterFlag is serve's repeatable --cluster NAME=URL: the clusters the filter may call
// with proxy_http_call besides the routes' upstreams, as an Envoy bootstrap declares them.
type clusterFlag map[string]string

func (c clusterFlag) String() string {
	var out []string
	for name, u := range c {
		out = append(out, name+"="+u)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (c clusterFlag) Set(v string) error {
	name, u, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=URL, got %q", v)
	}
	if _, dup := c[name]; dup {
		return fmt.Errorf("cluster %q given twice", name)
	}
	if err := host.CheckClusterURL(u); err != nil {
		return fmt.Errorf("cluster %s: %v", name, err)
	}
	c[name] = u
	return nil
}
