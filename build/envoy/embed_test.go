package envoy

import (
	"strings"
	"testing"
)

func TestEmbed(t *testing.T) {
	const cfg = "{\n  \"a\": [1, 2],\n  \"b\": {\"c\": \"d\"}\n}\n"
	for _, c := range []struct {
		name, doc, want, err string
	}{{
		name: "string block at its marker's indentation, old content replaced",
		doc:  "x:\n  # BEGIN plugin.json as value string\n  value: stale\n  # END plugin.json\ny: 1\n",
		want: "x:\n  # BEGIN plugin.json as value string\n  value: |\n    {\n      \"a\": [1, 2],\n      \"b\": {\"c\": \"d\"}\n    }\n  # END plugin.json\ny: 1\n",
	}, {
		name: "object block re-indented, keys in plugin.json's order",
		doc:  "spec:\n  # BEGIN plugin.json as pluginConfig object\n  # END plugin.json\n",
		want: "spec:\n  # BEGIN plugin.json as pluginConfig object\n  pluginConfig:\n    {\n      \"a\": [\n        1,\n        2\n      ],\n      \"b\": {\n        \"c\": \"d\"\n      }\n    }\n  # END plugin.json\n",
	}, {
		name: "no block",
		doc:  "x: 1\n",
		err:  "no # BEGIN plugin.json as KEY string|object block",
	}, {
		name: "BEGIN without END",
		doc:  "x: 1\n# BEGIN plugin.json as value string\ny: 2\n",
		err:  "line 2: # BEGIN plugin.json without an # END plugin.json",
	}, {
		name: "END without BEGIN",
		doc:  "x: 1\n# END plugin.json\n",
		err:  "line 2: # END plugin.json without a BEGIN",
	}} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Embed([]byte(c.doc), []byte(cfg))
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, c.want)
			}
			again, err := Embed(got, []byte(cfg))
			if err != nil || string(again) != string(got) {
				t.Fatalf("embedding twice changed the document (err %v):\n%s", err, again)
			}
		})
	}
}

func TestEmbedRejectsBadPluginJSON(t *testing.T) {
	doc := []byte("# BEGIN plugin.json as value string\n# END plugin.json\n")
	for _, c := range []struct{ cfg, want string }{
		{`["not", "an object"]`, "plugin.json: not a JSON object"},
		{`{"a": `, "plugin.json: not a JSON object"},
		{"{\n\t\"a\": 1\n}", "plugin.json: contains a tab; indent it with spaces"},
	} {
		_, err := Embed(doc, []byte(c.cfg))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Embed(%q) error %v, want %q", c.cfg, err, c.want)
		}
	}
}
