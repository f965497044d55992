package cli

import (
	"flag"
	"strings"
	"time"

	"github.com/usageplans/usageplans/cmd/usageplans/gateway"
)

// serveLimits defines serve's flags named after Envoy's HTTP connection manager settings
// (path handling, timeouts, the connection cap, the admin's reach); the function it returns
// moves their values into o once the flags are parsed. In the flags, as in Envoy, 0 turns a
// timeout or the cap off.
func serveLimits(fs *flag.FlagSet, o *gateway.Options) func() {
	fs.BoolVar(&o.Path.NormalizePath, "normalize-path", false, "Envoy's normalize_path: decode escaped unreserved characters, resolve dot segments, read \\ as /, before the filter and upstream see the path")
	fs.BoolVar(&o.Path.MergeSlashes, "merge-slashes", false, "Envoy's merge_slashes: merge repeated slashes of the path before the filter and upstream see it")
	fs.StringVar(&o.Path.EscapedSlashes, "path-with-escaped-slashes-action", gateway.KeepUnchanged,
		"Envoy's path_with_escaped_slashes_action for %2F and %5C in the path: "+strings.Join(gateway.EscapedSlashesActions, ", "))
	reqT := fs.Duration("request-timeout", gateway.DefaultRequestTimeout, "Envoy's request_timeout: the whole request must arrive within it, or 408 (0: off)")
	idleT := fs.Duration("stream-idle-timeout", gateway.DefaultStreamIdleTimeout, "Envoy's stream_idle_timeout: a request with no activity for this long ends, 408 before the response started (0: off)")
	connIdle := fs.Duration("idle-timeout", gateway.DefaultIdleTimeout, "Envoy's idle_timeout: a keep-alive connection without requests for this long is closed (0: off)")
	hdrT := fs.Duration("request-headers-timeout", gateway.DefaultRequestHeadersTimeout, "Envoy's request_headers_timeout: the request line and headers must arrive within it, or the connection closes (0: off)")
	maxConns := fs.Int("max-connections", gateway.DefaultMaxConnections, "open connections at most; one more is closed as soon as it is accepted (0: no cap)")
	fs.BoolVar(&o.AllowOnHeadersStopIteration, "allow-on-headers-stop-iteration", false, "Envoy's allow_on_headers_stop_iteration (Envoy 1.35+): a filter pausing on the request headers still gets the body (needed by UpdateUsage on the filter's usageApi route); runs the cpp-host-2026-07-01 profile")
	fs.BoolVar(&o.AdminAllowRemote, "admin-allow-remote", false, "let --admin be an address other than loopback (anyone who reaches it can reload the gateway)")
	return func() {
		o.RequestTimeout, o.StreamIdleTimeout = offIfZero(*reqT), offIfZero(*idleT)
		o.IdleTimeout, o.RequestHeadersTimeout = offIfZero(*connIdle), offIfZero(*hdrT)
		o.MaxConnections = *maxConns
		if *maxConns <= 0 {
			o.MaxConnections = -1
		}
	}
}

// offIfZero turns a flag's 0 (off) into the Options' negative value (off).
func offIfZero(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
