package keys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/usageplans/usageplans/filter/config"
)

// document is a plugin configuration being edited as text, so that everything the commands
// do not change stays byte for byte as it was (member order, formatting, comments of the
// author in "description" fields).
type document struct {
	file string // as given, for messages
	path string // symlinks resolved: the file that is replaced
	mode os.FileMode
	bom  bool
	text string // without the BOM
}

const bom = "\ufeff"

// invalidError carries the filter parser's problems, one per line, already free of key
// values (config.Parse never prints one).
type invalidError struct {
	file, when string
	err        error
}

func (e *invalidError) Error() string {
	lines := strings.Split(e.err.Error(), "\n")
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s: %s\n", e.file, l)
	}
	fmt.Fprintf(&b, "%s: %s: %d problem(s); nothing written", e.file, e.when, len(lines))
	return b.String()
}

// loadDocument reads a configuration and checks it with the filter's parser: the commands
// edit only a valid one, so that every problem they report is theirs.
func loadDocument(file string) (*document, error) {
	path, err := filepath.EvalSymlinks(file)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &document{file: file, path: path, mode: st.Mode().Perm(), text: string(data)}
	if s, ok := strings.CutPrefix(d.text, bom); ok {
		d.bom, d.text = true, s
	}
	if _, err := config.Parse(data); err != nil {
		return nil, &invalidError{file, "invalid before any change", err}
	}
	return d, nil
}

// save checks text with the filter's parser, then replaces the file atomically: a
// temporary file in the same directory, synced, given the file's mode, renamed over it.
// A reader (the gateway's watcher, Envoy's file watch) sees the old or the new document,
// never a part.
func (d *document) save(text string) error {
	if err := d.check(text); err != nil {
		return err
	}
	out := text
	if d.bom {
		out = bom + text
	}
	tmp, err := os.CreateTemp(filepath.Dir(d.path), "."+filepath.Base(d.path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if err := tmp.Chmod(d.mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(out); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), d.path); err != nil {
		return err
	}
	d.text = text
	return nil
}

// check parses text, as it would be written, with the filter's parser.
func (d *document) check(text string) error {
	out := text
	if d.bom {
		out = bom + text
	}
	if _, err := config.Parse([]byte(out)); err != nil {
		return &invalidError{d.file, "the result is invalid", err}
	}
	return nil
}

// keyEntry is one element of apiKeys as it stands in the document.
type keyEntry struct {
	id     string
	digest string // lower-case hex, from value or valueSha256
	elem   gjson.Result
}

// keysArray finds the apiKeys array: its gjson path ("apiKeys", or "apiKeys.items" for an
// AWS CLI output object) and value; exists is false when there is no apiKeys member.
func keysArray(text string) (path string, arr gjson.Result, exists bool) {
	v := gjson.Get(text, "apiKeys")
	if !v.Exists() {
		return "apiKeys", v, false
	}
	if v.IsObject() {
		return "apiKeys.items", v.Get("items"), true
	}
	return "apiKeys", v, true
}

// apiKeys lists the document's keys (the parser accepted it, so every entry has an id and a
// value or digest).
func apiKeys(text string) []keyEntry {
	_, arr, _ := keysArray(text)
	var out []keyEntry
	arr.ForEach(func(_, e gjson.Result) bool {
		k := keyEntry{id: e.Get("id").Str, elem: e}
		if v := e.Get("value"); v.Exists() {
			k.digest = digest(v.Str)
		} else {
			k.digest = strings.ToLower(e.Get("valueSha256").Str)
		}
		out = append(out, k)
		return true
	})
	return out
}

// planIDs lists the ids of the document's usage plans.
func planIDs(text string) []string {
	v := gjson.Get(text, "usagePlans")
	if v.IsObject() {
		v = v.Get("items")
	}
	var out []string
	v.ForEach(func(_, e gjson.Result) bool {
		out = append(out, e.Get("id").Str)
		return true
	})
	return out
}

// memberships lists the document's usagePlanKeys as "plan\x00key".
func memberships(text string) []string {
	var out []string
	gjson.Get(text, "usagePlanKeys").ForEach(func(_, e gjson.Result) bool {
		out = append(out, e.Get("usagePlanId").Str+"\x00"+e.Get("keyId").Str)
		return true
	})
	return out
}

// edit is a replacement of text[start:end].
type edit struct {
	start, end int
	with       string
}

// apply makes non-overlapping edits, from the last to the first so that offsets hold.
func apply(text string, edits []edit) string {
	slices.SortFunc(edits, func(a, b edit) int { return b.start - a.start })
	for _, e := range edits {
		text = text[:e.start] + e.with + text[e.end:]
	}
	return text
}

// appendElements appends raw JSON values to the array at path (a member of the root
// object, created at its end when missing), each on its own line with the indentation of
// the array's last element when the array is written one element per line.
func appendElements(text, path string, raws []string) (string, error) {
	if len(raws) == 0 {
		return text, nil
	}
	arr := gjson.Get(text, path)
	if !arr.Exists() {
		name := path[strings.LastIndexByte(path, '.')+1:]
		return addRootMember(text, name, raws)
	}
	if !arr.IsArray() || arr.Index <= 0 {
		return "", fmt.Errorf("%s is not an array that can be edited", path)
	}
	var last gjson.Result
	arr.ForEach(func(_, e gjson.Result) bool { last = e; return true })
	if !last.Exists() {
		ind := lineIndent(text, arr.Index)
		return text[:arr.Index] + multiline(raws, ind+"  ", ind, newline(text)) + text[arr.Index+len(arr.Raw):], nil
	}
	if last.Index <= 0 {
		return "", errors.New("cannot locate the last element of " + path)
	}
	sep := ", "
	if ws := spaceBefore(text, last.Index); strings.ContainsRune(ws, '\n') {
		sep = "," + ws // keeps CRLF and the indentation
	}
	end := last.Index + len(last.Raw)
	return text[:end] + sep + strings.Join(raws, sep) + text[end:], nil
}

// addRootMember adds "name": [raws...] as the root object's last member.
func addRootMember(text, name string, raws []string) (string, error) {
	root := gjson.Parse(text)
	var last gjson.Result
	root.ForEach(func(_, v gjson.Result) bool { last = v; return true })
	nl := newline(text)
	if !last.Exists() {
		open := strings.IndexByte(text, '{')
		closing := strings.LastIndexByte(text, '}')
		return text[:open] + "{" + nl + "  " + jstr(name) + ": " + multiline(raws, "    ", "  ", nl) + nl + "}" + text[closing+1:], nil
	}
	if last.Index <= 0 {
		return "", errors.New("cannot locate the end of the configuration object")
	}
	end := last.Index + len(last.Raw)
	if !strings.Contains(root.Raw, "\n") { // a one-line document stays one line
		return text[:end] + ", " + jstr(name) + ": [" + strings.Join(raws, ", ") + "]" + text[end:], nil
	}
	ind := lineIndent(text, last.Index)
	return text[:end] + "," + nl + ind + jstr(name) + ": " + multiline(raws, ind+"  ", ind, nl) + text[end:], nil
}

func multiline(raws []string, inner, outer, nl string) string {
	return "[" + nl + inner + strings.Join(raws, ","+nl+inner) + nl + outer + "]"
}

func newline(text string) string {
	if strings.Contains(text, "\r\n") {
		return "\r\n"
	}
	return "\n"
}

// spaceBefore is the whitespace right before text[i].
func spaceBefore(text string, i int) string {
	j := i
	for j > 0 && strings.IndexByte(" \t\r\n", text[j-1]) >= 0 {
		j--
	}
	return text[j:i]
}

// lineIndent is the leading spaces and tabs of the line holding text[i].
func lineIndent(text string, i int) string {
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := start
	for end < len(text) && (text[end] == ' ' || text[end] == '\t') {
		end++
	}
	return text[start:end]
}

// member is one member of a JSON object being rewritten: its name and raw value.
type member struct{ name, raw string }

// rewriteObject renders obj with set's members replacing (in place) or following its own,
// and the names in drop removed (a dropped "value" gives its place to set's "valueSha256"),
// on one line as plugin.json writes a key.
func rewriteObject(obj gjson.Result, set []member, drop ...string) string {
	var ms []member
	done := make(map[string]bool)
	obj.ForEach(func(k, v gjson.Result) bool {
		if slices.Contains(drop, k.Str) {
			// A value replaced by its digest: the digest takes the value's place.
			if i := slices.IndexFunc(set, func(m member) bool { return m.name == "valueSha256" }); k.Str == "value" && i >= 0 && !obj.Get("valueSha256").Exists() {
				ms = append(ms, set[i])
				done["valueSha256"] = true
			}
			return true
		}
		for _, s := range set {
			if s.name == k.Str {
				ms = append(ms, s)
				done[s.name] = true
				return true
			}
		}
		ms = append(ms, member{k.Str, v.Raw})
		return true
	})
	for _, s := range set {
		if !done[s.name] {
			ms = append(ms, s)
		}
	}
	return renderObject(ms)
}

func renderObject(ms []member) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(jstr(m.name))
		b.WriteString(": ")
		b.WriteString(m.raw)
	}
	b.WriteByte('}')
	return b.String()
}

// jstr is s as a JSON string, with <, > and & kept as they are.
func jstr(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// planKey renders one usagePlanKeys element.
func planKey(plan, key string) string {
	return renderObject([]member{{"usagePlanId", jstr(plan)}, {"keyId", jstr(key)}, {"keyType", `"API_KEY"`}})
}

// hideKeyLike shows s unless it holds a run of 20 or more letters and digits (the shape of a
// key value, which a message must never print), as the filter's parser does.
func hideKeyLike(s string) string {
	run := 0
	for i := 0; i < len(s); i++ {
		if alnum(s[i : i+1]) {
			if run++; run >= minValue {
				return fmt.Sprintf("<%d characters, not shown: may be an API key>", len(s))
			}
		} else {
			run = 0
		}
	}
	return fmt.Sprintf("%q", s)
}
