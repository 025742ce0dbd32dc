package cql2_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
)

// textSeeds and jsonSeeds are hand-written seeds for the parts of the
// grammar the examples touch lightly.
var textSeeds = []string{
	`a = 1 AND NOT (b LIKE 'x\%' OR c IS NULL)`,
	`x = -(2 ^ 3) div 2 + .5 * 1E3 % 7`,
	`name IN ('a', casei('B'), ACCENTI('é')) AND "p q" NOT BETWEEN 1 AND 2`,
	`A_CONTAINS(tags, ('a', 1, ())) OR A_EQUALS((), ((1, 2), 'x'))`,
	`T_DURING(INTERVAL(start, end), INTERVAL('..', '2020-01-01T00:00:00.5Z')) AND T_AFTER("date", DATE('2020-02-29'))`,
	`S_WITHIN(BBOX(170, -10, -170, 10), geom) OR S_TOUCHES(geometry, POLYGON Z ((0 0 1, 1 0 1, 1 1 1, 0 0 1)))`,
	`S_CROSSES(GEOMETRYCOLLECTION(POINT(1 2), MULTIPOINT(3 4, (5 6)), MULTILINESTRING((0 0, 1 1))), MULTIPOLYGON(((0 0, 2 0, 2 2, 0 0))))`,
	`((((flag)))) = (pop > 0)`,
	`'O''Brien' <> 'O\'Neil'`,
	`pop / 0 = 1 OR Foo(1, 'a') OR name < 5`,
}

var jsonSeeds = []string{
	`{"op":"and","args":[{"op":"=","args":[{"property":"a"},1]},{"op":"not","args":[{"op":"like","args":[{"property":"b"},"x\\%"]}]}]}`,
	`{"op":"in","args":[{"property":"a"},[1,"x",[2],{"date":"2020-01-01"}]]}`,
	`{"op":"t_intersects","args":[{"interval":[{"property":"s"},".."]},{"timestamp":"2020-01-01T00:00:00Z"}]}`,
	`{"op":"s_intersects","args":[{"property":"geometry"},{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2,3]}]}]}`,
	`{"op":"s_equals","args":[{"bbox":[-180,-90,0,180,90,1]},{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}]}`,
	`{"op":"=","args":[{"op":"casei","args":[{"property":"a\"b"}]},{"op":"+","args":[1e999,-0]}]}`,
	`{"op":"a_overlaps","args":[[["x"]],[]]}`,
	`{"op":"Foo","args":["a\\'b",true,null]}`,
}

// fuzzSeeds returns the conformance examples of one encoding ("text" or
// "json"); without the conformance data it logs and returns none.
func fuzzSeeds(f *testing.F, enc string) []string {
	conf, err := findConformanceDir()
	if errors.Is(err, errNoModule) || err != nil && os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
		f.Fatalf("CQL2 conformance data missing: %v", err)
	}
	if err != nil {
		f.Logf("../shared/conformance/cql2 not found (%v): seeding with the hand-written inputs only", err)
		return nil
	}
	ext := map[string]string{"text": "txt", "json": "json"}[enc]
	paths, err := filepath.Glob(filepath.Join(conf, "examples", enc, "*."+ext))
	if err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, string(raw))
	}
	return out
}

func FuzzParseText(f *testing.F) {
	for _, s := range append(fuzzSeeds(f, "text"), textSeeds...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := cql2.ParseText(src)
		if err != nil {
			wantParseError(t, err)
			return
		}
		checkParsed(t, e)
	})
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range append(fuzzSeeds(f, "json"), jsonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		e, err := cql2.ParseJSON(src)
		if err != nil {
			wantParseError(t, err)
			return
		}
		checkParsed(t, e)
	})
}

// wantParseError checks that a parser failed the way it documents.
func wantParseError(t *testing.T, err error) {
	t.Helper()
	var ce *catalog.Error
	if !errors.As(err, &ce) || ce.Code != catalog.EINVALID || ce.Message == "" {
		t.Fatalf("parse error %v (%T) is not an EINVALID *catalog.Error", err, err)
	}
}

// checkParsed checks the properties every parsed filter has: printed in
// either encoding it parses back to the same AST, and Check and Eval
// judge it without panicking, Eval failing exactly when Check does.
func checkParsed(t *testing.T, e cql2.Expr) {
	t.Helper()
	js, err := cql2.PrintJSON(e)
	if err != nil {
		t.Fatalf("PrintJSON: %v", err)
	}
	back, err := cql2.ParseJSON(js)
	if err != nil {
		t.Fatalf("ParseJSON(PrintJSON(e)) = %v\njson: %s", err, js)
	}
	if !reflect.DeepEqual(back, e) {
		again, _ := cql2.PrintJSON(back)
		t.Fatalf("JSON round trip changed the AST\n got: %s\nwant: %s", again, js)
	}

	if why := notInText(e, nil); why == "" {
		text := cql2.PrintText(e)
		back, err := cql2.ParseText(text)
		var ce *catalog.Error
		switch {
		case err != nil && errors.As(err, &ce) && strings.Contains(ce.Message, "nested deeper"):
			// Text may need two levels of parentheses for one level of
			// expression ("((NOT a) + 1)"), so a filter near MaxDepth
			// can be too deep as text although it is not as JSON.
		case err != nil:
			t.Fatalf("ParseText(PrintText(e)) = %v\ntext: %s\njson: %s", err, text, js)
		case !reflect.DeepEqual(back, e):
			again, _ := cql2.PrintJSON(back)
			t.Fatalf("text round trip changed the AST\ntext: %s\n got: %s\nwant: %s", text, again, js)
		}
	}

	checkErr := cql2.Check(e)
	for _, f := range fuzzFeatures() {
		ok, err := cql2.Eval(e, f)
		if (err == nil) != (checkErr == nil) {
			t.Fatalf("Eval error %v, Check error %v", err, checkErr)
		}
		if err != nil && ok {
			t.Fatal("Eval matched and failed")
		}
	}
}

// notInText returns why e cannot be written in CQL2-Text, or "" when it
// can. parent is the operator e is an argument of, if any. CQL2-JSON can
// say three things CQL2-Text cannot: a property name holding a double
// quote, a string whose backslash comes right before a quote or at the
// end (a backslash-quote is an escaped quote in text), and a one-element
// array other than the list of IN or an argument of A_* (in text it is
// a parenthesised expression).
func notInText(e cql2.Expr, parent *cql2.Op) string {
	switch x := e.(type) {
	case *cql2.Property:
		if strings.Contains(x.Name, `"`) {
			return "a property name with a double quote"
		}
	case *cql2.String:
		if strings.Contains(x.Value, `\'`) || strings.HasSuffix(x.Value, `\`) {
			return "a string with a backslash before a quote or at the end"
		}
	case *cql2.Array:
		listArg := parent != nil && cql2.IsStandardOp(parent.Name) &&
			(parent.Name == "in" || strings.HasPrefix(parent.Name, "a_"))
		if len(x.Elems) == 1 && !listArg {
			return "a one-element array"
		}
		for _, el := range x.Elems {
			if why := notInText(el, nil); why != "" {
				return why
			}
		}
	case *cql2.Interval:
		if why := notInText(x.Start, nil); why != "" {
			return why
		}
		return notInText(x.End, nil)
	case *cql2.Op:
		for i, a := range x.Args {
			p := x
			if x.Name == "in" && i == 0 {
				p = nil
			}
			if why := notInText(a, p); why != "" {
				return why
			}
		}
	}
	return ""
}

// fuzzFeatures are the features fuzzed filters are evaluated on: one with
// values of every type, one with nothing, one with values of the wrong
// kinds under the usual names.
func fuzzFeatures() []cql2.Feature {
	return []cql2.Feature{
		sample(),
		&cql2.MapFeature{},
		&cql2.MapFeature{
			ID: json.Number("7"),
			Properties: map[string]any{
				"name":  []any{1, "x"},
				"pop":   "many",
				"flag":  map[string]any{"a": 1},
				"date":  true,
				"start": 3.5,
				"tags":  "a",
				"a":     map[string]any{"type": "Polygon", "coordinates": []any{[]any{[]any{0, 0}, []any{1, 1}}}},
				"b":     map[string]any{"type": "LineString", "coordinates": []any{[]any{0, 0}, []any{0, 0}}},
			},
			GeoJSON: json.RawMessage(`{"type":"Polygon","coordinates":[[[0,0],[2,2],[2,0],[0,2],[0,0]]]}`),
		},
	}
}
