package cql2_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
)

// TestCheckText checks that Check finds the errors visible in a text
// filter and points at the offending node by its byte offset.
func TestCheckText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter string
		at     string // the error is at the first occurrence of this
		names  string // what the message starts with
	}{
		{"'a' < 5", "<", "<"},
		{"name = 'x' AND 5", "5", "and"},
		{"5", "5", "filter"},
		{"pop + 1", "+", "filter"},
		{"Foo(name) = 1", "Foo", "Foo"},
		{"a = 1 OR avg(b) > 2", "avg", "avg"},
		{"TRUE < FALSE", "TRUE", "<"},
		{"flag <= true", "true", "<="},
		{"5 LIKE 'a'", "5", "like"},
		{"name LIKE 5", "5", "like"},
		{"A_CONTAINS('a', ('a'))", "'a'", "a_contains"},
		{"A_OVERLAPS(tags, 5)", "5", "a_overlaps"},
		{"S_INTERSECTS(geometry, 'POINT(1 1)')", "'POINT", "s_intersects"},
		{"S_WITHIN(DATE('2020-01-01'), geometry)", "DATE", "s_within"},
		{"x = 1 / (2 - 2)", "- 2", "/"},
		{"x = 1 div 0", "0", "div"},
		{"T_AFTER(t, 5)", "5", "t_after"},
		{"T_AFTER(t, 'yesterday')", "'yesterday'", "t_after"},
		{"T_AFTER(t, INTERVAL('2021-01-01', '2020-12-31'))", "INTERVAL", "interval"},
		{"a IN ('x', POINT(1 2))", "POINT", "in"},
		{"5 IN (1, 'x')", "'x'", "in"},
		{"a = (1, 2)", "(1", "="},
		{"DATE('2020-01-01') = 1", "=", "="},
		{"INTERVAL('..', '..') = t", "INTERVAL", "="},
		{"S_INTERSECTS(g, BBOX(0, 10, 1, 5))", "BBOX", "bbox"},
		{"S_INTERSECTS(g, BBOX(170, 0, 190, 5))", "", ""}, // valid: west <= east
		{"S_INTERSECTS(g, BBOX(190, 0, 170, 5))", "BBOX", "bbox"},
		{"S_INTERSECTS(g, POLYGON((0 0, 1 0, 1 1, 0 1)))", "POLYGON", "geometry"},
		{"a = 1e999", "1e999", "number"},
		{"a = 1e-999", "", ""}, // reads as 0
		{"NOT (a = 1 OR CASEI(b))", "CASEI", "or"},
		{"CASEI(a) BETWEEN 1 AND 2", "BETWEEN", "between"},
		{"a BETWEEN 1 AND 'z'", "BETWEEN", "between"},
		{"(a = 1) + 1 > 0", "=", "+"},
		{"a = 1 AND b = 2 AND (c = 3 OR 'x' > 1)", ">", ">"},
		// valid
		{"name = 1", "", ""},
		{"pop < 'x'", "", ""},
		{"flag AND pop > 0", "", ""},
		{"flag = (pop > 0)", "", ""},
		{"'2020-01-01' < DATE('2021-01-01')", "", ""},
		{"T_AFTER('2020-01-01', DATE('2019-01-01'))", "", ""},
		{"name LIKE 'x\\%'", "", ""},
		{"pop / zero = 1", "", ""},
		{"A_CONTAINS(tags, ('a', 1))", "", ""},
		{"S_INTERSECTS(BBOX(0, 0, 1, 1), POLYGON((0 0, 2 2, 2 0, 0 2, 0 0)))", "", ""}, // self-intersecting but closed
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			t.Parallel()
			e := mustParse(t, tt.filter)
			err := cql2.Check(e)
			if tt.at == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tt.filter, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q) = nil, want an error at %q", tt.filter, tt.at)
			}
			wantInvalid(t, err, "filter:"+strconv.Itoa(strings.Index(tt.filter, tt.at)))
			var ce *catalog.Error
			if errors.As(err, &ce) && !strings.HasPrefix(ce.Message, tt.names+":") {
				t.Errorf("message %q does not start with %q", ce.Message, tt.names)
			}
		})
	}
}

// TestCheckJSON checks that Check points into a CQL2-JSON filter with the
// JSON pointer of the offending node.
func TestCheckJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter  string
		pointer string
	}{
		{`{"op":"and","args":[{"op":"=","args":[{"property":"a"},1]},{"op":"<","args":["a",5]}]}`, "/args/1"},
		{`{"op":"and","args":[true,{"op":"not","args":[{"op":"+","args":[1,2]}]}]}`, "/args/1/args/0"},
		{`{"op":"like","args":[{"property":"name"},"x\\"]}`, "/args/1"},
		{`{"op":"like","args":[{"property":"name"},{"op":"casei","args":["x\\"]}]}`, "/args/1"},
		{`{"op":"Foo","args":[]}`, "/op"},
		{`{"op":"s_intersects","args":[{"property":"g"},"x"]}`, "/args/1"},
		{`{"op":"=","args":[{"op":"casei","args":[{"property":"a"}]},{"op":"*","args":[2,{"op":"accenti","args":["x"]}]}]}`, "/args/1/args/1"},
		{`5`, ""},
		{`{"op":"t_after","args":[{"property":"t"},{"interval":["2021-01-01","2020-01-01"]}]}`, "/args/1"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"bbox":[0,1,2,1e999]}]}`, "/args/1/bbox/3"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}]}`, "/args/1"},
		{`{"op":"in","args":[{"property":"a"},[1,[2]]]}`, "/args/1/1"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			t.Parallel()
			e, err := cql2.ParseJSON([]byte(tt.filter))
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			err = cql2.Check(e)
			if err == nil {
				t.Fatalf("Check(%s) = nil, want an error at %q", tt.filter, tt.pointer)
			}
			wantInvalid(t, err, tt.pointer)
		})
	}
}

// TestCheckBuilt checks ASTs no parser would produce: Check points at
// their nodes with JSON pointers into their CQL2-JSON form.
func TestCheckBuilt(t *testing.T) {
	t.Parallel()
	prop := &cql2.Property{Name: "a"}
	deep := cql2.Expr(&cql2.Bool{Value: true})
	for range cql2.MaxDepth - 1 {
		deep = &cql2.Op{Name: "not", Args: []cql2.Expr{deep}}
	}
	tests := []struct {
		name    string
		e       cql2.Expr
		pointer string
	}{
		{"nil", nil, ""},
		{"arity", &cql2.Op{Name: "and", Args: []cql2.Expr{&cql2.Bool{Value: true}}}, "/args"},
		{"arity of not", &cql2.Op{Name: "not", Args: nil}, "/args"},
		{"bad date", &cql2.Op{Name: "=", Args: []cql2.Expr{prop, &cql2.Date{Value: "x"}}}, "/args/1/date"},
		{"bad timestamp", &cql2.Op{Name: "t_after", Args: []cql2.Expr{prop, &cql2.Timestamp{Value: "2020-01-01"}}}, "/args/1/timestamp"},
		{"in without list", &cql2.Op{Name: "in", Args: []cql2.Expr{prop, &cql2.Number{Text: "1"}}}, "/args/1"},
		{"spelling", &cql2.Op{Name: "AND", Args: []cql2.Expr{prop, prop}}, "/op"},
		{"missing argument", &cql2.Op{Name: "not", Args: []cql2.Expr{nil}}, "/args/0"},
		{"typed nil", &cql2.Op{Name: "not", Args: []cql2.Expr{(*cql2.Op)(nil)}}, "/args/0"},
		{"not a number", &cql2.Op{Name: "=", Args: []cql2.Expr{prop, &cql2.Number{Text: "NaN"}}}, "/args/1"},
		{"empty property", &cql2.Op{Name: "isNull", Args: []cql2.Expr{&cql2.Property{}}}, "/args/0/property"},
		{"bad interval bound", &cql2.Op{Name: "t_after", Args: []cql2.Expr{prop, &cql2.Interval{Start: &cql2.Number{Text: "1"}, End: &cql2.String{Value: ".."}}}}, "/args/1/interval/0"},
		{"bad geometry", &cql2.Op{Name: "s_within", Args: []cql2.Expr{prop, &cql2.Geometry{GeoJSON: json.RawMessage(`{"type":"Point","coordinates":[1]}`)}}}, "/args/1/coordinates"},
		{"bbox of 3", &cql2.Op{Name: "s_within", Args: []cql2.Expr{prop, &cql2.BBox{Coords: []cql2.Number{{Text: "1"}, {Text: "2"}, {Text: "3"}}}}}, "/args/1/bbox"},
		{"too deep", &cql2.Op{Name: "not", Args: []cql2.Expr{deep}}, strings.Repeat("/args/0", cql2.MaxDepth)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := cql2.Check(tt.e)
			if err == nil {
				t.Fatal("Check = nil, want an error")
			}
			wantInvalid(t, err, tt.pointer)
			if _, err := cql2.Eval(tt.e, sample()); err == nil {
				t.Error("Eval did not report the error")
			}
		})
	}
	if err := cql2.Check(deep); err != nil {
		t.Errorf("Check of a filter MaxDepth deep: %v", err)
	}
}

// TestCheckConformance checks that every ATS filter and every example
// passes Check, except the examples calling custom functions.
func TestCheckConformance(t *testing.T) {
	t.Parallel()
	conf := conformanceDir(t)
	raw, err := os.ReadFile(filepath.Join(conf, "ats.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []atsRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := cql2.Check(mustParse(t, r.FilterText)); err != nil {
			t.Errorf("Check(%q): %v", r.FilterText, err)
		}
	}
	custom := map[string]bool{"clause6_01": true, "clause6_02b": true, "clause7_18": true, "example68": true, "example69": true}
	paths, err := filepath.Glob(filepath.Join(conf, "examples", "json", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		e, err := cql2.ParseJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = cql2.Check(e)
		if custom[name] != (err != nil) {
			t.Errorf("%s: Check = %v", name, err)
		}
	}
}

// TestDepthLimit checks that both parsers turn deep filters away without
// recursing into them: in time linear in their length (a bound generous
// enough for the race detector catches anything worse).
func TestDepthLimit(t *testing.T) {
	t.Parallel()
	n := cql2.MaxDepth
	chain := func(k int) string { return "x = 1" + strings.Repeat(" + 1", k) }
	texts := []struct {
		filter string
		ok     bool
	}{
		{strings.Repeat("(", n) + "a = 1" + strings.Repeat(")", n), true},
		{strings.Repeat("(", n+1) + "a = 1" + strings.Repeat(")", n+1), false},
		{strings.Repeat("NOT ", n-1) + "a", true},
		{strings.Repeat("NOT ", n) + "a", false},
		{strings.Repeat("CASEI(", n-2) + "a" + strings.Repeat(")", n-2) + " = 'x'", true},
		{strings.Repeat("CASEI(", n-1) + "a" + strings.Repeat(")", n-1) + " = 'x'", false},
		{"a IN " + strings.Repeat("(", n+1) + "1" + strings.Repeat(")", n+1), false},
		{"A_EQUALS(a, " + strings.Repeat("(", n) + strings.Repeat(")", n) + ")", false},
		{chain(n - 2), true}, // "=" at level 1, the last "+" at level 2, …, the first 1 at n
		{chain(n - 1), false},
		{strings.Repeat("(", 1_000_000), false},
		{strings.Repeat("(", n-1) + "S_INTERSECTS(g, MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0))))" + strings.Repeat(")", n-1), true},
		{strings.Repeat("NOT ", 100_000) + "a", false},
		{chain(100_000), false},
	}
	for _, tt := range texts {
		e, err := cql2.ParseText(tt.filter)
		if tt.ok != (err == nil) {
			t.Errorf("ParseText(%.40q…) = %v, want ok %v", tt.filter, err, tt.ok)
			continue
		}
		if err != nil {
			wantInvalidPrefix(t, err, "filter:")
			continue
		}
		// What the text parser accepts, the JSON parser accepts too.
		if _, err := cql2.ParseJSON(printJSON(t, e)); err != nil {
			t.Errorf("ParseJSON(PrintJSON(ParseText(%.40q…))): %v", tt.filter, err)
		}
	}

	nots := func(k int) string {
		return strings.Repeat(`{"op":"not","args":[`, k) + "true" + strings.Repeat("]}", k)
	}
	jsons := []struct {
		filter string
		ok     bool
	}{
		{nots(n - 1), true},
		{nots(n), false},
		{`{"op":"in","args":[{"property":"a"},` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `]}`, true},
		{`{"op":"in","args":[{"property":"a"},` + strings.Repeat("[", n) + strings.Repeat("]", n) + `]}`, false},
		{strings.Repeat("[", 1_000_000), false},
		{strings.Repeat("[", 1_000_000) + strings.Repeat("]", 1_000_000), false},
		{strings.Repeat(`{"a":`, 1_000_000), false},
		{`{"op":"=","args":[{"property":"a"},"` + strings.Repeat("[", 10_000) + `"]}`, true}, // brackets in a string
	}
	for _, tt := range jsons {
		start := time.Now()
		e, err := cql2.ParseJSON([]byte(tt.filter))
		if tt.ok != (err == nil) {
			t.Errorf("ParseJSON(%.40s…) = %v, want ok %v", tt.filter, err, tt.ok)
			continue
		}
		if err != nil {
			wantInvalidPrefix(t, err, "")
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("rejecting %.40s… took %v", tt.filter, d)
			}
			continue
		}
		if _, err := cql2.ParseText(cql2.PrintText(e)); err != nil {
			t.Errorf("ParseText(PrintText(ParseJSON(%.40s…))): %v", tt.filter, err)
		}
	}
}

// wantInvalidPrefix checks that err is an EINVALID *catalog.Error about
// depth whose pointer starts with prefix.
func wantInvalidPrefix(t *testing.T, err error, prefix string) {
	t.Helper()
	var ce *catalog.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *catalog.Error", err, err)
	}
	if ce.Code != catalog.EINVALID {
		t.Errorf("code = %q, want %q", ce.Code, catalog.EINVALID)
	}
	if !strings.HasPrefix(ce.Pointer, prefix) {
		t.Errorf("pointer = %q, want one starting with %q", ce.Pointer, prefix)
	}
	if !strings.Contains(ce.Message, "deep") {
		t.Errorf("message %q does not say the filter is too deep", ce.Message)
	}
}
