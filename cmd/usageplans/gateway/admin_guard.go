package gateway

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
)

// The admin endpoint can reload the gateway, so a browser on the same machine must not be
// made to call it by a page from elsewhere (CSRF), and it binds loopback unless told.

// checkAdminAddr refuses an admin address that is not loopback, unless allowRemote.
func checkAdminAddr(addr string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--admin: %w", err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--admin %s: the admin endpoint (it reloads the gateway and dumps its configuration) binds loopback only, e.g. 127.0.0.1:9901; pass --admin-allow-remote to bind another address", addr)
}

// formTypes are the content types a browser sends cross-site without a CORS preflight
// (a form post, or fetch with mode no-cors).
var formTypes = map[string]bool{"text/plain": true, "application/x-www-form-urlencoded": true, "multipart/form-data": true}

// mutation admits a request that changes the gateway: POST, from no other origin than the
// admin address itself, and not with a content type a cross-site form can send. It answers
// the refusal itself (405, 403 or 415) and reports whether the request may go on.
func (g *Gateway) mutation(w http.ResponseWriter, r *http.Request) bool {
	return g.mutationBy(w, r, http.MethodPost)
}

// mutationBy is mutation for an endpoint whose changing method is method (PATCH for
// UpdateUsage): every admin mutation passes the same cross-site checks.
func (g *Gateway) mutationBy(w http.ResponseWriter, r *http.Request, method string) bool {
	what := method + " " + r.URL.Path
	if r.Method != method {
		w.Header().Set("Allow", method)
		text(w, http.StatusMethodNotAllowed, "use "+what+"\n")
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && !g.sameOrigin(o, r) {
		text(w, http.StatusForbidden, fmt.Sprintf("%s refused: a cross-origin request (Origin %q is not the admin address http://%s)\n", what, o, g.AdminAddr()))
		return false
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s == "cross-site" || s == "same-site" {
		text(w, http.StatusForbidden, fmt.Sprintf("%s refused: a cross-origin request (Sec-Fetch-Site: %s)\n", what, s))
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || formTypes[strings.ToLower(mt)] {
			text(w, http.StatusUnsupportedMediaType, fmt.Sprintf("%s refused: Content-Type %q is what a cross-site form sends; send no body (curl -X POST), or application/json\n", what, ct))
			return false
		}
	}
	return true
}

// sameOrigin reports whether an Origin header names the admin endpoint: http:// and the
// address it is bound to, or the Host the request was sent to when that is the bound port
// on loopback ("localhost:9901").
func (g *Gateway) sameOrigin(origin string, r *http.Request) bool {
	if origin == "http://"+g.AdminAddr() {
		return true
	}
	host, ok := strings.CutPrefix(origin, "http://")
	if !ok || host != r.Host {
		return false
	}
	h, port, err := net.SplitHostPort(host)
	_, bound, _ := net.SplitHostPort(g.AdminAddr())
	return err == nil && port == bound && (h == "localhost" || net.ParseIP(h) != nil && net.ParseIP(h).IsLoopback())
}

// loopbackHosts admits a request whose Host names the admin listener as a client on this
// machine would: localhost or an IP address (with or without the port), or none (HTTP/1.0).
// A page from elsewhere whose DNS name was rebound to 127.0.0.1 sends its own name: refused,
// for reads as well (usage, /config_dump, /stats), unless --admin-allow-remote, where the
// listener serves whatever names its operators use.
func (g *Gateway) loopbackHosts(next http.Handler) http.Handler {
	if g.opts.AdminAllowRemote {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Host
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h != "" && h != "localhost" && net.ParseIP(h) == nil {
			text(w, http.StatusForbidden, fmt.Sprintf("refused: Host %q is not this admin listener (loopback: localhost or an IP address); pass --admin-allow-remote to serve other names\n", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}
