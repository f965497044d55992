package keys

import (
	"flag"
	"fmt"
	"slices"
)

const generateHelp = `Usage: usageplans keys generate [--prefix P] [--config FILE --id ID [--plan PLAN]... [--name N] [--description D]]

Makes a key value from crypto/rand and prints it once, with its valueSha256. The value is
40 letters and digits, as AWS generates them; with --prefix P, P followed by 30 random
characters and a 6-character checksum, which secret scanners and "keys check" verify.

With --config, the key is also added to FILE as {"id": ID, "valueSha256": ...} (never the
value), and to each --plan in usagePlanKeys; the result is checked with the filter's parser
and written atomically. Hand the value to its owner now: it is not kept anywhere.
`

func generateCmd(args []string, env Env) int {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "a `prefix` of 2 to 32 letters and digits; the value gets a checksum")
	file := fs.String("config", "", "add the key to this plugin configuration `FILE`")
	id := fs.String("id", "", "the new key's `id` (with --config)")
	name := fs.String("name", "", "the key's `name` (with --config)")
	desc := fs.String("description", "", "the key's `description` (with --config)")
	var ps plans
	fs.Var(&ps, "plan", "put the key in usage plan `PLAN` (with --config; repeatable, or comma-separated)")
	if st, ok := parseFlags(fs, generateHelp, args, env); !ok {
		return st
	}
	if fs.NArg() != 0 {
		return usageError(env, "generate", "unexpected arguments (%d)", fs.NArg())
	}
	if *file == "" && (*id != "" || *name != "" || *desc != "" || len(ps) > 0) {
		return usageError(env, "generate", "--id, --name, --description and --plan need --config")
	}
	if *file != "" && *id == "" {
		return usageError(env, "generate", "--config needs --id, the new key's id")
	}
	if *prefix != "" {
		if err := checkPrefix(*prefix); err != nil {
			return usageError(env, "generate", "%v", err)
		}
	}
	var doc *document
	if *file != "" {
		var err error
		if doc, err = loadDocument(*file); err != nil {
			return fail(env, "generate", err)
		}
		if err := checkNewKey(doc.text, *id, ps); err != nil {
			return fail(env, "generate", err)
		}
	}
	value, err := generate(env.rand(), *prefix)
	if err != nil {
		return fail(env, "generate", err)
	}
	if doc != nil {
		ms := []member{{"id", jstr(*id)}}
		if *name != "" {
			ms = append(ms, member{"name", jstr(*name)})
		}
		if *desc != "" {
			ms = append(ms, member{"description", jstr(*desc)})
		}
		ms = append(ms, member{"valueSha256", jstr(digest(value))}, member{"enabled", "true"})
		text, err := addKeys(doc.text, []string{renderObject(ms)}, ps, *id)
		if err == nil {
			err = doc.save(text)
		}
		if err != nil {
			// Nothing was written; the value is not printed, so it is gone.
			return fail(env, "generate", err)
		}
	}
	printValue(env.Stdout, value)
	if doc != nil {
		fmt.Fprintf(env.Stderr, "%s: added key %q%s (its digest only)\n", doc.file, *id, planList(ps))
	}
	return exitOK
}

// checkNewKey reports an id already taken or a plan that does not exist, before a value is
// made: the parser would say so too, but not in these words.
func checkNewKey(text, id string, ps []string) error {
	for _, k := range apiKeys(text) {
		if k.id == id {
			return fmt.Errorf("there is already a key with id %q (keys rotate gives it a new value)", id)
		}
	}
	known := planIDs(text)
	for _, p := range ps {
		if !slices.Contains(known, p) {
			return fmt.Errorf("no usage plan with id %q", p)
		}
	}
	return nil
}

// addKeys appends rendered keys to apiKeys and the memberships of key id in plans ps.
func addKeys(text string, keys []string, ps []string, id string) (string, error) {
	path, _, _ := keysArray(text)
	text, err := appendElements(text, path, keys)
	if err != nil {
		return "", err
	}
	var pks []string
	for _, p := range ps {
		pks = append(pks, planKey(p, id))
	}
	return appendElements(text, "usagePlanKeys", pks)
}

func planList(ps []string) string {
	switch len(ps) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(" in usage plan %q", ps[0])
	}
	return fmt.Sprintf(" in usage plans %q", ps)
}
