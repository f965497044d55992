package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// Route is one entry of a routes file: the requests it selects get its Name as Envoy's
// xds.route_name and go to its upstream.
type Route struct {
	// Name is the route name the filter sees (xds.route_name).
	Name string `json:"name"`
	// Host selects by the request's host, without port, case-insensitively: "" or "*" any,
	// "*.example.com" any subdomain, otherwise exact.
	Host string `json:"host,omitempty"`
	// PathPrefix selects by a plain prefix of the path, as Envoy's route prefix does; "" is "/".
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Upstream is a base URL or "echo"; "" means the --upstream flag.
	Upstream string `json:"upstream,omitempty"`
	// Cluster is the upstream's name (xds.cluster_name, stats); "" derives it from Upstream.
	Cluster string `json:"cluster,omitempty"`

	up upstream
}

// routesFile is the JSON shape of --routes.
type routesFile struct {
	Routes []*Route `json:"routes"`
}

// defaultRoutes is the routing without --routes: everything goes to one route named
// "default".
func defaultRoutes(upstreamFlag string) ([]*Route, error) {
	r := &Route{Name: "default", Upstream: upstreamFlag}
	if err := r.resolve("--upstream", upstreamFlag); err != nil {
		return nil, err
	}
	return []*Route{r}, nil
}

// loadRoutes reads a routes file; every problem is reported with its JSON path.
func loadRoutes(file, upstreamFlag string) ([]*Route, error) {
	if file == "" {
		return defaultRoutes(upstreamFlag)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f routesFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("routes %s: %w", file, err)
	}
	if len(f.Routes) == 0 {
		return nil, fmt.Errorf("routes %s: routes: must list at least one route", file)
	}
	var problems []string
	seen := map[string]int{}
	for i, r := range f.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if r == nil {
			problems = append(problems, path+": must be an object, got null")
			continue
		}
		if r.Name == "" {
			problems = append(problems, path+".name: must not be empty")
		} else if j, dup := seen[r.Name]; dup {
			problems = append(problems, fmt.Sprintf("%s.name: %q is already the name of routes[%d]", path, r.Name, j))
		} else {
			seen[r.Name] = i
		}
		if r.PathPrefix == "" {
			r.PathPrefix = "/"
		}
		if !strings.HasPrefix(r.PathPrefix, "/") {
			problems = append(problems, fmt.Sprintf("%s.pathPrefix: must start with \"/\", got %q", path, r.PathPrefix))
		}
		r.Host = strings.ToLower(r.Host)
		if strings.Contains(r.Host, "*") && r.Host != "*" && !(strings.HasPrefix(r.Host, "*.") && !strings.Contains(r.Host[2:], "*")) {
			problems = append(problems, fmt.Sprintf("%s.host: a wildcard must be \"*\" or lead as in \"*.example.com\", got %q", path, r.Host))
		}
		where, up := path+".upstream", r.Upstream
		if up == "" {
			where, up = "--upstream", upstreamFlag
		}
		if err := r.resolve(where, up); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("routes %s:\n%s", file, strings.Join(problems, "\n"))
	}
	return f.Routes, nil
}

// resolve builds the route's upstream from u ("echo" or a base URL); where names the
// setting for errors.
func (r *Route) resolve(where, u string) error {
	if u == "echo" {
		r.up = &echoUpstream{}
		if r.Cluster == "" {
			r.Cluster = "echo"
		}
		return nil
	}
	base, err := url.Parse(u)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("%s: must be echo or an http(s) URL with a host, got %q", where, u)
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return fmt.Errorf("%s: a base URL takes no query or fragment, got %q", where, u)
	}
	r.up = newHTTPUpstream(base)
	if r.Cluster == "" {
		r.Cluster = base.Host
	}
	return nil
}

// matchRoute returns the first route selecting host and path, or nil (Envoy answers 404).
func matchRoute(routes []*Route, host, path string) *Route {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, r := range routes {
		if !strings.HasPrefix(path, r.PathPrefix) {
			continue
		}
		switch {
		case r.Host == "" || r.Host == "*" || r.Host == host:
		case strings.HasPrefix(r.Host, "*.") && strings.HasSuffix(host, r.Host[1:]) && len(host) > len(r.Host)-1:
		default:
			continue
		}
		return r
	}
	return nil
}
