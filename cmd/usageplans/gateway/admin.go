package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

// adminMux serves the admin endpoint, modelled on Envoy's admin interface.
func (g *Gateway) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		text(w, http.StatusOK, `usageplans admin
  /ready              LIVE (200) while serving, DRAINING (503) during shutdown
  /stats              the filter's metrics and the gateway's counters, as Envoy's /stats
  /stats/prometheus   the same in the Prometheus text format (both take ?filter=REGEX)
  /config_dump        the module and configuration serving now, key values and digests redacted
  /reload             POST: swap to the current --wasm and --config files
  /usageplans/{id}/usage?startDate=&endDate=[&keyId=&limit=&position=]   AWS's GetUsage
  /usageplans/{id}/keys/{keyId}/usage   PATCH: AWS's UpdateUsage (replace /remaining)
`)
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if g.draining.Load() {
			text(w, http.StatusServiceUnavailable, "DRAINING\n")
			return
		}
		text(w, http.StatusOK, "LIVE\n")
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		stats, ok := g.filtered(w, r)
		if !ok {
			return
		}
		var b bytes.Buffer
		writeText(&b, stats)
		text(w, http.StatusOK, b.String())
	})
	mux.HandleFunc("/stats/prometheus", func(w http.ResponseWriter, r *http.Request) {
		stats, ok := g.filtered(w, r)
		if !ok {
			return
		}
		var b bytes.Buffer
		writePrometheus(&b, stats)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write(b.Bytes())
	})
	mux.HandleFunc("/config_dump", g.configDump)
	mux.HandleFunc(usagePrefix+"/", g.serveUsage)
	mux.HandleFunc("/reload", func(w http.ResponseWriter, r *http.Request) {
		if !g.mutation(w, r) {
			return
		}
		res, err := g.Reload(r.Context(), "POST /reload")
		switch {
		case err != nil:
			text(w, http.StatusUnprocessableEntity, err.Error()+"\n")
		case !res.Changed:
			text(w, http.StatusOK, fmt.Sprintf("unchanged: version %d keeps serving\n", res.Version))
		default:
			text(w, http.StatusOK, fmt.Sprintf("reloaded: version %d serves (module sha256 %s, configuration sha256 %s)\n",
				res.Version, res.ModuleSHA256, res.ConfigSHA256))
		}
	})
	return mux
}

// filtered is the stats snapshot, reduced as Envoy's ?filter=REGEX does: to the stats whose
// dotted name matches.
func (g *Gateway) filtered(w http.ResponseWriter, r *http.Request) ([]stat, bool) {
	all := g.snapshot()
	f := r.URL.Query().Get("filter")
	if f == "" {
		return all, true
	}
	re, err := regexp.Compile(f)
	if err != nil {
		text(w, http.StatusBadRequest, fmt.Sprintf("filter: %v\n", err))
		return nil, false
	}
	out := all[:0]
	for _, s := range all {
		if re.MatchString(s.name) {
			out = append(out, s)
		}
	}
	return out, true
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// ConfigDump is the body of /config_dump.
type ConfigDump struct {
	Version      int             `json:"version"` // the plugin version serving
	Loaded       string          `json:"loaded"`  // when it started serving (RFC 3339)
	VMID         string          `json:"vmId"`
	RootID       string          `json:"rootId"`
	Workers      int             `json:"workers"`
	Module       ModuleDump      `json:"module"`
	Routes       []*Route        `json:"routes"`
	ConfigFile   string          `json:"configFile"`
	ConfigSHA256 string          `json:"configSha256"`
	Config       json.RawMessage `json:"configuration"` // with key values and digests redacted
}

// ModuleDump describes the module serving.
type ModuleDump struct {
	File       string `json:"file"`
	SHA256     string `json:"sha256"`
	ABIVersion string `json:"abiVersion"`
}

func (g *Gateway) configDump(w http.ResponseWriter, r *http.Request) {
	a := g.active()
	cfg, err := redactConfig(a.config)
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	d := ConfigDump{
		Version: a.n, Loaded: a.loaded.UTC().Format(time.RFC3339), VMID: g.opts.VMID, RootID: g.opts.RootID,
		Workers: g.opts.Workers, Module: ModuleDump{File: g.opts.Wasm, SHA256: a.wasmSHA256, ABIVersion: a.module.ABIVersion()},
		Routes: g.routes, ConfigFile: g.opts.Config, ConfigSHA256: a.configSHA256, Config: cfg,
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(out, '\n'))
}
