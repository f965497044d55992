package usage

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/state"
)

// Response is an answer of the usage API: a Usage document (AWS's GetUsage and UpdateUsage
// shape) or an error {"message": ...} with AWS's x-amzn-ErrorType.
type Response struct {
	Status  int
	Headers [][2]string // lower-case names
	Body    string
}

// The paging of GetUsage, as AWS's.
const (
	DefaultLimit = 25
	MaxLimit     = 500
)

// NoQuota is the remaining of a plan without a quota: nothing limits the key. AWS documents
// no value for this case; no real remaining is ever negative, so -1 cannot be mistaken for one.
const NoQuota = -1

// Handle answers one request of the usage API. target is the request path after the API's
// prefix ("/usageplans" in the gateway, usageApi.pathPrefix in the filter) with its query:
//
//	GET   /{usageplanId}/usage?startDate=YYYY-MM-DD&endDate=YYYY-MM-DD[&keyId=][&limit=][&position=]
//	PATCH /{usageplanId}/keys/{keyId}/usage   {"patchOperations": [{"op": "replace", "path": "/remaining", "value": "N"}]}
//
// now is the time of the request: it says which day is today (UTC) and which quota period
// is current. A request that fails changes nothing.
func Handle(cfg *config.Config, st Store, now time.Time, method, target string, body []byte) Response {
	path, query, _ := strings.Cut(target, "?")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(segs) == 2 && segs[0] != "" && segs[1] == "usage":
		if method != "GET" {
			return notAllowed("GET")
		}
		return getUsage(cfg, st, now, segs[0], query)
	case len(segs) == 4 && segs[0] != "" && segs[1] == "keys" && segs[2] != "" && segs[3] == "usage":
		if method != "PATCH" {
			return notAllowed("PATCH")
		}
		return updateUsage(cfg, st, now, segs[0], segs[2], body)
	}
	return fail(404, "NotFoundException", "No usage API resource at "+quote(path)+
		": GET /usageplans/{usageplanId}/usage or PATCH /usageplans/{usageplanId}/keys/{keyId}/usage")
}

func notAllowed(allow string) Response {
	r := fail(405, "MethodNotAllowedException", "Use "+allow+" on this resource")
	r.Headers = append(r.Headers, [2]string{"allow", allow})
	return r
}

func fail(status int, errorType, message string) Response {
	b := append([]byte(`{"message":`), appendString(nil, message)...)
	return Response{Status: status, Body: string(append(b, '}')),
		Headers: [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", errorType}}}
}

func badRequest(message string) Response { return fail(400, "BadRequestException", message) }

func planNotFound() Response {
	return fail(404, "NotFoundException", "Invalid Usage Plan ID specified")
}

// lookup finds the plan, and the key when keyID is not "", as the configuration in force
// names them.
func lookup(cfg *config.Config, planID, keyID string) (*config.Plan, *config.Key, *Response) {
	plan := cfg.PlanByID(planID)
	if plan == nil {
		r := planNotFound()
		return nil, nil, &r
	}
	if keyID == "" {
		return plan, nil, nil
	}
	key := cfg.KeyByID(keyID)
	if key == nil {
		r := fail(404, "NotFoundException", "Invalid API Key identifier specified")
		return nil, nil, &r
	}
	if !plan.HasKey(key) {
		r := fail(404, "NotFoundException", "API key "+quote(keyID)+" is not in usage plan "+quote(planID))
		return nil, nil, &r
	}
	return plan, key, nil
}

func getUsage(cfg *config.Config, st Store, now time.Time, planID, query string) Response {
	q, bad := parseGetUsage(cfg, now, planID, query)
	if bad != nil {
		return *bad
	}
	page, next := q.page(q.limit)
	return answer(cfg, st, now, q.plan, page, q.start, q.end, next)
}

// usageQuery is a GetUsage request as validated: the plan, the keys it may answer for
// (paged from index from, limit keys a page) and the days.
type usageQuery struct {
	plan       *config.Plan
	keys       []*config.Key
	from       int
	limit      int
	start, end int64
}

// page is the keys of the page of at most n keys, and the position of the next page ("" at
// the last).
func (q *usageQuery) page(n int) ([]*config.Key, string) {
	page := q.keys[q.from:min(q.from+n, len(q.keys))]
	next := ""
	if q.from+len(page) < len(q.keys) {
		next = base64.RawURLEncoding.EncodeToString([]byte(q.keys[q.from+len(page)].ID))
	}
	return page, next
}

// parseGetUsage validates a GetUsage request; a bad one gets its error response.
func parseGetUsage(cfg *config.Config, now time.Time, planID, query string) (usageQuery, *Response) {
	params := parseQuery(query)
	plan, _, bad := lookup(cfg, planID, "")
	if bad != nil {
		return usageQuery{}, bad
	}
	today := DayOf(now)
	start, r := date(params, "startDate")
	if r != nil {
		return usageQuery{}, r
	}
	end, r := date(params, "endDate")
	if r != nil {
		return usageQuery{}, r
	}
	fail := func(r Response) (usageQuery, *Response) { return usageQuery{}, &r }
	switch oldest := today - (QueryDays - 1); {
	case end < start:
		return fail(badRequest("endDate " + dateString(end) + " is before startDate " + dateString(start)))
	case start > today:
		return fail(badRequest("startDate " + dateString(start) + " is after today (" + dateString(today) + " UTC): there is no usage yet"))
	case start < oldest:
		return fail(badRequest("startDate " + dateString(start) + " is more than " + strconv.Itoa(QueryDays) +
			" days ago: usage is kept for " + strconv.Itoa(QueryDays) + " days, from " + dateString(oldest)))
	}
	q := usageQuery{plan: plan, keys: plan.Keys(), limit: DefaultLimit, start: start, end: end}
	if v, ok := params["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return fail(badRequest("Invalid limit " + quote(v) + ": want a whole number from 1 to " + strconv.Itoa(MaxLimit)))
		}
		q.limit = n
	}
	if id, ok := params["keyId"]; ok {
		_, key, bad := lookup(cfg, planID, id)
		if bad != nil {
			return usageQuery{}, bad
		}
		q.keys = []*config.Key{key}
	}
	if pos, ok := params["position"]; ok {
		if q.from = positionIndex(q.keys, pos); q.from < 0 {
			return fail(badRequest("Invalid position " + quote(pos) + ": pass the position of the previous page as it was given"))
		}
	}
	return q, nil
}

// positionIndex is the index in keys of the key a position names, or -1.
func positionIndex(keys []*config.Key, pos string) int {
	id, err := base64.RawURLEncoding.DecodeString(pos)
	if err != nil {
		return -1
	}
	for i, k := range keys {
		if k.ID == string(id) {
			return i
		}
	}
	return -1
}

// answer is the Usage document of keys in plan from day start to day end: one [used,
// remaining] pair per day up to today (a day after today has no usage yet and no pair).
func answer(cfg *config.Config, st Store, now time.Time, plan *config.Plan, keys []*config.Key, start, end int64, next string) Response {
	b := append([]byte(`{"usagePlanId":`), appendString(nil, plan.ID)...)
	b = append(b, `,"startDate":"`...)
	b = append(b, dateString(start)...)
	b = append(b, `","endDate":"`...)
	b = append(b, dateString(end)...)
	b = append(b, '"')
	if next != "" {
		b = append(b, `,"position":`...)
		b = appendString(b, next)
	}
	b = append(b, `,"values":{`...)
	today := DayOf(now)
	var v View
	for i, k := range keys {
		if err := st.Read(cfg, plan, k, &v); err != nil {
			return storeFailure(err, k)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k.ID)
		b = append(b, ":["...)
		for d := start; d <= min(end, today); d++ {
			if d > start {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = strconv.AppendInt(b, v.Record.At(d).Used, 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, remaining(plan.Quota, &v, d, now), 10)
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	b = append(b, "}}"...)
	return Response{Status: 200, Body: string(b), Headers: [][2]string{{"content-type", "application/json"}}}
}

func storeFailure(err error, k *config.Key) Response {
	if errors.Is(err, state.ErrExhausted) {
		return fail(409, "ConflictException", "Concurrent updates of the usage of API key "+quote(k.ID)+": retry")
	}
	return fail(500, "InternalServerErrorException", "Reading or writing the usage of API key "+quote(k.ID)+": "+err.Error())
}

// remaining is what the key could still make at the end of day d in d's quota period: the
// period's limit (less the offset in the key's initial period), plus the grant in force at
// the end of d, less what it used in the period up to d. Today's in the current period is
// what the decision will allow (its counter, not the sum of the days). Past days are worked
// out with the quota as configured now.
func remaining(q *limit.Quota, v *View, d int64, now time.Time) int64 {
	if q == nil {
		return NoQuota
	}
	if v.Fleet {
		return fleetRemaining(q, v, d, now)
	}
	ws, _ := q.Window(time.Unix(d*secondsPerDay, 0))
	wsDay := DayOf(ws)
	cur := q.At(now)
	curStart, _ := cur.Window()
	isCurrent := ws.Equal(curStart)
	c := v.Quota
	var lim int64
	switch {
	case c.Created != 0:
		lim = q.LimitOf(limit.Counter{Window: ws.Unix(), Created: c.Created})
	case isCurrent: // never used: its first request, in this period, will start the initial one
		lim = q.LimitOf(cur.Advance(c))
	default:
		lim = q.LimitOf(limit.Counter{})
	}
	used := v.Record.UsedFrom(wsDay, d)
	if isCurrent && d == DayOf(now) {
		if c = cur.Advance(c); c.Window == ws.Unix() {
			used = c.Used
		}
	}
	return max(lim+v.Record.GrantAt(wsDay, d)-used, 0)
}

func updateUsage(cfg *config.Config, st Store, now time.Time, planID, keyID string, body []byte) Response {
	plan, key, bad := lookup(cfg, planID, keyID)
	if bad != nil {
		return *bad
	}
	n, r := parsePatch(body)
	if r != nil {
		return *r
	}
	if plan.Quota == nil {
		return badRequest("Usage plan " + quote(planID) + " has no quota: there is no remaining quota to extend")
	}
	var v View
	if err := st.SetRemaining(cfg, plan, key, now.Unix(), n, &v); err != nil {
		return storeFailure(err, key)
	}
	// The same shape as GetUsage: the key's days of the current quota period.
	start, _ := plan.Quota.Window(now)
	return answer(cfg, st, now, plan, []*config.Key{key}, max(DayOf(start), DayOf(now)-(QueryDays-1)), DayOf(now), "")
}

// patchShape is what every malformed patch is told.
const patchShape = `{"patchOperations": [{"op": "replace", "path": "/remaining", "value": "N"}]}`

// parsePatch reads UpdateUsage's body: replace operations on /remaining, the last one wins.
func parsePatch(body []byte) (int64, *Response) {
	bad := func(msg string) (int64, *Response) { r := badRequest(msg); return 0, &r }
	if !gjson.ValidBytes(body) {
		return bad("Invalid patch: the body must be the JSON object " + patchShape)
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return bad("Invalid patch: the body must be the JSON object " + patchShape)
	}
	var ops gjson.Result
	var problem string
	root.ForEach(func(k, v gjson.Result) bool {
		if k.Str != "patchOperations" {
			problem = "Invalid patch: unknown field " + quote(k.Str) + ": the body is " + patchShape
			return false
		}
		ops = v
		return true
	})
	if problem != "" {
		return bad(problem)
	}
	if !ops.IsArray() || len(ops.Array()) == 0 {
		return bad("Invalid patch: patchOperations must be a non-empty array: " + patchShape)
	}
	var n int64
	for i, op := range ops.Array() {
		at := " (patchOperations[" + strconv.Itoa(i) + "])"
		if !op.IsObject() {
			return bad("Invalid patch operation: must be an object {\"op\", \"path\", \"value\"}" + at)
		}
		var o, p, val gjson.Result
		op.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "op":
				o = v
			case "path":
				p = v
			case "value":
				val = v
			case "from":
				problem = "Invalid patch operation: from is not supported for /remaining" + at
			default:
				problem = "Invalid patch operation: unknown field " + quote(k.Str) + at
			}
			return problem == ""
		})
		switch {
		case problem != "":
			return bad(problem)
		case o.Type != gjson.String || o.Str != "replace":
			return bad("Invalid patch operation specified: op must be \"replace\" on /remaining, got " + shown(o) + at)
		case p.Type != gjson.String || p.Str != "/remaining":
			return bad("Invalid patch path " + shown(p) + " specified for op 'replace': must be \"/remaining\"" + at)
		}
		v, ok := wholeNumber(val)
		if !ok {
			return bad("Invalid value " + shown(val) + " for /remaining: must be a whole number of requests from 0 to " +
				strconv.FormatInt(maxCount, 10) + ", as a string" + at)
		}
		n = v
	}
	return n, nil
}

// wholeNumber reads a patch value: a string of decimal digits (AWS's patch values are
// strings), or a JSON integer.
func wholeNumber(v gjson.Result) (int64, bool) {
	s := v.Str
	switch v.Type {
	case gjson.String:
	case gjson.Number:
		s = v.Raw
	default:
		return 0, false
	}
	if s == "" || len(s) > 16 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n <= maxCount
}

// shown renders a JSON value for an error message, cut short.
func shown(v gjson.Result) string {
	switch {
	case !v.Exists():
		return "nothing"
	case v.Type == gjson.String:
		return quote(v.Str)
	}
	return cut(v.Raw)
}

func quote(s string) string { return strconv.Quote(cut(s)) }

func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// date reads a required date parameter.
func date(params map[string]string, name string) (int64, *Response) {
	s, ok := params[name]
	if !ok || s == "" {
		r := badRequest(name + " is required: a UTC date such as 2026-03-14")
		return 0, &r
	}
	day, ok := parseDate(s)
	if !ok {
		r := badRequest("Invalid " + name + " " + quote(s) + ": want a date YYYY-MM-DD (UTC)")
		return 0, &r
	}
	return day, nil
}

// parseDate reads YYYY-MM-DD, a real calendar date, as its UTC day. By hand: time.Parse and
// Format would add their layout machinery to the module for one format, and time's Date
// accessors the local time zone's.
func parseDate(s string) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	num := func(b string) int {
		n := 0
		for i := 0; i < len(b); i++ {
			if b[i] < '0' || b[i] > '9' {
				return -1
			}
			n = n*10 + int(b[i]-'0')
		}
		return n
	}
	y, m, d := num(s[:4]), num(s[5:7]), num(s[8:])
	if y < 0 || m < 0 || d < 0 {
		return 0, false
	}
	return limit.DaysOf(int64(y), m, d)
}

func dateString(day int64) string {
	y, m, d := limit.DateOf(day)
	b := make([]byte, 0, 10)
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = append(b, byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
	return string(b)
}

// parseQuery decodes a query string; the first of repeated parameters wins, and one that
// does not decode is kept as it was sent (it then fails validation by name).
func parseQuery(q string) map[string]string {
	out := make(map[string]string)
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if _, dup := out[k]; !dup && k != "" {
			out[k] = v
		}
	}
	return out
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
