package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/filter/rls"
	"github.com/usageplans/usageplans/filter/usage"
)

// In global mode the admin listener answers the usage API from RLS, as the filter's admin
// route does: the filter's own usage package builds the check-only ShouldRateLimit call
// (usage.HandleFleet) and reads its answer; the gateway makes the call itself, to the
// cluster global.cluster names (a --cluster), over HTTP/2 cleartext for grpc://.

// maxRLSAnswer bounds what the gateway reads of RLS's answer to a usage read: a status is
// a few dozen bytes, and a read at most usage.MaxFleetDescriptors of them.
const maxRLSAnswer = 1 << 20

var (
	h2cOnce sync.Once
	h2c     *http.Client
)

func h2cRLSClient() *http.Client {
	h2cOnce.Do(func() {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		h2c = &http.Client{Transport: &http.Transport{Protocols: &p, ForceAttemptHTTP2: true}}
	})
	return h2c
}

func (g *Gateway) serveFleetUsage(cfg *config.Config, method, target string, body []byte) usage.Response {
	read, resp := usage.HandleFleet(cfg, g.rt.Clock().Now(), method, target, body)
	if read == nil {
		return resp
	}
	for {
		if resp, done := read.Step(g.callRLS(cfg.Global, read.Body())); done {
			return resp
		}
	}
}

// callRLS makes one ShouldRateLimit call to the cluster g names, within its timeoutMs; any
// failure is an answer that failed.
func (g *Gateway) callRLS(gc *config.Global, body []byte) global.Answer {
	raw, ok := g.opts.Clusters[gc.Cluster]
	if !ok {
		g.logf("usage API: global.cluster %q is not a --cluster of this gateway", gc.Cluster)
		return global.Answer{Failed: true}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return global.Answer{Failed: true}
	}
	client, base := http.DefaultClient, strings.TrimRight(raw, "/")
	if u.Scheme == "grpc" {
		client, base = h2cRLSClient(), "http://"+u.Host
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(gc.TimeoutMS)*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+rls.Path, bytes.NewReader(body))
	if err != nil {
		return global.Answer{Failed: true}
	}
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	resp, err := client.Do(req)
	if err != nil {
		g.logf("usage API: RLS call to cluster %q: %v", gc.Cluster, err)
		return global.Answer{Failed: true}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRLSAnswer))
	if err != nil {
		return global.Answer{Failed: true}
	}
	a := global.Answer{Body: b, Headers: [][2]string{{":status", strconv.Itoa(resp.StatusCode)}}}
	for name, vs := range resp.Header {
		a.Headers = append(a.Headers, [2]string{strings.ToLower(name), vs[0]})
	}
	for name, vs := range resp.Trailer {
		a.Trailers = append(a.Trailers, [2]string{strings.ToLower(name), vs[0]})
	}
	return a
}
