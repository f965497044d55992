package config

import (
	"time"

	"github.com/tidwall/gjson"
)

// A rotated key keeps its previous values working for a grace period: the extension field
// apiKeys[].previousValues, [{"valueSha256": "<hex>", "until": "<RFC 3339>"}], written by
// `usageplans keys rotate`. A previous value is accepted strictly before its until, at the
// decision time the caller passes (the filter's clock), and never after.

// previousFields are the members of one previousValues entry. Only digests: a value that is
// being retired should not sit in a configuration in plain text.
var previousFields = []string{"valueSha256", "until"}

// previousValue is a retired digest of a key, accepted until its time.
type previousValue struct {
	key   *Key
	until time.Time
}

// KeyByValueAt is KeyByValue that also finds a key by one of its previous values, as long as
// now is before that value's until. The current values are looked up first, so a
// configuration without previous values costs what KeyByValue does.
func (c *Config) KeyByValueAt(value string, now time.Time) *Key {
	if len(value) < minKeyLen || len(value) > maxKeyLen {
		return nil
	}
	d := sum256(value)
	if k := c.keys.find(&d); k != nil {
		return k
	}
	if len(c.previous) == 0 {
		return nil
	}
	if pv, ok := c.previous[d]; ok && now.Before(pv.until) {
		return pv.key
	}
	return nil
}

// PreviousUntil reports until when a previous value with digest d of a key is accepted, and
// whether d is one (the CLI and tests ask; the request path uses KeyByValueAt).
func (c *Config) PreviousUntil(d Digest) (k *Key, until time.Time, ok bool) {
	pv, ok := c.previous[d]
	return pv.key, pv.until, ok
}

// digestOwner describes who already uses digest d, or "" when nobody does: any two values,
// current or previous, of all keys must differ, or a request could not be told apart.
func (p *parser) digestOwner(d Digest) string {
	if k := p.cfg.keys.find(&d); k != nil {
		return "key " + quote(k.ID)
	}
	if pv, ok := p.cfg.previous[d]; ok {
		return "a previous value of key " + quote(pv.key.ID)
	}
	return ""
}

// previousValues reads apiKeys[i].previousValues of key k, whose current digest is cur.
func (p *parser) previousValues(k *Key, cur Digest, v gjson.Result, path string) {
	for _, e := range p.list(v, path, "") {
		f, ok := p.object(e.val, e.path(), previousFields, nil)
		if !ok {
			continue
		}
		sv, hasSum := f.get("valueSha256")
		uv, hasUntil := f.get("until")
		if !hasSum {
			p.add(field(e.path(), "valueSha256"), "required: the hex SHA-256 of the previous value")
		}
		if !hasUntil {
			p.add(field(e.path(), "until"), "required: the time (RFC 3339) until which the previous value is accepted")
		}
		if !hasSum || !hasUntil {
			continue
		}
		sp := field(e.path(), "valueSha256")
		s, ok := p.str(sv, sp)
		if !ok {
			continue
		}
		d, ok := parseDigest(s)
		if !ok {
			p.add(sp, "key %q: must be 64 hexadecimal digits (the SHA-256 of the previous value), got %d characters", k.ID, len(s))
			continue
		}
		up := field(e.path(), "until")
		us, ok := p.str(uv, up)
		if !ok {
			continue
		}
		until, err := time.Parse(time.RFC3339, us)
		if err != nil {
			p.add(up, "key %q: must be an RFC 3339 time such as \"2026-12-31T18:00:00Z\", got %q", k.ID, us)
			continue
		}
		switch owner := p.digestOwner(d); {
		case d == cur:
			p.add(sp, "key %q: a previous value is the key's current value", k.ID)
			continue
		case owner != "":
			p.add(sp, "key %q: a previous value has the same value as %s", k.ID, owner)
			continue
		}
		if p.cfg.previous == nil {
			p.cfg.previous = make(map[Digest]previousValue)
		}
		p.cfg.previous[d] = previousValue{key: k, until: until}
	}
}

func quote(s string) string { return `"` + s + `"` }
