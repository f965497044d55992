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

// resolveClusters checks Options.Clusters and picks each cluster's client:
//   - grpc://HOST:PORT: HTTP/2 cleartext (h2c, prior knowledge), for gRPC services such as
//     envoyproxy/ratelimit's gRPC port; nothing may follow the port;
//   - http://HOST[:PORT][/prefix]: HTTP/1.1;
//   - https://HOST[:PORT][/prefix]: TLS, HTTP/2 when the server offers it by ALPN, else 1.1.
//
// client serves http:// and https:// clusters (Options.HTTPClient, or a default client).
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
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("host: Options.Clusters[%q]: %q: want grpc://HOST:PORT, http://HOST[:PORT][/prefix] or https://HOST[:PORT][/prefix]", name, raw)
		}
		switch u.Scheme {
		case "grpc":
			if u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
				return nil, fmt.Errorf("host: Options.Clusters[%q]: %q: a grpc:// cluster is HOST:PORT and nothing else", name, raw)
			}
			if h2c == nil {
				h2c = h2cClient()
			}
			out[name] = cluster{base: "http://" + u.Host, client: h2c, trailers: true}
		case "http", "https":
			out[name] = cluster{base: strings.TrimRight(raw, "/"), client: client, trailers: u.Scheme == "https"}
		default:
			return nil, fmt.Errorf("host: Options.Clusters[%q]: %q: scheme %q, want grpc, http or https", name, raw, u.Scheme)
		}
	}
	return out, nil
}
