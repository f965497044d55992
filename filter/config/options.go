package config

import (
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/usageplans/usageplans/filter/limit"
)

func (p *parser) options(f *fields) {
	c := p.cfg
	actions := []string{"PASS", "DENY"}
	if v, ok := f.get("unmatchedRoute"); ok {
		if s, ok := p.enum(v, "unmatchedRoute", actions); ok {
			c.UnmatchedRoute = parseAction(s)
		}
	}
	if v, ok := f.get("unmatchedResource"); ok {
		if s, ok := p.enum(v, "unmatchedResource", actions); ok {
			c.UnmatchedResource = parseAction(s)
		}
	}
	if v, ok := f.get("accountThrottle"); ok {
		if v.Type == gjson.False {
			c.Account = nil
		} else if v.IsObject() {
			if t, ok := p.throttle(v, "accountThrottle", throttleRequired); ok {
				c.Account.Throttle = t
			}
		} else {
			p.add("accountThrottle", "must be an object {\"rateLimit\", \"burstLimit\"} or false, got %s", p.describe(v))
		}
	}
	if v, ok := f.get("apiKeySource"); ok {
		if s, ok := p.enum(v, "apiKeySource", keySources); ok && s == "AUTHORIZER" {
			c.KeySource.Type = FromAuthorizer
		}
	}
	top := keySources[c.KeySource.Type-1]
	for _, m := range p.apiKeySources {
		if m.name != top {
			p.add(m.path, "is %s but the top-level apiKeySource is %s: one key source serves every API", m.name, top)
		}
	}
	if v, ok := f.get("apiKeyHeader"); ok {
		if h, ok := p.headerName(v, "apiKeyHeader", false); ok {
			c.KeySource.Header = h
		}
	}
	if v, ok := f.get("apiKeyQueryParameter"); ok {
		if s, ok := p.str(v, "apiKeyQueryParameter"); ok {
			if strings.ContainsAny(s, "&=#? ") {
				p.add("apiKeyQueryParameter", "must be a query parameter name without '&', '=', '#', '?' or spaces, got %s", p.describe(v))
			}
			c.KeySource.QueryParameter = s
		}
	}
	a, hasAuthorizer := f.get("authorizer")
	switch {
	case c.KeySource.Type == FromAuthorizer && !hasAuthorizer:
		p.add("authorizer", "required when apiKeySource is AUTHORIZER: {\"header\": name} or {\"property\": [segments]}")
	case c.KeySource.Type != FromAuthorizer && hasAuthorizer:
		p.add("authorizer", "only used when apiKeySource is AUTHORIZER")
	case hasAuthorizer:
		p.authorizer(a, "authorizer")
		if _, ok := f.get("apiKeyHeader"); ok {
			p.add("apiKeyHeader", "not used when apiKeySource is AUTHORIZER (set authorizer.header)")
		}
		if _, ok := f.get("apiKeyQueryParameter"); ok {
			p.add("apiKeyQueryParameter", "not used when apiKeySource is AUTHORIZER")
		}
	}
	p.flag(f, "stripApiKey", &c.StripAPIKey)
	p.flag(f, "rateLimitHeaders", &c.RateLimitHeaders)
	p.flag(f, "shadowMode", &c.ShadowMode)
	if v, ok := f.get("identityHeaders"); ok {
		if v.Type == gjson.False {
			c.IdentityHeaders = IdentityHeaders{}
		} else if g, ok := p.object(v, "identityHeaders", identityFields, nil); ok {
			if h, ok := g.get("keyId"); ok {
				c.IdentityHeaders.KeyID, _ = p.headerName(h, "identityHeaders.keyId", true)
			}
			if h, ok := g.get("planId"); ok {
				c.IdentityHeaders.PlanID, _ = p.headerName(h, "identityHeaders.planId", true)
			}
		}
	}
	p.distinctHeaders()
	if v, ok := f.get("failurePolicy"); ok {
		if s, ok := p.enum(v, "failurePolicy", []string{"CLOSED", "OPEN"}); ok && s == "OPEN" {
			c.FailurePolicy = FailOpen
		}
	}
	if v, ok := f.get("namespace"); ok {
		if s, ok := p.id(v, "namespace"); ok {
			if len(s) > maxNamespaceLen {
				p.add("namespace", "must be at most %d characters, got %d", maxNamespaceLen, len(s))
			}
			c.Namespace = s
		}
	}
	if v, ok := f.get("casRetries"); ok {
		if n, ok := p.integer(v, "casRetries", 1, maxCASRetries); ok {
			c.CASRetries = int(n)
		}
	}
	if v, ok := f.get("responses"); ok {
		p.responses(v, "responses")
	}
}

// distinctHeaders rejects identity headers named like the key header: the filter removes
// the key and client-sent identity headers, then sets its own, so one name cannot serve two.
func (p *parser) distinctHeaders() {
	c := p.cfg
	if id := c.IdentityHeaders; id.KeyID != "" && id.KeyID == id.PlanID {
		p.add("identityHeaders", "keyId and planId are both %q", id.KeyID)
	}
	for _, h := range []struct{ path, name string }{
		{"identityHeaders.keyId", c.IdentityHeaders.KeyID},
		{"identityHeaders.planId", c.IdentityHeaders.PlanID},
	} {
		if h.name != "" && h.name == c.KeySource.Header {
			p.add(h.path, "%q is also the header the API key is read from", h.name)
		}
	}
}

func parseAction(s string) Action {
	if s == "DENY" {
		return Deny
	}
	return Pass
}

func (p *parser) flag(f *fields, name string, dst *bool) {
	if v, ok := f.get(name); ok {
		if b, ok := p.boolean(v, name); ok {
			*dst = b
		}
	}
}

func (p *parser) authorizer(v gjson.Result, path string) {
	f, ok := p.object(v, path, authorizerFields, nil)
	if !ok {
		return
	}
	ks := &p.cfg.KeySource
	ks.Header = ""
	h, hasHeader := f.get("header")
	prop, hasProp := f.get("property")
	if hasHeader == hasProp {
		p.add(path, "needs exactly one of header or property")
		return
	}
	if hasHeader {
		ks.Header, _ = p.headerName(h, field(path, "header"), false)
		return
	}
	pp := field(path, "property")
	if !prop.IsArray() || len(prop.Array()) == 0 {
		p.add(pp, "must be a non-empty array of path segments such as [\"filter_state\", \"usage_key\"], got %s", p.describe(prop))
		return
	}
	for i, s := range prop.Array() {
		if seg, ok := p.str(s, index(pp, i)); ok {
			if seg == "" {
				p.add(index(pp, i), "must not be empty")
			}
			ks.Property = append(ks.Property, seg)
		}
	}
}

func defaultResponses() [numResponseTypes]Response {
	j := [2]string{"content-type", "application/json"}
	return [numResponseTypes]Response{
		InvalidAPIKey: {Status: 403, Body: `{"message":"Forbidden"}`,
			Headers: [][2]string{j, {"x-amzn-errortype", "ForbiddenException"}}},
		Throttled: {Status: 429, Body: `{"message":"Too Many Requests"}`,
			Headers: [][2]string{j}},
		QuotaExceeded: {Status: 429, Body: `{"message":"Limit Exceeded"}`,
			Headers: [][2]string{j}},
		MissingAuthenticationToken: {Status: 403, Body: `{"message":"Missing Authentication Token"}`,
			Headers: [][2]string{j, {"x-amzn-errortype", "MissingAuthenticationTokenException"}}},
		Failure: {Status: 500, Body: `{"message":"Internal server error"}`,
			Headers: [][2]string{j, {"x-amzn-errortype", "InternalServerErrorException"}}},
	}
}

// responses reads overrides: each given field replaces the default's (headers as a whole).
func (p *parser) responses(v gjson.Result, path string) {
	ms, ok := p.members(v, path)
	if !ok {
		return
	}
	for _, m := range ms {
		t := ResponseType(0)
		for ; t < numResponseTypes; t++ {
			if t.String() == m.name {
				break
			}
		}
		if t == numResponseTypes {
			p.add(m.path, "unknown response type: must be %s", orList(responseTypeNames[:]))
			continue
		}
		f, ok := p.object(m.val, m.path, responseFields, nil)
		if !ok {
			continue
		}
		r := &p.cfg.responses[t]
		if s, ok := f.get("statusCode"); ok {
			sp := field(m.path, "statusCode")
			// AWS gateway responses write the status as a string; accept both.
			n, err := strconv.Atoi(s.Str)
			if s.Type == gjson.Number {
				n, err = strconv.Atoi(s.Raw)
			}
			if (s.Type == gjson.String || s.Type == gjson.Number) && err == nil && n >= minStatus && n <= maxStatus {
				r.Status = n
			} else {
				p.add(sp, "must be an HTTP status from %d to %d, got %s", minStatus, maxStatus, p.describe(s))
			}
		}
		if h, ok := f.get("headers"); ok {
			hp := field(m.path, "headers")
			if hs, ok := p.members(h, hp); ok {
				r.Headers = nil
				for _, x := range hs {
					name := strings.ToLower(x.name)
					if !validHeaderName(x.name) {
						p.add(x.path, "not an HTTP header name")
						continue
					}
					val, ok := p.str(x.val, x.path)
					if !ok {
						continue
					}
					if strings.ContainsAny(val, "\r\n\x00") {
						p.add(x.path, "header value must not contain CR, LF or NUL")
						continue
					}
					r.Headers = append(r.Headers, [2]string{name, val})
				}
			}
		}
		if b, ok := f.get("body"); ok {
			r.Body, _ = p.str(b, field(m.path, "body"))
		}
	}
}

// throttle reads a {"rateLimit", "burstLimit"} object. In a usage plan (mode
// throttleMissingZero) it is AWS's ThrottleSettings, whose members are both optional; AWS
// stores an omitted one as 0, and so does this: a missing burstLimit admits nothing, a
// missing rateLimit never refills.
func (p *parser) throttle(v gjson.Result, path string, mode int) (limit.Throttle, bool) {
	f, ok := p.object(v, path, throttleFields, nil)
	if !ok {
		return limit.Throttle{}, false
	}
	t, _, ok := p.rateBurst(&f, path, "rateLimit", "burstLimit", mode)
	return t, ok
}

// How rateBurst treats its members.
const (
	throttleRequired    = iota // both members required (accountThrottle)
	throttleMissingZero        // a missing member is 0 (usage plan ThrottleSettings)
	throttleAllowOff           // both required; -1 in both means throttling off (stage method settings)
)

// minRate is the smallest positive rate: the token bucket counts millionths of a token per
// second, so a smaller rate would round to 0 and the bucket would never refill.
const minRate = 0.000001

// rateBurst reads a token bucket's rate and burst from the members rateName and burstName.
// off reports "throttling off" (-1 in both members, throttleAllowOff only).
func (p *parser) rateBurst(f *fields, path, rateName, burstName string, mode int) (t limit.Throttle, off, ok bool) {
	rp, bp := field(path, rateName), field(path, burstName)
	rv, hasRate := f.get(rateName)
	bv, hasBurst := f.get(burstName)
	if mode == throttleMissingZero && !hasRate && !hasBurst {
		p.add(path, "needs %s or %s (a missing one is 0, as AWS stores it; leave the throttle out for none)", shown(rateName), shown(burstName))
		return limit.Throttle{}, false, false
	}
	good := true
	rateOff := mode == throttleAllowOff && hasRate && rv.Type == gjson.Number && isMinusOne(rv.Raw)
	burstOff := mode == throttleAllowOff && hasBurst && bv.Type == gjson.Number && isMinusOne(bv.Raw)
	switch {
	case rateOff:
	case !hasRate && mode == throttleMissingZero:
	case !hasRate:
		p.add(rp, "required")
		good = false
	default:
		t.Rate, ok = p.rate(rv, rp, mode == throttleAllowOff)
		good = good && ok
	}
	switch {
	case burstOff:
	case !hasBurst && mode == throttleMissingZero:
	case !hasBurst:
		p.add(bp, "required")
		good = false
	case mode == throttleAllowOff && bv.Type == gjson.Number && strings.HasPrefix(bv.Raw, "-"):
		p.add(bp, "must be -1 (throttling off) or an integer >= 0, got %s", shown(bv.Raw))
		good = false
	default:
		t.Burst, ok = p.integer(bv, bp, 0, math.MaxInt64)
		good = good && ok
	}
	if rateOff || burstOff {
		if rateOff && burstOff {
			return limit.Throttle{}, true, true
		}
		if good {
			p.add(path, "%s and %s must both be -1 (throttling off) or both be limits, got %s and %s", shown(rateName), shown(burstName), shown(rv.Raw), shown(bv.Raw))
		}
		return limit.Throttle{}, false, false
	}
	return t, false, good
}

func isMinusOne(raw string) bool {
	f, err := strconv.ParseFloat(raw, 64)
	return err == nil && f == -1
}
