package config

import (
	"bytes"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/usageplans/usageplans/filter/limit"
)

// Parse parses and validates a configuration. On failure the error is an Errors listing
// every problem found, each with its JSON path; key values never appear in it. Parse keeps
// nothing of data and does not modify it; data must not change while Parse runs.
func Parse(data []byte) (*Config, error) {
	data, err := skipBOM(data)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errors{{Message: "configuration is empty: expected a JSON object"}}
	}
	if !gjson.ValidBytes(data) {
		return nil, Errors{{Message: "configuration is not valid JSON" + syntaxPosition(data)}}
	}
	// No copy of data (100,000 keys make 10 MB): parse keeps no substring of the document
	// (TestConfigKeepsNoSubstringOfTheDocument), and data is not modified while it runs.
	return parse(unsafe.String(unsafe.SliceData(data), len(data)))
}

// skipBOM drops a UTF-8 byte order mark at the start of the configuration, as RFC 8259
// (section 8.1) allows a parser to do: Windows editors write one, and positions in errors
// then count from the character after it, as those editors do. A UTF-16 or UTF-32 mark
// says the file is not UTF-8 at all, which is named rather than reported as a syntax
// error at its first byte.
func skipBOM(data []byte) ([]byte, error) {
	if rest, ok := bytes.CutPrefix(data, []byte("\xef\xbb\xbf")); ok {
		return rest, nil
	}
	for _, m := range []struct{ bom, name string }{
		{"\x00\x00\xfe\xff", "UTF-32 (big-endian)"}, {"\xff\xfe\x00\x00", "UTF-32 (little-endian)"},
		{"\xfe\xff", "UTF-16 (big-endian)"}, {"\xff\xfe", "UTF-16 (little-endian)"},
	} {
		if bytes.HasPrefix(data, []byte(m.bom)) {
			return nil, Errors{{Message: "configuration starts with a " + m.name + " byte order mark (" + spacedHex(m.bom) + ") at line 1, column 1: save it as UTF-8"}}
		}
	}
	return data, nil
}

// spacedHex writes bytes as upper-case hexadecimal pairs separated by spaces: "FF FE".
func spacedHex(s string) string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 0, 3*len(s))
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}

// parse parses doc, a copy of the configuration that holds key values. Every string the
// Config or the errors keep is a copy (p.str, p.members, the Path clone below), never a
// substring of doc: a substring would keep all of doc, key values included, in memory for
// as long as the configuration is in force.
func parse(doc string) (*Config, error) {
	p := &parser{}
	c := p.config(gjson.Parse(doc))
	if len(p.errs) > 0 {
		for i := range p.errs {
			p.errs[i].Path = strings.Clone(p.errs[i].Path)
		}
		return nil, p.errs
	}
	for _, r := range c.Routes {
		c.matchesHost = c.matchesHost || r.Host != ""
		c.matchesRouteName = c.matchesRouteName || r.RouteName != ""
	}
	return c, nil
}

// syntaxPosition says where the JSON syntax breaks, as ": line L, column C: why" (see
// syntaxError); line and column count bytes from 1.
func syntaxPosition(data []byte) string {
	offset, msg, bad := syntaxError(data)
	if !bad {
		return ""
	}
	line, col := 1, 1
	for _, c := range data[:max(offset-1, 0)] { // offset is just past the bad byte
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return ": line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col) + ": " + msg
}

type parser struct {
	errs Errors
	cfg  *Config
	// secrets is set while parsing apiKeys: errors there show no string's content.
	secrets bool

	apis   map[string]*API
	stages map[string]*Stage // by "apiId/stage"
	plans  map[string]*Plan

	apiKeySources []member         // apis[i].apiKeySource, checked against the top-level one
	quotaPaths    map[*Plan]string // where each plan's quota is, for the global section's errors

	keyObject  fields        // the members of the API key being read (see objectInto)
	keyChunks  chunks[Key]   // the Keys
	planChunks chunks[*Plan] // the first plan of each key
	// Which usagePlanKeys element put a key in a plan, for the error of a repeated pair:
	// by Key.ord for the key's first plan, in pairAt for its others.
	firstPairAt []int32
	pairAt      map[keyPlan]int
}

type keyPlan struct {
	key  *Key
	plan *Plan
}

var (
	topFields = []string{
		"usagePlans", "apiKeys", "usagePlanKeys", "apis", "routes",
		"unmatchedRoute", "unmatchedResource", "accountThrottle",
		"apiKeySource", "apiKeyHeader", "apiKeyQueryParameter", "authorizer",
		"stripApiKey", "identityHeaders", "rateLimitHeaders", "shadowMode",
		"failurePolicy", "namespace", "casRetries", "responses", "usageApi", "usageLogSeconds",
		"global",
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
	keyFields        = []string{"id", "value", "valueSha256", "name", "description", "enabled", "customerId", "previousValues"}
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
	}
	p.cfg = c
	p.apis = make(map[string]*API)
	p.stages = make(map[string]*Stage)
	p.plans = make(map[string]*Plan)

	f, ok := p.object(root, "", topFields, nil)
	if !ok {
		return nil
	}
	if v, ok := f.get("apis"); ok {
		for _, e := range p.list(v, "apis", "") {
			p.api(e.val, e.path())
		}
	}
	if v, ok := f.get("routes"); ok {
		for i, e := range p.list(v, "routes", "") {
			p.route(e.val, e.path(), i)
		}
	}
	if v, ok := f.get("usagePlans"); ok {
		for _, e := range p.list(v, "usagePlans", "items") {
			p.plan(e.val, e.path())
		}
	}
	if v, ok := f.get("apiKeys"); ok {
		p.secrets = true // any string under apiKeys may be a key value
		for _, e := range p.list(v, "apiKeys", "items") {
			p.key(e)
		}
		p.secrets = false
	}
	if v, ok := f.get("usagePlanKeys"); ok {
		p.planKeys(v, "usagePlanKeys")
	}
	p.options(&f)
	if v, ok := f.get("usageApi"); ok {
		p.usageAPI(v, "usageApi")
		if c.UsageAPI != nil {
			c.UsageAPI.Header = c.KeySource.Header
			if c.UsageAPI.Header == "" {
				c.UsageAPI.Header = DefaultAPIKeyHeader
			}
		}
	}
	p.usageLog(&f)
	c.planIDs = p.plans
	c.Keys = c.keys.keys
	if v, ok := f.get("global"); ok {
		p.global(v, "global")
	}
	return c
}
