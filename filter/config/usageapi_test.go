package config

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestUsageAPI: the usage API's prefix, header and admin keys as parsed, and the paths it
// takes: segment-wise, after normalisation, with the query string kept out.
func TestUsageAPI(t *testing.T) {
	sum := sha256.Sum256([]byte("AdminKeyAdminKeyAdmin0001"))
	doc := `{"apiKeyHeader": "X-Key", "usageApi": {"pathPrefix": "/ops/usage/", "adminKeys": [{"id": "ops", "valueSha256": "` + hex.EncodeToString(sum[:]) + `"}]}}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	u := c.UsageAPI
	if u.PathPrefix != "/ops/usage" || u.Header != "x-key" {
		t.Fatalf("prefix %q header %q", u.PathPrefix, u.Header)
	}
	if id, ok := u.Admin("AdminKeyAdminKeyAdmin0001"); !ok || id != "ops" {
		t.Fatalf("admin key: %q %t", id, ok)
	}
	if _, ok := u.Admin("AdminKeyAdminKeyAdmin0002"); ok {
		t.Fatal("a wrong admin key was taken")
	}
	for _, tt := range []struct {
		path, rest string
		ok         bool
	}{
		{"/ops/usage/p/usage?startDate=x", "/p/usage", true},
		{"/ops//usage/./p/usage", "/p/usage", true},
		{"/ops/usage", "", true},
		{"/ops/usagex/p", "", false},
		{"/ops", "", false},
	} {
		if rest, ok := c.UsageAPIPath(tt.path); rest != tt.rest || ok != tt.ok {
			t.Errorf("UsageAPIPath(%q) = %q %t, want %q %t", tt.path, rest, ok, tt.rest, tt.ok)
		}
	}
	for _, bad := range []struct{ doc, msg string }{
		{`{"usageApi": {}}`, `usageApi.adminKeys: required: [{"id": name, "valueSha256": the SHA-256 of the admin key in hex}]`},
		{`{"usageApi": {"adminKeys": []}}`, `usageApi.adminKeys: must list at least one admin key`},
		{`{"usageApi": {"pathPrefix": "/", "adminKeys": []}}`, "usageApi.pathPrefix: must start with \"/\", name more than the root and hold no '?', '#', '\\' or spaces, got \"/\"\nusageApi.adminKeys: must list at least one admin key"},
		{`{"usageApi": true}`, `usageApi: must be an object, got true`},
		{`{"usageLogSeconds": 59}`, `usageLogSeconds: must be 0 (off) or 60 to 86400 seconds, got 59`},
		{`{"usageLogSeconds": 86401}`, `usageLogSeconds: must be an integer from 0 to 86400, got 86401`},
	} {
		_, err := Parse([]byte(bad.doc))
		if err == nil || err.Error() != bad.msg {
			t.Errorf("%s: %v\nwant %s", bad.doc, err, bad.msg)
		}
	}
	if c, _ := Parse([]byte(`{}`)); c.UsageAPI != nil {
		t.Fatal("usage API without usageApi")
	}
}
