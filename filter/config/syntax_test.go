package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// jsonSyntaxError is what encoding/json reports for data: syntaxError's reference.
func jsonSyntaxError(data []byte) (int, string, bool) {
	var raw json.RawMessage
	var se *json.SyntaxError
	if err := json.Unmarshal(data, &raw); errors.As(err, &se) {
		return int(se.Offset), se.Error(), true
	}
	return 0, "", false
}

// syntaxCases reach every message of syntaxError, and every place the input can end.
var syntaxCases = []string{
	``, ` `, `{`, `[`, `"`, `"a`, `"\`, `"\u`, `"\u12`, `"\u12g4"`, `"\x"`, "\"a\tb\"", "\"a\nb\"",
	`-`, `-x`, `-0`, `01`, `1.`, `1.x`, `1.5e`, `1.5e+`, `1e-x`, `1E9`, `-12.5E-3`, `0.`,
	`t`, `tr`, `tru`, `trUe`, `true`, `truex`, `f`, `fals`, `falsy`, `n`, `nul`, `nulL`, `null`,
	`{}`, `{ }`, `[]`, `[ ]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a" 1}`, `{1:2}`,
	`{"a":1}}`, `[1,]`, `[1 2]`, `[1,2]]`, `[`, `[1`, `{"a":1`, `{"a":`, `{"a"`, `{"a":[1,{"b":[]}]}`,
	`{} {}`, `1 2`, `"a" x`, `x`, `'a'`, "\xff", "[\x80]", `}`, `]`, `,`, `:`,
	"\"\\u00e9\xc3\xa9\"", `"\/\b\f\n\r\t\"\\"`, "\t\r\n 1 \t\r\n",
	strings.Repeat("[", maxNestingDepth) + strings.Repeat("]", maxNestingDepth),
	strings.Repeat("[", maxNestingDepth+1) + strings.Repeat("]", maxNestingDepth+1),
	strings.Repeat(`{"a":`, maxNestingDepth+1),
}

// TestSyntaxErrorMatchesEncodingJSON: the position and message of a syntax error are
// encoding/json's, on every path through the scanner.
func TestSyntaxErrorMatchesEncodingJSON(t *testing.T) {
	for _, s := range syntaxCases {
		gotOff, gotMsg, gotBad := syntaxError([]byte(s))
		wantOff, wantMsg, wantBad := jsonSyntaxError([]byte(s))
		if gotOff != wantOff || gotMsg != wantMsg || gotBad != wantBad {
			t.Errorf("%.40q: got (%d, %q, %t), encoding/json (%d, %q, %t)", s, gotOff, gotMsg, gotBad, wantOff, wantMsg, wantBad)
		}
	}
}

func FuzzSyntaxError(f *testing.F) {
	for _, s := range syntaxCases {
		if len(s) < 100 {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		gotOff, gotMsg, gotBad := syntaxError(data)
		wantOff, wantMsg, wantBad := jsonSyntaxError(data)
		if gotOff != wantOff || gotMsg != wantMsg || gotBad != wantBad {
			t.Fatalf("%q: got (%d, %q, %t), encoding/json (%d, %q, %t)", data, gotOff, gotMsg, gotBad, wantOff, wantMsg, wantBad)
		}
	})
}
