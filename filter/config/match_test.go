package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestMatchManyLiteralChildren: a node lists up to maxFew literal children and keeps more
// in a map; at every count around the switch each literal still wins over {param}, which
// takes every other segment, and the resource below a literal is found.
func TestMatchManyLiteralChildren(t *testing.T) {
	for _, n := range []int{1, maxFew - 1, maxFew, maxFew + 1, 3 * maxFew} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var res []string
			for i := range n {
				res = append(res, fmt.Sprintf(`{"path": "/r%d", "resourceMethods": {"GET": {}}}`, i),
					fmt.Sprintf(`{"path": "/r%d/leaf", "resourceMethods": {"POST": {}}}`, i))
			}
			res = append(res, `{"path": "/{id}", "resourceMethods": {"ANY": {}}}`)
			c := mustParse(t, `{"apis": [{"id": "a", "resources": [`+strings.Join(res, ",")+`],
				"stages": [{"stageName": "s"}]}], "routes": [{"apiId": "a", "stage": "s"}]}`)
			if got := len(c.APIs[0].root.few) + len(c.APIs[0].root.literal); got != n {
				t.Fatalf("root has %d literal children, want %d", got, n)
			}
			for i := range n {
				if m := c.Match("", "h", fmt.Sprintf("/r%d", i), "GET").Method; m == nil || m.Resource != fmt.Sprintf("/r%d", i) || m.HTTPMethod != "GET" {
					t.Fatalf("/r%d GET matched %+v", i, m)
				}
				if m := c.Match("", "h", fmt.Sprintf("/r%d/leaf", i), "POST").Method; m == nil || m.Resource != fmt.Sprintf("/r%d/leaf", i) {
					t.Fatalf("/r%d/leaf POST matched %+v", i, m)
				}
			}
			for _, p := range []string{"/r", fmt.Sprintf("/r%d", n), "/R0", "/leaf"} {
				if m := c.Match("", "h", p, "DELETE").Method; m == nil || m.Resource != "/{id}" {
					t.Fatalf("%s DELETE matched %+v, want /{id}", p, m)
				}
			}
		})
	}
}
