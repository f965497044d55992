package main

import "testing"

func TestQueryParam(t *testing.T) {
	tests := []struct {
		path, name, want string
	}{
		{"/pets?api_key=abc", "api_key", "abc"},
		{"/pets?a=1&api_key=abc&b=2", "api_key", "abc"},
		{"/pets?api_key=first&api_key=second", "api_key", "first"},
		{"/pets?api_key=%41bc", "api_key", "Abc"},
		{"/pets?api_key=a+b", "api_key", "a b"},
		{"/pets?api_key=%zz", "api_key", ""}, // malformed: no key rather than a wrong one
		{"/pets?api_key", "api_key", ""},
		{"/pets?api_key=", "api_key", ""},
		{"/pets?xapi_key=abc", "api_key", ""},
		{"/pets?API_KEY=abc", "api_key", ""}, // names are case-sensitive, as in AWS
		{"/pets", "api_key", ""},
		{"/pets?", "api_key", ""},
		{"", "api_key", ""},
	}
	for _, tt := range tests {
		if got := queryParam(tt.path, tt.name); got != tt.want {
			t.Errorf("queryParam(%q, %q) = %q, want %q", tt.path, tt.name, got, tt.want)
		}
	}
}

func TestRemoveQueryParam(t *testing.T) {
	tests := []struct {
		path, name string
		want       string
		removed    bool
	}{
		{"/pets?api_key=abc", "api_key", "/pets", true},
		{"/pets?a=1&api_key=abc&b=%20", "api_key", "/pets?a=1&b=%20", true},
		{"/pets?api_key=1&a=1&api_key=2", "api_key", "/pets?a=1", true},
		{"/pets?api_key&a=1", "api_key", "/pets?a=1", true},
		{"/pets?a=1&&b=2&api_key=x", "api_key", "/pets?a=1&&b=2", true}, // the rest byte for byte
		{"/pets?a=1", "api_key", "/pets?a=1", false},
		{"/pets?xapi_key=1", "api_key", "/pets?xapi_key=1", false},
		{"/pets", "api_key", "/pets", false},
	}
	for _, tt := range tests {
		got, removed := removeQueryParam(tt.path, tt.name)
		if got != tt.want || removed != tt.removed {
			t.Errorf("removeQueryParam(%q, %q) = %q, %t; want %q, %t", tt.path, tt.name, got, removed, tt.want, tt.removed)
		}
	}
}
