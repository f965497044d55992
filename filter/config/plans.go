package config

import (
	"math"
	"time"

	"github.com/tidwall/gjson"
	"github.com/usageplans/usageplans/filter/limit"
)

func (p *parser) plan(v gjson.Result, path string) {
	f, ok := p.object(v, path, planFields, planIgnored)
	if !ok {
		return
	}
	pl := &Plan{overrides: make(map[*Stage][]*Limit)}
	idv, ok := f.get("id")
	if !ok {
		p.add(field(path, "id"), "required")
		return
	}
	if pl.ID, ok = p.id(idv, field(path, "id")); !ok {
		return
	}
	if prev := p.plans[pl.ID]; prev != nil {
		p.add(field(path, "id"), "duplicate usage plan id %q", pl.ID)
		return
	}
	p.plans[pl.ID] = pl
	p.cfg.Plans = append(p.cfg.Plans, pl)
	if n, ok := f.get("name"); ok {
		pl.Name = p.name(n, field(path, "name"))
	}
	if d, ok := f.get("description"); ok {
		p.str(d, field(path, "description"))
	}
	if t, ok := f.get("throttle"); ok {
		if th, ok := p.throttle(t, field(path, "throttle"), throttleMissingZero); ok {
			pl.Throttle = &th
			pl.limit = &Limit{Level: LevelPlan, ID: "plan:" + pl.ID, PerKey: true, Throttle: th}
			pl.keyLimits = append(pl.keyLimits, pl.limit)
		}
	}
	if q, ok := f.get("quota"); ok {
		pl.Quota = p.quota(q, field(path, "quota"))
		p.noteQuotaPath(pl, field(path, "quota"))
	}
	if as, ok := f.get("apiStages"); ok {
		for _, e := range p.list(as, field(path, "apiStages"), "") {
			p.apiStage(pl, e.val, e.path())
		}
	}
}

func (p *parser) quota(v gjson.Result, path string) *limit.Quota {
	f, ok := p.object(v, path, quotaFields, nil)
	if !ok {
		return nil
	}
	q := &limit.Quota{WeekStart: DefaultWeekStart}
	good := true
	if l, ok := f.get("limit"); !ok {
		p.add(field(path, "limit"), "required")
		good = false
	} else if q.Limit, ok = p.integer(l, field(path, "limit"), 0, math.MaxInt64); !ok {
		good = false
	}
	if o, ok := f.get("offset"); ok {
		if q.Offset, ok = p.integer(o, field(path, "offset"), 0, math.MaxInt64); !ok {
			good = false
		} else if good && q.Offset > q.Limit {
			p.add(field(path, "offset"), "must not exceed limit %d (offset is the number of requests taken from the limit in the first period), got %d", q.Limit, q.Offset)
			good = false
		}
	}
	period := ""
	if pv, ok := f.get("period"); !ok {
		p.add(field(path, "period"), "required: DAY, WEEK or MONTH")
		good = false
	} else if period, ok = p.enum(pv, field(path, "period"), periods); !ok {
		good = false
	}
	switch period {
	case "DAY":
		q.Period = limit.Day
	case "WEEK":
		q.Period = limit.Week
	case "MONTH":
		q.Period = limit.Month
	}
	if w, ok := f.get("weekStart"); ok {
		wp := field(path, "weekStart")
		if s, ok := p.enum(w, wp, weekdays); ok {
			for i, d := range weekdays {
				if d == s {
					q.WeekStart = time.Weekday(i)
				}
			}
		} else {
			good = false
		}
		if period != "" && period != "WEEK" {
			p.add(wp, "only applies to period WEEK, period is %s", period)
			good = false
		}
	}
	if !good {
		return nil
	}
	return q
}

func (p *parser) apiStage(pl *Plan, v gjson.Result, path string) {
	f, ok := p.object(v, path, apiStageFields, nil)
	if !ok {
		return
	}
	apiV, ok1 := f.get("apiId")
	stageV, ok2 := f.get("stage")
	if !ok1 || !ok2 {
		p.add(path, "needs apiId and stage")
		return
	}
	apiID, ok1 := p.str(apiV, field(path, "apiId"))
	stage, ok2 := p.str(stageV, field(path, "stage"))
	if !ok1 || !ok2 {
		return
	}
	s := p.stages[apiID+"/"+stage]
	if s == nil {
		p.add(path, "API stage %q is not declared in apis", apiID+"/"+stage)
		return
	}
	if _, dup := pl.overrides[s]; dup {
		p.add(path, "API stage %q appears twice in usage plan %q", s.ID, pl.ID)
		return
	}
	pl.Stages = append(pl.Stages, s)
	ov := make([]*Limit, len(s.API.Methods))
	pl.overrides[s] = ov
	t, ok := f.get("throttle")
	if !ok {
		return
	}
	ms, _ := p.members(t, field(path, "throttle"))
	for _, m := range ms {
		meth := s.API.findMethod(m.name)
		if meth == nil {
			p.add(m.path, "API %q has no method %q (keys are a resource path and method such as \"/pets/GET\")", s.API.ID, m.name)
			continue
		}
		if th, ok := p.throttle(m.val, m.path, throttleMissingZero); ok {
			l := &Limit{Level: LevelPlanMethod, ID: "plan:" + pl.ID + ":" + s.ID + ":" + meth.ID, PerKey: true, Throttle: th}
			ov[meth.index] = l
			pl.keyLimits = append(pl.keyLimits, l)
		}
	}
}

func (p *parser) key(e element) {
	pathOf := e.path // built only for an error: a configuration may hold 100,000 keys
	f := &p.keyObject
	if !p.objectInto(f, e.val, pathOf, keyFields, keyIgnored) {
		return
	}
	k := p.keyChunks.new()
	k.Enabled = true
	idv, ok := f.get("id")
	if !ok {
		p.add(field(pathOf(), "id"), "required")
		return
	}
	if k.ID, ok = p.idAt(idv, pathOf, "id"); !ok {
		return
	}
	if p.cfg.keys.findID(k.ID) != nil {
		p.add(field(pathOf(), "id"), "duplicate API key id %q", k.ID)
		return
	}
	p.cfg.keys.addID(k)
	if n, ok := f.get("name"); ok {
		k.Name = p.nameAt(n, pathOf, "name")
	}
	if d, ok := f.get("description"); ok && d.Type != gjson.String {
		p.str(d, field(pathOf(), "description"))
	}
	if c, ok := f.get("customerId"); ok {
		k.CustomerID, _ = p.strAt(c, pathOf, "customerId")
	}
	if en, ok := f.get("enabled"); ok {
		k.Enabled, _ = p.booleanAt(en, pathOf, "enabled")
	}
	val, hasValue := f.get("value")
	sum, hasSum := f.get("valueSha256")
	var d Digest
	switch {
	case hasValue && hasSum:
		p.add(pathOf(), "key %q: give value or valueSha256, not both", k.ID)
		return
	case !hasValue && !hasSum:
		p.add(pathOf(), "key %q: needs value or valueSha256 (aws apigateway get-api-keys prints values only with --include-values)", k.ID)
		return
	case hasValue:
		// Never describe the value itself: it is a secret.
		if val.Type != gjson.String {
			p.add(field(pathOf(), "value"), "key %q: must be a string, got %s", k.ID, typeName(val))
			return
		}
		if n := len(val.Str); n < minKeyLen || n > maxKeyLen {
			p.add(field(pathOf(), "value"), "key %q: must be %d to %d alphanumeric characters, got %d characters", k.ID, minKeyLen, maxKeyLen, n)
			return
		}
		for i := 0; i < len(val.Str); i++ {
			if c := val.Str[i]; !isAlpha(c) && !isDigit(c) {
				p.add(field(pathOf(), "value"), "key %q: must be %d to %d alphanumeric characters, found another character", k.ID, minKeyLen, maxKeyLen)
				return
			}
		}
		d = sum256(val.Str)
	default:
		if sum.Type != gjson.String {
			p.str(sum, field(pathOf(), "valueSha256"))
			return
		}
		if d, ok = parseDigest(sum.Str); !ok {
			p.add(field(pathOf(), "valueSha256"), "key %q: must be 64 hexadecimal digits (the SHA-256 of the key value), got %d characters", k.ID, len(sum.Str))
			return
		}
	}
	if owner := p.digestOwner(d); owner != "" {
		p.add(pathOf(), "key %q has the same value as %s", k.ID, owner)
		return
	}
	k.digest = d
	p.cfg.keys.addDigest(k)
	if pv, ok := f.get("previousValues"); ok {
		p.previousValues(k, d, pv, field(pathOf(), "previousValues"))
	}
}

func (p *parser) planKeys(v gjson.Result, path string) {
	p.firstPairAt = make([]int32, len(p.cfg.keys.keys))
	// An id is read without a copy: it is only looked up (and quoted in an error).
	idOf := func(v gjson.Result, e element, name string) (string, bool) {
		if v.Type == gjson.String {
			return v.Str, true
		}
		return p.str(v, field(e.path(), name))
	}
	var f fields // reused: see objectInto
	for i, e := range p.list(v, path, "") {
		if !p.objectInto(&f, e.val, e.path, planKeyFields, nil) {
			continue
		}
		var pl *Plan
		var k *Key
		if pv, ok := f.get("usagePlanId"); !ok {
			p.add(field(e.path(), "usagePlanId"), "required")
		} else if id, ok := idOf(pv, e, "usagePlanId"); ok {
			if pl = p.plans[id]; pl == nil {
				p.add(field(e.path(), "usagePlanId"), "no usage plan with id %q", id)
			}
		}
		if kv, ok := f.get("keyId"); !ok {
			p.add(field(e.path(), "keyId"), "required")
		} else if id, ok := idOf(kv, e, "keyId"); ok {
			if k = p.cfg.keys.findID(id); k == nil {
				p.add(field(e.path(), "keyId"), "no API key with id %q", id)
			}
		}
		if t, ok := f.get("keyType"); ok && (t.Type != gjson.String || t.Str != "API_KEY") {
			p.enum(t, field(e.path(), "keyType"), []string{"API_KEY"})
		}
		if pl == nil || k == nil {
			continue
		}
		if prev, dup := p.pairedAt(k, pl); dup {
			p.add(e.path(), "key %q is already in usage plan %q (%s)", k.ID, pl.ID, index(path, prev))
			continue
		}
		for _, s := range pl.Stages {
			if other := k.Plan(s); other != nil {
				p.add(e.path(), "key %q is in usage plans %q and %q, which both grant API stage %q: a key may belong to one plan per API stage", k.ID, other.ID, pl.ID, s.ID)
			}
		}
		pl.keys = append(pl.keys, k)
		if len(k.plans) == 0 {
			k.plans = p.planChunks.one()
			k.plans[0] = pl
			p.firstPairAt[k.ord] = int32(i)
		} else {
			k.plans = append(k.plans, pl)
			if p.pairAt == nil {
				p.pairAt = make(map[keyPlan]int)
			}
			p.pairAt[keyPlan{k, pl}] = i
		}
	}
}

// pairedAt reports whether k is in plan pl already, and the index of the usagePlanKeys
// element that put it there.
func (p *parser) pairedAt(k *Key, pl *Plan) (int, bool) {
	for j, x := range k.plans {
		if x != pl {
			continue
		}
		if j == 0 {
			return int(p.firstPairAt[k.ord]), true
		}
		return p.pairAt[keyPlan{k, pl}], true
	}
	return 0, false
}
