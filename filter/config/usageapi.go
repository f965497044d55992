package config

import (
	"strings"

	"github.com/tidwall/gjson"
)

// UsageAPI is the filter's own admin route for AWS's GetUsage and UpdateUsage: requests
// under PathPrefix are answered by the filter from shared data, never sent upstream and
// never counted against a plan, and only for a request carrying one of the admin keys.
type UsageAPI struct {
	PathPrefix string // e.g. "/usageplans": GET <prefix>/{planId}/usage, PATCH <prefix>/{planId}/keys/{keyId}/usage
	// Header is where the admin key is read: the header API keys are read from, or
	// x-api-key when keys come from a property.
	Header string
	// BodyWhileHeadersStopped says the proxy hands the filter a request's body while the
	// filter holds its headers: Envoy's PluginConfig.allow_on_headers_stop_iteration (Envoy
	// 1.35+), which the configuration must mirror (allowOnHeadersStopIteration), as the
	// filter cannot ask. Without it Envoy holds the body until the filter lets the headers
	// go, which for UpdateUsage would be to the upstream: UpdateUsage is then refused (400)
	// instead of waiting for a body that never comes.
	BodyWhileHeadersStopped bool

	admins map[Digest]string // digest -> admin key id, for logs
}

// Admin reports whether value is an admin key, and its id.
func (u *UsageAPI) Admin(value string) (id string, ok bool) {
	if len(value) < minKeyLen || len(value) > maxKeyLen {
		return "", false
	}
	id, ok = u.admins[sum256(value)]
	return id, ok
}

// UsageAPIPath reports whether the request path (which may carry a query string) is under
// the usage API's prefix, in its normal form, and returns what follows the prefix ("" or
// "/..."). False when the configuration has no usage API.
func (c *Config) UsageAPIPath(path string) (rest string, ok bool) {
	u := c.UsageAPI
	if u == nil {
		return "", false
	}
	p := cleanPath(stripQuery(path))
	if !hasPathPrefix(p, u.PathPrefix) {
		return "", false
	}
	return p[len(u.PathPrefix):], true
}

// PlanByID is the usage plan with this id, or nil.
func (c *Config) PlanByID(id string) *Plan { return c.planIDs[id] }

// KeyByID is the API key with this id, or nil.
func (c *Config) KeyByID(id string) *Key { return c.keys.findID(id) }

// Keys lists the plan's API keys (usagePlanKeys) in configuration order.
func (p *Plan) Keys() []*Key { return p.keys }

// HasKey reports whether k is one of the plan's keys.
func (p *Plan) HasKey(k *Key) bool {
	for _, x := range p.keys {
		if x == k {
			return true
		}
	}
	return false
}

var (
	usageAPIFields = []string{"pathPrefix", "adminKeys", "allowOnHeadersStopIteration"}
	adminKeyFields = []string{"id", "valueSha256"}
)

// DefaultUsageAPIPrefix is the usage API's path prefix when usageApi gives none: AWS's.
const DefaultUsageAPIPrefix = "/usageplans"

func (p *parser) usageAPI(v gjson.Result, path string) {
	f, ok := p.object(v, path, usageAPIFields, nil)
	if !ok {
		return
	}
	u := &UsageAPI{PathPrefix: DefaultUsageAPIPrefix, admins: make(map[Digest]string)}
	if pp, ok := f.get("pathPrefix"); ok {
		ppp := field(path, "pathPrefix")
		if s, ok := p.str(pp, ppp); ok {
			s = strings.TrimRight(s, "/")
			switch {
			case !strings.HasPrefix(s, "/") || strings.ContainsAny(s, "?#\\ "):
				p.add(ppp, "must start with \"/\", name more than the root and hold no '?', '#', '\\' or spaces, got %s", p.describe(pp))
			case cleanPath(s) != s:
				p.add(ppp, "must be in normal form, here %q, got %s", strings.TrimSuffix(cleanPath(s), "/"), p.describe(pp))
			default:
				u.PathPrefix = s
			}
		}
	}
	if v, ok := f.get("allowOnHeadersStopIteration"); ok {
		u.BodyWhileHeadersStopped, _ = p.boolean(v, field(path, "allowOnHeadersStopIteration"))
	}
	ak, ok := f.get("adminKeys")
	if !ok {
		p.add(field(path, "adminKeys"), "required: [{\"id\": name, \"valueSha256\": the SHA-256 of the admin key in hex}]")
		return
	}
	n := 0
	for _, e := range p.list(ak, field(path, "adminKeys"), "") {
		n++
		g, ok := p.object(e.val, e.path(), adminKeyFields, nil)
		if !ok {
			continue
		}
		id := e.path()
		if iv, ok := g.get("id"); ok {
			if id, ok = p.id(iv, field(e.path(), "id")); !ok {
				continue
			}
		}
		sv, ok := g.get("valueSha256")
		if !ok {
			p.add(field(e.path(), "valueSha256"), "required: admin keys are given as digests only (the SHA-256 of the key, in hex, as usageplans keys hash prints it)")
			continue
		}
		sp := field(e.path(), "valueSha256")
		s, ok := p.str(sv, sp)
		if !ok {
			continue
		}
		d, ok := parseDigest(s)
		if !ok {
			p.add(sp, "must be 64 hexadecimal digits (the SHA-256 of the admin key), got %d characters", len(s))
			continue
		}
		if owner := p.digestOwner(d); owner != "" {
			p.add(sp, "is the digest of %s: an admin key must not be an API key", owner)
			continue
		}
		if prev, dup := u.admins[d]; dup {
			p.add(sp, "the same digest as admin key %q", prev)
			continue
		}
		u.admins[d] = id
	}
	if n == 0 && ak.IsArray() {
		p.add(field(path, "adminKeys"), "must list at least one admin key")
	}
	p.cfg.UsageAPI = u
}

// Bounds of usageLogSeconds: a minute to a day.
const minUsageLog, maxUsageLog = 60, 86400

func (p *parser) usageLog(f *fields) {
	if v, ok := f.get("usageLogSeconds"); ok {
		if n, ok := p.integer(v, "usageLogSeconds", 0, maxUsageLog); ok {
			if n != 0 && n < minUsageLog {
				p.add("usageLogSeconds", "must be 0 (off) or %d to %d seconds, got %d", minUsageLog, maxUsageLog, n)
			}
			p.cfg.UsageLogSeconds = int(n)
		}
	}
}
