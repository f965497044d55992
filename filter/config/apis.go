package config

import (
	"strings"

	"github.com/tidwall/gjson"
	"github.com/usageplans/usageplans/filter/limit"
)

func (p *parser) api(v gjson.Result, path string) {
	f, ok := p.object(v, path, apiFields, apiIgnored)
	if !ok {
		return
	}
	a := &API{root: &node{}}
	idv, ok := f.get("id")
	if !ok {
		p.add(field(path, "id"), "required (the AWS apiId usage plans name)")
		return
	}
	if a.ID, ok = p.id(idv, field(path, "id")); !ok {
		return
	}
	if n, ok := f.get("name"); ok {
		a.Name = p.name(n, field(path, "name"))
	}
	if d, ok := f.get("description"); ok {
		p.str(d, field(path, "description"))
	}
	if ks, ok := f.get("apiKeySource"); ok {
		if s, ok := p.enum(ks, field(path, "apiKeySource"), keySources); ok {
			p.apiKeySources = append(p.apiKeySources, member{s, ks, field(path, "apiKeySource")})
		}
	}
	if prev := p.apis[a.ID]; prev != nil {
		p.add(field(path, "id"), "duplicate API id %q", a.ID)
		return
	}
	p.apis[a.ID] = a
	p.cfg.APIs = append(p.cfg.APIs, a)

	shapes := make(map[string]string)
	if r, ok := f.get("resources"); ok {
		for _, e := range p.list(r, field(path, "resources"), "items") {
			p.resource(a, e.val, e.path(), shapes)
		}
	}
	if len(a.Methods) == 0 {
		p.add(field(path, "resources"), "no resource declares a method: list resources with resourceMethods (the items of aws apigateway get-resources --embed methods)")
	}
	s, ok := f.get("stages")
	if !ok {
		p.add(field(path, "stages"), "required: at least one stage")
		return
	}
	for _, e := range p.list(s, field(path, "stages"), "item") {
		p.stage(a, e.val, e.path())
	}
}

// maxResourceLen bounds a resource path, and with it a method id (path + "/OPTIONS") and
// every Limit.ID built from them: at most 392 + 520 = 912 bytes, under state.MaxName
// (1024), beyond which a state entry cannot be decoded (TestLimitIDsFitState).
const (
	maxResourceLen = 512
	maxMethodIDLen = maxResourceLen + len("/OPTIONS")
	maxLimitIDLen  = len("plan:") + maxIDLen + len(":") + maxIDLen + len("/") + maxIDLen + len(":") + maxMethodIDLen
)

func (p *parser) resource(a *API, v gjson.Result, path string, shapes map[string]string) {
	f, ok := p.object(v, path, resourceFields, resourceIgnored)
	if !ok {
		return
	}
	pv, ok := f.get("path")
	if !ok {
		p.add(field(path, "path"), "required")
		return
	}
	tmpl, ok := p.str(pv, field(path, "path"))
	if !ok {
		return
	}
	if len(tmpl) > maxResourceLen {
		p.add(field(path, "path"), "must be at most %d bytes (throttle names built from it must fit a state entry), got %d", maxResourceLen, len(tmpl))
		return
	}
	n, shape, msg := a.root.insert(tmpl)
	if msg != "" {
		p.add(field(path, "path"), "%s, got %s", msg, p.describe(pv))
		return
	}
	if prev, dup := shapes[shape]; dup {
		p.add(field(path, "path"), "same resource as %s", prev)
		return
	}
	shapes[shape] = path
	rm, ok := f.get("resourceMethods")
	if !ok {
		return
	}
	ms, ok := p.members(rm, field(path, "resourceMethods"))
	if !ok {
		return
	}
	for _, m := range ms {
		if !contains(httpMethods, m.name) {
			p.add(m.path, "unknown HTTP method: must be %s", orList(httpMethods))
			continue
		}
		mf, ok := p.object(m.val, m.path, methodFields, methodIgnored)
		if !ok {
			continue
		}
		meth := &Method{API: a, Resource: tmpl, HTTPMethod: m.name, ID: methodID(tmpl, m.name), index: len(a.Methods)}
		if k, ok := mf.get("apiKeyRequired"); ok {
			meth.APIKeyRequired, _ = p.boolean(k, field(m.path, "apiKeyRequired"))
		}
		a.Methods = append(a.Methods, meth)
		n.methods = append(n.methods, meth)
	}
}

func methodID(resource, method string) string {
	if resource == "/" {
		return "/" + method
	}
	return resource + "/" + method
}

// insert adds a resource template to the tree. It returns the resource's node, its shape
// (the template with parameter names erased, to find duplicates) or a message saying
// what is wrong with the template.
func (n *node) insert(tmpl string) (*node, string, string) {
	const want = `must be a path template such as "/pets/{petId}" or "/{proxy+}"`
	if !strings.HasPrefix(tmpl, "/") {
		return nil, "", want
	}
	if tmpl == "/" {
		return n, "/", ""
	}
	segs := strings.Split(tmpl[1:], "/")
	// Validate before touching the tree so a bad template leaves no trace.
	var shape strings.Builder
	for i, s := range segs {
		shape.WriteByte('/')
		switch {
		case s == "":
			return nil, "", want + " (empty segment)"
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}"):
			if i != len(segs)-1 {
				return nil, "", want + " (a greedy {name+} must be the last segment)"
			}
			if !validParam(s[1 : len(s)-2]) {
				return nil, "", want + " (bad parameter name)"
			}
			shape.WriteString("{+}")
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			if !validParam(s[1 : len(s)-1]) {
				return nil, "", want + " (bad parameter name)"
			}
			shape.WriteString("{}")
		default:
			for j := 0; j < len(s); j++ {
				if c := s[j]; c <= ' ' || c == 0x7f || strings.IndexByte("{}?#", c) >= 0 {
					return nil, "", want + " (a literal segment must not hold spaces, braces, '?' or '#')"
				}
			}
			if strings.IndexByte(s, '\\') >= 0 {
				return nil, "", want + ` (requests are matched with '\' read as '/', as Envoy's normalize_path reads it, so a '\' never matches)`
			}
			if seg := "/" + s; cleanPath(seg) != seg {
				return nil, "", want + ` (requests are matched in normal form, so a "." or ".." segment or an escaped letter, digit or "-._~" never matches)`
			}
			shape.WriteString(s)
		}
	}
	for _, s := range segs {
		switch {
		case strings.HasSuffix(s, "+}"):
			if n.greedy == nil {
				n.greedy = &node{}
			}
			n = n.greedy
		case strings.HasPrefix(s, "{"):
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		default:
			c := n.child(s)
			if c == nil {
				c = &node{}
				n.addChild(s, c)
			}
			n = c
		}
	}
	return n, shape.String(), ""
}

func validParam(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// findMethod resolves AWS's method key "/pets/{petId}/GET" (or "/GET" for the root).
func (a *API) findMethod(key string) *Method {
	for _, m := range a.Methods {
		if m.ID == key {
			return m
		}
	}
	return nil
}

// normalizeSettingKey turns the spellings of a stage methodSettings key that AWS outputs
// ("~1pets/GET", "pets/GET") into the method key "/pets/GET".
func normalizeSettingKey(k string) string {
	k = strings.ReplaceAll(k, "~1", "/")
	if !strings.HasPrefix(k, "/") {
		k = "/" + k
	}
	for strings.HasPrefix(k, "//") {
		k = k[1:]
	}
	return k
}

func (p *parser) stage(a *API, v gjson.Result, path string) {
	f, ok := p.object(v, path, stageFields, stageIgnored)
	if !ok {
		return
	}
	nv, ok := f.get("stageName")
	if !ok {
		p.add(field(path, "stageName"), "required")
		return
	}
	name, ok := p.id(nv, field(path, "stageName"))
	if !ok {
		return
	}
	s := &Stage{API: a, Name: name, ID: a.ID + "/" + name, methodLimits: make([]*Limit, len(a.Methods))}
	if p.stages[s.ID] != nil {
		p.add(field(path, "stageName"), "duplicate stage %q in API %q", name, a.ID)
		return
	}
	p.stages[s.ID] = s
	a.Stages = append(a.Stages, s)

	// perMethod[i]: the method's own throttle, nil when it has none and the "*/*" default
	// applies.
	perMethod := make([]*limit.Throttle, len(a.Methods))
	if ms, ok := f.get("methodSettings"); ok {
		members, _ := p.members(ms, field(path, "methodSettings"))
		for _, m := range members {
			sf, ok := p.object(m.val, m.path, settingFields, settingIgnored)
			if !ok {
				continue
			}
			_, hasRate := sf.get("throttlingRateLimit")
			_, hasBurst := sf.get("throttlingBurstLimit")
			if !hasRate && !hasBurst {
				continue // settings without throttling (logging, metrics): nothing for us
			}
			// AWS writes -1 in both members when throttling is not set at this level.
			t, isOff, ok := p.rateBurst(&sf, m.path, "throttlingRateLimit", "throttlingBurstLimit", throttleAllowOff)
			if m.name == "*/*" {
				if ok && !isOff {
					s.Throttle = &t
				}
				continue
			}
			meth := a.findMethod(normalizeSettingKey(m.name))
			if meth == nil {
				p.add(m.path, "API %q has no method %q (keys are \"*/*\" or a resource path and method such as \"/pets/GET\")", a.ID, normalizeSettingKey(m.name))
				continue
			}
			// -1 on a method is "not set at this level", as AWS writes it into a method
			// override made only for logging or metrics: the method keeps the "*/*"
			// default, as it does in AWS.
			if ok && !isOff {
				perMethod[meth.index] = &t
			}
		}
	}
	for i, m := range a.Methods {
		t := perMethod[i]
		if t == nil {
			t = s.Throttle
		}
		if t != nil {
			s.methodLimits[i] = &Limit{Level: LevelStageMethod, ID: "stage:" + s.ID + ":" + m.ID, Throttle: *t}
		}
	}
}

func (p *parser) route(v gjson.Result, path string, i int) {
	f, ok := p.object(v, path, routeFields, nil)
	if !ok {
		return
	}
	r := &Route{Name: index(defaultRouteNameInfix, i)}
	good := true
	if n, ok := f.get("name"); ok {
		if r.Name, ok = p.str(n, field(path, "name")); !ok {
			good = false
		}
	}
	if m, ok := f.get("match"); ok {
		good = p.routeMatch(r, m, field(path, "match")) && good
	}
	if b, ok := f.get("bypass"); ok {
		r.Bypass, _ = p.boolean(b, field(path, "bypass"))
	}
	if b, ok := f.get("stripPathPrefix"); ok {
		r.StripPathPrefix, _ = p.boolean(b, field(path, "stripPathPrefix"))
		if r.StripPathPrefix && r.PathPrefix == "" {
			p.add(field(path, "stripPathPrefix"), "needs match.pathPrefix")
		}
	}
	apiV, hasAPI := f.get("apiId")
	stageV, hasStage := f.get("stage")
	switch {
	case r.Bypass:
		if hasAPI || hasStage {
			p.add(path, "a bypass route must not name an apiId or stage")
		}
	case !hasAPI || !hasStage:
		p.add(path, "needs apiId and stage (or \"bypass\": true)")
		good = false
	default:
		apiID, ok1 := p.str(apiV, field(path, "apiId"))
		stage, ok2 := p.str(stageV, field(path, "stage"))
		if ok1 && ok2 {
			if r.Stage = p.stages[apiID+"/"+stage]; r.Stage == nil {
				p.add(path, "API stage %q is not declared in apis", apiID+"/"+stage)
			}
		}
		good = good && r.Stage != nil
	}
	if good {
		p.cfg.Routes = append(p.cfg.Routes, r)
	}
}

func (p *parser) routeMatch(r *Route, v gjson.Result, path string) bool {
	f, ok := p.object(v, path, matchFields, nil)
	if !ok {
		return false
	}
	good := true
	if n, ok := f.get("routeName"); ok {
		if r.RouteName, ok = p.str(n, field(path, "routeName")); !ok {
			good = false
		}
	}
	if h, ok := f.get("host"); ok {
		hp := field(path, "host")
		if s, ok := p.str(h, hp); ok {
			if !validHost(s) {
				p.add(hp, "must be a host name without port, optionally starting with \"*.\", got %s", p.describe(h))
				good = false
			}
			r.Host = strings.ToLower(s)
		}
	}
	if pp, ok := f.get("pathPrefix"); ok {
		ppp := field(path, "pathPrefix")
		if s, ok := p.str(pp, ppp); ok {
			for len(s) > 1 && strings.HasSuffix(s, "/") {
				s = s[:len(s)-1]
			}
			if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, "?# ") {
				p.add(ppp, "must start with \"/\" and hold no '?', '#' or spaces, got %s", p.describe(pp))
				good = false
			} else if strings.IndexByte(s, '\\') >= 0 {
				p.add(ppp, "must not hold '\\' (requests are matched with '\\' read as '/', as Envoy's normalize_path reads it), got %s", p.describe(pp))
				good = false
			} else if c := cleanPath(s); c != s {
				if len(c) > 1 {
					c = strings.TrimSuffix(c, "/")
				}
				p.add(ppp, "must be in normal form, here %q (requests are matched after merging slashes, resolving \".\" and \"..\" and decoding escaped letters, digits and \"-._~\"), got %s", c, p.describe(pp))
				good = false
			}
			r.PathPrefix = s
		}
	}
	return good
}

func validHost(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" {
		return false
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") { // IPv6 literal
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
