package core

import (
	"strconv"

	"github.com/usageplans/usageplans/filter/config"
)

// Response is a local reply; the adapter sends it as it is and returns Pause.
type Response struct {
	Status  int
	Headers [][2]string // lower-case names
	Body    string
}

// Header names the filter adds; lower case, as HTTP/2 needs.
const (
	HeaderRetryAfter         = "retry-after"
	HeaderRateLimitLimit     = "ratelimit-limit"
	HeaderRateLimitRemaining = "ratelimit-remaining"
	HeaderRateLimitReset     = "ratelimit-reset"
	HeaderRateLimitPolicy    = "ratelimit-policy"
)

// Respond builds the local reply for d from the configured response of its type, or
// reports false when the request goes upstream (Pass, Allow, and Failure under the OPEN
// failure policy). Every 429 carries Retry-After; the RateLimit-* headers are added when
// the configuration enables them. A header the configured response already sets is left
// as configured. Shadow mode is the caller's: it decides whether to send this.
func Respond(cfg *config.Config, d *Decision) (Response, bool) {
	var t config.ResponseType
	switch d.Outcome {
	case Forbidden:
		t = config.InvalidAPIKey
	case NoResource:
		t = config.MissingAuthenticationToken
	case Throttled:
		t = config.Throttled
	case QuotaExceeded:
		t = config.QuotaExceeded
	case Failure:
		if cfg.FailurePolicy == config.FailOpen {
			return Response{}, false
		}
		t = config.Failure
	default:
		return Response{}, false
	}
	c := cfg.Response(t)
	if c.Status != 429 && len(c.Headers) > 0 && !(cfg.RateLimitHeaders && d.RateLimit.Set) {
		// Nothing to add: the configured headers themselves, capped so that an append by
		// the caller copies them. One allocation less per rejection.
		return Response{Status: c.Status, Body: c.Body, Headers: c.Headers[:len(c.Headers):len(c.Headers)]}, true
	}
	r := Response{Status: c.Status, Body: c.Body,
		Headers: make([][2]string, len(c.Headers), len(c.Headers)+6)}
	copy(r.Headers, c.Headers)
	if r.Status == 429 {
		after := d.RetryAfter
		if after <= 0 {
			after = 1 // a 429 without a known wait: the smallest honest answer
		}
		r.Headers = addHeader(r.Headers, HeaderRetryAfter, strconv.FormatInt(after, 10))
	}
	for _, h := range RateLimitHeaders(cfg, d) {
		r.Headers = addHeader(r.Headers, h[0], h[1])
	}
	return r, true
}

// RateLimitHeaders are the RateLimit-Limit, -Remaining, -Reset and -Policy headers (IETF
// draft) of d's binding limit, or nil when the configuration turns them off or d has no
// limit. The adapter adds them to admitted requests' responses too.
func RateLimitHeaders(cfg *config.Config, d *Decision) [][2]string {
	rl := &d.RateLimit
	if !cfg.RateLimitHeaders || !rl.Set {
		return nil
	}
	policy := strconv.FormatInt(rl.Limit, 10)
	if rl.Window > 0 {
		policy += ";w=" + strconv.FormatInt(rl.Window, 10)
	}
	return [][2]string{
		{HeaderRateLimitLimit, strconv.FormatInt(rl.Limit, 10)},
		{HeaderRateLimitRemaining, strconv.FormatInt(rl.Remaining, 10)},
		{HeaderRateLimitReset, strconv.FormatInt(rl.Reset, 10)},
		{HeaderRateLimitPolicy, policy},
	}
}

func addHeader(hs [][2]string, name, value string) [][2]string {
	for _, h := range hs {
		if h[0] == name {
			return hs
		}
	}
	return append(hs, [2]string{name, value})
}
