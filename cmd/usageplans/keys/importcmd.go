package keys

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

const importHelp = `Usage: usageplans keys import --config FILE [--plan PLAN]... [--format auto|csv|json] [--dry-run] KEYFILE

Merges API keys into FILE, as digests only (valueSha256; the values are not written). KEYFILE
("-" for stdin) is either
  - AWS's API key file (CSV, what "aws apigateway import-api-keys --format csv" reads):
    columns Name and Key required, Description, Enabled and UsagePlanIds optional, header
    names in any case and order, other columns ignored, several plan ids quoted ("a,b" or
    'a,b'), Enabled true unless "false"; or
  - AWS's ApiKey JSON: the output of "aws apigateway get-api-keys --include-values"
    ({"items": [...]}), of "get-usage-plan-keys", of "get-api-key --include-value" or
    "create-api-key" (one object), or an array of such objects.
A key whose value is already in FILE is overwritten (name, description, enabled; as AWS's
import does) and keeps its id; a new key's id is AWS's "id" (JSON), or else made from its
name: lower case, runs of other characters as "-", "-2", "-3"... when taken. Each key joins
the plans of its UsagePlanIds and every --plan (memberships are added, never removed).
Any bad row is reported with its line and column, and nothing is written. On success the
ids are printed as AWS's ImportApiKeys answers: {"ids": [...], "warnings": [...]}.
`

// importKey is one key read from a key file.
type importKey struct {
	where  string // "keys.csv:3" or "keys.json: items[2]", for messages
	id     string // AWS's id (JSON), or "" to make one from name
	name   string
	desc   string
	value  string
	enable bool

	customerID    string
	hasCustomerID bool // JSON only: CSV has no such column, so a CSV import keeps it

	plans     []string
	planWhere string // where plans came from, for messages
}

func importCmd(args []string, env Env) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	file := fs.String("config", "", "the plugin configuration `FILE` to merge into")
	format := fs.String("format", "auto", "the key file's `format`: csv, json, or auto (JSON when it starts with { or [)")
	dry := fs.Bool("dry-run", false, "check and report, write nothing")
	prefix := fs.String("prefix", "", "values starting with `P` must carry a valid checksum (see keys generate)")
	var ps plans
	fs.Var(&ps, "plan", "also put every imported key in usage plan `PLAN` (repeatable, or comma-separated)")
	if st, ok := parseFlags(fs, importHelp, args, env); !ok {
		return st
	}
	if *file == "" || fs.NArg() != 1 {
		return usageError(env, "import", "needs --config FILE and one KEYFILE (got %d)", fs.NArg())
	}
	if *format != "auto" && *format != "csv" && *format != "json" {
		return usageError(env, "import", "--format must be auto, csv or json, got %q", *format)
	}
	keyFile := fs.Arg(0)
	var data []byte
	var err error
	if keyFile == "-" {
		if env.Stdin == nil {
			return usageError(env, "import", "no stdin")
		}
		data, err = io.ReadAll(env.Stdin)
		keyFile = "stdin"
	} else {
		data, err = os.ReadFile(keyFile)
	}
	if err != nil {
		return fail(env, "import", err)
	}
	doc, err := loadDocument(*file)
	if err != nil {
		return fail(env, "import", err)
	}
	text := strings.TrimPrefix(string(data), bom)
	isJSON := *format == "json" || *format == "auto" && strings.IndexAny(strings.TrimSpace(text), "{[") == 0
	var recs []importKey
	var problems []string
	if isJSON {
		recs, problems = readJSONKeys(keyFile, text)
	} else {
		recs, problems = readCSVKeys(keyFile, text)
	}
	if *prefix != "" {
		for _, r := range recs {
			if strings.HasPrefix(r.value, *prefix) {
				if _, err := checkChecksum(r.value); err != nil {
					problems = append(problems, fmt.Sprintf("%s: the key starts with %q but %v", r.where, *prefix, err))
				}
			}
		}
	}
	var m merged
	if len(problems) == 0 {
		m, problems = merge(doc.text, recs, ps)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(env.Stderr, p)
		}
		fmt.Fprintf(env.Stderr, "usageplans keys import: %d problem(s) in %s; nothing written to %s\n", len(problems), keyFile, doc.file)
		return exitFail
	}
	if *dry {
		err = doc.check(m.text)
	} else {
		err = doc.save(m.text)
	}
	if err != nil {
		return fail(env, "import", err)
	}
	out, _ := json.MarshalIndent(struct {
		IDs      []string `json:"ids"`
		Warnings []string `json:"warnings"`
	}{m.ids, m.warnings}, "", "  ")
	fmt.Fprintf(env.Stdout, "%s\n", out)
	verb := "imported"
	if *dry {
		verb = "would import (dry run, nothing written)"
	}
	fmt.Fprintf(env.Stderr, "%s: %s %d key(s) from %s: %d added, %d updated; %d usage plan membership(s) added\n",
		doc.file, verb, len(m.ids), keyFile, m.added, m.updated, m.memberships)
	return exitOK
}

// CSV columns, by their lower-case header name.
var csvColumns = []string{"name", "key", "description", "enabled", "usageplanids"}
var csvColumnNames = []string{"Name", "Key", "Description", "Enabled", "UsagePlanIds"}

// readCSVKeys reads AWS's API key file format.
func readCSVKeys(file, text string) ([]importKey, []string) {
	recs, err := readCSV(text)
	if err != nil {
		return nil, []string{file + ":" + err.Error()}
	}
	if len(recs) == 0 {
		return nil, []string{file + ": empty: expected a header line with the columns Name and Key"}
	}
	col := make([]int, len(csvColumns))
	for i := range col {
		col[i] = -1
	}
	var problems []string
	header := recs[0]
	for i, h := range header.fields {
		j := slices.Index(csvColumns, strings.ToLower(strings.TrimSpace(h)))
		if j < 0 {
			continue // AWS ignores columns it does not know
		}
		if col[j] >= 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: header: column %s appears twice (columns %d and %d)", file, header.line, csvColumnNames[j], col[j]+1, i+1))
		}
		col[j] = i
	}
	for _, j := range []int{0, 1} {
		if col[j] < 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: header: no %s column (Name and Key are required; header names are not case sensitive)", file, header.line, csvColumnNames[j]))
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	if len(recs) == 1 {
		return nil, []string{fmt.Sprintf("%s: no keys: only a header line", file)}
	}
	var out []importKey
	for _, r := range recs[1:] {
		at := fmt.Sprintf("%s:%d", file, r.line)
		if len(r.fields) != len(header.fields) {
			problems = append(problems, fmt.Sprintf("%s: %d fields, the header has %d (several usage plan ids go in quotes: \"id1,id2\")", at, len(r.fields), len(header.fields)))
			continue
		}
		cell := func(j int) string {
			if col[j] < 0 {
				return ""
			}
			return r.fields[col[j]]
		}
		bad := func(j int, format string, args ...any) {
			problems = append(problems, fmt.Sprintf("%s: column %s: %s", at, csvColumnNames[j], fmt.Sprintf(format, args...)))
		}
		k := importKey{where: at, name: cell(0), value: cell(1), desc: cell(2), enable: true,
			planWhere: at + ": column UsagePlanIds"}
		good := true
		if k.value == "" {
			bad(1, "empty: every row needs a key")
			good = false
		} else if err := validValue(k.value); err != nil {
			bad(1, "%v", err)
			good = false
		}
		switch {
		case strings.TrimSpace(k.name) == "":
			bad(0, "empty: every key needs a name (its id is made from it)")
			good = false
		case len(k.name) > 1024:
			bad(0, "must be at most 1024 characters, got %d", len(k.name))
			good = false
		}
		switch e := strings.ToLower(cell(3)); e {
		case "", "true":
		case "false":
			k.enable = false
		default:
			bad(3, "must be true or false (or empty, for true), got %s", hideKeyLike(cell(3)))
			good = false
		}
		for _, id := range strings.Split(cell(4), ",") {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(k.plans, id) {
				k.plans = append(k.plans, id)
			}
		}
		if good {
			out = append(out, k)
		}
	}
	return out, problems
}

// ApiKey and UsagePlanKey members, as AWS's CLI prints them.
var (
	jsonFields  = []string{"id", "value", "name", "description", "enabled", "customerId", "type"}
	jsonIgnored = []string{"createdDate", "lastUpdatedDate", "stageKeys", "tags"}
)

// readJSONKeys reads AWS's ApiKey (or UsagePlanKey) objects.
func readJSONKeys(file, text string) ([]importKey, []string) {
	if !gjson.Valid(text) {
		return nil, []string{file + ": not valid JSON"}
	}
	root := gjson.Parse(text)
	items, path := root, ""
	if root.IsObject() && root.Get("items").Exists() {
		items, path = root.Get("items"), "items"
	}
	var elems []gjson.Result
	if items.IsArray() {
		elems = items.Array()
	} else if items.IsObject() {
		elems = []gjson.Result{items} // one ApiKey: get-api-key, create-api-key
	} else {
		return nil, []string{file + ": expected an ApiKey object, an array of them, or {\"items\": [...]}"}
	}
	var out []importKey
	var problems []string
	for i, e := range elems {
		at := path
		if items.IsArray() {
			at = fmt.Sprintf("%s[%d]", path, i)
		}
		where := file + ": " + at
		if at == "" {
			where = file
		}
		bad := func(member, format string, args ...any) {
			p := member
			if at != "" {
				p = at + "." + member
			}
			problems = append(problems, fmt.Sprintf("%s: %s: %s", file, p, fmt.Sprintf(format, args...)))
		}
		if !e.IsObject() {
			problems = append(problems, fmt.Sprintf("%s: must be an ApiKey object", where))
			continue
		}
		good := true
		e.ForEach(func(k, _ gjson.Result) bool {
			if !slices.Contains(jsonFields, k.Str) && !slices.Contains(jsonIgnored, k.Str) {
				name := k.Str
				if hideKeyLike(name) != fmt.Sprintf("%q", name) {
					name = "<a member name that may be a key>"
				}
				bad(name, "unknown field")
				good = false
			}
			return true
		})
		str := func(member string) (string, bool) {
			v := e.Get(member)
			if !v.Exists() {
				return "", false
			}
			if v.Type != gjson.String {
				bad(member, "must be a string")
				good = false
				return "", false
			}
			return v.Str, true
		}
		k := importKey{where: where, enable: true, planWhere: "--plan"}
		var hasValue bool
		k.value, hasValue = str("value")
		switch {
		case !hasValue && !e.Get("value").Exists():
			bad("value", "required (aws apigateway get-api-keys prints values only with --include-values)")
			good = false
		case hasValue:
			if err := validValue(k.value); err != nil {
				bad("value", "%v", err)
				good = false
			}
		}
		k.id, _ = str("id")
		if k.id != "" && !validID(k.id) {
			bad("id", "must be 1 to 128 letters, digits, '-', '_' and '.', got %s", hideKeyLike(k.id))
			good = false
		}
		k.name, _ = str("name")
		if len(k.name) > 1024 {
			bad("name", "must be at most 1024 characters, got %d", len(k.name))
			good = false
		}
		if k.id == "" && strings.TrimSpace(k.name) == "" {
			bad("id", "needs id or name (the key's id in the configuration)")
			good = false
		}
		k.desc, _ = str("description")
		k.customerID, k.hasCustomerID = str("customerId")
		if v := e.Get("enabled"); v.Exists() {
			if v.Type != gjson.True && v.Type != gjson.False {
				bad("enabled", "must be true or false")
				good = false
			}
			k.enable = v.Type == gjson.True
		}
		if v := e.Get("type"); v.Exists() && v.Str != "API_KEY" {
			bad("type", "must be API_KEY")
			good = false
		}
		if good {
			out = append(out, k)
		}
	}
	return out, problems
}

func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(alnum(s[i:i+1]) || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// slug makes a key id from a name: lower-case letters and digits, other runs as one "-".
func slug(name string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(name) && b.Len() < 64; i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if alnum(string(c)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteByte(c)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return "key"
	}
	return b.String()
}

// merged is the result of merging imported keys into a document.
type merged struct {
	text                        string
	ids, warnings               []string
	added, updated, memberships int
}

// merge applies imported keys to text; problems are what stops the import.
func merge(text string, recs []importKey, extra []string) (merged, []string) {
	type target struct {
		id       string
		existing *keyEntry // nil for a new key
		rec      importKey
	}
	existing := apiKeys(text)
	byDigest := make(map[string]*target)
	taken := make(map[string]bool)
	for _, k := range existing {
		taken[k.id] = true
	}
	known := planIDs(text)
	have := make(map[string]bool)
	for _, m := range memberships(text) {
		have[m] = true
	}
	m := merged{warnings: []string{}}
	var problems []string
	var order []*target
	var pks []string
	for _, r := range recs {
		d := digest(r.value)
		t := byDigest[d]
		switch {
		case t != nil && t.rec.where != "":
			m.warnings = append(m.warnings, fmt.Sprintf("%s: the same key as %s; the later one wins", r.where, t.rec.where))
		case t == nil:
			t = &target{}
			for i := range existing {
				if existing[i].digest == d {
					t.existing, t.id = &existing[i], existing[i].id
				}
			}
			if t.existing == nil {
				t.id = r.id
				if t.id == "" {
					base := slug(r.name)
					t.id = base
					for n := 2; taken[t.id]; n++ {
						t.id = fmt.Sprintf("%s-%d", base, n)
					}
				} else if taken[t.id] {
					problems = append(problems, fmt.Sprintf("%s: id %q is taken by another key of the configuration (keys rotate gives a key a new value)", r.where, t.id))
					continue
				}
				taken[t.id] = true
			} else if r.id != "" && r.id != t.id {
				m.warnings = append(m.warnings, fmt.Sprintf("%s: the key is already configured as %q, which keeps its id", r.where, t.id))
			}
			byDigest[d] = t
			order = append(order, t)
		}
		t.rec = r
		for _, p := range append(slices.Clone(r.plans), extra...) {
			if !slices.Contains(known, p) {
				where := r.planWhere
				if slices.Contains(extra, p) {
					where = "--plan"
				}
				problems = append(problems, fmt.Sprintf("%s: no usage plan with id %s in the configuration", where, hideKeyLike(p)))
				continue
			}
			if key := p + "\x00" + t.id; !have[key] {
				have[key] = true
				pks = append(pks, planKey(p, t.id))
				m.memberships++
			}
		}
	}
	if len(problems) > 0 {
		return m, problems
	}
	var edits []edit
	var adds []string
	for _, t := range order {
		m.ids = append(m.ids, t.id)
		r := t.rec
		set := []member{}
		var drop []string
		opt := func(name, v string, ok bool) {
			if ok && v != "" {
				set = append(set, member{name, jstr(v)})
			} else {
				drop = append(drop, name)
			}
		}
		if t.existing == nil {
			set = append(set, member{"id", jstr(t.id)})
		}
		opt("name", r.name, true)
		opt("description", r.desc, true)
		if r.hasCustomerID || t.existing == nil {
			opt("customerId", r.customerID, r.hasCustomerID)
		}
		set = append(set, member{"valueSha256", jstr(digest(r.value))}, member{"enabled", fmt.Sprint(r.enable)})
		if t.existing == nil {
			adds = append(adds, rewriteObject(gjson.Result{}, set))
			m.added++
			continue
		}
		e := t.existing.elem
		edits = append(edits, edit{e.Index, e.Index + len(e.Raw), rewriteObject(e, set, append(drop, "value")...)})
		m.updated++
	}
	text = apply(text, edits)
	path, _, _ := keysArray(text)
	var err error
	if text, err = appendElements(text, path, adds); err == nil {
		text, err = appendElements(text, "usagePlanKeys", pks)
	}
	if err != nil {
		return m, []string{err.Error()}
	}
	m.text = text
	return m, nil
}
