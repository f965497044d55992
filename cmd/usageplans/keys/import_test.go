package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/config"
)

// The fixture mixed.csv has what real files have: a BOM, CRLF line ends, header names in odd
// case and order, an unknown column, plan lists in double and in single quotes, a quoted
// comma and a doubled quote, FALSE, an empty Enabled, a blank line, a re-import of a value
// already configured, two names that make the same id, and one key twice.
func TestImportCSV(t *testing.T) {
	cfg := tempConfig(t, "plugin.json")
	st, out, errs := run(t, "", time.Time{}, nil, "import", "--config", cfg, "testdata/mixed.csv")
	wantOut := `{
  "ids": [
    "acme-corp",
    "acme-corp-2",
    "o-brien-sons",
    "existing",
    "temp"
  ],
  "warnings": [
    "testdata/mixed.csv:8: the same key as testdata/mixed.csv:7; the later one wins"
  ]
}
`
	wantErr := cfg + ": imported 5 key(s) from testdata/mixed.csv: 4 added, 1 updated; 6 usage plan membership(s) added\n"
	if st != 0 || out != wantOut || errs != wantErr {
		t.Fatalf("import = %d\n%s%s\nwant 0\n%s%s", st, out, errs, wantOut, wantErr)
	}
	got := read(t, cfg)
	if want := read(t, "testdata/mixed.want.json"); got != want {
		t.Errorf("configuration after import:\n%s\nwant (testdata/mixed.want.json):\n%s", got, want)
	}
	for _, v := range []string{"AcmeKeyValue0000000000000001", "AcmeKeyValue0000000000000002", "ObrienKeyValue00000000000001", "ExistingKeyValue00000000000001", "TempKeyValue0000000000000001"} {
		if strings.Contains(got+out+errs, v) {
			t.Errorf("a key value (%d characters) is in the configuration or the output", len(v))
		}
	}
	c, err := config.Parse([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	prod, beta := c.APIs[0].Stages[0], c.APIs[0].Stages[1]
	for _, tt := range []struct {
		value, id  string
		enabled    bool
		prod, beta string // plan ids, "" for none
	}{
		{"AcmeKeyValue0000000000000001", "acme-corp", true, "c7y23b", "glvrsr"},
		{"AcmeKeyValue0000000000000002", "acme-corp-2", false, "", "glvrsr"},
		{"ObrienKeyValue00000000000001", "o-brien-sons", true, "silver", ""},
		{"ExistingKeyValue00000000000001", "existing", false, "silver", ""},
		{"TempKeyValue0000000000000001", "temp", true, "c7y23b", "glvrsr"},
	} {
		k := c.KeyByValue(tt.value)
		if k == nil {
			t.Errorf("key %s: not found by its value", tt.id)
			continue
		}
		planID := func(p *config.Plan) string {
			if p == nil {
				return ""
			}
			return p.ID
		}
		if k.ID != tt.id || k.Enabled != tt.enabled || planID(k.Plan(prod)) != tt.prod || planID(k.Plan(beta)) != tt.beta {
			t.Errorf("key %s: id %s enabled %t plans %q %q, want enabled %t plans %q %q", tt.id, k.ID, k.Enabled,
				planID(k.Plan(prod)), planID(k.Plan(beta)), tt.enabled, tt.prod, tt.beta)
		}
	}

	// Importing the same file again changes nothing: every key is found by its value.
	st, out, errs = run(t, "", time.Time{}, nil, "import", "--config", cfg, "testdata/mixed.csv")
	if st != 0 || !strings.HasSuffix(errs, ": 0 added, 5 updated; 0 usage plan membership(s) added\n") || read(t, cfg) != got {
		t.Errorf("second import = %d %s %s; changed the file: %t", st, out, errs, read(t, cfg) != got)
	}
}

// AWS's own examples of its key file format.
func TestImportAWSExamples(t *testing.T) {
	for _, tt := range []struct {
		file, plans string
		enabled     bool
	}{
		{"aws_example_1.csv", "", true},
		{"aws_example_2.csv", "c7y23b", true},
		{"aws_example_3.csv", "c7y23b glvrsr", true},
	} {
		cfg := tempConfig(t, "plugin.json")
		st, out, errs := run(t, "", time.Time{}, nil, "import", "--config", cfg, "testdata/"+tt.file)
		if st != 0 || out != "{\n  \"ids\": [\n    \"myfirstapikey\"\n  ],\n  \"warnings\": []\n}\n" {
			t.Errorf("%s: %d %q %q", tt.file, st, out, errs)
			continue
		}
		c, err := config.Parse([]byte(read(t, cfg)))
		if err != nil {
			t.Fatal(err)
		}
		k := c.KeyByValue("apikey1234abcdefghij0123456789")
		var plans []string
		for _, s := range c.APIs[0].Stages {
			if p := k.Plan(s); p != nil {
				plans = append(plans, p.ID)
			}
		}
		if k.ID != "myfirstapikey" || k.Name != "MyFirstApiKey" || k.Enabled != tt.enabled || strings.Join(plans, " ") != tt.plans {
			t.Errorf("%s: key %+v in plans %q, want %q", tt.file, k, plans, tt.plans)
		}
	}
}

func TestImportJSON(t *testing.T) {
	cfg := tempConfig(t, "plugin.json")
	st, out, errs := run(t, "", time.Time{}, nil, "import", "--config", cfg, "testdata/get_api_keys.json")
	if st != 0 || out != "{\n  \"ids\": [\n    \"a1b2c3d4e5\",\n    \"f6g7h8i9j0\"\n  ],\n  \"warnings\": []\n}\n" {
		t.Fatalf("get-api-keys import = %d %q %q", st, out, errs)
	}
	st, out, errs = run(t, "", time.Time{}, nil, "import", "--config", cfg, "testdata/create_api_key.json")
	if st != 0 || out != "{\n  \"ids\": [\n    \"k9x8y7w6v5\"\n  ],\n  \"warnings\": []\n}\n" {
		t.Fatalf("create-api-key import = %d %q %q", st, out, errs)
	}
	// get-usage-plan-keys' items carry values; --plan puts them in a plan. The existing key
	// keeps its id and gains the membership.
	st, out, errs = run(t, "", time.Time{}, nil, "import", "--config", cfg, "--plan", "glvrsr", "testdata/get_usage_plan_keys.json")
	if st != 0 || out != `{
  "ids": [
    "m1n2o3p4q5",
    "existing"
  ],
  "warnings": [
    "testdata/get_usage_plan_keys.json: items[1]: the key is already configured as \"existing\", which keeps its id"
  ]
}
` {
		t.Fatalf("get-usage-plan-keys import = %d %q %q", st, out, errs)
	}
	got := read(t, cfg)
	want := strings.Replace(read(t, "testdata/plugin.json"),
		`{"id": "existing", "name": "Existing", "value": "ExistingKeyValue00000000000001", "customerId": "cust-1", "tags": {"team": "a"}}`,
		`{"id": "existing", "name": "Existing", "valueSha256": "`+digest("ExistingKeyValue00000000000001")+`", "customerId": "cust-1", "tags": {"team": "a"}, "enabled": true},
    {"id": "a1b2c3d4e5", "name": "Partner One", "description": "from get-api-keys --include-values", "customerId": "partner-1", "valueSha256": "`+digest("AwsKeyValue000000000000000000000000000001")+`", "enabled": true},
    {"id": "f6g7h8i9j0", "name": "Partner Two", "valueSha256": "`+digest("AwsKeyValue000000000000000000000000000002")+`", "enabled": false},
    {"id": "k9x8y7w6v5", "name": "Partner Three", "valueSha256": "`+digest("AwsKeyValue000000000000000000000000000003")+`", "enabled": true},
    {"id": "m1n2o3p4q5", "name": "Plan Member", "valueSha256": "`+digest("AwsKeyValue000000000000000000000000000004")+`", "enabled": true}`, 1)
	want = strings.Replace(want, `{"usagePlanId": "silver", "keyId": "existing"}`, `{"usagePlanId": "silver", "keyId": "existing"},
    {"usagePlanId": "glvrsr", "keyId": "m1n2o3p4q5", "keyType": "API_KEY"},
    {"usagePlanId": "glvrsr", "keyId": "existing", "keyType": "API_KEY"}`, 1)
	if got != want {
		t.Errorf("configuration:\n%s\nwant:\n%s", got, want)
	}
}

// A bad key file is reported row by row (line and column, or JSON path), the values never
// shown, and the configuration is left exactly as it was.
func TestImportErrors(t *testing.T) {
	const head = "usageplans keys import: "
	for _, tt := range []struct {
		file   string
		args   []string
		stderr string
	}{
		{"bad_rows.csv", nil, `testdata/bad_rows.csv:3: column Key: empty: every row needs a key
testdata/bad_rows.csv:4: column Key: must be 20 to 128 letters and digits, got 6 characters
testdata/bad_rows.csv:5: column Name: empty: every key needs a name (its id is made from it)
testdata/bad_rows.csv:6: column Key: must be 20 to 128 letters and digits, found another character
` + head + "4 problem(s) in testdata/bad_rows.csv; nothing written to CFG\n"},
		{"bad_values.csv", nil, `testdata/bad_values.csv:2: column Enabled: must be true or false (or empty, for true), got "yes"
testdata/bad_values.csv:4: 5 fields, the header has 4 (several usage plan ids go in quotes: "id1,id2")
` + head + "2 problem(s) in testdata/bad_values.csv; nothing written to CFG\n"},
		{"no_key_column.csv", nil, "testdata/no_key_column.csv:1: header: no Key column (Name and Key are required; header names are not case sensitive)\n" +
			head + "1 problem(s) in testdata/no_key_column.csv; nothing written to CFG\n"},
		{"twice_column.csv", nil, "testdata/twice_column.csv:1: header: column Key appears twice (columns 2 and 3)\n" +
			head + "1 problem(s) in testdata/twice_column.csv; nothing written to CFG\n"},
		{"unclosed.csv", nil, "testdata/unclosed.csv:2: a quoted field (opened with \") is never closed\n" +
			head + "1 problem(s) in testdata/unclosed.csv; nothing written to CFG\n"},
		{"aws_example_2.csv", []string{"--plan", "nosuchplan"}, "--plan: no usage plan with id \"nosuchplan\" in the configuration\n" +
			head + "1 problem(s) in testdata/aws_example_2.csv; nothing written to CFG\n"},
		{"two_plans_one_stage.csv", nil, `CFG: usagePlanKeys[2]: key "a" is in usage plans "c7y23b" and "silver", which both grant API stage "shop/prod": a key may belong to one plan per API stage
CFG: the result is invalid: 1 problem(s); nothing written
`},
		{"bad_keys.json", nil, `testdata/bad_keys.json: items[0].value: required (aws apigateway get-api-keys prints values only with --include-values)
testdata/bad_keys.json: items[1].id: must be 1 to 128 letters, digits, '-', '_' and '.', got "bad id!"
testdata/bad_keys.json: items[2].colour: unknown field
testdata/bad_keys.json: items[2].enabled: must be true or false
testdata/bad_keys.json: items[3].id: needs id or name (the key's id in the configuration)
testdata/bad_keys.json: items[5]: must be an ApiKey object
` + head + "6 problem(s) in testdata/bad_keys.json; nothing written to CFG\n"},
	} {
		cfg := tempConfig(t, "plugin.json")
		st, out, errs := run(t, "", time.Time{}, nil, append(append([]string{"import", "--config", cfg}, tt.args...), "testdata/"+tt.file)...)
		if want := strings.ReplaceAll(tt.stderr, "CFG", cfg); st != 1 || out != "" || errs != want {
			t.Errorf("%s: %d %q, stderr:\n%s\nwant 1, no stdout, stderr:\n%s", tt.file, st, out, errs, want)
		}
		if read(t, cfg) != read(t, "testdata/plugin.json") {
			t.Errorf("%s: the configuration changed", tt.file)
		}
		data, _ := os.ReadFile(filepath.Join("testdata", tt.file))
		for _, v := range keyLike(string(data)) {
			if strings.Contains(errs, v) {
				t.Errorf("%s: a key value (%d characters) is in the messages", tt.file, len(v))
			}
		}
	}
	// An id AWS gave that the configuration uses for another key.
	cfg := tempConfig(t, "plugin.json")
	st, _, errs := run(t, `{"id": "existing", "value": "AwsKeyValue000000000000000000000000000008"}`, time.Time{}, nil, "import", "--config", cfg, "-")
	if want := "stdin: id \"existing\" is taken by another key of the configuration (keys rotate gives a key a new value)\n" + head + "1 problem(s) in stdin; nothing written to " + cfg + "\n"; st != 1 || errs != want {
		t.Errorf("id conflict: %d\n%s\nwant\n%s", st, errs, want)
	}
}

// keyLike lists the runs of 20 or more letters and digits of s.
func keyLike(s string) []string {
	var out []string
	f := strings.FieldsFunc(s, func(r rune) bool { return !alnum(string(r)) })
	for _, w := range f {
		if len(w) >= minValue {
			out = append(out, w)
		}
	}
	return out
}

// With --prefix, an imported value that starts with the prefix must carry its checksum.
func TestImportPrefixChecksum(t *testing.T) {
	good, _ := generate(&counting{}, "shop")
	bad := good[:len(good)-1] + "x"
	if good[len(good)-1] == 'x' {
		bad = good[:len(good)-1] + "y"
	}
	cfg := tempConfig(t, "plugin.json")
	csv := "Name,Key\nGood," + good + "\nBad," + bad + "\nPlain,PlainKeyValue000000000000001\n"
	st, out, errs := run(t, csv, time.Time{}, nil, "import", "--config", cfg, "--prefix", "shop", "-")
	want := "stdin:3: the key starts with \"shop\" but the checksum (the last 6 characters) does not match: mistyped, or not a value generated with --prefix\n" +
		"usageplans keys import: 1 problem(s) in stdin; nothing written to " + cfg + "\n"
	if st != 1 || out != "" || errs != want || read(t, cfg) != read(t, "testdata/plugin.json") {
		t.Errorf("import = %d %q\n%s\nwant 1, stderr\n%s", st, out, errs, want)
	}
	csv = "Name,Key\nGood," + good + "\nPlain,PlainKeyValue000000000000001\n"
	if st, _, errs := run(t, csv, time.Time{}, nil, "import", "--config", cfg, "--prefix", "shop", "--dry-run", "-"); st != 0 ||
		errs != cfg+": would import (dry run, nothing written) 2 key(s) from stdin: 2 added, 0 updated; 0 usage plan membership(s) added\n" ||
		read(t, cfg) != read(t, "testdata/plugin.json") {
		t.Errorf("dry run = %d %q, or the file changed", st, errs)
	}
}
