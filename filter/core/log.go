package core

import "strconv"

// LogFields renders d for a log line as key=value pairs: outcome, reason, route, stage,
// resource, method, key id, plan, limit, retry_after and error, each only when known. It
// never holds a key value: keys appear by id.
func (d *Decision) LogFields() string {
	return string(d.AppendLogFields(make([]byte, 0, 160)))
}

// AppendLogFields appends LogFields to b: a caller that reuses b formats a log line without
// allocating, which matters in Wasm, where every allocation feeds a slow GC.
func (d *Decision) AppendLogFields(b []byte) []byte {
	return d.AppendLogFieldsAs(b, d.Outcome.String())
}

// AppendLogFieldsAs is AppendLogFields with the outcome the caller acted on, which the
// filter's metric and filter state name too (shadow mode lets a rejection through as
// "shadow_denied"); when it differs from the decision's, would_be= names the decision's.
func (d *Decision) AppendLogFieldsAs(b []byte, outcome string) []byte {
	b = append(b, "outcome="...)
	b = append(b, outcome...)
	if name := d.Outcome.String(); name != outcome {
		b = append(b, " would_be="...)
		b = append(b, name...)
	}
	b = append(b, " reason="...)
	b = appendQuote(b, d.Reason)
	if d.Route != nil {
		b = appendField(b, "route", d.Route.Name)
	}
	if d.Stage != nil {
		b = appendField(b, "stage", d.Stage.ID)
	}
	if d.Method != nil {
		b = appendField(b, "resource", d.Method.Resource)
		b = appendField(b, "method", d.Method.HTTPMethod)
	}
	if d.Key != nil {
		b = appendField(b, "key_id", d.Key.ID)
	}
	if d.Plan != nil {
		b = appendField(b, "plan", d.Plan.ID)
	}
	if d.Limit != nil {
		b = appendField(b, "limit", d.Limit.ID)
		b = append(b, " rate="...)
		b = appendRate(b, d.Limit.Throttle.Rate)
		b = append(b, " burst="...)
		b = strconv.AppendInt(b, d.Limit.Throttle.Burst, 10)
	}
	if d.RetryAfter > 0 {
		b = append(b, " retry_after="...)
		b = strconv.AppendInt(b, d.RetryAfter, 10)
	}
	if d.Err != nil {
		b = append(b, " error="...)
		b = appendQuote(b, d.Err.Error())
	}
	return b
}

// appendField appends " name=value", or nothing when value is empty.
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '=')
	return append(b, value...)
}

// appendQuote is strconv.AppendQuote, with a shortcut for the usual reason: printable
// ASCII without quotes or backslashes is quoted as it is, where AppendQuote makes two calls
// per byte.
func appendQuote(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendRate is strconv.AppendFloat(b, r, 'g', -1, 64), with a shortcut for the usual
// whole rates below a million, which 'g' prints as integers: the shortest-float search
// costs about a microsecond in Wasm.
func appendRate(b []byte, r float64) []byte {
	if r >= 1 && r < 1e6 && r == float64(int64(r)) {
		return strconv.AppendInt(b, int64(r), 10)
	}
	return strconv.AppendFloat(b, r, 'g', -1, 64)
}
