package keys

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

const rotateHelp = `Usage: usageplans keys rotate --config FILE --id ID [--grace 72h] [--prefix P]

Gives key ID a new value, printed once with its valueSha256, and keeps the old value
working for the grace period: the old digest moves to the key's previousValues with
"until" = now + grace (rounded up to the second), which the filter accepts strictly
before that time and never after. Previous values whose time has passed are dropped.
--grace 0 retires the old value at once. The key keeps its id, plans and counters.
`

func rotateCmd(args []string, env Env) int {
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	file := fs.String("config", "", "the plugin configuration `FILE` to edit")
	id := fs.String("id", "", "the `id` of the key to rotate")
	grace := fs.Duration("grace", 72*time.Hour, "how long the old value keeps working")
	prefix := fs.String("prefix", "", "make the new value with this `prefix` and a checksum (see keys generate)")
	if st, ok := parseFlags(fs, rotateHelp, args, env); !ok {
		return st
	}
	switch {
	case fs.NArg() != 0:
		return usageError(env, "rotate", "unexpected arguments (%d)", fs.NArg())
	case *file == "" || *id == "":
		return usageError(env, "rotate", "needs --config FILE and --id ID")
	case *grace < 0:
		return usageError(env, "rotate", "--grace must not be negative, got %v", *grace)
	}
	if *prefix != "" {
		if err := checkPrefix(*prefix); err != nil {
			return usageError(env, "rotate", "%v", err)
		}
	}
	doc, err := loadDocument(*file)
	if err != nil {
		return fail(env, "rotate", err)
	}
	var key *keyEntry
	for _, k := range apiKeys(doc.text) {
		if k.id == *id {
			key = &k
			break
		}
	}
	if key == nil {
		return fail(env, "rotate", fmt.Errorf("%s has no key with id %q", doc.file, *id))
	}
	now := env.now().UTC()
	until := ceilSecond(now.Add(*grace))
	value, err := generate(env.rand(), *prefix)
	if err != nil {
		return fail(env, "rotate", err)
	}

	// previousValues: those still in force, then the value being retired.
	var prev []string
	dropped := 0
	key.elem.Get("previousValues").ForEach(func(_, e gjson.Result) bool {
		t, err := time.Parse(time.RFC3339, e.Get("until").Str)
		if err != nil || !now.Before(t) {
			dropped++
			return true
		}
		prev = append(prev, e.Raw)
		return true
	})
	if *grace > 0 {
		prev = append(prev, renderObject([]member{{"valueSha256", jstr(key.digest)}, {"until", jstr(until.Format(time.RFC3339))}}))
	}
	set := []member{{"valueSha256", jstr(digest(value))}}
	drop := []string{"value"}
	if len(prev) > 0 {
		set = append(set, member{"previousValues", "[" + strings.Join(prev, ", ") + "]"})
	} else {
		drop = append(drop, "previousValues")
	}
	obj := rewriteObject(key.elem, set, drop...)
	text := apply(doc.text, []edit{{key.elem.Index, key.elem.Index + len(key.elem.Raw), obj}})
	if err := doc.save(text); err != nil {
		return fail(env, "rotate", err)
	}
	printValue(env.Stdout, value)
	if *grace > 0 {
		fmt.Fprintf(env.Stderr, "%s: key %q rotated; its previous value is accepted until %s", doc.file, *id, until.Format(time.RFC3339))
	} else {
		fmt.Fprintf(env.Stderr, "%s: key %q rotated; its previous value no longer works", doc.file, *id)
	}
	if dropped > 0 {
		fmt.Fprintf(env.Stderr, "; dropped %d expired previous value(s)", dropped)
	}
	fmt.Fprintln(env.Stderr)
	return exitOK
}

func ceilSecond(t time.Time) time.Time {
	if s := t.Truncate(time.Second); !s.Equal(t) {
		return s.Add(time.Second)
	}
	return t
}
