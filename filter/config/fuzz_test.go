package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzParse feeds the configuration parser arbitrary documents, seeded with every fixture
// of testdata/config and plugin.json (issue 8): it never panics; a rejection is an Errors
// whose every entry says where, as a JSON path into the document (or, for the document as
// a whole, a message about "configuration"); and no key-like string of the document (a run
// of 20 or more letters and digits in a string or member name) appears in any message,
// unless the parser's own text holds it (a field name such as "throttlingBurstLimit").
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(fixtures, "*", "*.json"))
	seeds = append(seeds, filepath.Join("..", "..", "plugin.json"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	own := ownWords(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil {
			if c == nil {
				t.Fatal("Parse returned neither a configuration nor an error")
			}
			return
		}
		if c != nil {
			t.Fatal("Parse returned a configuration with its error")
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %T %q, want a non-empty Errors", err, err)
		}
		for _, e := range es {
			checkErrorPath(t, e)
		}
		text := err.Error()
		for _, run := range keyLikeRuns(data) {
			if strings.Contains(text, run) && !own.holds(run) {
				t.Fatalf("a key-like string of the document (%d characters) is in the errors:\n%s", len(run), text)
			}
		}
	})
}

// jsonPath is the grammar of Error.Path: a member name (an identifier, or a quoted name in
// brackets), then members and indexes.
var jsonPath = regexp.MustCompile(`^(?:[A-Za-z_$][A-Za-z0-9_$]*|\["(?:[^"\\]|\\.)*"\])(?:\.[A-Za-z_$][A-Za-z0-9_$]*|\[[0-9]+\]|\["(?:[^"\\]|\\.)*"\])*$`)

func checkErrorPath(t *testing.T, e Error) {
	t.Helper()
	switch {
	case e.Path == "":
		if !strings.HasPrefix(e.Message, "configuration ") && !strings.HasPrefix(e.Message, "the configuration ") {
			t.Fatalf("error without a path, not about the document: %q", e.Message)
		}
	case !jsonPath.MatchString(e.Path):
		t.Fatalf("error path %q is not a JSON path (message %q)", e.Path, e.Message)
	case e.Message == "":
		t.Fatalf("error at %q without a message", e.Path)
	}
}

var alnumRun = regexp.MustCompile(`[A-Za-z0-9]{20,}`)

// keyLikeRuns returns every run of 20 or more letters and digits in the strings and member
// names of a JSON document (unescaped), or of its bytes when it is not JSON.
func keyLikeRuns(data []byte) []string {
	if !gjson.ValidBytes(data) {
		return alnumRun.FindAllString(string(data), -1)
	}
	var out []string
	var walk func(v gjson.Result)
	walk = func(v gjson.Result) {
		switch {
		case v.Type == gjson.String:
			out = append(out, alnumRun.FindAllString(v.Str, -1)...)
		case v.IsObject():
			v.ForEach(func(k, val gjson.Result) bool {
				out = append(out, alnumRun.FindAllString(k.Str, -1)...)
				walk(val)
				return true
			})
		case v.IsArray():
			v.ForEach(func(_, val gjson.Result) bool {
				walk(val)
				return true
			})
		}
	}
	walk(gjson.ParseBytes(data))
	return out
}

// words are the runs of 20 or more letters and digits in the package's own source: the
// field names and texts that messages may hold whatever the document says.
type words []string

func (w words) holds(run string) bool {
	for _, x := range w {
		if strings.Contains(x, run) {
			return true
		}
	}
	return false
}

func ownWords(f *testing.F) words {
	files, err := filepath.Glob("*.go")
	if err != nil {
		f.Fatal(err)
	}
	var w words
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		w = append(w, alnumRun.FindAllString(string(src), -1)...)
	}
	if !w.holds("throttlingBurstLimit") {
		f.Fatal("the package's source words miss throttlingBurstLimit")
	}
	return w
}
