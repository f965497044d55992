package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/usageplans/usageplans/filter/limit"
)

// Parse parses and validates a configuration. On failure the error is an Errors listing
// every problem found, each with its JSON path; key values never appear in it.
func Parse(data []byte) (*Config, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, Errors{{Message: "configuration is empty: expected a JSON object"}}
	}
	if !gjson.ValidBytes(data) {
		return nil, Errors{{Message: "configuration is not valid JSON" + syntaxPosition(data)}}
	}
	p := &parser{}
	c := p.config(gjson.ParseBytes(data))
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return c, nil
}

// syntaxPosition says where the JSON syntax breaks, as ": line L, column C: why". gjson
// validates without telling where; encoding/json does, and is linked in anyway.
func syntaxPosition(data []byte) string {
	var raw json.RawMessage
	err := json.Unmarshal(data, &raw)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return ""
	}
	line, col := 1, 1
	for _, c := range data[:min(max(int(se.Offset)-1, 0), len(data))] { // Offset is just past the bad byte
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf(": line %d, column %d: %s", line, col, se.Error())
}

type parser struct {
	errs Errors
	cfg  *Config

	apis   map[string]*API
	stages map[string]*Stage // by "apiId/stage"
	plans  map[string]*Plan
	keyIDs map[string]*Key

	apiKeySources []member // apis[i].apiKeySource, checked against the top-level one
}

func (p *parser) add(path, format string, args ...any) {
	p.errs = append(p.errs, Error{Path: path, Message: fmt.Sprintf(format, args...)})
}

// field joins a path and an object member name, bracketing names that are not identifiers.
func field(path, name string) string {
	if isIdent(name) {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	return path + "[" + strconv.Quote(name) + "]"
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '$' || isAlpha(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// describe renders a JSON value for a "got ..." clause; strings are quoted and truncated.
// Never call it on a key value.
func describe(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		s := v.Str
		if len(s) > 64 {
			s = s[:61] + "..."
		}
		return strconv.Quote(s)
	case gjson.Null:
		return "null"
	case gjson.JSON:
		if v.IsArray() {
			return "an array"
		}
		return "an object"
	}
	return v.Raw
}

func typeName(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "a string"
	case gjson.Number:
		return "a number"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Null:
		return "null"
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}

// fields are the members of one object whose names the caller knows.
type fields struct {
	known []string
	vals  [maxFields]gjson.Result
	has   uint64 // bit i: known[i] is present
}

// maxFields bounds the known and ignored names of one object kind (see the lists below).
const maxFields = 24

func (f *fields) get(name string) (gjson.Result, bool) {
	for i, k := range f.known {
		if k == name && f.has&(1<<i) != 0 {
			return f.vals[i], true
		}
	}
	return gjson.Result{}, false
}

// object checks that v is an object and returns its members. Members named in known are
// returned; those in ignored (AWS fields we do not use) are accepted; any other member and
// any repeated member is reported.
func (p *parser) object(v gjson.Result, path string, known, ignored []string) (fields, bool) {
	f := fields{known: known}
	if !v.IsObject() {
		if path == "" {
			p.add(path, "the configuration must be a JSON object, got %s", describe(v))
		} else {
			p.add(path, "must be an object, got %s", describe(v))
		}
		return f, false
	}
	var seenIgnored uint64
	v.ForEach(func(k, val gjson.Result) bool {
		name := k.Str
		if i := indexOf(known, name); i >= 0 {
			if f.has&(1<<i) != 0 {
				p.add(field(path, name), "appears twice")
			}
			f.has |= 1 << i
			f.vals[i] = val
		} else if i := indexOf(ignored, name); i >= 0 {
			if seenIgnored&(1<<i) != 0 {
				p.add(field(path, name), "appears twice")
			}
			seenIgnored |= 1 << i
		} else if s := suggest(name, known); s != "" {
			p.add(field(path, name), "unknown field (did you mean %q?)", s)
		} else {
			p.add(field(path, name), "unknown field")
		}
		return true
	})
	return f, true
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// suggest returns the known name closest to a misspelled one (at most 2 edits), or "".
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if len(name) >= 3 && (strings.HasPrefix(k, name) || strings.HasPrefix(name, k)) {
			return k
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// members returns the members of an object whose names are free (a map), reporting
// repeated names.
func (p *parser) members(v gjson.Result, path string) ([]member, bool) {
	if !v.IsObject() {
		p.add(path, "must be an object, got %s", describe(v))
		return nil, false
	}
	var out []member
	seen := make(map[string]bool)
	v.ForEach(func(k, val gjson.Result) bool {
		if seen[k.Str] {
			p.add(field(path, k.Str), "appears twice")
		} else {
			seen[k.Str] = true
			out = append(out, member{k.Str, val, field(path, k.Str)})
		}
		return true
	})
	return out, true
}

type member struct {
	name string
	val  gjson.Result
	path string
}

type element struct {
	val  gjson.Result
	path string
}

// list iterates over an array, or when wrapper is not empty an AWS CLI output object
// holding the array under wrapper ("items" for get-usage-plans and friends, "item" for
// get-stages) next to "position". It reports a value of another shape.
func (p *parser) list(v gjson.Result, path, wrapper string) iter.Seq2[int, element] {
	return func(yield func(int, element) bool) {
		if wrapper != "" && v.IsObject() {
			f, ok := p.object(v, path, []string{wrapper}, []string{"position"})
			if !ok {
				return
			}
			items, ok := f.get(wrapper)
			if !ok {
				p.add(path, "must be an array or an AWS CLI output object with %q", wrapper)
				return
			}
			p.list(items, field(path, wrapper), "")(yield)
			return
		}
		if !v.IsArray() {
			if wrapper == "" {
				p.add(path, "must be an array, got %s", describe(v))
			} else {
				p.add(path, "must be an array or an AWS CLI output object {%q: [...]}, got %s", wrapper, describe(v))
			}
			return
		}
		i := 0
		v.ForEach(func(_, e gjson.Result) bool {
			more := yield(i, element{e, index(path, i)})
			i++
			return more
		})
	}
}

func (p *parser) str(v gjson.Result, path string) (string, bool) {
	if v.Type != gjson.String {
		p.add(path, "must be a string, got %s", describe(v))
		return "", false
	}
	return v.Str, true
}

func (p *parser) boolean(v gjson.Result, path string) (bool, bool) {
	if v.Type != gjson.True && v.Type != gjson.False {
		p.add(path, "must be true or false, got %s", describe(v))
		return false, false
	}
	return v.Bool(), true
}

// integer reads a JSON integer literal in [lo, hi].
func (p *parser) integer(v gjson.Result, path string, lo, hi int64) (int64, bool) {
	bounds := func() string {
		if hi == math.MaxInt64 {
			return fmt.Sprintf("an integer >= %d", lo)
		}
		return fmt.Sprintf("an integer from %d to %d", lo, hi)
	}
	if v.Type != gjson.Number {
		p.add(path, "must be %s, got %s", bounds(), describe(v))
		return 0, false
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil || n < lo || n > hi {
		p.add(path, "must be %s, got %s", bounds(), v.Raw)
		return 0, false
	}
	return n, true
}

// rate reads a positive finite number.
func (p *parser) rate(v gjson.Result, path string) (float64, bool) {
	if v.Type != gjson.Number {
		p.add(path, "must be a number > 0, got %s", describe(v))
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Raw, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		p.add(path, "must be a number > 0, got %s", v.Raw)
		return 0, false
	}
	return f, true
}

// enum reads a string that must be one of allowed; names lists them for the message.
func (p *parser) enum(v gjson.Result, path string, allowed []string) (string, bool) {
	if v.Type == gjson.String && contains(allowed, v.Str) {
		return v.Str, true
	}
	p.add(path, "must be %s, got %s", orList(allowed), describe(v))
	return "", false
}

func orList(xs []string) string {
	switch len(xs) {
	case 1:
		return xs[0]
	case 2:
		return xs[0] + " or " + xs[1]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// id reads an identifier used in shared-data keys, metric names and logs.
func (p *parser) id(v gjson.Result, path string) (string, bool) {
	s, ok := p.str(v, path)
	if !ok {
		return "", false
	}
	if s == "" || len(s) > maxIDLen {
		p.add(path, "must be 1 to %d characters, got %d", maxIDLen, len(s))
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.') {
			p.add(path, "must hold only letters, digits, '-', '_' and '.', got %s", describe(v))
			return "", false
		}
	}
	return s, true
}

func (p *parser) name(v gjson.Result, path string) string {
	s, ok := p.str(v, path)
	if ok && len(s) > maxNameLen {
		p.add(path, "must be at most %d characters, got %d", maxNameLen, len(s))
	}
	return s
}

// headerName reads an HTTP header name and lower-cases it.
func (p *parser) headerName(v gjson.Result, path string, allowEmpty bool) (string, bool) {
	s, ok := p.str(v, path)
	if !ok {
		return "", false
	}
	if s == "" && allowEmpty {
		return "", true
	}
	if !validHeaderName(s) {
		p.add(path, "must be an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~), got %s", describe(v))
		return "", false
	}
	return strings.ToLower(s), true
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

var (
	topFields = []string{
		"usagePlans", "apiKeys", "usagePlanKeys", "apis", "routes",
		"unmatchedRoute", "unmatchedResource", "accountThrottle",
		"apiKeySource", "apiKeyHeader", "apiKeyQueryParameter", "authorizer",
		"stripApiKey", "identityHeaders", "rateLimitHeaders", "shadowMode",
		"failurePolicy", "namespace", "casRetries", "responses",
	}
	apiFields        = []string{"id", "name", "description", "resources", "stages", "apiKeySource"}
	apiIgnored       = []string{"createdDate", "version", "endpointConfiguration", "binaryMediaTypes", "minimumCompressionSize", "tags", "warnings", "disableExecuteApiEndpoint", "rootResourceId", "policy"}
	resourceFields   = []string{"path", "resourceMethods"}
	resourceIgnored  = []string{"id", "parentId", "pathPart"}
	methodFields     = []string{"apiKeyRequired"}
	methodIgnored    = []string{"httpMethod", "authorizationType", "authorizerId", "requestValidatorId", "operationName", "requestParameters", "requestModels", "methodResponses", "methodIntegration", "authorizationScopes"}
	stageFields      = []string{"stageName", "methodSettings"}
	stageIgnored     = []string{"deploymentId", "description", "cacheClusterEnabled", "cacheClusterSize", "cacheClusterStatus", "variables", "tracingEnabled", "createdDate", "lastUpdatedDate", "tags", "webAclArn", "accessLogSettings", "canarySettings", "clientCertificateId", "documentationVersion"}
	settingFields    = []string{"throttlingRateLimit", "throttlingBurstLimit"}
	settingIgnored   = []string{"metricsEnabled", "loggingLevel", "dataTraceEnabled", "cachingEnabled", "cacheTtlInSeconds", "cacheDataEncrypted", "requireAuthorizationForCacheControl", "unauthorizedCacheControlHeaderStrategy"}
	routeFields      = []string{"name", "match", "apiId", "stage", "stripPathPrefix", "bypass"}
	matchFields      = []string{"routeName", "host", "pathPrefix"}
	planFields       = []string{"id", "name", "description", "apiStages", "throttle", "quota"}
	planIgnored      = []string{"productCode", "tags"}
	apiStageFields   = []string{"apiId", "stage", "throttle"}
	throttleFields   = []string{"rateLimit", "burstLimit"}
	quotaFields      = []string{"limit", "offset", "period", "weekStart"}
	keyFields        = []string{"id", "value", "valueSha256", "name", "description", "enabled", "customerId"}
	keyIgnored       = []string{"createdDate", "lastUpdatedDate", "stageKeys", "tags"}
	planKeyFields    = []string{"usagePlanId", "keyId", "keyType"}
	identityFields   = []string{"keyId", "planId"}
	authorizerFields = []string{"header", "property"}
	responseFields   = []string{"statusCode", "headers", "body"}

	httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"}
	periods     = []string{"DAY", "WEEK", "MONTH"}
	keySources  = []string{"HEADER", "AUTHORIZER"} // in KeySourceType order
	weekdays    = []string{"SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"}
)

func (p *parser) config(root gjson.Result) *Config {
	c := &Config{
		UnmatchedRoute:    Pass,
		UnmatchedResource: Deny,
		Account: &Limit{Level: LevelAccount, ID: accountLimitID,
			Throttle: limit.Throttle{Rate: DefaultAccountRate, Burst: DefaultAccountBurst}},
		KeySource:       KeySource{Type: FromHeader, Header: DefaultAPIKeyHeader},
		StripAPIKey:     true,
		IdentityHeaders: IdentityHeaders{KeyID: DefaultKeyIDHeader, PlanID: DefaultPlanIDHeader},
		FailurePolicy:   FailClosed,
		Namespace:       DefaultNamespace,
		CASRetries:      DefaultCASRetries,
		responses:       defaultResponses(),
		keys:            make(map[Digest]*Key),
	}
	p.cfg = c
	p.apis = make(map[string]*API)
	p.stages = make(map[string]*Stage)
	p.plans = make(map[string]*Plan)
	p.keyIDs = make(map[string]*Key)

	f, ok := p.object(root, "", topFields, nil)
	if !ok {
		return nil
	}
	if v, ok := f.get("apis"); ok {
		for _, e := range p.list(v, "apis", "") {
			p.api(e.val, e.path)
		}
	}
	if v, ok := f.get("routes"); ok {
		for i, e := range p.list(v, "routes", "") {
			p.route(e.val, e.path, i)
		}
	}
	if v, ok := f.get("usagePlans"); ok {
		for _, e := range p.list(v, "usagePlans", "items") {
			p.plan(e.val, e.path)
		}
	}
	if v, ok := f.get("apiKeys"); ok {
		for _, e := range p.list(v, "apiKeys", "items") {
			p.key(e.val, e.path)
		}
	}
	if v, ok := f.get("usagePlanKeys"); ok {
		p.planKeys(v, "usagePlanKeys")
	}
	p.options(&f)
	return c
}

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
			if t, ok := p.throttle(v, "accountThrottle"); ok {
				c.Account.Throttle = t
			}
		} else {
			p.add("accountThrottle", "must be an object {\"rateLimit\", \"burstLimit\"} or false, got %s", describe(v))
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
				p.add("apiKeyQueryParameter", "must be a query parameter name without '&', '=', '#', '?' or spaces, got %s", describe(v))
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
		p.add(pp, "must be a non-empty array of path segments such as [\"filter_state\", \"usage_key\"], got %s", describe(prop))
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
				p.add(sp, "must be an HTTP status from %d to %d, got %s", minStatus, maxStatus, describe(s))
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

func (p *parser) throttle(v gjson.Result, path string) (limit.Throttle, bool) {
	f, ok := p.object(v, path, throttleFields, nil)
	if !ok {
		return limit.Throttle{}, false
	}
	return p.rateBurst(&f, path, "rateLimit", "burstLimit")
}

func (p *parser) rateBurst(f *fields, path, rateName, burstName string) (limit.Throttle, bool) {
	var t limit.Throttle
	good := true
	if r, ok := f.get(rateName); !ok {
		p.add(field(path, rateName), "required")
		good = false
	} else if t.Rate, ok = p.rate(r, field(path, rateName)); !ok {
		good = false
	}
	if b, ok := f.get(burstName); !ok {
		p.add(field(path, burstName), "required")
		good = false
	} else if t.Burst, ok = p.integer(b, field(path, burstName), 0, math.MaxInt64); !ok {
		good = false
	}
	return t, good
}

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
			p.resource(a, e.val, e.path, shapes)
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
		p.stage(a, e.val, e.path)
	}
}

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
	n, shape, msg := a.root.insert(tmpl)
	if msg != "" {
		p.add(field(path, "path"), "%s, got %s", msg, describe(pv))
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
			if n.literal == nil {
				n.literal = make(map[string]*node)
			}
			c := n.literal[s]
			if c == nil {
				c = &node{}
				n.literal[s] = c
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
			t, ok := p.rateBurst(&sf, m.path, "throttlingRateLimit", "throttlingBurstLimit")
			if m.name == "*/*" {
				if ok {
					s.Throttle = &t
				}
				continue
			}
			meth := a.findMethod(normalizeSettingKey(m.name))
			if meth == nil {
				p.add(m.path, "API %q has no method %q (keys are \"*/*\" or a resource path and method such as \"/pets/GET\")", a.ID, normalizeSettingKey(m.name))
				continue
			}
			if ok {
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
				p.add(hp, "must be a host name without port, optionally starting with \"*.\", got %s", describe(h))
				good = false
			}
			r.Host = strings.ToLower(s)
		}
	}
	if pp, ok := f.get("pathPrefix"); ok {
		ppp := field(path, "pathPrefix")
		if s, ok := p.str(pp, ppp); ok {
			if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, "?# ") {
				p.add(ppp, "must start with \"/\" and hold no '?', '#' or spaces, got %s", describe(pp))
				good = false
			}
			for len(s) > 1 && strings.HasSuffix(s, "/") {
				s = s[:len(s)-1]
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
		if th, ok := p.throttle(t, field(path, "throttle")); ok {
			pl.Throttle = &th
			pl.limit = &Limit{Level: LevelPlan, ID: "plan:" + pl.ID, PerKey: true, Throttle: th}
			pl.keyLimits = append(pl.keyLimits, pl.limit)
		}
	}
	if q, ok := f.get("quota"); ok {
		pl.Quota = p.quota(q, field(path, "quota"))
	}
	if as, ok := f.get("apiStages"); ok {
		for _, e := range p.list(as, field(path, "apiStages"), "") {
			p.apiStage(pl, e.val, e.path)
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
		if th, ok := p.throttle(m.val, m.path); ok {
			l := &Limit{Level: LevelPlanMethod, ID: "plan:" + pl.ID + ":" + s.ID + ":" + meth.ID, PerKey: true, Throttle: th}
			ov[meth.index] = l
			pl.keyLimits = append(pl.keyLimits, l)
		}
	}
}

func (p *parser) key(v gjson.Result, path string) {
	f, ok := p.object(v, path, keyFields, keyIgnored)
	if !ok {
		return
	}
	k := &Key{Enabled: true}
	idv, ok := f.get("id")
	if !ok {
		p.add(field(path, "id"), "required")
		return
	}
	if k.ID, ok = p.id(idv, field(path, "id")); !ok {
		return
	}
	if p.keyIDs[k.ID] != nil {
		p.add(field(path, "id"), "duplicate API key id %q", k.ID)
		return
	}
	p.keyIDs[k.ID] = k
	p.cfg.Keys = append(p.cfg.Keys, k)
	if n, ok := f.get("name"); ok {
		k.Name = p.name(n, field(path, "name"))
	}
	if d, ok := f.get("description"); ok {
		p.str(d, field(path, "description"))
	}
	if c, ok := f.get("customerId"); ok {
		k.CustomerID, _ = p.str(c, field(path, "customerId"))
	}
	if e, ok := f.get("enabled"); ok {
		k.Enabled, _ = p.boolean(e, field(path, "enabled"))
	}
	val, hasValue := f.get("value")
	sum, hasSum := f.get("valueSha256")
	var d Digest
	switch {
	case hasValue && hasSum:
		p.add(path, "key %q: give value or valueSha256, not both", k.ID)
		return
	case !hasValue && !hasSum:
		p.add(path, "key %q: needs value or valueSha256 (aws apigateway get-api-keys prints values only with --include-values)", k.ID)
		return
	case hasValue:
		vp := field(path, "value")
		// Never describe the value itself: it is a secret.
		if val.Type != gjson.String {
			p.add(vp, "key %q: must be a string, got %s", k.ID, typeName(val))
			return
		}
		if n := len(val.Str); n < minKeyLen || n > maxKeyLen {
			p.add(vp, "key %q: must be %d to %d alphanumeric characters, got %d characters", k.ID, minKeyLen, maxKeyLen, n)
			return
		}
		for i := 0; i < len(val.Str); i++ {
			if c := val.Str[i]; !isAlpha(c) && !isDigit(c) {
				p.add(vp, "key %q: must be %d to %d alphanumeric characters, found another character", k.ID, minKeyLen, maxKeyLen)
				return
			}
		}
		d = sha256.Sum256([]byte(val.Str))
	default:
		sp := field(path, "valueSha256")
		s, ok := p.str(sum, sp)
		if !ok {
			return
		}
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(d) {
			p.add(sp, "key %q: must be 64 hexadecimal digits (the SHA-256 of the key value), got %d characters", k.ID, len(s))
			return
		}
		copy(d[:], b)
	}
	if prev := p.cfg.keys[d]; prev != nil {
		p.add(path, "key %q has the same value as key %q", k.ID, prev.ID)
		return
	}
	p.cfg.keys[d] = k
}

func (p *parser) planKeys(v gjson.Result, path string) {
	type pair struct{ plan, key string }
	seen := make(map[pair]string)
	for _, e := range p.list(v, path, "") {
		f, ok := p.object(e.val, e.path, planKeyFields, nil)
		if !ok {
			continue
		}
		var pl *Plan
		var k *Key
		if pv, ok := f.get("usagePlanId"); !ok {
			p.add(field(e.path, "usagePlanId"), "required")
		} else if id, ok := p.str(pv, field(e.path, "usagePlanId")); ok {
			if pl = p.plans[id]; pl == nil {
				p.add(field(e.path, "usagePlanId"), "no usage plan with id %q", id)
			}
		}
		if kv, ok := f.get("keyId"); !ok {
			p.add(field(e.path, "keyId"), "required")
		} else if id, ok := p.str(kv, field(e.path, "keyId")); ok {
			if k = p.keyIDs[id]; k == nil {
				p.add(field(e.path, "keyId"), "no API key with id %q", id)
			}
		}
		if t, ok := f.get("keyType"); ok {
			p.enum(t, field(e.path, "keyType"), []string{"API_KEY"})
		}
		if pl == nil || k == nil {
			continue
		}
		if prev, dup := seen[pair{pl.ID, k.ID}]; dup {
			p.add(e.path, "key %q is already in usage plan %q (%s)", k.ID, pl.ID, prev)
			continue
		}
		seen[pair{pl.ID, k.ID}] = e.path
		for _, s := range pl.Stages {
			if other := k.plans[s]; other != nil {
				p.add(e.path, "key %q is in usage plans %q and %q, which both grant API stage %q: a key may belong to one plan per API stage", k.ID, other.ID, pl.ID, s.ID)
				continue
			}
			if k.plans == nil {
				k.plans = make(map[*Stage]*Plan, 1)
			}
			k.plans[s] = pl
		}
	}
}
