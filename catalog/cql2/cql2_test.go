package cql2_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
)

// conformanceDir finds ../shared/conformance/cql2 next to the module root.
// It skips the test when the folder is absent, unless
// TWINSTAC_TEST_REQUIRE_SERVICES=1 demands it.
func conformanceDir(t *testing.T) string {
	t.Helper()
	conf, err := findConformanceDir()
	if errors.Is(err, errNoModule) {
		t.Fatal(err)
	}
	if err != nil {
		if os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("CQL2 conformance data missing: %v", err)
		}
		t.Skipf("../shared/conformance/cql2 not found (%v): a clone outside the workplace", err)
	}
	return conf
}

var errNoModule = errors.New("go.mod not found above the working directory")

// findConformanceDir returns ../shared/conformance/cql2 next to the module
// root, or an error saying where it looked.
func findConformanceDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errNoModule
		}
		dir = parent
	}
	conf := filepath.Join(dir, "..", "shared", "conformance", "cql2")
	if _, err := os.Stat(filepath.Join(conf, "examples")); err != nil {
		return "", fmt.Errorf("looked at %s: %w", conf, err)
	}
	return conf, nil
}

// normalise decodes JSON into a form where equal filters compare equal:
// numbers as float64 and timestamps reduced to their instant.
func normalise(t *testing.T, raw []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return normaliseValue(t, v, false)
}

func normaliseValue(t *testing.T, v any, instant bool) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			t.Fatalf("number %s: %v", x, err)
		}
		return f
	case string:
		if instant {
			if ts, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return ts.UTC().Format(time.RFC3339Nano)
			}
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normaliseValue(t, e, instant)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normaliseValue(t, e, k == "timestamp" || k == "interval")
		}
		return out
	}
	return v
}

func printJSON(t *testing.T, e cql2.Expr) []byte {
	t.Helper()
	out, err := cql2.PrintJSON(e)
	if err != nil {
		t.Fatalf("PrintJSON: %v", err)
	}
	if !json.Valid(out) {
		t.Fatalf("PrintJSON produced invalid JSON: %s", out)
	}
	return out
}

func TestExamples(t *testing.T) {
	t.Parallel()
	conf := conformanceDir(t)
	texts, err := filepath.Glob(filepath.Join(conf, "examples", "text", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) < 109 {
		t.Fatalf("found %d text examples, want at least 109", len(texts))
	}
	for _, path := range texts {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			jsonPath := filepath.Join(conf, "examples", "json", strings.TrimSuffix(name, "-alt01")+".json")
			wantJSON, err := os.ReadFile(jsonPath)
			if err != nil {
				t.Fatal(err)
			}

			fromText, err := cql2.ParseText(string(text))
			if err != nil {
				t.Fatalf("ParseText: %v", err)
			}
			fromJSON, err := cql2.ParseJSON(wantJSON)
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			textOut := printJSON(t, fromText)
			jsonOut := printJSON(t, fromJSON)
			want := normalise(t, wantJSON)
			if got := normalise(t, textOut); !reflect.DeepEqual(got, want) {
				t.Errorf("PrintJSON(ParseText) differs from the JSON example\n got: %s\nwant: %s", textOut, wantJSON)
			}
			if got := normalise(t, jsonOut); !reflect.DeepEqual(got, want) {
				t.Errorf("PrintJSON(ParseJSON) differs from the JSON example\n got: %s\nwant: %s", jsonOut, wantJSON)
			}

			// Both printers round-trip to the same AST.
			for src, ast := range map[string]cql2.Expr{"text": fromText, "json": fromJSON} {
				printed := cql2.PrintText(ast)
				again, err := cql2.ParseText(printed)
				if err != nil {
					t.Fatalf("ParseText(PrintText(%s AST)) = %v\ntext: %s", src, err, printed)
				}
				if got, want := printJSON(t, again), printJSON(t, ast); !bytes.Equal(got, want) {
					t.Errorf("text round trip of %s AST changed it\ntext: %s\n got: %s\nwant: %s", src, printed, got, want)
				}
				if p2 := cql2.PrintText(again); p2 != printed {
					t.Errorf("PrintText is not stable: %q then %q", printed, p2)
				}
				canon := printJSON(t, ast)
				back, err := cql2.ParseJSON(canon)
				if err != nil {
					t.Fatalf("ParseJSON(PrintJSON(%s AST)) = %v", src, err)
				}
				if got := printJSON(t, back); !bytes.Equal(got, canon) {
					t.Errorf("JSON round trip of %s AST changed it\n got: %s\nwant: %s", src, got, canon)
				}
			}
		})
	}
}

// wantInvalid checks that err is an EINVALID *catalog.Error at pointer.
func wantInvalid(t *testing.T, err error, pointer string) {
	t.Helper()
	var ce *catalog.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *catalog.Error", err, err)
	}
	if ce.Code != catalog.EINVALID {
		t.Errorf("code = %q, want %q", ce.Code, catalog.EINVALID)
	}
	if ce.Message == "" {
		t.Error("message is empty")
	}
	if ce.Pointer != pointer {
		t.Errorf("pointer = %q, want %q (message %q)", ce.Pointer, pointer, ce.Message)
	}
}

func TestParseTextErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		filter  string
		pointer string
	}{
		{"empty", "   ", "filter:0"},
		{"unclosed parenthesis", "(a = 1", "filter:6"},
		{"extra closing parenthesis", "a = 1)", "filter:5"},
		{"unknown operator", "a ~ 1", "filter:2"},
		{"doubled operator", "a == 1", "filter:3"},
		{"unterminated string", "name = 'Smith", "filter:7"},
		{"unterminated identifier", `"name = 1`, "filter:0"},
		{"between without and", "a BETWEEN 1 OR 2", "filter:12"},
		{"in without list", "a IN 1", "filter:5"},
		{"is without null", "a IS 1", "filter:5"},
		{"bad date", "t = DATE('2020-13-01')", "filter:9"},
		{"bad timestamp", "T_AFTER(t, TIMESTAMP('2020-01-01'))", "filter:21"},
		{"bbox of three", "S_WITHIN(g, BBOX(1, 2, 3))", "filter:16"},
		{"short line", "S_WITHIN(g, LINESTRING(1 2))", "filter:12"},
		{"spatial arity", "S_WITHIN(g)", "filter:0"},
		{"interval bound", "T_AFTER(t, INTERVAL('yesterday', '..'))", "filter:20"},
		{"keyword as property", "AND = 1", "filter:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := cql2.ParseText(tt.filter)
			if err == nil {
				t.Fatalf("ParseText(%q) = %s, want an error", tt.filter, cql2.PrintText(e))
			}
			wantInvalid(t, err, tt.pointer)
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		filter  string
		pointer string
	}{
		{"not json", `{"op":`, ""},
		{"unknown operator", `{"op":"==","args":[1,2]}`, "/op"},
		{"nested unknown operator", `{"op":"and","args":[true,{"op":"~","args":[]}]}`, "/args/1/op"},
		{"wrong arg count", `{"op":"=","args":[{"property":"a"}]}`, "/args"},
		{"between arity", `{"op":"between","args":[1,2]}`, "/args"},
		{"and arity", `{"op":"and","args":[true]}`, "/args"},
		{"args missing", `{"op":"not"}`, ""},
		{"args not array", `{"op":"not","args":true}`, "/args"},
		{"in without array", `{"op":"in","args":[{"property":"a"},1]}`, "/args/1"},
		{"null", `{"op":"=","args":[{"property":"a"},null]}`, "/args/1"},
		{"unknown object", `{"op":"=","args":[{"foo":1},1]}`, "/args/0"},
		{"bad timestamp", `{"op":"t_after","args":[{"property":"t"},{"timestamp":"2020-01-01"}]}`, "/args/1/timestamp"},
		{"bad interval", `{"op":"t_after","args":[{"property":"t"},{"interval":["x",".."]}]}`, "/args/1/interval/0"},
		{"bad bbox", `{"op":"s_within","args":[{"property":"g"},{"bbox":[1,2,3]}]}`, "/args/1/bbox"},
		{"bad geometry", `{"op":"s_within","args":[{"property":"g"},{"type":"Point","coordinates":[1]}]}`, "/args/1/coordinates"},
		{"unknown geometry", `{"op":"s_within","args":[{"property":"g"},{"type":"Circle","coordinates":[1,2]}]}`, "/args/1/type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := cql2.ParseJSON([]byte(tt.filter))
			if err == nil {
				t.Fatalf("ParseJSON(%s) = %s, want an error", tt.filter, cql2.PrintText(e))
			}
			wantInvalid(t, err, tt.pointer)
		})
	}
}

// TestParseText checks text forms the examples do not cover.
func TestParseText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		filter string
		want   string
	}{
		{"escaped quotes", `name = 'O''Brien' OR name = 'O\'Neil'`,
			`{"op":"or","args":[{"op":"=","args":[{"property":"name"},"O'Brien"]},{"op":"=","args":[{"property":"name"},"O'Neil"]}]}`},
		{"lower-case keywords", `a is not null and not b like 'x%'`,
			`{"op":"and","args":[{"op":"not","args":[{"op":"isNull","args":[{"property":"a"}]}]},{"op":"not","args":[{"op":"like","args":[{"property":"b"},"x%"]}]}]}`},
		{"precedence", `a = 1 OR b = 2 AND c = 3`,
			`{"op":"or","args":[{"op":"=","args":[{"property":"a"},1]},{"op":"and","args":[{"op":"=","args":[{"property":"b"},2]},{"op":"=","args":[{"property":"c"},3]}]}]}`},
		{"arithmetic precedence", `x = 1 + 2 * 3 ^ 2`,
			`{"op":"=","args":[{"property":"x"},{"op":"+","args":[1,{"op":"*","args":[2,{"op":"^","args":[3,2]}]}]}]}`},
		{"numbers normalised", `x IN (.5, 5., 1E3, +2)`,
			`{"op":"in","args":[{"property":"x"},[0.5,5,1E3,2]]}`},
		{"multipoint without inner parentheses", `S_INTERSECTS(g, MULTIPOINT(1 2, 3 4))`,
			`{"op":"s_intersects","args":[{"property":"g"},{"type":"MultiPoint","coordinates":[[1,2],[3,4]]}]}`},
		{"point z", `S_INTERSECTS(g, point z (1 2 3))`,
			`{"op":"s_intersects","args":[{"property":"g"},{"type":"Point","coordinates":[1,2,3]}]}`},
		{"open interval", `T_INTERSECTS(t, INTERVAL('..', '2020-01-01'))`,
			`{"op":"t_intersects","args":[{"property":"t"},{"interval":["..","2020-01-01"]}]}`},
		{"empty array", `A_EQUALS(a, ())`, `{"op":"a_equals","args":[{"property":"a"},[]]}`},
		{"one-element array", `A_CONTAINS(a, ('x'))`, `{"op":"a_contains","args":[{"property":"a"},["x"]]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := cql2.ParseText(tt.filter)
			if err != nil {
				t.Fatalf("ParseText: %v", err)
			}
			if got := string(printJSON(t, e)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			again, err := cql2.ParseText(cql2.PrintText(e))
			if err != nil {
				t.Fatalf("reparse %q: %v", cql2.PrintText(e), err)
			}
			if got := string(printJSON(t, again)); got != tt.want {
				t.Errorf("round trip via %q\ngot  %s\nwant %s", cql2.PrintText(e), got, tt.want)
			}
		})
	}
}
