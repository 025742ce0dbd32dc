package cql2

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// Feature is what Eval filters: named property values and a geometry.
//
// Property returns a value decoded from JSON (nil, bool, float64 or
// json.Number, string, []any, map[string]any; Go integer types are accepted
// too) and false when the feature has no such property. A missing property
// and a JSON null behave the same: as SQL NULL.
type Feature interface {
	Property(name string) (any, bool)
	Geometry() json.RawMessage
}

// MapFeature is the plain Feature: a GeoJSON feature's id, collection,
// properties and geometry. "id" and "collection" address ID and Collection
// as properties, so that filters on them read like any other.
type MapFeature struct {
	ID         any
	Collection string
	Properties map[string]any
	GeoJSON    json.RawMessage
}

var _ Feature = (*MapFeature)(nil)

// Property returns the named value; see Feature.
func (f *MapFeature) Property(name string) (any, bool) {
	switch {
	case name == "id" && f.ID != nil:
		return f.ID, true
	case name == "collection" && f.Collection != "":
		return f.Collection, true
	}
	v, ok := f.Properties[name]
	return v, ok
}

// Geometry returns the feature's GeoJSON geometry, nil when it has none.
func (f *MapFeature) Geometry() json.RawMessage { return f.GeoJSON }

// Eval reports whether f matches the filter e. It is the reference
// semantics of CQL2 in this project: SQL translations are tested against
// it.
//
// Logic is three-valued as in SQL: a comparison involving NULL (a missing
// or null property) is unknown, NOT unknown is unknown, and a filter that
// evaluates to unknown does not match. Values of the wrong type (a string
// compared with a number, arithmetic on a string), unknown functions and
// the spatial predicates not implemented yet are *catalog.Error EINVALID
// naming the operator.
//
// Spatial predicates read a property called "geometry" or "geom" as the
// feature's geometry (STAC calls it the former, the OGC test data the
// latter), and any property whose value is a GeoJSON object as that
// geometry. Only s_intersects and s_disjoint are implemented; s_contains,
// s_crosses, s_equals, s_overlaps, s_touches and s_within return EINVALID.
func Eval(e Expr, f Feature) (bool, error) {
	ev := evaluator{f: f}
	t, err := ev.cond(e)
	return t == triTrue, err
}

// tri is a truth value of three-valued logic.
type tri int

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

func (t tri) not() tri {
	switch t {
	case triTrue:
		return triFalse
	case triFalse:
		return triTrue
	}
	return triUnknown
}

// instant is a point in time read from a DATE or TIMESTAMP literal or from
// a property compared with one. inf is -1 or +1 for the open ends of an
// interval ("..") and 0 otherwise.
type instant struct {
	t    time.Time
	date bool
	inf  int
}

func (a instant) cmp(b instant) int {
	if a.inf != 0 || b.inf != 0 {
		return cmpInt(a.inf, b.inf)
	}
	return a.t.Compare(b.t)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// interval is a closed time interval; an instant is the interval [t, t].
type interval struct {
	start, end instant
}

// geomValue is a geometry operand of a spatial predicate.
type geomValue struct {
	raw json.RawMessage
}

// evalError is an EINVALID error about operator op.
func evalError(op, format string, args ...any) error {
	return catalog.Errorf(catalog.EINVALID, "%s: "+format, append([]any{op}, args...)...)
}

type evaluator struct {
	f Feature
}

// cond evaluates a boolean expression.
func (ev evaluator) cond(e Expr) (tri, error) {
	op, ok := e.(*Op)
	if !ok {
		v, err := ev.value(e)
		if err != nil {
			return triUnknown, err
		}
		switch b := v.(type) {
		case nil:
			return triUnknown, nil
		case bool:
			return triOf(b), nil
		}
		return triUnknown, evalError("filter", "%s is not a boolean", PrintText(e))
	}
	switch op.Name {
	case "and", "or":
		// Every argument is evaluated so that type errors surface whatever
		// the data; the result follows Kleene's tables.
		short := triFalse
		if op.Name == "or" {
			short = triTrue
		}
		res := short.not()
		for _, a := range op.Args {
			t, err := ev.cond(a)
			if err != nil {
				return triUnknown, err
			}
			switch {
			case t == short:
				res = short
			case t == triUnknown && res != short:
				res = triUnknown
			}
		}
		return res, nil
	case "not":
		t, err := ev.cond(op.Args[0])
		return t.not(), err
	case "=", "<>", "<", "<=", ">", ">=":
		a, b, err := ev.values(op.Args[0], op.Args[1])
		if err != nil {
			return triUnknown, err
		}
		return compare(op.Name, a, b)
	case "isNull":
		v, err := ev.value(op.Args[0])
		return triOf(v == nil), err
	case "like":
		return ev.like(op)
	case "between":
		a, lo, err := ev.values(op.Args[0], op.Args[1])
		if err != nil {
			return triUnknown, err
		}
		hi, err := ev.value(op.Args[2])
		if err != nil {
			return triUnknown, err
		}
		ge, err := compare(">=", a, lo)
		if err != nil {
			return triUnknown, err
		}
		le, err := compare("<=", a, hi)
		if err != nil {
			return triUnknown, err
		}
		switch {
		case ge == triFalse || le == triFalse:
			return triFalse, nil
		case ge == triUnknown || le == triUnknown:
			return triUnknown, nil
		}
		return triTrue, nil
	case "in":
		return ev.in(op)
	}
	switch {
	case strings.HasPrefix(op.Name, "t_"):
		return ev.temporal(op)
	case strings.HasPrefix(op.Name, "a_"):
		return ev.array(op)
	case strings.HasPrefix(op.Name, "s_"):
		return ev.spatial(op)
	}
	// A function returning a boolean would land here; none is known.
	v, err := ev.value(op)
	if err != nil {
		return triUnknown, err
	}
	if b, ok := v.(bool); ok {
		return triOf(b), nil
	}
	if v == nil {
		return triUnknown, nil
	}
	return triUnknown, evalError(op.Name, "does not return a boolean")
}

func (ev evaluator) values(x, y Expr) (any, any, error) {
	a, err := ev.value(x)
	if err != nil {
		return nil, nil, err
	}
	b, err := ev.value(y)
	return a, b, err
}

// value evaluates a scalar expression to nil, bool, float64, string,
// instant, interval, geomValue or []any.
func (ev evaluator) value(e Expr) (any, error) {
	switch x := e.(type) {
	case *Bool:
		return x.Value, nil
	case *Number:
		f, err := strconv.ParseFloat(x.Text, 64)
		if err != nil {
			return nil, evalError("number", "%q is not a number", x.Text)
		}
		return f, nil
	case *String:
		return x.Value, nil
	case *Date:
		return parseInstant("date", x.Value)
	case *Timestamp:
		return parseInstant("timestamp", x.Value)
	case *Property:
		v, _ := ev.f.Property(x.Name)
		return normaliseProperty(x.Name, v)
	case *Array:
		out := make([]any, len(x.Elems))
		for i, el := range x.Elems {
			v, err := ev.value(el)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case *Interval:
		return ev.interval(x)
	case *Geometry:
		return geomValue{raw: x.GeoJSON}, nil
	case *BBox:
		return bboxGeom(x)
	case *Op:
		return ev.function(x)
	}
	return nil, evalError("filter", "unsupported expression %T", e)
}

// normaliseProperty turns a decoded JSON value into the evaluator's types.
func normaliseProperty(name string, v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, float64:
		return x, nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, evalError(name, "property value %s is not a number", x)
		}
		return f, nil
	case int:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float32:
		return float64(x), nil
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			n, err := normaliseProperty(name, el)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		if _, ok := x["type"]; ok {
			raw, err := json.Marshal(x)
			if err != nil {
				return nil, evalError(name, "property value is not a geometry")
			}
			return geomValue{raw: raw}, nil
		}
		return nil, evalError(name, "object-valued properties are not supported")
	case json.RawMessage:
		return geomValue{raw: x}, nil
	}
	return nil, evalError(name, "unsupported property value of type %T", v)
}

func parseInstant(op, s string) (any, error) {
	if isDate(s) {
		t, _ := time.Parse("2006-01-02", s)
		return instant{t: t, date: true}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, evalError(op, "%q is neither a date nor a timestamp", s)
	}
	return instant{t: t.UTC()}, nil
}

// asInstant reads v as an instant: a string is parsed, so that a property
// holding "2022-04-16" compares with DATE('2022-04-16').
func asInstant(op string, v any) (instant, bool, error) {
	switch x := v.(type) {
	case nil:
		return instant{}, false, nil
	case instant:
		return x, true, nil
	case string:
		i, err := parseInstant(op, x)
		if err != nil {
			return instant{}, false, err
		}
		return i.(instant), true, nil
	}
	return instant{}, false, evalError(op, "%s is not a date or timestamp", describeValue(v))
}

func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case float64:
		return "the number " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	case instant:
		return "an instant"
	case interval:
		return "an interval"
	case geomValue, *shape:
		return "a geometry"
	case []any:
		return "an array"
	}
	return "a value"
}

// compare applies a comparison operator; nil on either side is unknown.
func compare(op string, a, b any) (tri, error) {
	if a == nil || b == nil {
		return triUnknown, nil
	}
	c, err := order(op, a, b)
	if err != nil {
		return triUnknown, err
	}
	switch op {
	case "=":
		return triOf(c == 0), nil
	case "<>":
		return triOf(c != 0), nil
	case "<":
		return triOf(c < 0), nil
	case "<=":
		return triOf(c <= 0), nil
	case ">":
		return triOf(c > 0), nil
	case ">=":
		return triOf(c >= 0), nil
	}
	return triOf(c == 0), nil
}

// order compares two non-null scalars of compatible types.
func order(op string, a, b any) (int, error) {
	mismatch := func() (int, error) {
		return 0, evalError(op, "cannot compare %s with %s", describeValue(a), describeValue(b))
	}
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return mismatch()
		}
		switch {
		case x < y:
			return -1, nil
		case x > y:
			return 1, nil
		}
		return 0, nil
	case string:
		switch y := b.(type) {
		case string:
			// Go compares UTF-8 bytewise, which is code-point order.
			return strings.Compare(x, y), nil
		case instant:
			xi, _, err := asInstant(op, x)
			if err != nil {
				return 0, err
			}
			return xi.cmp(y), nil
		}
		return mismatch()
	case bool:
		y, ok := b.(bool)
		if !ok {
			return mismatch()
		}
		if op == "<" || op == "<=" || op == ">" || op == ">=" {
			return 0, evalError(op, "booleans are equal or not but have no order")
		}
		if x == y {
			return 0, nil
		}
		return 1, nil
	case instant:
		yi, ok, err := asInstant(op, b)
		if err != nil || !ok {
			if err == nil {
				return mismatch()
			}
			return 0, err
		}
		return x.cmp(yi), nil
	}
	return mismatch()
}

func (ev evaluator) in(op *Op) (tri, error) {
	a, err := ev.value(op.Args[0])
	if err != nil {
		return triUnknown, err
	}
	list, ok := op.Args[1].(*Array)
	if !ok {
		return triUnknown, evalError("in", "the second argument must be a list")
	}
	res := triFalse
	for _, el := range list.Elems {
		v, err := ev.value(el)
		if err != nil {
			return triUnknown, err
		}
		t, err := compare("in", a, v)
		if err != nil {
			return triUnknown, err
		}
		if t == triTrue {
			return triTrue, nil
		}
		if t == triUnknown {
			res = triUnknown
		}
	}
	if a == nil {
		return triUnknown, nil
	}
	return res, nil
}

func (ev evaluator) like(op *Op) (tri, error) {
	a, p, err := ev.values(op.Args[0], op.Args[1])
	if err != nil {
		return triUnknown, err
	}
	if a == nil || p == nil {
		return triUnknown, nil
	}
	s, ok1 := a.(string)
	pat, ok2 := p.(string)
	if !ok1 || !ok2 {
		return triUnknown, evalError("like", "needs strings, got %s and %s", describeValue(a), describeValue(p))
	}
	re, err := likeRegexp(pat)
	if err != nil {
		return triUnknown, err
	}
	return triOf(re.MatchString(s)), nil
}

// likeRegexp translates a LIKE pattern: % is any run of characters, _ one
// character, and a backslash makes the next character literal.
func likeRegexp(pat string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	rs := []rune(pat)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		case '\\':
			if i+1 == len(rs) {
				return nil, evalError("like", "pattern %q ends with an escape character", pat)
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`\z`)
	return regexp.Compile(b.String())
}

// function evaluates casei, accenti, arithmetic and, for an unknown name,
// reports it.
func (ev evaluator) function(op *Op) (any, error) {
	switch op.Name {
	case "casei", "accenti":
		v, err := ev.value(op.Args[0])
		if err != nil || v == nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, evalError(op.Name, "needs a string, got %s", describeValue(v))
		}
		if op.Name == "casei" {
			return foldCase(s), nil
		}
		return stripAccents(s), nil
	case "+", "-", "*", "/", "%", "div", "^":
		return ev.arithmetic(op)
	}
	if _, std := opArity(op.Name); std {
		return nil, evalError(op.Name, "is a predicate, not a value")
	}
	return nil, evalError(op.Name, "unknown function")
}

// foldCase lower-cases s after upper-casing it, so that characters whose
// upper and lower forms are not a simple pair (final sigma) meet.
func foldCase(s string) string {
	return strings.ToLower(strings.ToUpper(s))
}

func (ev evaluator) arithmetic(op *Op) (any, error) {
	a, b, err := ev.values(op.Args[0], op.Args[1])
	if err != nil {
		return nil, err
	}
	if a == nil || b == nil {
		return nil, nil
	}
	x, ok1 := a.(float64)
	y, ok2 := b.(float64)
	if !ok1 || !ok2 {
		return nil, evalError(op.Name, "needs numbers, got %s and %s", describeValue(a), describeValue(b))
	}
	switch op.Name {
	case "+":
		return x + y, nil
	case "-":
		return x - y, nil
	case "*":
		return x * y, nil
	case "^":
		return math.Pow(x, y), nil
	}
	if y == 0 {
		return nil, evalError(op.Name, "division by zero")
	}
	switch op.Name {
	case "/":
		return x / y, nil
	case "%":
		return math.Mod(x, y), nil
	}
	return math.Trunc(x / y), nil // div: integer division, truncated
}

func (ev evaluator) interval(x *Interval) (any, error) {
	var bounds [2]instant
	for i, e := range []Expr{x.Start, x.End} {
		if s, ok := e.(*String); ok && s.Value == ".." {
			bounds[i] = instant{inf: 2*i - 1}
			continue
		}
		v, err := ev.value(e)
		if err != nil {
			return nil, err
		}
		in, ok, err := asInstant("interval", v)
		if err != nil || !ok {
			return nil, err
		}
		bounds[i] = in
	}
	return interval{start: bounds[0], end: bounds[1]}, nil
}

// asInterval reads a temporal operand; ok is false for NULL.
func asInterval(op string, v any) (interval, bool, error) {
	if iv, ok := v.(interval); ok {
		return iv, true, nil
	}
	in, ok, err := asInstant(op, v)
	return interval{start: in, end: in}, ok, err
}

// temporalRelations are the CQL2 temporal predicates as Allen's interval
// relations, an instant being the interval [t, t]. s1, e1 bound the first
// argument, s2, e2 the second; each function gets the comparisons of the
// bounds it needs.
var temporalRelations = map[string]func(a, b interval) bool{
	"t_after":      func(a, b interval) bool { return a.start.cmp(b.end) > 0 },
	"t_before":     func(a, b interval) bool { return a.end.cmp(b.start) < 0 },
	"t_contains":   func(a, b interval) bool { return a.start.cmp(b.start) < 0 && a.end.cmp(b.end) > 0 },
	"t_disjoint":   func(a, b interval) bool { return a.end.cmp(b.start) < 0 || a.start.cmp(b.end) > 0 },
	"t_during":     func(a, b interval) bool { return a.start.cmp(b.start) > 0 && a.end.cmp(b.end) < 0 },
	"t_equals":     func(a, b interval) bool { return a.start.cmp(b.start) == 0 && a.end.cmp(b.end) == 0 },
	"t_finishedBy": func(a, b interval) bool { return a.start.cmp(b.start) < 0 && a.end.cmp(b.end) == 0 },
	"t_finishes":   func(a, b interval) bool { return a.start.cmp(b.start) > 0 && a.end.cmp(b.end) == 0 },
	"t_intersects": func(a, b interval) bool { return a.start.cmp(b.end) <= 0 && a.end.cmp(b.start) >= 0 },
	"t_meets":      func(a, b interval) bool { return a.end.cmp(b.start) == 0 },
	"t_metBy":      func(a, b interval) bool { return a.start.cmp(b.end) == 0 },
	"t_overlappedBy": func(a, b interval) bool {
		return a.start.cmp(b.start) > 0 && a.start.cmp(b.end) < 0 && a.end.cmp(b.end) > 0
	},
	"t_overlaps": func(a, b interval) bool {
		return a.start.cmp(b.start) < 0 && a.end.cmp(b.start) > 0 && a.end.cmp(b.end) < 0
	},
	"t_startedBy": func(a, b interval) bool { return a.start.cmp(b.start) == 0 && a.end.cmp(b.end) > 0 },
	"t_starts":    func(a, b interval) bool { return a.start.cmp(b.start) == 0 && a.end.cmp(b.end) < 0 },
}

func (ev evaluator) temporal(op *Op) (tri, error) {
	rel, ok := temporalRelations[op.Name]
	if !ok {
		return triUnknown, evalError(op.Name, "unknown temporal function")
	}
	a, b, err := ev.values(op.Args[0], op.Args[1])
	if err != nil {
		return triUnknown, err
	}
	x, ok1, err := asInterval(op.Name, a)
	if err != nil {
		return triUnknown, err
	}
	y, ok2, err := asInterval(op.Name, b)
	if err != nil || !ok1 || !ok2 {
		return triUnknown, err
	}
	return triOf(rel(x, y)), nil
}

func (ev evaluator) array(op *Op) (tri, error) {
	a, b, err := ev.values(op.Args[0], op.Args[1])
	if err != nil || a == nil || b == nil {
		return triUnknown, err
	}
	x, ok1 := a.([]any)
	y, ok2 := b.([]any)
	if !ok1 || !ok2 {
		return triUnknown, evalError(op.Name, "needs arrays, got %s and %s", describeValue(a), describeValue(b))
	}
	has := func(list []any, v any) (bool, error) {
		for _, el := range list {
			if el == nil || v == nil {
				continue
			}
			c, err := order(op.Name, el, v)
			if err != nil {
				return false, err
			}
			if c == 0 {
				return true, nil
			}
		}
		return false, nil
	}
	// all reports whether every element of sub is in super.
	all := func(sub, super []any) (bool, error) {
		for _, v := range sub {
			ok, err := has(super, v)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}
	switch op.Name {
	case "a_equals":
		if len(x) != len(y) {
			return triFalse, nil
		}
		for i := range x {
			if x[i] == nil || y[i] == nil {
				if x[i] != y[i] {
					return triFalse, nil
				}
				continue
			}
			c, err := order(op.Name, x[i], y[i])
			if err != nil {
				return triUnknown, err
			}
			if c != 0 {
				return triFalse, nil
			}
		}
		return triTrue, nil
	case "a_contains":
		ok, err := all(y, x)
		return triOf(ok), err
	case "a_containedBy":
		ok, err := all(x, y)
		return triOf(ok), err
	case "a_overlaps":
		for _, v := range x {
			ok, err := has(y, v)
			if err != nil {
				return triUnknown, err
			}
			if ok {
				return triTrue, nil
			}
		}
		return triFalse, nil
	}
	return triUnknown, evalError(op.Name, "unknown array function")
}
