package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/usageplans/usageplans/filter/config"
)

// upstream answers the requests a route admits. The request's URL path and query, Host and
// headers are what the filter left; its Body streams from the client through the filter.
type upstream interface {
	RoundTrip(*http.Request) (*http.Response, error)
}

// echoUpstream is the built-in upstream: 200 with a JSON echo of the method, path and
// headers it received (and how many body bytes), so that a user sees what the filter
// stripped and added. An API key that reaches it anyway (a route the filter passes, or
// stripApiKey false) is echoed as "[redacted]": key values are never echoed.
type echoUpstream struct {
	// keyNames gives the header and the query parameter that carry keys ("" for none).
	keyNames func() (header, query string)
}

// Echo is the body of the echo upstream's answer.
type Echo struct {
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Headers   map[string]string `json:"headers"` // lower-case names; repeated values joined by ", "
	BodyBytes int64             `json:"bodyBytes"`
}

func (u *echoUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	var n int64
	if req.Body != nil {
		var err error
		if n, err = io.Copy(io.Discard, req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	keyHeader, keyQuery := config.DefaultAPIKeyHeader, ""
	if u.keyNames != nil {
		keyHeader, keyQuery = u.keyNames()
	}
	e := Echo{Method: req.Method, Path: redactQuery(req.URL, keyQuery), Headers: map[string]string{}, BodyBytes: n}
	if req.Host != "" {
		e.Headers["host"] = req.Host
	}
	names := make([]string, 0, len(req.Header))
	for name := range req.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		lower := strings.ToLower(name)
		e.Headers[lower] = strings.Join(req.Header[name], ", ")
		if lower == keyHeader {
			e.Headers[lower] = redacted
		}
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(&body), ContentLength: int64(body.Len()), Request: req,
	}, nil
}

// httpUpstream forwards to a base URL: the request's path is appended to the base path.
type httpUpstream struct {
	base *url.URL
	t    *http.Transport
}

func newHTTPUpstream(base *url.URL) *httpUpstream {
	return &httpUpstream{base: base, t: &http.Transport{
		Proxy:                 nil, // a gateway talks to its upstream directly
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true, // pass bodies through as they are
	}}
}

func (u *httpUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	// The target goes out byte for byte as the filter left it, under the base path.
	out, err := targetURL(strings.TrimSuffix(u.base.EscapedPath(), "/") + req.URL.RequestURI())
	if err != nil {
		return nil, err
	}
	out.Scheme, out.Host = u.base.Scheme, u.base.Host
	req.URL = out
	return u.t.RoundTrip(req)
}

func (u *httpUpstream) close() { u.t.CloseIdleConnections() }

// redactQuery is the request URI with the value of the query parameter name redacted.
func redactQuery(u *url.URL, name string) string {
	if name == "" || u.RawQuery == "" {
		return u.RequestURI()
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			parts[i] = k + "=" + redacted
		}
	}
	c := *u
	c.RawQuery = strings.Join(parts, "&")
	return c.RequestURI()
}
