package core

import "strconv"

// LogFields renders d for a log line as key=value pairs: outcome, reason, route, stage,
// resource, method, key id, plan, limit, retry_after and error, each only when known. It
// never holds a key value: keys appear by id.
func (d *Decision) LogFields() string {
	b := make([]byte, 0, 160)
	b = append(b, "outcome="...)
	b = append(b, d.Outcome.String()...)
	b = append(b, " reason="...)
	b = strconv.AppendQuote(b, d.Reason)
	field := func(name, value string) {
		if value != "" {
			b = append(b, ' ')
			b = append(b, name...)
			b = append(b, '=')
			b = append(b, value...)
		}
	}
	if d.Route != nil {
		field("route", d.Route.Name)
	}
	if d.Stage != nil {
		field("stage", d.Stage.ID)
	}
	if d.Method != nil {
		field("resource", d.Method.Resource)
		field("method", d.Method.HTTPMethod)
	}
	if d.Key != nil {
		field("key_id", d.Key.ID)
	}
	if d.Plan != nil {
		field("plan", d.Plan.ID)
	}
	if d.Limit != nil {
		field("limit", d.Limit.ID)
		field("rate", strconv.FormatFloat(d.Limit.Throttle.Rate, 'g', -1, 64))
		field("burst", strconv.FormatInt(d.Limit.Throttle.Burst, 10))
	}
	if d.RetryAfter > 0 {
		field("retry_after", strconv.FormatInt(d.RetryAfter, 10))
	}
	if d.Err != nil {
		b = append(b, " error="...)
		b = strconv.AppendQuote(b, d.Err.Error())
	}
	return string(b)
}
