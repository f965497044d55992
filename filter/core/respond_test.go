package core

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/state"
)

type h = [2]string

const ct = "content-type"

func TestRespond(t *testing.T) {
	on := shop(t)
	off := shop(t, `"rateLimitHeaders": true`, `"rateLimitHeaders": false`)
	open := shop(t, `"rateLimitHeaders": true`, `"rateLimitHeaders": true, "failurePolicy": "OPEN"`)
	overridden := shop(t, `"rateLimitHeaders": true`, `"rateLimitHeaders": true, "responses": {
		"INVALID_API_KEY": {"statusCode": "429", "headers": {"Retry-After": "30"}, "body": "go away"},
		"THROTTLED": {"headers": {"X-Slow-Down": "yes", "RateLimit-Limit": "mine"}},
		"QUOTA_EXCEEDED": {"statusCode": 402, "body": "{\"message\":\"pay\"}"}}`)

	throttled := Decision{Outcome: Throttled, RetryAfter: 2,
		RateLimit: RateLimit{Set: true, Limit: 2, Remaining: 0, Reset: 2, Window: 2, Name: "plan:basic"}}
	quota := Decision{Outcome: QuotaExceeded, RetryAfter: 50390,
		RateLimit: RateLimit{Set: true, Limit: 3, Remaining: 0, Reset: 50390, Window: 86400, Name: "quota"}}
	rlThrottled := []h{{"ratelimit-limit", "2"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "2"}, {"ratelimit-policy", "2;w=2"}}
	rlQuota := []h{{"ratelimit-limit", "3"}, {"ratelimit-remaining", "0"}, {"ratelimit-reset", "50390"}, {"ratelimit-policy", "3;w=86400"}}
	json := h{ct, "application/json"}
	failure := Decision{Outcome: Failure, Err: state.ErrExhausted}

	for _, tt := range []struct {
		name   string
		cfg    *config.Config
		d      Decision
		reject bool
		want   Response
	}{
		{"forbidden", on, Decision{Outcome: Forbidden}, true, Response{403,
			[]h{json, {"x-amzn-errortype", "ForbiddenException"}}, `{"message":"Forbidden"}`}},
		{"no resource", on, Decision{Outcome: NoResource}, true, Response{403,
			[]h{json, {"x-amzn-errortype", "MissingAuthenticationTokenException"}}, `{"message":"Missing Authentication Token"}`}},
		{"throttled", on, throttled, true, Response{429,
			append([]h{json, {"retry-after", "2"}}, rlThrottled...), `{"message":"Too Many Requests"}`}},
		{"throttled, headers off", off, throttled, true, Response{429,
			[]h{json, {"retry-after", "2"}}, `{"message":"Too Many Requests"}`}},
		{"quota exceeded", on, quota, true, Response{429,
			append([]h{json, {"retry-after", "50390"}}, rlQuota...), `{"message":"Limit Exceeded"}`}},
		{"failure, closed", on, failure, true, Response{500,
			[]h{json, {"x-amzn-errortype", "InternalServerErrorException"}}, `{"message":"Internal server error"}`}},
		{"failure, open", open, failure, false, Response{}},
		{"allow", on, Decision{Outcome: Allow, RateLimit: throttled.RateLimit}, false, Response{}},
		{"pass", on, Decision{Outcome: Pass}, false, Response{}},
		// overrides: a configured header wins; a 429 without a known wait says 1 second
		{"forbidden as 429", overridden, Decision{Outcome: Forbidden}, true, Response{429,
			[]h{{"retry-after", "30"}}, "go away"}},
		{"throttled, own headers", overridden, throttled, true, Response{429,
			[]h{{"x-slow-down", "yes"}, {"ratelimit-limit", "mine"}, {"retry-after", "2"},
				{"ratelimit-remaining", "0"}, {"ratelimit-reset", "2"}, {"ratelimit-policy", "2;w=2"}},
			`{"message":"Too Many Requests"}`}},
		{"quota as 402", overridden, quota, true, Response{402, append([]h{json}, rlQuota...), `{"message":"pay"}`}},
	} {
		got, reject := Respond(tt.cfg, &tt.d)
		if reject != tt.reject || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Respond = %v %+v\nwant %v %+v", tt.name, reject, got, tt.reject, tt.want)
		}
	}
}

func TestRateLimitHeadersOfAnAdmittedRequest(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	d := Decide(cfg, get("/items", k2), t0, &s)
	want := []h{{"ratelimit-limit", "100"}, {"ratelimit-remaining", "99"}, {"ratelimit-reset", "1"}, {"ratelimit-policy", "100;w=1"}}
	if got := RateLimitHeaders(cfg, &d); d.Outcome != Allow || !reflect.DeepEqual(got, want) {
		t.Fatalf("%v: headers %v, want %v", d.Outcome, got, want)
	}
	if got := RateLimitHeaders(shop(t, `"rateLimitHeaders": true`, `"rateLimitHeaders": false`), &d); got != nil {
		t.Fatalf("headers turned off: got %v", got)
	}
	if got := RateLimitHeaders(cfg, &Decision{Outcome: Forbidden}); got != nil {
		t.Fatalf("no limit: got %v", got)
	}
}

// TestRespondFromDecide checks the whole path once: a real throttled decision to its reply.
func TestRespondFromDecide(t *testing.T) {
	cfg := shop(t)
	var s state.MemStore
	var dc Decider
	for range 2 {
		dc.Decide(cfg, get("/items", k1), t0, &s)
	}
	d := dc.Decide(cfg, get("/items", k1), t0.Add(250*time.Millisecond), &s)
	r, reject := Respond(cfg, &d)
	want := Response{429, []h{{ct, "application/json"}, {"retry-after", "1"}, {"ratelimit-limit", "2"},
		{"ratelimit-remaining", "0"}, {"ratelimit-reset", "2"}, {"ratelimit-policy", "2;w=2"}}, `{"message":"Too Many Requests"}`}
	if !reject || !reflect.DeepEqual(r, want) || errors.Is(d.Err, state.ErrExhausted) {
		t.Fatalf("Respond = %v %+v\nwant true %+v", reject, r, want)
	}
}

// TestRespondSharesNoWritableHeaders: a reply built from the configured headers alone (no
// header added) can be appended to without changing the configuration's response.
func TestRespondSharesNoWritableHeaders(t *testing.T) {
	cfg := shop(t)
	r, _ := Respond(cfg, &Decision{Outcome: Forbidden})
	r.Headers = append(r.Headers, h{"x-extra", "1"})
	again, _ := Respond(cfg, &Decision{Outcome: Forbidden})
	want := []h{{ct, "application/json"}, {"x-amzn-errortype", "ForbiddenException"}}
	if !reflect.DeepEqual(again.Headers, want) || !reflect.DeepEqual(cfg.Response(config.InvalidAPIKey).Headers, want) {
		t.Fatalf("headers after a caller appended: reply %v, configured %v; want %v", again.Headers, cfg.Response(config.InvalidAPIKey).Headers, want)
	}
}
