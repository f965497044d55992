package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/usageplans/usageplans/filter/config"
)

// demoKey is an apiKeys entry that carries its plain value.
type demoKey struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// PrintDemo prints what `make run` shows before the gateway listens: the configuration's
// keys that carry a plain value (it is the user's own demo configuration; this is the one
// place a key value is ever printed) and three curl lines: no key (403), a key (200), a
// burst (429). It fails when the configuration or the routes do not load.
func PrintDemo(w io.Writer, o Options) error {
	data, err := os.ReadFile(o.Config)
	if err != nil {
		return err
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return fmt.Errorf("%s is not valid:\n%w", o.Config, err)
	}
	upstream := o.Upstream
	if upstream == "" {
		upstream = "echo"
	}
	routes, err := loadRoutes(o.Routes, upstream)
	if err != nil {
		return err
	}
	keys := plainKeys(data)
	fmt.Fprintf(w, "Demo keys of %s (your own configuration: shown because of --print-demo):\n", o.Config)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range keys {
		state := "enabled"
		if ck := cfg.KeyByValue(k.Value); ck != nil && !ck.Enabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", k.ID, k.Name, state, k.Value)
	}
	tw.Flush()
	if len(keys) == 0 {
		fmt.Fprintln(w, "  (none: every key is given as valueSha256)")
	}
	base := "http://" + o.Listen
	t, ok := demoTarget(cfg, routes, keys)
	switch {
	case cfg.KeySource.Type != config.FromHeader:
		fmt.Fprintf(w, "\nThe keys come from an authorizer (apiKeySource AUTHORIZER): no curl lines to print.\n")
	case !ok:
		fmt.Fprintf(w, "\nNo GET method that requires a key is reachable through the routes (without --routes every\n"+
			"request has the route name \"default\"): pass --routes, e.g. --routes testdata/routes.json.\n")
	default:
		hostFlag := ""
		if t.host != "" {
			hostFlag = fmt.Sprintf("-H 'Host: %s' ", t.host)
		}
		url := base + t.path
		hdr := cfg.KeySource.Header
		fmt.Fprintf(w, "\nTry it (admin: http://%s/stats/prometheus):\n", o.Admin)
		fmt.Fprintf(w, "  curl -i %s%s\n", hostFlag, url)
		fmt.Fprintf(w, "    # no key: 403 {\"message\":\"Forbidden\"}\n")
		fmt.Fprintf(w, "  curl -i %s-H '%s: %s' %s\n", hostFlag, hdr, t.key.Value, url)
		fmt.Fprintf(w, "    # key %s: 200, the echo shows %s stripped and the identity headers added\n", t.key.ID, hdr)
		fmt.Fprintf(w, "  for i in $(seq 1 %d); do curl -s -o /dev/null -w '%%{http_code} ' %s-H '%s: %s' %s; done; echo\n",
			t.burst+5, hostFlag, hdr, t.key.Value, url)
		fmt.Fprintf(w, "    # a burst: 200 while the %d-token bucket lasts (it refills %s per second), then 429 {\"message\":\"Too Many Requests\"}\n",
			t.burst, formatFloat(t.rate))
	}
	fmt.Fprintln(w)
	return nil
}

// plainKeys lists the apiKeys entries with a plain value, in configuration order (both the
// array form and the AWS CLI output form {"items": [...]}).
func plainKeys(data []byte) []demoKey {
	var doc struct {
		APIKeys json.RawMessage `json:"apiKeys"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	var list []demoKey
	if json.Unmarshal(doc.APIKeys, &list) != nil {
		var wrapped struct {
			Items []demoKey `json:"items"`
		}
		if json.Unmarshal(doc.APIKeys, &wrapped) != nil {
			return nil
		}
		list = wrapped.Items
	}
	var out []demoKey
	for _, k := range list {
		if k.Value != "" {
			out = append(out, k)
		}
	}
	return out
}

type target struct {
	host, path string
	key        demoKey
	burst      int64   // the smallest bucket the key's requests pass
	rate       float64 // its refill rate
}

var param = regexp.MustCompile(`\{[^}]*\}`)

// demoTarget finds a GET the filter meters by key, reached through the gateway's routes,
// and the enabled key with the smallest burst for it (so that the burst line shows a 429).
func demoTarget(cfg *config.Config, routes []*Route, keys []demoKey) (target, bool) {
	for _, r := range cfg.Routes {
		if r.Bypass {
			continue
		}
		for _, m := range r.Stage.API.Methods {
			if !m.APIKeyRequired || (m.HTTPMethod != "GET" && m.HTTPMethod != "ANY") {
				continue
			}
			path := param.ReplaceAllStringFunc(m.Resource, func(p string) string {
				if strings.HasSuffix(p, "+}") {
					return "demo"
				}
				return "1"
			})
			if r.PathPrefix != "" && r.StripPathPrefix {
				path = strings.TrimSuffix(r.PathPrefix, "/") + path
			}
			host := r.Host
			if strings.HasPrefix(host, "*.") {
				host = "demo" + host[1:]
			}
			gr := matchRoute(routes, host, path)
			if gr == nil {
				continue
			}
			match := cfg.Match(gr.Name, host, path, "GET")
			if match.Method == nil || !match.Method.APIKeyRequired {
				continue
			}
			best := target{host: host, path: path, burst: -1}
			for _, k := range keys {
				ck := cfg.KeyByValue(k.Value)
				if ck == nil || !ck.Enabled {
					continue
				}
				plan := ck.Plan(match.Stage)
				if plan == nil {
					continue
				}
				var buf [4]config.Limit
				burst, rate := int64(-1), 0.0
				for _, l := range cfg.AppendLimits(buf[:0], plan, match) {
					if burst < 0 || l.Throttle.Burst < burst {
						burst, rate = l.Throttle.Burst, l.Throttle.Rate
					}
				}
				if burst >= 0 && (best.burst < 0 || burst < best.burst) {
					best.key, best.burst, best.rate = k, burst, rate
				}
			}
			if best.burst >= 0 {
				return best, true
			}
		}
	}
	return target{}, false
}
