// Package config parses the plugin's JSON configuration once into immutable lookup tables
// and answers the per-request questions (which API stage, method, key, plan and limits)
// without allocating; it never imports proxy-wasm, so the CLI validates with this very code.
//
// The per-request path, in order:
//
//	m := cfg.Match(routeName, host, path, method)
//	// m.Route == nil: no route matched, cfg.UnmatchedRoute decides (Pass or Deny).
//	// m.Route.Bypass: the route turned the filter off; pass untouched.
//	// m.Method == nil: the stage has no such resource/method, cfg.UnmatchedResource decides
//	//   (Deny answers the MissingAuthenticationToken response, as AWS does).
//	var key *Key; var plan *Plan
//	if m.Method.APIKeyRequired {
//		key = cfg.KeyByValueAt(value, now)        // nil: unknown key (or a previous value past its time) -> InvalidAPIKey
//		// !key.Enabled -> InvalidAPIKey
//		plan = key.Plan(m.Stage)                   // nil: key not in a plan of this stage -> InvalidAPIKey
//	}
//	var buf [4]Limit
//	limits := cfg.AppendLimits(buf[:0], plan, m) // every throttle to pass, AWS's precedence order
//	// plan.Quota (may be nil) is the key's quota, counted per key and plan across its stages.
//
// All values reachable from a *Config are read-only after Parse; callers must not modify
// them, and may share one *Config between requests.
package config

import (
	"time"

	"github.com/usageplans/usageplans/filter/limit"
)

// Digest is the SHA-256 of an API key value; the only form of a key kept in memory.
type Digest [32]byte

// parseDigest reads a digest written as 64 hexadecimal digits, either case.
func parseDigest(s string) (d Digest, ok bool) {
	if len(s) != 2*len(d) {
		return d, false
	}
	for i := range d {
		hi, ok1 := hexValue(s[2*i])
		lo, ok2 := hexValue(s[2*i+1])
		if !ok1 || !ok2 {
			return d, false
		}
		d[i] = hi<<4 | lo
	}
	return d, true
}

func hexValue(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return c | 0x20 - 'a' + 10, true
	}
	return 0, false
}

// Config is a parsed and validated plugin configuration.
type Config struct {
	APIs   []*API   // in configuration order
	Routes []*Route // in configuration order: the first that matches a request wins
	Plans  []*Plan  // in configuration order
	Keys   []*Key   // in configuration order; values are never kept, only digests

	// UnmatchedRoute decides requests no route selects (default Pass: not our traffic).
	UnmatchedRoute Action
	// UnmatchedResource decides requests whose route selects a stage that has no matching
	// resource and method (default Deny with the MissingAuthenticationToken response, as AWS).
	UnmatchedResource Action

	// Account is the account-level throttle shared by every request of every stage;
	// nil when turned off. Default: AWS's 10,000 rps with a burst of 5,000.
	Account *Limit

	KeySource KeySource

	StripAPIKey      bool            // remove the key header/parameter before upstream (default true)
	IdentityHeaders  IdentityHeaders // headers naming the key and plan for the upstream
	RateLimitHeaders bool            // add RateLimit-* headers (default false, as AWS)
	ShadowMode       bool            // decide, count and log, but never reject (default false)
	FailurePolicy    FailurePolicy   // what a state failure does (default FailClosed)
	Namespace        string          // prefix of every shared-data key (default "usageplans")
	CASRetries       int             // attempts of one compare-and-swap loop (default 8)

	// UsageAPI is the filter's GetUsage/UpdateUsage admin route; nil when not configured.
	UsageAPI *UsageAPI
	// UsageLogSeconds is the interval of the usage report, one log line per key that made
	// requests today (0: off).
	UsageLogSeconds int
	// Global is the global mode (quotas counted by the Rate Limit Service across the
	// fleet); nil in local mode.
	Global *Global

	responses [numResponseTypes]Response
	keys      keyIndex                 // by digest and id (keytable.go)
	previous  map[Digest]previousValue // rotated keys' previous values; nil when none (rotation.go)
	planIDs   map[string]*Plan

	// Whether some route matches on the host, on the route name: set once by Parse so that
	// the filter reads :authority and xds.route_name (a host call each) only when needed.
	matchesHost, matchesRouteName bool
}

// MatchesHost reports whether some route matches on the request's host: without one, Match
// ignores its host argument.
func (c *Config) MatchesHost() bool { return c.matchesHost }

// MatchesRouteName reports whether some route matches on Envoy's route name: without one,
// Match ignores its routeName argument.
func (c *Config) MatchesRouteName() bool { return c.matchesRouteName }

// Action is what happens to a request that the mapping does not cover.
type Action uint8

const (
	Pass Action = iota + 1 // let the request through untouched
	Deny                   // answer with the MissingAuthenticationToken response
)

func (a Action) String() string {
	switch a {
	case Pass:
		return "PASS"
	case Deny:
		return "DENY"
	}
	return "Action(?)"
}

// FailurePolicy decides a request when the state cannot be read or updated (the CAS loop
// gave up, the stored entry does not decode) or a callback panicked.
type FailurePolicy uint8

const (
	FailClosed FailurePolicy = iota + 1 // answer with the Failure response
	FailOpen                            // let the request through, uncounted
)

func (f FailurePolicy) String() string {
	switch f {
	case FailClosed:
		return "CLOSED"
	case FailOpen:
		return "OPEN"
	}
	return "FailurePolicy(?)"
}

// KeySourceType says where the API key (AWS: the usage identifier) comes from.
type KeySourceType uint8

const (
	FromHeader     KeySourceType = iota + 1 // AWS apiKeySource HEADER
	FromAuthorizer                          // AWS apiKeySource AUTHORIZER: set by an earlier filter
)

func (t KeySourceType) String() string {
	switch t {
	case FromHeader:
		return "HEADER"
	case FromAuthorizer:
		return "AUTHORIZER"
	}
	return "KeySourceType(?)"
}

// KeySource says where to read a request's API key.
type KeySource struct {
	Type KeySourceType
	// Header is the lower-case request header holding the key: the client's header for
	// FromHeader (default "x-api-key"), the earlier filter's header for FromAuthorizer
	// (empty when Property is used instead).
	Header string
	// Property is the property path (segments, e.g. ["metadata", "filter_metadata",
	// "envoy.filters.http.jwt_authn", "usage_key"]) holding the key for FromAuthorizer.
	Property []string
	// QueryParameter, when not empty, is a query parameter read when the header is absent
	// (FromHeader only; off by default).
	QueryParameter string
}

// IdentityHeaders name the request headers that tell the upstream which key and plan a
// request was admitted with; an empty name turns that header off. The filter must remove
// client-sent copies of these headers.
type IdentityHeaders struct {
	KeyID  string // default "x-usageplans-key-id"
	PlanID string // default "x-usageplans-plan-id"
}

// API is one AWS REST API: its id and its resources; requests reach it through a Stage.
type API struct {
	ID      string
	Name    string
	Methods []*Method // every declared method, in configuration order
	Stages  []*Stage

	root *node // resource tree
}

// Method is one HTTP method of one resource of an API.
type Method struct {
	API        *API
	Resource   string // path template as configured, e.g. "/pets/{petId}"
	HTTPMethod string // GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY
	// ID is AWS's method key, resource path + "/" + method: "/pets/{petId}/GET", "/GET"
	// for the root resource. Usage-plan and stage method throttles are keyed by it.
	ID             string
	APIKeyRequired bool

	index int // position in API.Methods
}

// Stage is one deployment stage of an API; the unit usage plans grant access to.
type Stage struct {
	API  *API
	Name string
	ID   string // "apiId/stage", as in AWS messages

	// Throttle is the stage's default per-method throttle (AWS methodSettings "*/*"); nil
	// when none. Each method gets its own bucket with these numbers.
	Throttle *limit.Throttle

	methodLimits []*Limit // by Method.index: the stage-level limit of that method, nil if none
}

// Route selects requests (all of its conditions must hold) and sends them to an API stage,
// or turns the filter off for them (Bypass).
type Route struct {
	Name string // for logs; defaults to "routes[i]"

	RouteName  string // Envoy's xds.route_name, exact; "" = any
	Host       string // lower case, port-less; "*.example.com" matches any subdomain; "" = any
	PathPrefix string // segment-wise prefix of the path; "" = any

	// StripPathPrefix matches resources against the path after PathPrefix, like AWS's
	// base path mapping of a custom domain.
	StripPathPrefix bool

	Bypass bool   // the filter does nothing for this route
	Stage  *Stage // nil iff Bypass
}

// Plan is an AWS usage plan.
type Plan struct {
	ID       string
	Name     string
	Throttle *limit.Throttle // per key, across all stages of the plan; nil when none
	Quota    *limit.Quota    // per key, across all stages of the plan; nil when none
	Stages   []*Stage        // the plan's apiStages

	limit     *Limit              // the plan-level throttle as a Limit; nil when none
	overrides map[*Stage][]*Limit // per stage, by Method.index: per-method override or nil
	keyLimits []*Limit            // every PerKey limit of the plan, see KeyLimits
	keys      []*Key              // the plan's keys (usagePlanKeys), see Keys
}

// KeyLimits lists every per-key throttle of the plan: its own throttle first, then its
// per-method overrides in configuration order. With the quota, this is all the state one
// key holds in this plan, so it bounds the size of the key's state entry.
func (p *Plan) KeyLimits() []*Limit { return p.keyLimits }

// Key is an API key; its value is not kept, only its digest (in the Config's index).
type Key struct {
	ID         string
	Name       string
	CustomerID string
	Enabled    bool // AWS "enabled"; defaults to true when absent

	ord    int32   // position in Config.Keys
	digest Digest  // of the key's value
	plans  []*Plan // the plans the key is in (usagePlanKeys), in configuration order
}

// Plan is the usage plan through which the key may call the stage, or nil when none (AWS
// answers 403 Forbidden). A key is in at most one plan per stage.
func (k *Key) Plan(s *Stage) *Plan {
	for _, p := range k.plans {
		if p.grants(s) {
			return p
		}
	}
	return nil
}

// grants reports whether s is one of the plan's apiStages.
func (p *Plan) grants(s *Stage) bool {
	for _, x := range p.Stages {
		if x == s {
			return true
		}
	}
	return false
}

// Level is the rank of a throttle in AWS's precedence.
type Level uint8

const (
	LevelPlanMethod  Level = iota + 1 // the plan's per-method override, per key
	LevelPlan                         // the plan's throttle, per key
	LevelStageMethod                  // the stage's method throttle or its default, shared
	LevelAccount                      // the account-level throttle, shared
)

func (l Level) String() string {
	switch l {
	case LevelPlanMethod:
		return "plan-method"
	case LevelPlan:
		return "plan"
	case LevelStageMethod:
		return "stage-method"
	case LevelAccount:
		return "account"
	}
	return "Level(?)"
}

// Limit is one token bucket a request must pass.
type Limit struct {
	Level Level
	// ID identifies the bucket, stable across reloads of the same configuration and safe in
	// a shared-data key (no spaces or control characters):
	//	plan-method  "plan:<planId>:<apiId>/<stage>:<method id>"   e.g. "plan:pro:petstore/prod:/pets/GET"
	//	plan         "plan:<planId>"
	//	stage-method "stage:<apiId>/<stage>:<method id>"           e.g. "stage:petstore/prod:/pets/{petId}/GET"
	//	account      "account"
	// PerKey buckets exist once per API key: the store key must add the key id.
	ID       string
	PerKey   bool
	Throttle limit.Throttle
}

// Match is where a request goes in the mapping.
type Match struct {
	Route  *Route  // nil: no route matched
	Stage  *Stage  // nil when Route is nil or bypasses the filter
	Method *Method // nil when no resource and method of Stage's API match
}

// Match finds the first route that selects the request, and in its stage the resource
// and method: literal segments win over {param}, which wins over {proxy+}; an exact HTTP
// method wins over ANY. path may carry a query string; it is ignored. Routes and
// resources see the normal form of the path and host (see cleanPath and cleanHost), so
// "//v1/./items", "/admin/%2e%2e/pets" and "Shop.example.com.:443" match as "/v1/items",
// "/pets" and "shop.example.com" do. A bypass route does not select a path upstreams may
// read differently (an encoded slash or backslash, a double encoding, a ';' next to a dot
// segment; see ambiguousPath): the routes after it do. No allocation unless the path needs
// normalising.
func (c *Config) Match(routeName, host, path, method string) Match {
	raw := stripQuery(path)
	path = cleanPath(raw)
	host = cleanHost(host)
	ambiguous := 0 // of the path, for bypass routes: 0 not yet known, 1 no, 2 yes
	for _, r := range c.Routes {
		if !r.matches(routeName, host, path) {
			continue
		}
		if r.Bypass {
			if ambiguous == 0 {
				ambiguous = 1
				if ambiguousPath(raw, path) {
					ambiguous = 2
				}
			}
			if ambiguous == 2 {
				continue // a bypass route opens only for an unambiguous path: see ambiguous.go
			}
			return Match{Route: r}
		}
		rest := path
		if r.StripPathPrefix {
			rest = path[len(r.PathPrefix):]
		}
		return Match{Route: r, Stage: r.Stage, Method: r.Stage.API.root.match(rest, method)}
	}
	return Match{}
}

// KeyByValue finds the key with this value (hashing it), or nil. Values that cannot be
// keys (outside 20 to 128 bytes) are not hashed.
func (c *Config) KeyByValue(value string) *Key {
	if len(value) < minKeyLen || len(value) > maxKeyLen {
		return nil
	}
	d := sum256(value)
	return c.keys.find(&d)
}

// KeyByDigest finds the key whose value has this SHA-256, or nil.
func (c *Config) KeyByDigest(d Digest) *Key { return c.keys.find(&d) }

// AppendLimits appends to dst every throttle the request must pass, in AWS's precedence:
// the plan's per-method override, the plan's throttle (both only when plan is not nil),
// the stage's method throttle (or its default), the account throttle. A request must pass
// all of them. m must have a Method. With a dst of capacity 4 it does not allocate.
func (c *Config) AppendLimits(dst []Limit, plan *Plan, m Match) []Limit {
	if plan != nil {
		if o := plan.overrides[m.Stage]; o != nil && o[m.Method.index] != nil {
			dst = append(dst, *o[m.Method.index])
		}
		if plan.limit != nil {
			dst = append(dst, *plan.limit)
		}
	}
	if l := m.Stage.methodLimits[m.Method.index]; l != nil {
		dst = append(dst, *l)
	}
	if c.Account != nil {
		dst = append(dst, *c.Account)
	}
	return dst
}

// ResponseType names a response the filter answers with.
type ResponseType uint8

const (
	InvalidAPIKey              ResponseType = iota // missing, unknown or disabled key; key not in a plan of the stage
	Throttled                                      // a token bucket is empty
	QuotaExceeded                                  // the plan's quota is used up
	MissingAuthenticationToken                     // no resource/method matched (UnmatchedResource Deny)
	Failure                                        // state failure or panic with FailClosed
	numResponseTypes
)

var responseTypeNames = [numResponseTypes]string{
	"INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED", "MISSING_AUTHENTICATION_TOKEN", "FAILURE",
}

func (t ResponseType) String() string {
	if t < numResponseTypes {
		return responseTypeNames[t]
	}
	return "ResponseType(?)"
}

// Response is a local reply. Headers have lower-case names; the filter adds Retry-After
// and rate-limit headers on top of these.
type Response struct {
	Status  int
	Headers [][2]string
	Body    string
}

// Response is the configured reply of type t (AWS's default unless overridden).
func (c *Config) Response(t ResponseType) Response { return c.responses[t] }

// Default values, exported for docs and tests.
const (
	DefaultAPIKeyHeader   = "x-api-key"
	DefaultKeyIDHeader    = "x-usageplans-key-id"
	DefaultPlanIDHeader   = "x-usageplans-plan-id"
	DefaultNamespace      = "usageplans"
	DefaultCASRetries     = 8
	DefaultAccountRate    = 10000
	DefaultAccountBurst   = 5000
	DefaultWeekStart      = time.Monday
	accountLimitID        = "account"
	maxCASRetries         = 1000
	minKeyLen, maxKeyLen  = 20, 128
	maxIDLen, maxNameLen  = 128, 1024
	maxNamespaceLen       = 64
	minStatus, maxStatus  = 200, 599
	defaultRouteNameInfix = "routes"
)
