package catalog

import (
	"encoding/json"
	"testing"
)

func TestAppendDocumentMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	raw := `{"z":1,"a":{"y":[1,2,{"k":"v"}],"b":null},"é":"ü","q\"uote":"line\nbreak\u2028","ctl\u0001":true}`
	var d Document
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatal(err)
	}
	props := Document{"datetime": json.RawMessage(`"2024-01-01T00:00:00Z"`), "<tag>": json.RawMessage(`"a&b"`)}
	got := appendDocument(nil, d, "properties", props)
	full := d.Clone()
	full["properties"], _ = json.Marshal(map[string]json.RawMessage(props))
	want, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	_ = json.Unmarshal(want, &w)
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if s := string(appendString(nil, "a\"b\\c\x7f\u2029")); s != `"a\"b\\c`+"\x7f"+`\u2029"` {
		t.Fatalf("appendString = %s", s)
	}
}

func TestSplitObjectMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := []string{
		`{}`, ` { } `,
		`{"a":1,"b":"x,}]\"","c":[1,{"d":"}"}],"e":{"f":[]},"g":null,"h":true,"i":-1.5e3}`,
		"{\n  \"esc\\\"aped\": \"v\",\n  \"\\u00e9\": [ 1 , 2 ]\n}",
		`{"dup":1,"dup":2}`,
	}
	for _, c := range cases {
		got, err := splitObject([]byte(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c), &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d members, want %d", c, len(got), len(want))
		}
		for k, v := range want {
			if string(got[k]) != string(v) {
				t.Fatalf("%s: member %q = %s, want %s", c, k, got[k], v)
			}
		}
	}
	for _, bad := range []string{`[1]`, `"s"`, `{"a" 1}`} {
		if _, err := splitObject([]byte(bad)); err == nil {
			t.Fatalf("%s: no error", bad)
		}
	}
}
