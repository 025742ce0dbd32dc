package cql2

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/twinstac/twinstac/catalog"
)

// MaxDepth is the deepest a filter's expressions may nest: the root is at
// level 1, and each operator, function call, array and interval puts its
// arguments one level further down. Both parsers and Check reject deeper
// filters, so that nothing working on an AST recurses without bound.
const MaxDepth = 256

// Check reports the errors of a filter that do not depend on the data it
// is applied to: an operator that is not standard CQL2 (custom functions
// are not supported), a wrong number of arguments, operands whose types
// can never fit their operator ('a' < 5, 5 LIKE 'a', A_CONTAINS on a
// number, S_INTERSECTS on a string, TRUE < FALSE), something that is not a
// predicate where one is needed (the whole filter, the arguments of AND,
// OR and NOT), an IN without a list, malformed dates, timestamps, numbers,
// intervals, bounding boxes and geometry literals, a LIKE pattern ending
// with the escape character, division by a constant zero, and nesting
// deeper than MaxDepth.
//
// A property may hold any type, so a property operand never fails Check;
// what it holds is judged by Eval, for which a wrong type is unknown.
//
// Errors are *catalog.Error with Code EINVALID; the message starts with
// the operator or the kind of literal at fault. Pointer locates the
// offending node: "filter:<byte offset>" for a filter ParseText read, and
// otherwise the JSON pointer of the node in the filter's CQL2-JSON form,
// which for a filter ParseJSON read is the pointer into that filter.
func Check(e Expr) error {
	c := &checker{}
	k, err := c.expr(e, "", 1)
	if err != nil {
		return err
	}
	if k&kBool == 0 {
		return c.fail(e, "", "filter: %s is %s, not a predicate", quote(e), describeKind(k))
	}
	return nil
}

// kind is the set of types an expression may have at run time.
type kind uint8

const (
	kBool kind = 1 << iota
	kNumber
	kString
	kInstant // a date or a timestamp
	kInterval
	kGeometry
	kArray

	// kData is what a property may hold: anything JSON does, with strings
	// read as instants where one is expected.
	kData = kBool | kNumber | kString | kInstant | kGeometry | kArray
	// kScalar are the types "=" compares; kOrdered those "<" does.
	kScalar  = kBool | kNumber | kString | kInstant
	kOrdered = kNumber | kString | kInstant
)

func describeKind(k kind) string {
	switch {
	case k == kData:
		return "any value"
	case k&kString != 0:
		return "a string"
	case k&kNumber != 0:
		return "a number"
	case k&kBool != 0:
		return "a boolean"
	case k&kInstant != 0:
		return "a date or timestamp"
	case k&kInterval != 0:
		return "an interval"
	case k&kGeometry != 0:
		return "a geometry"
	case k&kArray != 0:
		return "an array"
	}
	return "no value"
}

// quote shows e in an error message: its CQL2-Text, shortened.
func quote(e Expr) string {
	s := PrintText(e)
	if r := []rune(s); len(r) > 40 {
		s = string(r[:37]) + "..."
	}
	return s
}

// checker walks an AST keeping the path to the current node, so that an
// error can be placed at the nearest node whose text position is known.
type checker struct {
	path []Expr
}

// fail returns the error for node e at JSON pointer ptr.
func (c *checker) fail(e Expr, ptr, format string, args ...any) error {
	pointer := ptr
	if pos, ok := textPosition(e); ok {
		pointer = textPointer(pos)
	} else {
		for i := len(c.path) - 1; i >= 0; i-- {
			if pos, ok := textPosition(c.path[i]); ok {
				pointer = textPointer(pos)
				break
			}
		}
	}
	return catalog.Invalid(pointer, format, args...)
}

// isNil reports whether e is nil or a nil pointer of an AST type.
func isNil(e Expr) bool {
	if e == nil {
		return true
	}
	v := reflect.ValueOf(e)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// expr checks e, found at ptr on nesting level depth, and returns the
// types it may take.
func (c *checker) expr(e Expr, ptr string, depth int) (kind, error) {
	if isNil(e) {
		return 0, c.fail(e, ptr, "filter: an expression is missing")
	}
	if depth > MaxDepth {
		return 0, c.fail(e, ptr, "filter is nested deeper than %d levels", MaxDepth)
	}
	c.path = append(c.path, e)
	defer func() { c.path = c.path[:len(c.path)-1] }()
	switch x := e.(type) {
	case *Bool:
		return kBool, nil
	case *Number:
		if msg := checkNumber(x.Text); msg != "" {
			return 0, c.fail(x, ptr, "number: %s", msg)
		}
		return kNumber, nil
	case *String:
		if isDate(x.Value) || isTimestamp(x.Value) {
			return kString | kInstant, nil
		}
		return kString, nil
	case *Date:
		if !isDate(x.Value) {
			return 0, c.fail(x, ptr+"/date", "date: %q is not a date (YYYY-MM-DD)", x.Value)
		}
		return kInstant, nil
	case *Timestamp:
		if !isTimestamp(x.Value) {
			return 0, c.fail(x, ptr+"/timestamp", "timestamp: %q is not a UTC timestamp (YYYY-MM-DDThh:mm:ss[.f]Z)", x.Value)
		}
		return kInstant, nil
	case *Property:
		if x.Name == "" {
			return 0, c.fail(x, ptr+"/property", "property: the name is empty")
		}
		return kData, nil
	case *Array:
		for i, el := range x.Elems {
			if _, err := c.expr(el, ptr+"/"+strconv.Itoa(i), depth+1); err != nil {
				return 0, err
			}
		}
		return kArray, nil
	case *Interval:
		return kInterval, c.interval(x, ptr, depth)
	case *Geometry:
		return kGeometry, c.geometry(x, ptr)
	case *BBox:
		return kGeometry, c.bbox(x, ptr)
	case *Op:
		return c.op(x, ptr, depth)
	}
	return 0, c.fail(e, ptr, "filter: unsupported expression %T", e)
}

// checkNumber returns a message when s is not a JSON number that fits a
// float64.
func checkNumber(s string) string {
	if s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') || !json.Valid([]byte(s)) {
		return fmt.Sprintf("%q is not a number", s)
	}
	if _, err := strconv.ParseFloat(s, 64); errors.Is(err, strconv.ErrRange) && !underflows(s) {
		return fmt.Sprintf("%s is out of range", s)
	}
	return ""
}

// underflows reports whether the number s, out of float64 range, is
// merely too close to zero (and so reads as 0).
func underflows(s string) bool {
	f, _ := strconv.ParseFloat(s, 64)
	return f == 0
}

func (c *checker) interval(x *Interval, ptr string, depth int) error {
	var lit [2]instant
	var isLit [2]bool
	for i, b := range []Expr{x.Start, x.End} {
		p := ptr + "/interval/" + strconv.Itoa(i)
		if isNil(b) {
			return c.fail(x, p, "interval: a bound is missing")
		}
		if _, err := c.expr(b, p, depth+1); err != nil {
			return err
		}
		switch v := b.(type) {
		case *String:
			if v.Value == ".." {
				lit[i], isLit[i] = instant{inf: 2*i - 1}, true
				continue
			}
			if msg := checkIntervalBound(v); msg != "" {
				return c.fail(b, p, "interval: %s", msg)
			}
			lit[i], isLit[i] = parseInstant(v.Value).(instant)
		case *Date:
			lit[i], isLit[i] = parseInstant(v.Value).(instant)
		case *Timestamp:
			lit[i], isLit[i] = parseInstant(v.Value).(instant)
		case *Property:
		default:
			return c.fail(b, p, "interval: a bound must be a date, a timestamp, \"..\" or a property")
		}
	}
	if isLit[0] && isLit[1] && lit[0].cmp(lit[1]) > 0 {
		return c.fail(x, ptr, "interval: %s ends before it starts", quote(x))
	}
	return nil
}

func (c *checker) geometry(x *Geometry, ptr string) error {
	g, err := decodeGeoJSONLiteral(x.GeoJSON)
	if err != nil {
		var ce *catalog.Error
		msg := err.Error()
		p := ptr
		if errors.As(err, &ce) {
			msg, p = ce.Message, ptr+ce.Pointer
		}
		return c.fail(x, p, "geometry: %s", msg)
	}
	if msg := checkGeomValues(g); msg != "" {
		return c.fail(x, ptr, "geometry: %s", msg)
	}
	return nil
}

// checkGeomValues returns a message when a coordinate of g does not fit a
// float64 or a polygon ring of g does not end where it starts.
func checkGeomValues(g *geom) string {
	for _, m := range g.geoms {
		if msg := checkGeomValues(m); msg != "" {
			return msg
		}
	}
	var walk func(n nested, depth int) string
	walk = func(n nested, depth int) string {
		for _, s := range n.pos {
			if msg := checkNumber(s); msg != "" {
				return "coordinate " + msg
			}
		}
		for _, k := range n.kids {
			if msg := walk(k, depth-1); msg != "" {
				return msg
			}
		}
		if depth == 1 && (g.typ == "Polygon" || g.typ == "MultiPolygon") && len(n.kids) > 0 {
			first, last := n.kids[0].pos, n.kids[len(n.kids)-1].pos
			for i := range 2 {
				a, _ := strconv.ParseFloat(first[i], 64)
				b, _ := strconv.ParseFloat(last[i], 64)
				if a != b {
					return "a polygon ring must end where it starts"
				}
			}
		}
		return ""
	}
	_, depth, _ := geoJSONType(g.typ)
	return walk(g.coords, depth)
}

func (c *checker) bbox(x *BBox, ptr string) error {
	p := ptr + "/bbox"
	if len(x.Coords) != 4 && len(x.Coords) != 6 {
		return c.fail(x, p, "bbox: needs 4 or 6 numbers, got %d", len(x.Coords))
	}
	n := make([]float64, len(x.Coords))
	for i, cd := range x.Coords {
		if msg := checkNumber(cd.Text); msg != "" {
			return c.fail(x, p+"/"+strconv.Itoa(i), "bbox: %s", msg)
		}
		n[i], _ = strconv.ParseFloat(cd.Text, 64)
	}
	w, s, e, north := n[0], n[1], n[2], n[3]
	if len(n) == 6 {
		w, s, e, north = n[0], n[1], n[3], n[4]
	}
	if s > north {
		return c.fail(x, p, "bbox: the south edge %v lies north of the north edge %v", s, north)
	}
	if w > e && (w > 180 || e < -180) {
		return c.fail(x, p, "bbox: a box whose west edge %v lies east of its east edge %v crosses the antimeridian, so both must lie within ±180", w, e)
	}
	return nil
}

// op checks an operator and its arguments.
func (c *checker) op(o *Op, ptr string, depth int) (kind, error) {
	if !IsStandardOp(o.Name) {
		if canon, std := canonicalOp(o.Name); std {
			return 0, c.fail(o, ptr+"/op", "%s: the operator is spelled %q", o.Name, canon)
		}
		return 0, c.fail(o, ptr+"/op", "%s: unknown function (custom functions are not supported)", o.Name)
	}
	if msg := checkArity(o.Name, len(o.Args)); msg != "" {
		return 0, c.fail(o, ptr+"/args", "%s: %s", o.Name, msg)
	}
	kinds := make([]kind, len(o.Args))
	argPtr := func(i int) string { return ptr + "/args/" + strconv.Itoa(i) }
	for i, a := range o.Args {
		k, err := c.expr(a, argPtr(i), depth+1)
		if err != nil {
			return 0, err
		}
		kinds[i] = k
	}
	// need checks that argument i may be of a type in want.
	need := func(i int, want kind, what string) error {
		if kinds[i]&want == 0 {
			return c.fail(o.Args[i], argPtr(i), "%s: %s is %s, not %s", o.Name, quote(o.Args[i]), describeKind(kinds[i]), what)
		}
		return nil
	}
	each := func(want kind, what string) error {
		for i := range o.Args {
			if err := need(i, want, what); err != nil {
				return err
			}
		}
		return nil
	}
	switch name := o.Name; {
	case name == "and" || name == "or" || name == "not":
		return kBool, each(kBool, "a predicate")
	case name == "=" || name == "<>":
		return kBool, c.comparable(o, ptr, kinds, kScalar)
	case name == "<" || name == "<=" || name == ">" || name == ">=":
		return kBool, c.comparable(o, ptr, kinds, kOrdered)
	case name == "between":
		return kBool, c.comparable(o, ptr, kinds, kOrdered)
	case name == "isNull":
		return kBool, nil
	case name == "in":
		list, ok := o.Args[1].(*Array)
		if !ok {
			return 0, c.fail(o.Args[1], argPtr(1), "in: the second argument must be a list")
		}
		for i, el := range list.Elems {
			p := argPtr(1) + "/" + strconv.Itoa(i)
			k := kindOf(el) // checked with the list
			if k&kScalar == 0 {
				return 0, c.fail(el, p, "in: %s is %s, which cannot be compared", quote(el), describeKind(k))
			}
			if kinds[0]&k&kScalar == 0 {
				return 0, c.fail(el, p, "in: cannot compare %s with %s", describeKind(kinds[0]), describeKind(k))
			}
		}
		return kBool, nil
	case name == "like":
		if err := each(kString, "a string"); err != nil {
			return 0, err
		}
		if isConstant(o.Args[1]) {
			if pat, ok := constValue(o.Args[1]).(string); ok {
				if _, err := likeRegexp(pat); err != nil {
					return 0, c.fail(o.Args[1], argPtr(1), "like: %q: %v", pat, err)
				}
			}
		}
		return kBool, nil
	case name == "casei" || name == "accenti":
		return kString, each(kString, "a string")
	case arithOps[name]:
		if err := each(kNumber, "a number"); err != nil {
			return 0, err
		}
		if (name == "/" || name == "%" || name == "div") && isConstant(o.Args[1]) {
			if f, ok := constValue(o.Args[1]).(float64); ok && f == 0 {
				return 0, c.fail(o.Args[1], argPtr(1), "%s: division by zero", name)
			}
		}
		return kNumber, nil
	case strings.HasPrefix(name, "t_"):
		return kBool, each(kInstant|kInterval, "a date, a timestamp or an interval")
	case strings.HasPrefix(name, "a_"):
		return kBool, each(kArray, "an array")
	case strings.HasPrefix(name, "s_"):
		return kBool, each(kGeometry, "a geometry")
	}
	return 0, c.fail(o, ptr, "%s: not supported", o.Name)
}

// comparable checks that the operands of o, of the given kinds, can meet
// in a comparison taking the types in allowed.
func (c *checker) comparable(o *Op, ptr string, kinds []kind, allowed kind) error {
	common := allowed
	all := kData | kInterval
	for i, k := range kinds {
		if k&allowed == 0 {
			what := "cannot be compared"
			if k&kBool != 0 {
				what = "has no order (booleans are equal or not)"
			}
			return c.fail(o.Args[i], ptr+"/args/"+strconv.Itoa(i), "%s: %s is %s, which %s", o.Name, quote(o.Args[i]), describeKind(k), what)
		}
		common &= k
		all &= k
	}
	if common != 0 {
		return nil
	}
	if all&kBool != 0 {
		return c.fail(o, ptr, "%s: booleans are equal or not but have no order", o.Name)
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = describeKind(k)
	}
	return c.fail(o, ptr, "%s: cannot compare %s", o.Name, strings.Join(names, " with "))
}

// kindOf returns the types e may take, judged from its own node only.
func kindOf(e Expr) kind {
	switch x := e.(type) {
	case *Bool:
		return kBool
	case *Number:
		return kNumber
	case *String:
		if isDate(x.Value) || isTimestamp(x.Value) {
			return kString | kInstant
		}
		return kString
	case *Date, *Timestamp:
		return kInstant
	case *Property:
		return kData
	case *Array:
		return kArray
	case *Interval:
		return kInterval
	case *Geometry, *BBox:
		return kGeometry
	case *Op:
		switch {
		case isPredicate(x.Name):
			return kBool
		case x.Name == "casei" || x.Name == "accenti":
			return kString
		case arithOps[x.Name]:
			return kNumber
		}
	}
	return 0
}

// isConstant reports whether e reads no property, so that its value is
// known without data.
func isConstant(e Expr) bool {
	switch x := e.(type) {
	case *Property:
		return false
	case *Array:
		for _, el := range x.Elems {
			if !isConstant(el) {
				return false
			}
		}
	case *Interval:
		return isConstant(x.Start) && isConstant(x.End)
	case *Op:
		for _, a := range x.Args {
			if !isConstant(a) {
				return false
			}
		}
	}
	return true
}

// constValue evaluates a constant expression that has passed the checks.
func constValue(e Expr) any {
	return evaluator{f: noFeature{}}.value(e)
}

// tooDeep returns a node of e that lies deeper than MaxDepth, or nil, and
// that node's JSON pointer. It recurses at most MaxDepth+1 levels.
func tooDeep(e Expr) (Expr, string) {
	var walk func(e Expr, ptr string, depth int) (Expr, string)
	walk = func(e Expr, ptr string, depth int) (Expr, string) {
		if depth > MaxDepth {
			return e, ptr
		}
		var found Expr
		var at string
		forChildren(e, func(child Expr, seg string) bool {
			found, at = walk(child, ptr+seg, depth+1)
			return found == nil
		})
		return found, at
	}
	return walk(e, "", 1)
}

// forChildren calls fn with each child of e and the JSON pointer segment
// that leads to it, until fn returns false.
func forChildren(e Expr, fn func(child Expr, seg string) bool) {
	switch x := e.(type) {
	case *Op:
		for i, a := range x.Args {
			if !fn(a, "/args/"+strconv.Itoa(i)) {
				return
			}
		}
	case *Array:
		for i, el := range x.Elems {
			if !fn(el, "/"+strconv.Itoa(i)) {
				return
			}
		}
	case *Interval:
		if fn(x.Start, "/interval/0") {
			fn(x.End, "/interval/1")
		}
	}
}
