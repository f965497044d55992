package config

import "testing"

// Parse decides once per configuration whether requests need their host and route name
// read (issue 3 review: the filter walked every route on every request to find out).
func TestMatchesHostAndRouteName(t *testing.T) {
	const api = `"apis": [{"id": "a", "resources": [{"path": "/x", "resourceMethods": {"GET": {}}}], "stages": [{"stageName": "s"}]}]`
	tests := []struct {
		routes          string
		host, routeName bool
	}{
		{`[]`, false, false},
		{`[{"match": {"pathPrefix": "/v1"}, "apiId": "a", "stage": "s"}]`, false, false},
		{`[{"match": {"pathPrefix": "/v1"}, "bypass": true}, {"match": {"host": "a.example.com"}, "apiId": "a", "stage": "s"}]`, true, false},
		{`[{"match": {"routeName": "r"}, "apiId": "a", "stage": "s"}]`, false, true},
		{`[{"match": {"pathPrefix": "/admin"}, "bypass": true}, {"match": {"routeName": "r", "host": "*.example.com"}, "apiId": "a", "stage": "s"}]`, true, true},
	}
	for _, tt := range tests {
		c := mustParse(t, `{`+api+`, "routes": `+tt.routes+`}`)
		if c.MatchesHost() != tt.host || c.MatchesRouteName() != tt.routeName {
			t.Errorf("routes %s: MatchesHost %v, MatchesRouteName %v, want %v %v", tt.routes, c.MatchesHost(), c.MatchesRouteName(), tt.host, tt.routeName)
		}
	}
}
