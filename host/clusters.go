package host

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// cluster is one entry of Options.Clusters, resolved once by NewRuntime.
type cluster struct {
	base     string       // URL prefix the request's :path is appended to
	client   *http.Client // the client speaking the cluster's protocol
	trailers bool         // request trailers reach the upstream (HTTP/2)
}

// h2cClient speaks HTTP/2 over cleartext TCP with prior knowledge, as an Envoy cluster with
// http2_protocol_options does (gRPC clusters): no HTTP/1.1 upgrade, no TLS.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p, ForceAttemptHTTP2: true}}
}

// CheckClusterURL reports whether raw is a cluster URL Options.Clusters accepts:
//   - grpc://HOST:PORT: HTTP/2 cleartext (h2c, prior knowledge), for gRPC services such as
//     envoyproxy/ratelimit's gRPC port; nothing may follow the port;
//   - http://HOST[:PORT][/prefix]: HTTP/1.1;
//   - https://HOST[:PORT][/prefix]: TLS, HTTP/2 when the server offers it by ALPN, else 1.1.
func CheckClusterURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q: want grpc://HOST:PORT, http://HOST[:PORT][/prefix] or https://HOST[:PORT][/prefix]", raw)
	}
	switch u.Scheme {
	case "grpc":
		if u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%q: a grpc:// cluster is HOST:PORT and nothing else", raw)
		}
	case "http", "https":
	default:
		return fmt.Errorf("%q: scheme %q, want grpc, http or https", raw, u.Scheme)
	}
	return nil
}

// resolveClusters checks Options.Clusters (CheckClusterURL) and picks each cluster's
// client; client serves http:// and https:// clusters (Options.HTTPClient, or a default).
func resolveClusters(in map[string]string, client *http.Client) (map[string]cluster, error) {
	out := make(map[string]cluster, len(in))
	var h2c *http.Client
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := in[name]
		if name == "" {
			return nil, fmt.Errorf("host: Options.Clusters: a cluster name is empty")
		}
		if err := CheckClusterURL(raw); err != nil {
			return nil, fmt.Errorf("host: Options.Clusters[%q]: %w", name, err)
		}
		switch u, _ := url.Parse(raw); u.Scheme {
		case "grpc":
			if h2c == nil {
				h2c = h2cClient()
			}
			out[name] = cluster{base: "http://" + u.Host, client: h2c, trailers: true}
		default:
			out[name] = cluster{base: strings.TrimRight(raw, "/"), client: client, trailers: u.Scheme == "https"}
		}
	}
	return out, nil
}
