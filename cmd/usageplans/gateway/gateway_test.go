package gateway

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/host"
)

func TestMatchRoute(t *testing.T) {
	routes := []*Route{
		{Name: "api", Host: "api.example.com", PathPrefix: "/v1"},
		{Name: "wild", Host: "*.example.org", PathPrefix: "/"},
		{Name: "any-admin", PathPrefix: "/admin"},
		{Name: "rest", Host: "*", PathPrefix: "/"},
	}
	for _, c := range []struct {
		host, path, want string
	}{
		{"api.example.com", "/v1/pets", "api"},
		{"API.Example.com:8080", "/v1", "api"},
		{"api.example.com", "/v2/pets", "rest"},
		{"a.example.org", "/x", "wild"},
		{"a.b.example.org:80", "/x", "wild"},
		{"example.org", "/x", "rest"}, // "*.example.org" needs a subdomain
		{"xexample.org", "/x", "rest"},
		{"other", "/admin/users", "any-admin"},
		{"other", "/administrator", "any-admin"}, // a plain prefix, as Envoy's route prefix
		{"[::1]:8080", "/", "rest"},
	} {
		got := "<nil>"
		if r := matchRoute(routes, c.host, c.path); r != nil {
			got = r.Name
		}
		if got != c.want {
			t.Errorf("matchRoute(%q, %q) = %s, want %s", c.host, c.path, got, c.want)
		}
	}
	if r := matchRoute(routes[:1], "api.example.com", "/v2"); r != nil {
		t.Errorf("no route should match, got %s", r.Name)
	}
}

func TestLoadRoutes(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		f := filepath.Join(dir, "routes.json")
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	rs, err := loadRoutes(write(`{"routes": [{"name": "a", "upstream": "http://127.0.0.1:9/base"}, {"name": "b", "host": "*.x.org"}]}`), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].PathPrefix != "/" || rs[0].Cluster != "127.0.0.1:9" || rs[1].Cluster != "echo" {
		t.Errorf("defaults: %+v %+v", *rs[0], *rs[1])
	}
	if _, ok := rs[1].up.(*echoUpstream); !ok {
		t.Errorf("route b takes --upstream echo, got %T", rs[1].up)
	}
	rs, err = loadRoutes("", "http://127.0.0.1:9")
	if err != nil || len(rs) != 1 || rs[0].Name != "default" || rs[0].PathPrefix != "" {
		t.Errorf("no routes file: %v %+v", err, rs)
	}
	if m := matchRoute(rs, "anything", "/any"); m == nil || m.Name != "default" {
		t.Errorf("the default route must select every request")
	}

	for _, c := range []struct{ file, want string }{
		{`{"routes": []}`, "routes: must list at least one route"},
		{`{"routes": [{"name": "a", "prefix": "/"}]}`, `unknown field "prefix"`},
		{`{"routes": [{"name": "a"}, {"name": "a"}, {"pathPrefix": "x"}, {"name": "c", "host": "a.*.com"}, {"name": "d", "upstream": "ftp://h"}]}`,
			"routes[1].name: \"a\" is already the name of routes[0]\n" +
				"routes[2].name: must not be empty\n" +
				"routes[2].pathPrefix: must start with \"/\", got \"x\"\n" +
				"routes[3].host: a wildcard must be \"*\" or lead as in \"*.example.com\", got \"a.*.com\"\n" +
				"routes[4].upstream: must be echo or an http(s) URL with a host, got \"ftp://h\""},
	} {
		_, err := loadRoutes(write(c.file), "echo")
		if err == nil || !strings.HasSuffix(err.Error(), c.want) {
			t.Errorf("loadRoutes(%s): %v, want an error ending with %q", c.file, err, c.want)
		}
	}
	if _, err := loadRoutes("", "127.0.0.1:8081"); err == nil || err.Error() != `--upstream: must be echo or an http(s) URL with a host, got "127.0.0.1:8081"` {
		t.Errorf("bad --upstream: %v", err)
	}
}

func TestRedactConfig(t *testing.T) {
	in := `{"z": 1, "apiKeys": [{"id": "a", "value": "SecretValue000000000001", "Value": "x", "name": "n"},
 {"id": "b", "valueSha256": "abcd", "nested": {"value": "deep"}}],
 "usagePlans": {"items": [{"value": "not a key", "quota": {"limit": 1.50}}]}}`
	want := `{
  "z": 1,
  "apiKeys": [
    {
      "id": "a",
      "value": "[redacted]",
      "Value": "[redacted]",
      "name": "n"
    },
    {
      "id": "b",
      "valueSha256": "[redacted]",
      "nested": {
        "value": "[redacted]"
      }
    }
  ],
  "usagePlans": {
    "items": [
      {
        "value": "not a key",
        "quota": {
          "limit": 1.50
        }
      }
    ]
  }
}`
	got, err := redactConfig([]byte(in))
	if err != nil || string(got) != want {
		t.Errorf("redactConfig: %v\n%s\nwant:\n%s", err, got, want)
	}
	// The AWS CLI output shape.
	got, err = redactConfig([]byte(`{"apiKeys": {"items": [{"value": "SecretValue000000000001"}], "position": "p"}}`))
	if err != nil || bytes.Contains(got, []byte("SecretValue")) || !bytes.Contains(got, []byte(`"position": "p"`)) {
		t.Errorf("redactConfig of {items}: %v\n%s", err, got)
	}
	if _, err := redactConfig([]byte(`{"apiKeys": [`)); err == nil {
		t.Errorf("redactConfig of broken JSON: no error")
	}
}

func TestPrometheusFormat(t *testing.T) {
	var b bytes.Buffer
	writePrometheus(&b, []stat{
		{name: "wasmcustom.a.b-c", prom: promName("a.b-c"), value: 3},
		{name: "h", prom: "h", labels: `x="1"`, typ: host.MetricHistogram, count: 2, sum: 7.5,
			buckets: []uint64{0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}},
		{name: "g", prom: "g", typ: host.MetricGauge, value: 4},
	})
	want := `# TYPE a_b_c counter
a_b_c 3
# TYPE g gauge
g 4
# TYPE h histogram
h_bucket{x="1",le="0.5"} 0
h_bucket{x="1",le="1"} 1
h_bucket{x="1",le="5"} 2
`
	if !strings.HasPrefix(b.String(), want) {
		t.Errorf("writePrometheus:\n%s\nwant it to start with:\n%s", b.String(), want)
	}
	for _, line := range []string{"h_bucket{x=\"1\",le=\"3.6e+06\"} 2\n", "h_bucket{x=\"1\",le=\"+Inf\"} 2\n", "h_sum{x=\"1\"} 7.5\n", "h_count{x=\"1\"} 2\n"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("writePrometheus lacks %q", line)
		}
	}
	b.Reset()
	writeText(&b, []stat{{name: "b", value: 2}, {name: "a", value: 1},
		{name: "t", typ: host.MetricHistogram, count: 4, sum: 10, buckets: []uint64{0, 1, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}}})
	if want := "a: 1\nb: 2\nt: count=4 sum=10 P50<=5 P90<=10 P99<=10\n"; b.String() != want {
		t.Errorf("writeText:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestLogField(t *testing.T) {
	for in, want := range map[string]string{"": "-", "k1": "k1", "a b": `"a b"`, "x\ny": `"x\ny"`, `q"`: `"q\""`, "a=b": `"a=b"`} {
		if got := field(in); got != want {
			t.Errorf("field(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestEchoRedactsKeys(t *testing.T) {
	u := &echoUpstream{keyNames: func() (string, string) { return "x-key", "api_key" }}
	req, _ := http.NewRequest("PUT", "http://h/p?a=1&api_key=SecretValue000000000001&api%5Fkey=Another0000000000000002&b=2", strings.NewReader("abc"))
	req.Header.Set("X-Key", "SecretValue000000000001")
	req.Header.Add("X-Other", "1")
	req.Header.Add("X-Other", "2")
	resp, err := u.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	want := `{
  "method": "PUT",
  "path": "/p?a=1&api_key=[redacted]&api%5Fkey=[redacted]&b=2",
  "headers": {
    "host": "h",
    "x-key": "[redacted]",
    "x-other": "1, 2"
  },
  "bodyBytes": 3
}
`
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || string(b) != want {
		t.Errorf("echo: %d %v\n%s\nwant:\n%s", resp.StatusCode, resp.Header, b, want)
	}
}
