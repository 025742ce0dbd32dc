package cql2

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Expr is a node of a CQL2 expression. The concrete types are the ones in
// this file; the interface is closed so that printers and evaluators can
// switch over them exhaustively.
type Expr interface {
	cql2Expr()
}

// Bool is a boolean literal (TRUE / true).
type Bool struct {
	Value bool
}

// Number is a numeric literal. Text keeps the literal as written (always a
// valid JSON number) so that no precision is lost between encodings.
type Number struct {
	Text string
}

// String is a character literal. Inside an Interval it also carries the
// instant strings ("1969-07-16", "..", …) as CQL2-JSON does.
type String struct {
	Value string
}

// Date is a calendar date instant: DATE('2015-01-01') / {"date": "2015-01-01"}.
type Date struct {
	Value string
}

// Timestamp is a UTC instant: TIMESTAMP('…Z') / {"timestamp": "…Z"}.
type Timestamp struct {
	Value string
}

// Interval is INTERVAL(a, b) / {"interval": [a, b]}. Each bound is a String
// holding a date, a timestamp or ".." (open end), a Property or a function
// call (*Op).
type Interval struct {
	Start, End Expr
}

// Property references a queryable by name.
type Property struct {
	Name string
}

// Geometry is a geometry literal, kept as canonical GeoJSON (keys "type"
// then "coordinates" or "geometries", numbers as written). CQL2-Text
// writes it as WKT.
type Geometry struct {
	GeoJSON json.RawMessage
}

// BBox is BBOX(w, s, e, n) or BBOX(w, s, zmin, e, n, zmax) / {"bbox": […]}.
type BBox struct {
	Coords []Number
}

// Array is an array literal: ('a', 'b') in text, ["a", "b"] in JSON.
type Array struct {
	Elems []Expr
}

// Op is an operator or a function call: {"op": Name, "args": Args}. Name is
// the canonical CQL2-JSON spelling for the standard operators ("and",
// "isNull", "t_metBy", "+", "div", …, see IsStandardOp) and the name as
// written for any other function ("Buffer", "avg").
type Op struct {
	Name string
	Args []Expr
}

func (*Bool) cql2Expr()      {}
func (*Number) cql2Expr()    {}
func (*String) cql2Expr()    {}
func (*Date) cql2Expr()      {}
func (*Timestamp) cql2Expr() {}
func (*Interval) cql2Expr()  {}
func (*Property) cql2Expr()  {}
func (*Geometry) cql2Expr()  {}
func (*BBox) cql2Expr()      {}
func (*Array) cql2Expr()     {}
func (*Op) cql2Expr()        {}

// standardOps lists the operators of CQL2 with their canonical JSON name,
// keyed by the lower-cased name so text keywords (T_METBY) and JSON names
// (t_metBy) meet. The value is the number of arguments; -2 means "two or
// more".
var standardOps = map[string]struct {
	name  string
	arity int
}{}

func init() {
	add := func(arity int, names ...string) {
		for _, n := range names {
			standardOps[strings.ToLower(n)] = struct {
				name  string
				arity int
			}{n, arity}
		}
	}
	add(-2, "and", "or")
	add(1, "not", "isNull", "casei", "accenti")
	add(2, "=", "<>", "<", ">", "<=", ">=", "like", "in")
	add(3, "between")
	add(2, "s_contains", "s_crosses", "s_disjoint", "s_equals", "s_intersects",
		"s_overlaps", "s_touches", "s_within")
	add(2, "t_after", "t_before", "t_contains", "t_disjoint", "t_during",
		"t_equals", "t_finishedBy", "t_finishes", "t_intersects", "t_meets",
		"t_metBy", "t_overlappedBy", "t_overlaps", "t_startedBy", "t_starts")
	add(2, "a_containedBy", "a_contains", "a_equals", "a_overlaps")
	add(2, "+", "-", "*", "/", "^", "%", "div")
}

// IsStandardOp reports whether name is the canonical name of a CQL2
// operator rather than a custom function.
func IsStandardOp(name string) bool {
	s, ok := standardOps[strings.ToLower(name)]
	return ok && s.name == name
}

// canonicalOp returns the canonical spelling of a standard operator and
// true, or name unchanged and false for a custom function.
func canonicalOp(name string) (string, bool) {
	if s, ok := standardOps[strings.ToLower(name)]; ok {
		return s.name, true
	}
	return name, false
}

// opArity returns the expected argument count of a standard operator (-2:
// two or more) and false for custom functions, which take any number.
func opArity(name string) (int, bool) {
	s, ok := standardOps[strings.ToLower(name)]
	return s.arity, ok
}

// checkArity returns a message when args does not fit the operator.
func checkArity(name string, n int) string {
	a, ok := opArity(name)
	switch {
	case !ok:
		return ""
	case a == -2 && n < 2:
		return "operator \"" + name + "\" needs at least 2 arguments"
	case a >= 0 && n != a:
		return "operator \"" + name + "\" needs " + strconv.Itoa(a) + " argument" + plural(a) + ", got " + strconv.Itoa(n)
	}
	return ""
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
