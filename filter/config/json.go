package config

import (
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// The helpers in this file read one JSON value each, check its type and range, and report a
// problem with its path instead of failing, so that Parse collects every problem at once.

// add reports a problem at path. A string argument that holds what looks like a key value
// (see hasKeyLike) is replaced by its length: a key pasted where an id or a name belongs
// must not reach Envoy's log. Text known to be safe is passed as shown.
func (p *parser) add(path, format string, args ...any) {
	for i, a := range args {
		if s, ok := a.(string); ok && hasKeyLike(s) {
			args[i] = hidden(s)
		}
	}
	p.errs = append(p.errs, Error{Path: path, Message: fmt.Sprintf(format, args...)})
}

// shown is text add prints as it is: field names of the format ("throttlingBurstLimit" is
// 20 letters), JSON numbers, and describe's output (which hides strings itself).
type shown string

// hasKeyLike reports whether s holds a run of at least minKeyLen letters and digits: the
// shape of an API key value (a longer run may hold one).
func hasKeyLike(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if isAlpha(s[i]) || isDigit(s[i]) {
			if run++; run >= minKeyLen {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// hidden stands for a string that must not be printed.
func hidden(s string) string {
	return "<" + strconv.Itoa(len(s)) + " characters, not shown: may be an API key>"
}

// shownName is a member name as an error path may show it: hidden when it looks like a key.
func shownName(name string) string {
	if hasKeyLike(name) {
		return hidden(name)
	}
	return name
}

// field joins a path and an object member name, bracketing names that are not identifiers.
func field(path, name string) string {
	if isIdent(name) {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	return path + "[" + strconv.Quote(name) + "]"
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '$' || isAlpha(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// describe renders a JSON value for a "got ..." clause; strings are quoted and truncated.
// Under apiKeys, and anywhere for a string holding what looks like a key value, it gives
// only the string's length: a key value pasted in the wrong place (a bare string in
// apiKeys, a value under "enabled") must not reach Envoy's log.
func (p *parser) describe(v gjson.Result) shown {
	if v.Type == gjson.String && (p.secrets || hasKeyLike(v.Str)) {
		return shown("a string of " + strconv.Itoa(len(v.Str)) + " characters")
	}
	return shown(describe(v))
}

// describe renders a JSON value; see parser.describe, the one to call.
func describe(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		s := v.Str
		if len(s) > 64 {
			s = s[:61] + "..."
		}
		return strconv.Quote(s)
	case gjson.Null:
		return "null"
	case gjson.JSON:
		if v.IsArray() {
			return "an array"
		}
		return "an object"
	}
	return v.Raw
}

func typeName(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "a string"
	case gjson.Number:
		return "a number"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Null:
		return "null"
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}

// fields are the members of one object whose names the caller knows.
type fields struct {
	known []string
	vals  [maxFields]gjson.Result
	has   uint64 // bit i: known[i] is present
}

// maxFields bounds the known and ignored names of one object kind (see the lists below).
const maxFields = 24

func (f *fields) get(name string) (gjson.Result, bool) {
	for i, k := range f.known {
		if k == name && f.has&(1<<i) != 0 {
			return f.vals[i], true
		}
	}
	return gjson.Result{}, false
}

// object checks that v is an object and returns its members. Members named in known are
// returned; those in ignored (AWS fields we do not use) are accepted; any other member and
// any repeated member is reported.
func (p *parser) object(v gjson.Result, path string, known, ignored []string) (fields, bool) {
	return p.objectAt(v, func() string { return path }, known, ignored)
}

// objectAt is object with the path built only when a problem is reported: one object per
// API key or usage-plan key would otherwise build its path (an allocation) for nothing.
func (p *parser) objectAt(v gjson.Result, pathOf func() string, known, ignored []string) (fields, bool) {
	var f fields
	ok := p.objectInto(&f, v, pathOf, known, ignored)
	return f, ok
}

// objectInto is objectAt filling f, which it resets: fields is 2 KB, which parsing 100,000
// keys would otherwise clear and copy twice per key.
func (p *parser) objectInto(f *fields, v gjson.Result, pathOf func() string, known, ignored []string) bool {
	f.known, f.has = known, 0 // vals[i] is read only when has says it was set
	if !v.IsObject() {
		if path := pathOf(); path == "" {
			p.add(path, "the configuration must be a JSON object, got %s", p.describe(v))
		} else {
			p.add(path, "must be an object, got %s", p.describe(v))
		}
		return false
	}
	var seenIgnored uint64
	v.ForEach(func(k, val gjson.Result) bool {
		name := k.Str
		if i := indexOf(known, name); i >= 0 {
			if f.has&(1<<i) != 0 {
				p.add(field(pathOf(), name), "appears twice")
			}
			f.has |= 1 << i
			f.vals[i] = val
		} else if i := indexOf(ignored, name); i >= 0 {
			if seenIgnored&(1<<i) != 0 {
				p.add(field(pathOf(), name), "appears twice")
			}
			seenIgnored |= 1 << i
		} else if s := suggest(name, known); s != "" {
			p.add(field(pathOf(), shownName(name)), "unknown field (did you mean %q?)", shown(s))
		} else {
			p.add(field(pathOf(), shownName(name)), "unknown field")
		}
		return true
	})
	return true
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// suggest returns the known name closest to a misspelled one (at most 2 edits), or "".
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if len(name) >= 3 && (strings.HasPrefix(k, name) || strings.HasPrefix(name, k)) {
			return k
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// members returns the members of an object whose names are free (a map), reporting
// repeated names.
func (p *parser) members(v gjson.Result, path string) ([]member, bool) {
	if !v.IsObject() {
		p.add(path, "must be an object, got %s", p.describe(v))
		return nil, false
	}
	var out []member
	seen := make(map[string]bool)
	v.ForEach(func(k, val gjson.Result) bool {
		if seen[k.Str] {
			p.add(field(path, shownName(k.Str)), "appears twice")
		} else {
			seen[k.Str] = true
			name := strings.Clone(k.Str) // may be kept (HTTP methods, header names): see str
			out = append(out, member{name, val, field(path, shownName(name))})
		}
		return true
	})
	return out, true
}

type member struct {
	name string
	val  gjson.Result
	path string
}

// element is an array element; its path, parent[i], is built when asked for.
type element struct {
	val    gjson.Result
	parent string
	i      int
}

func (e element) path() string { return index(e.parent, e.i) }

// list iterates over an array, or when wrapper is not empty an AWS CLI output object
// holding the array under wrapper ("items" for get-usage-plans and friends, "item" for
// get-stages) next to "position". It reports a value of another shape.
func (p *parser) list(v gjson.Result, path, wrapper string) iter.Seq2[int, element] {
	return func(yield func(int, element) bool) {
		if wrapper != "" && v.IsObject() {
			f, ok := p.object(v, path, []string{wrapper}, []string{"position"})
			if !ok {
				return
			}
			items, ok := f.get(wrapper)
			if !ok {
				p.add(path, "must be an array or an AWS CLI output object with %q", wrapper)
				return
			}
			p.list(items, field(path, wrapper), "")(yield)
			return
		}
		if !v.IsArray() {
			if wrapper == "" {
				p.add(path, "must be an array, got %s", p.describe(v))
			} else {
				p.add(path, "must be an array or an AWS CLI output object {%q: [...]}, got %s", wrapper, p.describe(v))
			}
			return
		}
		i := 0
		v.ForEach(func(_, e gjson.Result) bool {
			more := yield(i, element{e, path, i})
			i++
			return more
		})
	}
}

// str reads a string. It returns a copy: v.Str may be a substring of the whole document,
// key values included, which a kept substring would keep in memory.
func (p *parser) str(v gjson.Result, path string) (string, bool) {
	if v.Type != gjson.String {
		p.add(path, "must be a string, got %s", p.describe(v))
		return "", false
	}
	return strings.Clone(v.Str), true
}

func (p *parser) boolean(v gjson.Result, path string) (bool, bool) {
	if v.Type != gjson.True && v.Type != gjson.False {
		p.add(path, "must be true or false, got %s", p.describe(v))
		return false, false
	}
	return v.Bool(), true
}

// integer reads a JSON integer literal in [lo, hi].
func (p *parser) integer(v gjson.Result, path string, lo, hi int64) (int64, bool) {
	bounds := func() string {
		if hi == math.MaxInt64 {
			return "an integer >= " + strconv.FormatInt(lo, 10)
		}
		return "an integer from " + strconv.FormatInt(lo, 10) + " to " + strconv.FormatInt(hi, 10)
	}
	if v.Type != gjson.Number {
		p.add(path, "must be %s, got %s", bounds(), p.describe(v))
		return 0, false
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil || n < lo || n > hi {
		p.add(path, "must be %s, got %s", bounds(), shown(v.Raw))
		return 0, false
	}
	return n, true
}

// rate reads a token bucket's rate in tokens per second: 0 (the bucket never refills) or a
// finite number from minRate; offAllowed says that -1 (throttling off) is also valid, for
// the message.
func (p *parser) rate(v gjson.Result, path string, offAllowed bool) (float64, bool) {
	want := "0 or a number from 0.000001 (tokens per second; the bucket counts millionths of a token)"
	if offAllowed {
		want = "-1 (throttling off), " + want
	}
	if v.Type != gjson.Number {
		p.add(path, "must be %s, got %s", want, p.describe(v))
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Raw, 64)
	if err != nil || !(f == 0 || f >= minRate) || math.IsInf(f, 0) {
		p.add(path, "must be %s, got %s", want, shown(v.Raw))
		return 0, false
	}
	return f, true
}

// enum reads a string that must be one of allowed; names lists them for the message.
func (p *parser) enum(v gjson.Result, path string, allowed []string) (string, bool) {
	if v.Type == gjson.String && contains(allowed, v.Str) {
		return v.Str, true
	}
	p.add(path, "must be %s, got %s", orList(allowed), p.describe(v))
	return "", false
}

func orList(xs []string) string {
	switch len(xs) {
	case 1:
		return xs[0]
	case 2:
		return xs[0] + " or " + xs[1]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// id reads an identifier used in shared-data keys, metric names and logs.
func (p *parser) id(v gjson.Result, path string) (string, bool) {
	s, ok := p.str(v, path)
	if !ok {
		return "", false
	}
	if s == "" || len(s) > maxIDLen {
		p.add(path, "must be 1 to %d characters, got %d", maxIDLen, len(s))
		return "", false
	}
	if !idChars(s) {
		p.add(path, "must hold only letters, digits, '-', '_' and '.', got %s", p.describe(v))
		return "", false
	}
	return s, true
}

func idChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// strAt, idAt, nameAt and booleanAt are str, id, name and boolean for the member name of
// the object at pathOf(): they build the member's path only to report a problem, which
// saves two allocations per member of each of many API keys.
func (p *parser) strAt(v gjson.Result, pathOf func() string, name string) (string, bool) {
	if v.Type == gjson.String {
		return strings.Clone(v.Str), true
	}
	return p.str(v, field(pathOf(), name))
}

func (p *parser) idAt(v gjson.Result, pathOf func() string, name string) (string, bool) {
	if v.Type == gjson.String && v.Str != "" && len(v.Str) <= maxIDLen && idChars(v.Str) {
		return strings.Clone(v.Str), true
	}
	return p.id(v, field(pathOf(), name))
}

func (p *parser) nameAt(v gjson.Result, pathOf func() string, name string) string {
	if v.Type == gjson.String && len(v.Str) <= maxNameLen {
		return strings.Clone(v.Str)
	}
	return p.name(v, field(pathOf(), name))
}

func (p *parser) booleanAt(v gjson.Result, pathOf func() string, name string) (bool, bool) {
	if v.Type == gjson.True || v.Type == gjson.False {
		return v.Bool(), true
	}
	return p.boolean(v, field(pathOf(), name))
}

func (p *parser) name(v gjson.Result, path string) string {
	s, ok := p.str(v, path)
	if ok && len(s) > maxNameLen {
		p.add(path, "must be at most %d characters, got %d", maxNameLen, len(s))
	}
	return s
}

// headerName reads an HTTP header name and lower-cases it.
func (p *parser) headerName(v gjson.Result, path string, allowEmpty bool) (string, bool) {
	s, ok := p.str(v, path)
	if !ok {
		return "", false
	}
	if s == "" && allowEmpty {
		return "", true
	}
	if !validHeaderName(s) {
		p.add(path, "must be an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~), got %s", p.describe(v))
		return "", false
	}
	return strings.ToLower(s), true
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
