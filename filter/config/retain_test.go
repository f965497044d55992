package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// sharedStrings walks every value reachable from v (pointers, slices, arrays, maps, struct
// fields exported or not) and returns the paths of the non-empty strings whose bytes lie
// inside doc, and how many strings it saw.
func sharedStrings(v any, doc string) (shared []string, seen int) {
	lo := uintptr(unsafe.Pointer(unsafe.StringData(doc)))
	hi := lo + uintptr(len(doc))
	visited := map[uintptr]bool{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.String:
			s := v.String()
			if s == "" {
				return
			}
			seen++
			if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); p >= lo && p < hi {
				shared = append(shared, path)
			}
		case reflect.Pointer:
			if v.IsNil() || visited[v.Pointer()] {
				return
			}
			visited[v.Pointer()] = true
			walk(v.Elem(), path)
		case reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice, reflect.Array:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), path+"[]")
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Key(), path+"{key}")
				walk(it.Value(), path+"{}")
			}
		}
	}
	walk(reflect.ValueOf(v), "Config")
	return shared, seen
}

// TestConfigKeepsNoSubstringOfTheDocument: the configuration document holds key values, and
// any string the Config keeps that points into it keeps the whole document alive for as
// long as the configuration is in force. Before every kept string was cloned, the ids,
// names, paths and methods of plugin.json's Config were substrings of it (issue 3).
func TestConfigKeepsNoSubstringOfTheDocument(t *testing.T) {
	for _, f := range []string{"../../plugin.json", fixtures + "/valid/options.json", fixtures + "/valid/aws_cli_paste.json", fixtures + "/valid/authorizer_header_and_query.json"} {
		t.Run(f[strings.LastIndexByte(f, '/')+1:], func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			doc := string(data)
			c, err := parse(doc)
			if err != nil {
				t.Fatal(err)
			}
			shared, seen := sharedStrings(c, doc)
			if seen < 10 {
				t.Fatalf("walked only %d strings: the walk does not reach the Config's strings", seen)
			}
			for _, p := range shared {
				t.Errorf("%s shares memory with the configuration document", p)
			}
		})
	}
}

// The walk finds a substring wherever it hides: behind pointers, in unexported fields, in
// map keys and values, in arrays of arrays.
func TestSharedStringsFindsSubstrings(t *testing.T) {
	doc := strings.Repeat("x", 64)
	sub := doc[10:20]
	own := strings.Clone(sub)
	c := &Config{
		Routes:    []*Route{{Name: own}, {Host: sub}},
		responses: [numResponseTypes]Response{Throttled: {Headers: [][2]string{{"a", sub}}}},
		keys:      keyIndex{keys: []*Key{{ID: own, plans: []*Plan{{ID: own, Name: sub}}}}},
	}
	c.APIs = []*API{{root: &node{literal: map[string]*node{sub: {}}}}}
	shared, seen := sharedStrings(c, doc)
	want := []string{
		"Config.APIs[].root.literal{key}",
		"Config.Routes[].Host",
		"Config.responses[].Headers[][]",
		"Config.keys.keys[].plans[].Name",
	}
	if !sameSet(shared, want) {
		t.Errorf("found %q, want %q", shared, want)
	}
	if seen < 8 {
		t.Errorf("saw %d strings, want at least 8", seen)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// A rejected configuration's errors are kept (logged, returned by the CLI): they must not
// keep the document either. An unknown top-level field's path is the field's own name.
func TestErrorsKeepNoSubstringOfTheDocument(t *testing.T) {
	doc := `{"unknownTopLevelField": 1, "apiKeys": [{"id": "k", "value": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "bogus": true}]}`
	_, err := parse(doc)
	es, ok := err.(Errors)
	if !ok || len(es) != 2 {
		t.Fatalf("error %v, want 2 Errors", err)
	}
	shared, seen := sharedStrings(es, doc)
	if seen != 4 {
		t.Errorf("walked %d strings, want 4 (2 paths, 2 messages)", seen)
	}
	for _, p := range shared {
		t.Errorf("%s shares memory with the configuration document", p)
	}
}
