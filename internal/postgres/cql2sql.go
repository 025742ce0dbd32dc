package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
)

// CQL2 to SQL. A filter compiles to one boolean SQL expression over the
// items table; every value is a bound parameter, and property names are
// validated and written as quoted literals (never pasted), so that an
// expression index on a property can match. The semantics are those of
// cql2.Eval: three-valued logic, a value of the wrong type makes its
// comparison unknown, strings compare by code point (COLLATE "C").
//
// A node the compiler cannot express is errNotPushable; the planner then
// leaves it to the evaluator (search.Split).

var errNotPushable = errors.New("postgres: not pushable")

// kind is the SQL type of a compiled value.
type kind int

const (
	kJSON    kind = iota // a property's jsonb value, of any type
	kNum                 // float8
	kText                // text
	kBool                // boolean
	kInstant             // timestamptz
	kGeom                // geometry
	kArray               // a jsonb array
)

var nullOf = map[kind]string{
	kJSON: "NULL::jsonb", kNum: "NULL::float8", kText: "NULL::text", kBool: "NULL::boolean",
	kInstant: "NULL::timestamptz", kGeom: "NULL::geometry", kArray: "NULL::jsonb",
}

type sqlValue struct {
	sql string
	k   kind
}

// sqlArgs collects bound parameters.
type sqlArgs struct{ list []any }

func (a *sqlArgs) add(v any) string {
	a.list = append(a.list, v)
	return "$" + strconv.Itoa(len(a.list))
}

// compiler turns a CQL2 AST into SQL.
type compiler struct {
	args *sqlArgs
}

// pushable reports whether the compiler can express e.
func pushable(e cql2.Expr) bool {
	c := compiler{args: &sqlArgs{}}
	_, err := c.cond(e)
	return err == nil
}

// propertySQL returns how a property is read: columns for the item's id,
// collection, state and geometry, the document for the rest.
func propertySQL(name string) (sqlValue, error) {
	switch name {
	case search.PropID:
		return sqlValue{"id", kText}, nil
	case search.PropCollection:
		return sqlValue{"collection", kText}, nil
	case search.PropState:
		return sqlValue{"state", kText}, nil
	case search.PropGeometry, search.PropGeom:
		return sqlValue{"geometry", kGeom}, nil
	}
	lit, err := quoteName(name)
	if err != nil {
		return sqlValue{}, err
	}
	return sqlValue{propertyPath(lit), kJSON}, nil
}

// propertyPath reads a property (its name as a quoted literal) from the
// document: jsonb_extract_path (#>) walks to it in place, where
// content->'properties'->name would copy the properties object first.
// Expression indexes on properties use the same form.
func propertyPath(lit string) string {
	return "(content #> ARRAY['properties', " + lit + "])"
}

// arrayValue reads a JSON value (an SQL expression in parentheses) as an
// array: NULL unless it is one. The GIN index of an indexed array
// property (queryables.go) is built on this very expression.
func arrayValue(sql string) string {
	return "(CASE WHEN jsonb_typeof" + sql + " = 'array' THEN " + sql + " END)"
}

// quoteName writes a property name as an SQL string literal. Names are
// checked first: valid UTF-8, no control characters, at most 256 bytes.
func quoteName(name string) (string, error) {
	if name == "" || len(name) > 256 || !utf8.ValidString(name) {
		return "", catalog.Invalid("filter", "%q is not a property name", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", catalog.Invalid("filter", "property name %q holds a control character", name)
		}
	}
	return "'" + strings.ReplaceAll(name, "'", "''") + "'", nil
}

// cond compiles a predicate.
func (c compiler) cond(e cql2.Expr) (string, error) {
	op, ok := e.(*cql2.Op)
	if !ok {
		v, err := c.value(e)
		if err != nil {
			return "", err
		}
		return c.as(v, kBool), nil
	}
	switch op.Name {
	case "and", "or":
		parts := make([]string, len(op.Args))
		for i, a := range op.Args {
			s, err := c.cond(a)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "(" + strings.Join(parts, " "+strings.ToUpper(op.Name)+" ") + ")", nil
	case "not":
		s, err := c.cond(op.Args[0])
		if err != nil {
			return "", err
		}
		return "(NOT " + s + ")", nil
	case "=", "<>", "<", "<=", ">", ">=":
		a, b, err := c.values(op.Args[0], op.Args[1])
		if err != nil {
			return "", err
		}
		return c.compare(op.Name, a, b), nil
	case "between":
		a, lo, err := c.values(op.Args[0], op.Args[1])
		if err != nil {
			return "", err
		}
		hi, err := c.value(op.Args[2])
		if err != nil {
			return "", err
		}
		return "(" + c.compare(">=", a, lo) + " AND " + c.compare("<=", a, hi) + ")", nil
	case "isNull":
		v, err := c.value(op.Args[0])
		if err != nil {
			return "", err
		}
		if v.k == kJSON {
			return "(COALESCE(jsonb_typeof" + v.sql + ", 'null') = 'null')", nil
		}
		return "(" + v.sql + " IS NULL)", nil
	case "like":
		return c.like(op)
	case "in":
		return c.in(op)
	}
	switch {
	case strings.HasPrefix(op.Name, "t_"):
		return c.temporal(op)
	case strings.HasPrefix(op.Name, "a_"):
		return c.array(op)
	case strings.HasPrefix(op.Name, "s_"):
		return c.spatial(op)
	}
	return "", errNotPushable
}

func (c compiler) values(x, y cql2.Expr) (sqlValue, sqlValue, error) {
	a, err := c.value(x)
	if err != nil {
		return sqlValue{}, sqlValue{}, err
	}
	b, err := c.value(y)
	return a, b, err
}

// value compiles a scalar expression.
func (c compiler) value(e cql2.Expr) (sqlValue, error) {
	switch x := e.(type) {
	case *cql2.Bool:
		return sqlValue{c.args.add(x.Value) + "::boolean", kBool}, nil
	case *cql2.Number:
		f, err := strconv.ParseFloat(x.Text, 64)
		if err != nil {
			return sqlValue{}, errNotPushable
		}
		return sqlValue{c.args.add(f) + "::float8", kNum}, nil
	case *cql2.String:
		return sqlValue{c.args.add(x.Value) + "::text", kText}, nil
	case *cql2.Date:
		t, err := time.Parse("2006-01-02", x.Value)
		if err != nil {
			return sqlValue{}, errNotPushable
		}
		return sqlValue{c.args.add(t) + "::timestamptz", kInstant}, nil
	case *cql2.Timestamp:
		t, err := time.Parse(time.RFC3339Nano, x.Value)
		if err != nil {
			return sqlValue{}, errNotPushable
		}
		return sqlValue{c.args.add(t) + "::timestamptz", kInstant}, nil
	case *cql2.Property:
		return propertySQL(x.Name)
	case *cql2.Geometry:
		return sqlValue{"ST_SetSRID(ST_GeomFromGeoJSON(" + c.args.add(string(x.GeoJSON)) + "::text), 4326)", kGeom}, nil
	case *cql2.BBox:
		return c.bbox(x)
	case *cql2.Array:
		raw, ok := literalArray(x)
		if !ok {
			return sqlValue{}, errNotPushable
		}
		return sqlValue{c.args.add(string(raw)) + "::jsonb", kArray}, nil
	case *cql2.Op:
		return c.function(x)
	}
	return sqlValue{}, errNotPushable
}

// literalArray encodes an array of plain literals (strings, numbers,
// booleans) as JSON.
func literalArray(a *cql2.Array) (json.RawMessage, bool) {
	vals := make([]json.RawMessage, len(a.Elems))
	for i, el := range a.Elems {
		switch x := el.(type) {
		case *cql2.String:
			b, _ := json.Marshal(x.Value)
			vals[i] = b
		case *cql2.Number:
			vals[i] = json.RawMessage(x.Text)
		case *cql2.Bool:
			vals[i] = json.RawMessage(strconv.FormatBool(x.Value))
		default:
			return nil, false
		}
	}
	b, err := json.Marshal(vals)
	return b, err == nil
}

func (c compiler) bbox(b *cql2.BBox) (sqlValue, error) {
	nums := make([]float64, len(b.Coords))
	for i, n := range b.Coords {
		f, err := strconv.ParseFloat(n.Text, 64)
		if err != nil {
			return sqlValue{}, errNotPushable
		}
		nums[i] = f
	}
	if len(nums) != 4 && len(nums) != 6 {
		return sqlValue{}, errNotPushable
	}
	w, s, e, n := search.Corners(nums)
	return sqlValue{c.envelope(w, s, e, n), kGeom}, nil
}

// envelope is a bbox as a geometry; one crossing the antimeridian (west
// greater than east) is the multipolygon of its two halves.
func (c compiler) envelope(w, s, e, n float64) string {
	box := func(w, e float64) string {
		return fmt.Sprintf("ST_MakeEnvelope(%s::float8, %s::float8, %s::float8, %s::float8, 4326)",
			c.args.add(w), c.args.add(s), c.args.add(e), c.args.add(n))
	}
	if w <= e {
		return box(w, e)
	}
	return "ST_Collect(" + box(w, 180) + ", " + box(-180, e) + ")"
}

// function compiles casei, accenti and arithmetic.
func (c compiler) function(op *cql2.Op) (sqlValue, error) {
	switch op.Name {
	case "casei", "accenti":
		v, err := c.value(op.Args[0])
		if err != nil {
			return sqlValue{}, err
		}
		return sqlValue{"cql_" + op.Name + "(" + c.as(v, kText) + ")", kText}, nil
	case "+", "-", "*", "/", "%", "div":
		a, b, err := c.values(op.Args[0], op.Args[1])
		if err != nil {
			return sqlValue{}, err
		}
		x, y := c.as(a, kNum), c.as(b, kNum)
		var s string
		switch op.Name {
		case "+", "-", "*":
			s = "(" + x + " " + op.Name + " " + y + ")"
		case "/":
			s = "(" + x + " / NULLIF(" + y + ", 0))"
		case "%":
			// math.Mod: the remainder has the sign of the dividend.
			s = "(" + x + " - " + y + " * trunc(" + x + " / NULLIF(" + y + ", 0)))"
		case "div":
			s = "trunc(" + x + " / NULLIF(" + y + ", 0))"
		}
		return sqlValue{s, kNum}, nil
	}
	// ^ is left to the evaluator: power() raises errors where Go's
	// math.Pow returns NaN or an infinity.
	return sqlValue{}, errNotPushable
}

// as converts a value to kind k; a value that cannot be of that kind is
// NULL, which makes its comparison unknown.
func (c compiler) as(v sqlValue, k kind) string {
	if v.k == k {
		return v.sql
	}
	switch {
	case v.k == kJSON && k == kNum:
		return "cql_num" + v.sql
	case v.k == kJSON && k == kText:
		return "cql_text" + v.sql
	case v.k == kJSON && k == kBool:
		return "cql_bool" + v.sql
	case v.k == kJSON && k == kInstant:
		return "cql_instant" + v.sql
	case v.k == kText && k == kInstant:
		return "cql_instant_text(" + v.sql + ")"
	case v.k == kJSON && k == kArray:
		return arrayValue(v.sql)
	}
	return nullOf[k]
}

var sqlOps = map[string]string{"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

// compare compiles a comparison. Two property values of unknown type
// compare when both are numbers, both strings, or (for = and <>) both
// booleans; a property compared with a literal is read as the literal's
// type; strings compare by code point.
func (c compiler) compare(op string, a, b sqlValue) string {
	sop := sqlOps[op]
	if a.k == kJSON && b.k == kJSON {
		s := "(CASE WHEN jsonb_typeof" + a.sql + " = 'number' AND jsonb_typeof" + b.sql + " = 'number' THEN " +
			a.sql + "::float8 " + sop + " " + b.sql + "::float8" +
			" WHEN jsonb_typeof" + a.sql + " = 'string' AND jsonb_typeof" + b.sql + " = 'string' THEN " +
			"(" + a.sql + " #>> '{}') COLLATE \"C\" " + sop + " (" + b.sql + " #>> '{}')"
		if op == "=" || op == "<>" {
			s += " WHEN jsonb_typeof" + a.sql + " = 'boolean' AND jsonb_typeof" + b.sql + " = 'boolean' THEN " +
				a.sql + "::boolean " + sop + " " + b.sql + "::boolean"
		}
		return s + " END)"
	}
	k := a.k
	if k == kJSON || (k == kText && b.k == kInstant) {
		k = b.k
	}
	switch k {
	case kGeom, kArray, kJSON:
		return "NULL::boolean"
	case kBool:
		if op != "=" && op != "<>" {
			return "NULL::boolean"
		}
	}
	x, y := c.as(a, k), c.as(b, k)
	if k == kText {
		x += ` COLLATE "C"`
	}
	return "(" + x + " " + sop + " " + y + ")"
}

// like compiles LIKE with a literal pattern (a string, perhaps under
// casei or accenti); the pattern's escape character is the backslash,
// as in SQL. A pattern read from the data is left to the evaluator.
func (c compiler) like(op *cql2.Op) (string, error) {
	if !literalString(op.Args[1]) {
		return "", errNotPushable
	}
	a, p, err := c.values(op.Args[0], op.Args[1])
	if err != nil {
		return "", err
	}
	return "(" + c.as(a, kText) + ` COLLATE "C" LIKE ` + c.as(p, kText) + ")", nil
}

func literalString(e cql2.Expr) bool {
	switch x := e.(type) {
	case *cql2.String:
		return true
	case *cql2.Op:
		return (x.Name == "casei" || x.Name == "accenti") && len(x.Args) == 1 && literalString(x.Args[0])
	}
	return false
}

// in compiles IN over a list of literals of one type.
func (c compiler) in(op *cql2.Op) (string, error) {
	list, ok := op.Args[1].(*cql2.Array)
	if !ok || len(list.Elems) == 0 {
		return "", errNotPushable
	}
	a, err := c.value(op.Args[0])
	if err != nil {
		return "", err
	}
	var (
		k    kind
		vals []any
		typ  string
	)
	for i, el := range list.Elems {
		v, err := c.literal(el)
		if err != nil {
			return "", err
		}
		if i == 0 {
			k = v.k
		} else if v.k != k {
			return "", errNotPushable
		}
		vals = append(vals, v.val)
	}
	switch k {
	case kNum:
		typ = "float8[]"
	case kText:
		typ = "text[]"
	case kBool:
		typ = "boolean[]"
	case kInstant:
		typ = "timestamptz[]"
	default:
		return "", errNotPushable
	}
	x := c.as(a, k)
	if a.k == kText && k == kInstant {
		x = c.as(a, kInstant)
	} else if a.k != kJSON && a.k != k {
		x = nullOf[k]
	}
	if k == kText {
		x += ` COLLATE "C"`
	}
	return "(" + x + " = ANY(" + c.args.add(vals) + "::" + typ + "))", nil
}

type literalValue struct {
	val any
	k   kind
}

// literal reads a plain literal.
func (c compiler) literal(e cql2.Expr) (literalValue, error) {
	switch x := e.(type) {
	case *cql2.String:
		return literalValue{x.Value, kText}, nil
	case *cql2.Number:
		f, err := strconv.ParseFloat(x.Text, 64)
		if err != nil {
			return literalValue{}, errNotPushable
		}
		return literalValue{f, kNum}, nil
	case *cql2.Bool:
		return literalValue{x.Value, kBool}, nil
	case *cql2.Date:
		t, err := time.Parse("2006-01-02", x.Value)
		if err != nil {
			return literalValue{}, errNotPushable
		}
		return literalValue{t, kInstant}, nil
	case *cql2.Timestamp:
		t, err := time.Parse(time.RFC3339Nano, x.Value)
		if err != nil {
			return literalValue{}, errNotPushable
		}
		return literalValue{t, kInstant}, nil
	}
	return literalValue{}, errNotPushable
}

// temporalSQL are the CQL2 temporal predicates over the bounds of two
// intervals (s1, e1) and (s2, e2); see cql2's temporalRelations.
var temporalSQL = map[string]string{
	"t_after":        "s1 > e2",
	"t_before":       "e1 < s2",
	"t_contains":     "s1 < s2 AND e1 > e2",
	"t_disjoint":     "(e1 < s2 OR s1 > e2)",
	"t_during":       "s1 > s2 AND e1 < e2",
	"t_equals":       "s1 = s2 AND e1 = e2",
	"t_finishedBy":   "s1 < s2 AND e1 = e2",
	"t_finishes":     "s1 > s2 AND e1 = e2",
	"t_intersects":   "s1 <= e2 AND e1 >= s2",
	"t_meets":        "e1 = s2",
	"t_metBy":        "s1 = e2",
	"t_overlappedBy": "s1 > s2 AND s1 < e2 AND e1 > e2",
	"t_overlaps":     "s1 < s2 AND e1 > s2 AND e1 < e2",
	"t_startedBy":    "s1 = s2 AND e1 > e2",
	"t_starts":       "s1 = s2 AND e1 < e2",
}

// temporal compiles T_* with each operand an instant or an interval;
// a NULL bound makes the whole predicate unknown, as the evaluator does.
func (c compiler) temporal(op *cql2.Op) (string, error) {
	rel, ok := temporalSQL[op.Name]
	if !ok {
		return "", errNotPushable
	}
	var bounds [4]string
	for i, a := range op.Args[:2] {
		s, e, err := c.interval(a)
		if err != nil {
			return "", err
		}
		bounds[2*i], bounds[2*i+1] = s, e
	}
	// Each bound is written once, in a lateral-free form: the relation
	// is spelled with placeholders replaced by the bound expressions.
	r := strings.NewReplacer("s1", bounds[0], "e1", bounds[1], "s2", bounds[2], "e2", bounds[3])
	return "(CASE WHEN " + bounds[0] + " IS NULL OR " + bounds[1] + " IS NULL OR " + bounds[2] + " IS NULL OR " +
		bounds[3] + " IS NULL THEN NULL ELSE (" + r.Replace(rel) + ") END)", nil
}

// interval compiles a temporal operand to its start and end.
func (c compiler) interval(e cql2.Expr) (string, string, error) {
	iv, ok := e.(*cql2.Interval)
	if !ok {
		v, err := c.value(e)
		if err != nil {
			return "", "", err
		}
		s := c.as(v, kInstant)
		return s, s, nil
	}
	var out [2]string
	for i, b := range []cql2.Expr{iv.Start, iv.End} {
		if s, ok := b.(*cql2.String); ok {
			switch {
			case s.Value == "..":
				out[i] = "'-infinity'::timestamptz"
				if i == 1 {
					out[i] = "'infinity'::timestamptz"
				}
				continue
			case len(s.Value) == 10:
				b = &cql2.Date{Value: s.Value}
			default:
				b = &cql2.Timestamp{Value: s.Value}
			}
		}
		v, err := c.value(b)
		if err != nil {
			return "", "", err
		}
		out[i] = c.as(v, kInstant)
	}
	return out[0], out[1], nil
}

// array compiles A_* over jsonb arrays: @> and <@ compare elements as
// JSON values do (numbers by value, strings exactly).
func (c compiler) array(op *cql2.Op) (string, error) {
	a, b, err := c.values(op.Args[0], op.Args[1])
	if err != nil {
		return "", err
	}
	x, y := c.as(a, kArray), c.as(b, kArray)
	switch op.Name {
	case "a_contains":
		return "(" + x + " @> " + y + ")", nil
	case "a_containedBy":
		return "(" + x + " <@ " + y + ")", nil
	case "a_equals":
		return "(" + x + " = " + y + ")", nil
	case "a_overlaps":
		return "(CASE WHEN " + x + " IS NULL OR " + y + " IS NULL THEN NULL ELSE EXISTS (SELECT 1 FROM jsonb_array_elements(" + x +
			") AS ea(v) JOIN jsonb_array_elements(" + y + ") AS eb(v) ON ea.v = eb.v AND ea.v <> 'null'::jsonb) END)", nil
	}
	return "", errNotPushable
}

var spatialSQL = map[string]string{
	"s_intersects": "ST_Intersects", "s_disjoint": "ST_Disjoint", "s_contains": "ST_Contains",
	"s_within": "ST_Within", "s_touches": "ST_Touches", "s_crosses": "ST_Crosses",
	"s_overlaps": "ST_Overlaps", "s_equals": "ST_Equals",
}

// spatial compiles S_* with PostGIS; a property holding a geometry other
// than the item's own is left to the evaluator.
func (c compiler) spatial(op *cql2.Op) (string, error) {
	fn, ok := spatialSQL[op.Name]
	if !ok {
		return "", errNotPushable
	}
	a, b, err := c.values(op.Args[0], op.Args[1])
	if err != nil {
		return "", err
	}
	if a.k != kGeom || b.k != kGeom {
		return "", errNotPushable
	}
	if op.Name == "s_intersects" {
		// The bounding boxes overlap (&&, served by the GiST index), and
		// then the geometries intersect: cql_intersects_mark is
		// ST_Intersects at the cost of a cheap function, so that the
		// planner weighs a walk of the time index that tests each row
		// against a bitmap scan of every match and a sort, and takes the
		// walk when matches are many; and as an IS NOT NULL test, which
		// the planner expects to keep nearly every row the box test
		// keeps, as it does (migration 0022).
		return "(" + a.sql + " && " + b.sql + " AND cql_intersects_mark(" + a.sql + ", " + b.sql + ") IS NOT NULL)", nil
	}
	return fn + "(" + a.sql + ", " + b.sql + ")", nil
}
