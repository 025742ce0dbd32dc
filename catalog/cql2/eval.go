package cql2

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
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
// Errors come only from the filter itself: Eval first runs Check and
// returns its error, so a filter Check accepts never fails, whatever the
// data.
//
// Logic is three-valued as in SQL: a comparison involving NULL (a missing
// or null property) is unknown, NOT unknown is unknown, and a filter that
// evaluates to unknown does not match. A value read from the data whose
// type does not fit its operator is unknown too: a property holding a
// string compared with a number, a string that is not a date or timestamp
// compared with DATE or TIMESTAMP, arithmetic, CASEI or ACCENTI on the
// wrong type, LIKE on a non-string, A_* on a non-array, S_* on a
// non-geometry or on a geometry too broken to evaluate. So are division
// by a zero read from the data and an arithmetic result that is not a
// number. Array predicates compare elements with "="; elements of
// different types are unknown to each other and combine with Kleene's
// AND and OR.
//
// The spatial predicates follow the OGC Simple Features DE-9IM
// definitions, as PostGIS's ST_Intersects, ST_Contains and so on do, in
// the plane: coordinates are x, y as given, Z is dropped, nothing is
// rounded. S_DISJOINT is NOT S_INTERSECTS. A property called "geometry" or
// "geom" is the feature's geometry (STAC calls it the former, the OGC test
// data the latter) when the feature has one, in every operator; any
// property whose value is a GeoJSON geometry object is a geometry. A BBOX
// is a polygon; one whose west edge lies east of its east edge crosses the
// antimeridian and is the multi-polygon of its two halves. Geometries are
// not validated: a self-intersecting polygon is evaluated as it is, and a
// geometry that cannot be evaluated at all (an unclosed ring, a line of
// one point) makes the predicate unknown. So does, for the predicates
// other than S_INTERSECTS and S_DISJOINT, a pair of geometries whose
// DE-9IM matrix simplefeatures cannot compute consistently even once
// slivers narrower than its snapping distance are removed.
func Eval(e Expr, f Feature) (bool, error) {
	if err := Check(e); err != nil {
		return false, err
	}
	if f == nil {
		f = noFeature{}
	}
	ev := evaluator{f: f}
	return ev.cond(e) == triTrue, nil
}

// Filter is a checked filter, ready to match many features without
// checking it again.
type Filter struct{ e Expr }

// NewFilter checks e (Check) and returns it as a Filter.
func NewFilter(e Expr) (*Filter, error) {
	if err := Check(e); err != nil {
		return nil, err
	}
	return &Filter{e: e}, nil
}

// Match reports whether f matches, as Eval does; a checked filter
// cannot fail.
func (x *Filter) Match(f Feature) bool {
	if f == nil {
		f = noFeature{}
	}
	return evaluator{f: f}.cond(x.e) == triTrue
}

// noFeature has no properties and no geometry.
type noFeature struct{}

func (noFeature) Property(string) (any, bool) { return nil, false }
func (noFeature) Geometry() json.RawMessage   { return nil }

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

// and and or are Kleene's tables.
func (t tri) and(u tri) tri {
	switch {
	case t == triFalse || u == triFalse:
		return triFalse
	case t == triUnknown || u == triUnknown:
		return triUnknown
	}
	return triTrue
}

func (t tri) or(u tri) tri {
	return t.not().and(u.not()).not()
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

// geomValue is a geometry operand of a spatial predicate: GeoJSON from a
// literal or the data, or a BBOX literal. It is decoded when a spatial
// predicate needs it.
type geomValue struct {
	raw json.RawMessage
	box *BBox
}

// opaque is a non-null value of a type no operator takes (an object that
// is not a geometry, a number JSON cannot hold): every comparison with it
// is unknown, but it is not NULL.
type opaque struct{}

// evaluator computes values and truth values. It returns no errors: Check
// has ruled out everything that does not depend on the data, and what does
// is NULL (for a value) or unknown (for a truth value).
type evaluator struct {
	f Feature
}

// predicates are the operators whose value is a truth value.
var predicates = map[string]bool{
	"and": true, "or": true, "not": true, "=": true, "<>": true, "<": true,
	"<=": true, ">": true, ">=": true, "like": true, "between": true,
	"in": true, "isNull": true,
}

func isPredicate(name string) bool {
	return predicates[name] || strings.HasPrefix(name, "s_") ||
		strings.HasPrefix(name, "t_") || strings.HasPrefix(name, "a_")
}

// cond evaluates a boolean expression.
func (ev evaluator) cond(e Expr) tri {
	op, ok := e.(*Op)
	if !ok || !isPredicate(op.Name) {
		switch b := ev.value(e).(type) {
		case bool:
			return triOf(b)
		}
		return triUnknown
	}
	switch op.Name {
	case "and":
		res := triTrue
		for _, a := range op.Args {
			if res = res.and(ev.cond(a)); res == triFalse {
				return res
			}
		}
		return res
	case "or":
		res := triFalse
		for _, a := range op.Args {
			if res = res.or(ev.cond(a)); res == triTrue {
				return res
			}
		}
		return res
	case "not":
		return ev.cond(op.Args[0]).not()
	case "=", "<>", "<", "<=", ">", ">=":
		return compare(op.Name, ev.value(op.Args[0]), ev.value(op.Args[1]))
	case "isNull":
		return triOf(ev.value(op.Args[0]) == nil)
	case "like":
		return ev.like(op)
	case "between":
		a := ev.value(op.Args[0])
		return compare(">=", a, ev.value(op.Args[1])).and(compare("<=", a, ev.value(op.Args[2])))
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
	return triUnknown
}

// value evaluates an expression to nil (NULL), bool, float64, string,
// instant, interval, geomValue, []any or opaque. A predicate's value is
// its truth value, unknown being NULL.
func (ev evaluator) value(e Expr) any {
	switch x := e.(type) {
	case *Bool:
		return x.Value
	case *Number:
		f, err := strconv.ParseFloat(x.Text, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil
		}
		return f
	case *String:
		return x.Value
	case *Date:
		return parseInstant(x.Value)
	case *Timestamp:
		return parseInstant(x.Value)
	case *Property:
		if x.Name == "geometry" || x.Name == "geom" {
			if raw := ev.f.Geometry(); !isJSONNull(raw) {
				return geomValue{raw: raw}
			}
		}
		v, _ := ev.f.Property(x.Name)
		return normaliseProperty(v)
	case *Array:
		out := make([]any, len(x.Elems))
		for i, el := range x.Elems {
			out[i] = ev.value(el)
		}
		return out
	case *Interval:
		return ev.interval(x)
	case *Geometry:
		return geomValue{raw: x.GeoJSON}
	case *BBox:
		return geomValue{box: x}
	case *Op:
		if isPredicate(x.Name) {
			switch ev.cond(x) {
			case triTrue:
				return true
			case triFalse:
				return false
			}
			return nil
		}
		return ev.function(x)
	}
	return nil
}

func isJSONNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// normaliseProperty turns a decoded JSON value into the evaluator's types.
func normaliseProperty(v any) any {
	switch x := v.(type) {
	case nil, bool, string, float64:
		return x
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return opaque{}
		}
		return f
	case int:
		return float64(x)
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = normaliseProperty(el)
		}
		return out
	case map[string]any:
		if _, ok := x["type"]; ok {
			if raw, err := json.Marshal(x); err == nil {
				return geomValue{raw: raw}
			}
		}
		return opaque{}
	case json.RawMessage:
		if isJSONNull(x) {
			return nil
		}
		return geomValue{raw: x}
	}
	return opaque{}
}

// parseInstant reads a date or a timestamp; nil when s is neither.
func parseInstant(s string) any {
	if isDate(s) {
		t, _ := time.Parse("2006-01-02", s)
		return instant{t: t, date: true}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return instant{t: t.UTC()}
}

// asInstant reads v as an instant: a string is parsed, so that a property
// holding "2022-04-16" compares with DATE('2022-04-16'). ok is false for
// NULL and for anything that is not an instant.
func asInstant(v any) (instant, bool) {
	switch x := v.(type) {
	case instant:
		return x, true
	case string:
		i, ok := parseInstant(x).(instant)
		return i, ok
	}
	return instant{}, false
}

// compare applies a comparison operator; NULL on either side and values
// that cannot be compared are unknown.
func compare(op string, a, b any) tri {
	if a == nil || b == nil {
		return triUnknown
	}
	c, ok := order(op, a, b)
	if !ok {
		return triUnknown
	}
	switch op {
	case "<>":
		return triOf(c != 0)
	case "<":
		return triOf(c < 0)
	case "<=":
		return triOf(c <= 0)
	case ">":
		return triOf(c > 0)
	case ">=":
		return triOf(c >= 0)
	}
	return triOf(c == 0)
}

// order compares two non-null scalars; ok is false when their types do
// not compare with op (booleans are equal or not but have no order).
func order(op string, a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok || x != x || y != y {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		switch y := b.(type) {
		case string:
			// Go compares UTF-8 bytewise, which is code-point order.
			return strings.Compare(x, y), true
		case instant:
			xi, ok := asInstant(x)
			if !ok {
				return 0, false
			}
			return xi.cmp(y), true
		}
	case bool:
		y, ok := b.(bool)
		if !ok || (op != "=" && op != "<>") {
			return 0, false
		}
		if x == y {
			return 0, true
		}
		return 1, true
	case instant:
		yi, ok := asInstant(b)
		if !ok {
			return 0, false
		}
		return x.cmp(yi), true
	}
	return 0, false
}

func (ev evaluator) in(op *Op) tri {
	list, ok := op.Args[1].(*Array)
	if !ok {
		return triUnknown
	}
	a := ev.value(op.Args[0])
	res := triFalse
	for _, el := range list.Elems {
		if res = res.or(compare("=", a, ev.value(el))); res == triTrue {
			return res
		}
	}
	if a == nil {
		return triUnknown
	}
	return res
}

func (ev evaluator) like(op *Op) tri {
	s, ok1 := ev.value(op.Args[0]).(string)
	pat, ok2 := ev.value(op.Args[1]).(string)
	if !ok1 || !ok2 {
		return triUnknown
	}
	re, err := likeRegexp(pat)
	if err != nil {
		return triUnknown
	}
	return triOf(re.MatchString(s))
}

// errLikeEscape is the error of a LIKE pattern ending with the escape
// character.
var errLikeEscape = errors.New("the pattern ends with an escape character")

// likeCache keeps the regular expressions of recent LIKE patterns: a
// filter is evaluated once per feature with the same pattern.
var likeCache = struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}{m: map[string]*regexp.Regexp{}}

// likeRegexp translates a LIKE pattern: % is any run of characters, _ one
// character, and a backslash makes the next character literal.
func likeRegexp(pat string) (*regexp.Regexp, error) {
	likeCache.Lock()
	re, ok := likeCache.m[pat]
	likeCache.Unlock()
	if ok {
		return re, nil
	}
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
				return nil, errLikeEscape
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	likeCache.Lock()
	if len(likeCache.m) >= 256 {
		clear(likeCache.m)
	}
	likeCache.m[pat] = re
	likeCache.Unlock()
	return re, nil
}

// function evaluates casei, accenti and arithmetic; anything else (which
// Check rejects) is NULL.
func (ev evaluator) function(op *Op) any {
	switch op.Name {
	case "casei", "accenti":
		s, ok := ev.value(op.Args[0]).(string)
		if !ok {
			return nil
		}
		if op.Name == "casei" {
			return foldCase(s)
		}
		return stripAccents(s)
	case "+", "-", "*", "/", "%", "div", "^":
		return ev.arithmetic(op)
	}
	return nil
}

// foldCase lower-cases s after upper-casing it, so that characters whose
// upper and lower forms are not a simple pair (final sigma) meet.
func foldCase(s string) string {
	return strings.ToLower(strings.ToUpper(s))
}

func (ev evaluator) arithmetic(op *Op) any {
	x, ok1 := ev.value(op.Args[0]).(float64)
	y, ok2 := ev.value(op.Args[1]).(float64)
	if !ok1 || !ok2 {
		return nil
	}
	var r float64
	switch op.Name {
	case "+":
		r = x + y
	case "-":
		r = x - y
	case "*":
		r = x * y
	case "^":
		r = math.Pow(x, y)
	case "/":
		r = x / y
	case "%":
		r = math.Mod(x, y)
	case "div":
		r = math.Trunc(x / y) // integer division, truncated
	}
	if (y == 0 && (op.Name == "/" || op.Name == "%" || op.Name == "div")) || math.IsNaN(r) {
		return nil
	}
	return r
}

// interval evaluates an INTERVAL; NULL when a bound is NULL or not an
// instant.
func (ev evaluator) interval(x *Interval) any {
	var bounds [2]instant
	for i, e := range []Expr{x.Start, x.End} {
		if s, ok := e.(*String); ok && s.Value == ".." {
			bounds[i] = instant{inf: 2*i - 1}
			continue
		}
		in, ok := asInstant(ev.value(e))
		if !ok {
			return nil
		}
		bounds[i] = in
	}
	return interval{start: bounds[0], end: bounds[1]}
}

// asInterval reads a temporal operand; ok is false for NULL and for
// values that are not temporal.
func asInterval(v any) (interval, bool) {
	if iv, ok := v.(interval); ok {
		return iv, true
	}
	in, ok := asInstant(v)
	return interval{start: in, end: in}, ok
}

// temporalRelations are the CQL2 temporal predicates as Allen's interval
// relations, an instant being the interval [t, t].
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

func (ev evaluator) temporal(op *Op) tri {
	rel, ok := temporalRelations[op.Name]
	if !ok {
		return triUnknown
	}
	x, ok1 := asInterval(ev.value(op.Args[0]))
	y, ok2 := asInterval(ev.value(op.Args[1]))
	if !ok1 || !ok2 {
		return triUnknown
	}
	return triOf(rel(x, y))
}

func (ev evaluator) array(op *Op) tri {
	x, ok1 := ev.value(op.Args[0]).([]any)
	y, ok2 := ev.value(op.Args[1]).([]any)
	if !ok1 || !ok2 {
		return triUnknown
	}
	// eq compares two elements; NULL elements are never equal to
	// anything, as in SQL arrays.
	eq := func(a, b any) tri {
		if a == nil || b == nil {
			return triFalse
		}
		return compare("=", a, b)
	}
	// has: some element of list is v.
	has := func(list []any, v any) tri {
		res := triFalse
		for _, el := range list {
			if res = res.or(eq(el, v)); res == triTrue {
				break
			}
		}
		return res
	}
	// all: every element of sub is in super.
	all := func(sub, super []any) tri {
		res := triTrue
		for _, v := range sub {
			if res = res.and(has(super, v)); res == triFalse {
				break
			}
		}
		return res
	}
	switch op.Name {
	case "a_equals":
		if len(x) != len(y) {
			return triFalse
		}
		res := triTrue
		for i := range x {
			t := eq(x[i], y[i])
			if x[i] == nil && y[i] == nil {
				t = triTrue
			}
			if res = res.and(t); res == triFalse {
				break
			}
		}
		return res
	case "a_contains":
		return all(y, x)
	case "a_containedBy":
		return all(x, y)
	case "a_overlaps":
		res := triFalse
		for _, v := range x {
			if res = res.or(has(y, v)); res == triTrue {
				break
			}
		}
		return res
	}
	return triUnknown
}
