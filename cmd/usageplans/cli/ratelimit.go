package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/filter/limit"
)

// ratelimitConfig prints the Rate Limit Service configuration a plugin configuration's
// global mode needs.
func ratelimitConfig(args []string, stdout, stderr io.Writer, now time.Time) int {
	fs := flag.NewFlagSet("ratelimit-config", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: usageplans ratelimit-config FILE

Prints the envoyproxy/ratelimit configuration (YAML, one file in RLS's RUNTIME_ROOT/
RUNTIME_SUBDIRECTORY/config) that FILE's global mode needs: its domain and the descriptor
the filter checks at configure. The filter sends each quota's limit with its descriptor, so
a plan or key change needs no RLS redeploy; only a new domain does. Exit status 1 when FILE
is invalid or has no global section.
`)
	}
	if st, ok := parse(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "usageplans ratelimit-config: want exactly one FILE, got %d arguments\n", fs.NArg())
		return ExitUsage
	}
	file := fs.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "usageplans ratelimit-config: %v\n", err)
		return ExitFail
	}
	cfg, err := config.Parse(data)
	if err != nil {
		for _, l := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "%s: %s\n", file, l)
		}
		return ExitFail
	}
	if cfg.Global == nil {
		fmt.Fprintf(stderr, "%s: no global section: local mode needs no Rate Limit Service\n", file)
		return ExitFail
	}
	fmt.Fprint(stdout, RateLimitYAML(cfg, now))
	return ExitOK
}

// RateLimitYAML is RLS's configuration for cfg's global mode. Comments list, per plan with
// a quota, the RLS unit its count lives on, and for the units that need a carry-over the
// next RLS window boundaries (from now on, for a year).
func RateLimitYAML(cfg *config.Config, now time.Time) string {
	g := cfg.Global
	var b strings.Builder
	fmt.Fprintf(&b, "# envoyproxy/ratelimit configuration for usageplans global mode (mode %s, %d proxies).\n", g.Mode, g.Proxies)
	b.WriteString("# Descriptors carry their own limits: only the domain must be known here.\n")
	for _, p := range cfg.Plans {
		if p.Quota == nil {
			continue
		}
		w := global.WindowAt(p.Quota, now.Unix())
		fmt.Fprintf(&b, "# plan %s: %d a %s, counted on RLS unit %s", p.ID, p.Quota.Limit, periodName(p.Quota), w.Unit)
		if w.Exact() {
			b.WriteString(" (exact: the RLS window is the period)\n")
			continue
		}
		b.WriteString(", carried over at RLS YEAR starts:")
		for _, t := range global.YearBoundaries(now.Unix(), now.AddDate(1, 0, 0).Unix()) {
			b.WriteString(" " + time.Unix(t, 0).UTC().Format(time.RFC3339))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "domain: %s\n", g.Domain)
	b.WriteString("descriptors:\n")
	fmt.Fprintf(&b, "  # the filter's configure-time check: an answer with this limit proves RLS loaded the domain\n")
	fmt.Fprintf(&b, "  - key: %s\n    value: %s\n    rate_limit:\n      unit: YEAR\n      requests_per_unit: 1\n", global.CheckKey, global.CheckValue)
	return b.String()
}

func periodName(q *limit.Quota) string {
	switch q.Period {
	case limit.Week:
		return "WEEK starting " + strings.ToUpper(q.WeekStart.String())
	case limit.Month:
		return "MONTH"
	}
	return "DAY"
}
