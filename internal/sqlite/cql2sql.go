package sqlite

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
)

// CQL2 to SQLite SQL. A filter compiles to one SQL expression over the
// items table whose truth value is the one cql2.Eval gives: SQL's
// three-valued logic is Kleene's, a property value of a type that does
// not fit its operator reads as NULL (so its comparison is unknown), and
// strings compare with the BINARY collation, which for UTF-8 is code
// point order. Every value is a bound parameter, property paths included.
//
// SQLite has no geometry engine and its text functions fold ASCII only,
// so the compiler leaves the spatial, temporal and array predicates,
// CASEI, ACCENTI, ^ and instants to the evaluator: a node it cannot
// express is errNotPushable, and the planner (search.Split) sends the
// conjunct that holds it to the residual.

var errNotPushable = errors.New("sqlite: not pushable")

// kind is the type of a compiled value.
type kind int

const (
	kJSON kind = iota // a property of the document, of any JSON type
	kNum              // REAL
	kText             // TEXT
	kBool             // 0 or 1
)

// jsonValue reads one JSON value: typ is its json_type (NULL when it is
// absent), val its SQL value (json_extract).
type jsonValue struct {
	typ, val string
}

// sqlValue is a compiled value: SQL of kind k, or a JSON value for kJSON.
type sqlValue struct {
	sql string
	k   kind
	j   jsonValue
	// column marks the id, collection and state columns, which hold no
	// NUL character (catalog.CheckID), so GLOB sees all of them.
	column bool
}

// sqlArgs collects bound parameters, numbered so that one may be used
// more than once.
type sqlArgs struct{ list []any }

func (a *sqlArgs) add(v any) string {
	a.list = append(a.list, v)
	return "?" + strconv.Itoa(len(a.list))
}

func (a *sqlArgs) clone() *sqlArgs {
	return &sqlArgs{list: append([]any(nil), a.list...)}
}

// compiler turns a CQL2 AST into SQLite SQL.
type compiler struct {
	args *sqlArgs
	// props holds the reader of each property already bound.
	props map[string]jsonValue
}

func newCompiler(args *sqlArgs) *compiler {
	return &compiler{args: args, props: map[string]jsonValue{}}
}

// pushable reports whether the compiler can express e.
func pushable(e cql2.Expr) bool {
	_, err := newCompiler(&sqlArgs{}).cond(e)
	return err == nil
}

// propertyName reports whether name can be read from the document by SQL:
// not empty, at most 256 bytes of valid UTF-8 without control characters.
// Other names are read by the evaluator.
func propertyName(name string) bool {
	if name == "" || len(name) > 256 || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return false
		}
	}
	return true
}

// property returns the reader of a property of the document. A name that
// a JSON path can quote (a propertyName without double quote or
// backslash) is read with the path $.properties."name"; any other with
// json_each, by key. Both are bound parameters.
func (c *compiler) property(name string) jsonValue {
	if j, ok := c.props[name]; ok {
		return j
	}
	var j jsonValue
	if propertyName(name) && !strings.ContainsAny(name, `"\`) {
		p := c.args.add(`$.properties."` + name + `"`)
		j = jsonValue{typ: "json_type(content, " + p + ")", val: "json_extract(content, " + p + ")"}
	} else {
		k := c.args.add(name)
		j = jsonValue{
			typ: "(SELECT type FROM json_each(content, '$.properties') WHERE key = " + k + ")",
			val: "(SELECT atom FROM json_each(content, '$.properties') WHERE key = " + k + ")",
		}
	}
	c.props[name] = j
	return j
}

// propertyValue returns how a filter reads a property: columns for the
// item's id, collection and state, the document for the rest. The
// geometry is the evaluator's.
func (c *compiler) propertyValue(name string) (sqlValue, error) {
	switch name {
	case search.PropID:
		return sqlValue{sql: "id", k: kText, column: true}, nil
	case search.PropCollection:
		return sqlValue{sql: "collection", k: kText, column: true}, nil
	case search.PropState:
		// The state column, which a tombstone has too.
		return sqlValue{sql: "state", k: kText, column: true}, nil
	case search.PropGeometry, search.PropGeom:
		return sqlValue{}, errNotPushable
	}
	if !propertyName(name) {
		return sqlValue{}, errNotPushable
	}
	return sqlValue{k: kJSON, j: c.property(name)}, nil
}

// isPredicate reports whether op's value is a truth value.
func isPredicate(name string) bool {
	switch name {
	case "and", "or", "not", "=", "<>", "<", "<=", ">", ">=", "like", "between", "in", "isNull":
		return true
	}
	return strings.HasPrefix(name, "s_") || strings.HasPrefix(name, "t_") || strings.HasPrefix(name, "a_")
}

// cond compiles a predicate to an SQL truth value: 1, 0 or NULL.
func (c *compiler) cond(e cql2.Expr) (string, error) {
	op, ok := e.(*cql2.Op)
	if !ok || !isPredicate(op.Name) {
		// A value used as a predicate: a boolean, anything else unknown.
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
			return "(COALESCE(" + v.j.typ + ", 'null') = 'null')", nil
		}
		return "(" + v.sql + " IS NULL)", nil
	case "like":
		return c.like(op)
	case "in":
		return c.in(op)
	}
	return "", errNotPushable
}

func (c *compiler) values(x, y cql2.Expr) (sqlValue, sqlValue, error) {
	a, err := c.value(x)
	if err != nil {
		return sqlValue{}, sqlValue{}, err
	}
	b, err := c.value(y)
	return a, b, err
}

// value compiles a scalar expression.
func (c *compiler) value(e cql2.Expr) (sqlValue, error) {
	switch x := e.(type) {
	case *cql2.Bool:
		return sqlValue{sql: c.args.add(boolInt(x.Value)), k: kBool}, nil
	case *cql2.Number:
		f, ok := number(x.Text)
		if !ok {
			return sqlValue{}, errNotPushable
		}
		return sqlValue{sql: c.args.add(f), k: kNum}, nil
	case *cql2.String:
		return sqlValue{sql: c.args.add(x.Value), k: kText}, nil
	case *cql2.Property:
		return c.propertyValue(x.Name)
	case *cql2.Op:
		if isPredicate(x.Name) {
			s, err := c.cond(x)
			if err != nil {
				return sqlValue{}, err
			}
			return sqlValue{sql: s, k: kBool}, nil
		}
		return c.arithmetic(x)
	}
	// Instants, intervals, geometries and arrays.
	return sqlValue{}, errNotPushable
}

// number reads a number literal as the evaluator does; ok is false for
// one that is not finite.
func number(text string) (float64, bool) {
	f, err := strconv.ParseFloat(text, 64)
	if (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// arithmetic compiles +, -, *, /, % and div over REALs. SQLite makes a
// division by zero and a NaN NULL, as the evaluator does, and keeps
// infinities; mod() is C's fmod, exact like math.Mod. ^ is left to the
// evaluator: pow() and math.Pow may differ in the last bit.
func (c *compiler) arithmetic(op *cql2.Op) (sqlValue, error) {
	switch op.Name {
	case "+", "-", "*", "/", "%", "div":
	default:
		return sqlValue{}, errNotPushable
	}
	a, b, err := c.values(op.Args[0], op.Args[1])
	if err != nil {
		return sqlValue{}, err
	}
	x, y := c.as(a, kNum), c.as(b, kNum)
	var s string
	switch op.Name {
	case "%":
		s = "mod(" + x + ", " + y + ")"
	case "div":
		s = "trunc(" + x + " / " + y + ")"
	default:
		s = "(" + x + " " + op.Name + " " + y + ")"
	}
	return sqlValue{sql: s, k: kNum}, nil
}

// asJSON reads a JSON value as kind k: NULL when it is of another type.
// Numbers are REALs, as float64 in the evaluator (an integer beyond 2^53
// rounds the same way).
func asJSON(j jsonValue, k kind) string {
	switch k {
	case kNum:
		return "(CASE WHEN " + j.typ + " IN ('integer', 'real') THEN CAST(" + j.val + " AS REAL) END)"
	case kText:
		return "(CASE WHEN " + j.typ + " = 'text' THEN " + j.val + " END)"
	case kBool:
		return "(CASE " + j.typ + " WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
	}
	return "NULL"
}

// as converts a value to kind k; a value that cannot be of that kind is
// NULL, which makes what reads it unknown.
func (c *compiler) as(v sqlValue, k kind) string {
	switch {
	case v.k == k:
		return v.sql
	case v.k == kJSON:
		return asJSON(v.j, k)
	}
	return "NULL"
}

// compare compiles a comparison. Two properties compare when both are
// numbers, both strings or, for = and <>, both booleans; a property
// compared with a value is read as that value's kind; booleans have no
// order.
func (c *compiler) compare(op string, a, b sqlValue) string {
	ordered := op != "=" && op != "<>"
	if a.k == kJSON && b.k == kJSON {
		s := "(CASE WHEN " + a.j.typ + " IN ('integer', 'real') AND " + b.j.typ + " IN ('integer', 'real') THEN " +
			"CAST(" + a.j.val + " AS REAL) " + op + " CAST(" + b.j.val + " AS REAL)" +
			" WHEN " + a.j.typ + " = 'text' AND " + b.j.typ + " = 'text' THEN " + a.j.val + " " + op + " " + b.j.val
		if !ordered {
			s += " WHEN " + a.j.typ + " IN ('true', 'false') AND " + b.j.typ + " IN ('true', 'false') THEN " +
				a.j.typ + " " + op + " " + b.j.typ
		}
		return s + " END)"
	}
	k := a.k
	if k == kJSON {
		k = b.k
	}
	if k == kBool && ordered {
		return "NULL"
	}
	x, y := c.as(a, k), c.as(b, k)
	if x == "NULL" || y == "NULL" {
		return "NULL"
	}
	return "(" + x + " " + op + " " + y + ")"
}

// in compiles IN: literals of one kind are looked up in a bound list,
// other elements compared one by one, and the results joined with OR,
// which is the evaluator's Kleene OR of "=" comparisons.
func (c *compiler) in(op *cql2.Op) (string, error) {
	list, ok := op.Args[1].(*cql2.Array)
	if !ok || len(list.Elems) == 0 {
		return "", errNotPushable
	}
	a, err := c.value(op.Args[0])
	if err != nil {
		return "", err
	}
	var (
		nums  []json.RawMessage
		texts []string
		bools []string
		arms  []string
	)
	for _, el := range list.Elems {
		switch x := el.(type) {
		case *cql2.Number:
			f, ok := number(x.Text)
			if !ok {
				return "", errNotPushable
			}
			// The shortest form reads back as the same float64.
			nums = append(nums, json.RawMessage(strconv.FormatFloat(f, 'g', -1, 64)))
		case *cql2.String:
			if !utf8.ValidString(x.Value) {
				// JSON would not carry it byte for byte.
				return "", errNotPushable
			}
			texts = append(texts, x.Value)
		case *cql2.Bool:
			bools = append(bools, c.args.add(boolInt(x.Value)))
		default:
			v, err := c.value(el)
			if err != nil {
				return "", err
			}
			arms = append(arms, c.compare("=", a, v))
		}
	}
	if len(nums) > 0 {
		b, _ := json.Marshal(nums)
		arms = append(arms, c.inList(c.as(a, kNum), "SELECT CAST(value AS REAL) FROM json_each("+c.args.add(string(b))+")"))
	}
	if len(texts) > 0 {
		b, err := json.Marshal(texts)
		if err != nil {
			return "", errNotPushable
		}
		arms = append(arms, c.inList(c.as(a, kText), "SELECT value FROM json_each("+c.args.add(string(b))+")"))
	}
	if len(bools) > 0 {
		arms = append(arms, c.inList(c.as(a, kBool), strings.Join(bools, ", ")))
	}
	return "(" + strings.Join(arms, " OR ") + ")", nil
}

func (c *compiler) inList(x, list string) string {
	if x == "NULL" {
		return "NULL"
	}
	return "(" + x + " IN (" + list + "))"
}

// like compiles LIKE with a literal pattern. The id, collection and state
// columns use GLOB, which is case-sensitive like the standard's LIKE (and
// unlike SQLite's): % is *, _ is ?, and the characters special to GLOB
// are bracketed. A string read from the document may hold a NUL, which
// stops GLOB, so it is matched on its bytes instead, for the patterns
// made of literal text and % that this can express: exact, prefix,
// suffix, prefix and suffix, and infix. The rest is the evaluator's.
func (c *compiler) like(op *cql2.Op) (string, error) {
	lit, ok := op.Args[1].(*cql2.String)
	if !ok {
		return "", errNotPushable
	}
	toks, ok := likeTokens(lit.Value)
	if !ok {
		return "", errNotPushable
	}
	v, err := c.value(op.Args[0])
	if err != nil {
		return "", err
	}
	x := c.as(v, kText)
	if x == "NULL" {
		return "NULL", nil
	}
	if v.column {
		var g strings.Builder
		for _, t := range toks {
			switch {
			case t.any:
				g.WriteByte('*')
			case t.one:
				g.WriteByte('?')
			case t.r == '*' || t.r == '?' || t.r == '[':
				g.WriteString("[" + string(t.r) + "]")
			default:
				g.WriteRune(t.r)
			}
		}
		return "(" + x + " GLOB " + c.args.add(g.String()) + ")", nil
	}
	// Literal runs between the % wildcards.
	var segs []string
	var cur strings.Builder
	for _, t := range toks {
		switch {
		case t.one:
			return "", errNotPushable
		case t.any:
			segs = append(segs, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(t.r)
		}
	}
	segs = append(segs, cur.String())
	prefix, suffix := segs[0], segs[len(segs)-1]
	var middle []string
	if len(segs) > 2 {
		for _, s := range segs[1 : len(segs)-1] {
			if s != "" {
				middle = append(middle, s)
			}
		}
	}
	blob := "CAST(" + x + " AS BLOB)"
	var conds []string
	switch {
	case len(segs) == 1:
		return "(" + x + " = " + c.args.add(prefix) + ")", nil
	case len(middle) > 1 || (len(middle) == 1 && (prefix != "" || suffix != "")):
		return "", errNotPushable
	case len(middle) == 1:
		conds = append(conds, "instr("+blob+", "+c.args.add([]byte(middle[0]))+") > 0")
	}
	if prefix != "" {
		conds = append(conds, "substr("+blob+", 1, "+c.args.add(int64(len(prefix)))+") = "+c.args.add([]byte(prefix)))
	}
	if suffix != "" {
		conds = append(conds, "substr("+blob+", -"+c.args.add(int64(len(suffix)))+") = "+c.args.add([]byte(suffix)))
	}
	if prefix != "" && suffix != "" {
		conds = append(conds, "length("+blob+") >= "+c.args.add(int64(len(prefix)+len(suffix))))
	}
	if len(conds) == 0 {
		// Only wildcards: any string.
		conds = append(conds, "1")
	}
	// substr() of an empty BLOB is NULL, where no literal text matches.
	return "(CASE WHEN " + x + " IS NOT NULL THEN COALESCE(" + strings.Join(conds, " AND ") + ", 0) END)", nil
}

// likeToken is one element of a LIKE pattern: %, _ or a literal rune.
type likeToken struct {
	any, one bool
	r        rune
}

// likeTokens splits a LIKE pattern whose escape character is the
// backslash; ok is false for a pattern that ends with it or holds a NUL
// or invalid UTF-8.
func likeTokens(pat string) ([]likeToken, bool) {
	if !utf8.ValidString(pat) || strings.ContainsRune(pat, 0) {
		return nil, false
	}
	rs := []rune(pat)
	toks := make([]likeToken, 0, len(rs))
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '%':
			toks = append(toks, likeToken{any: true})
		case '_':
			toks = append(toks, likeToken{one: true})
		case '\\':
			if i+1 == len(rs) {
				return nil, false
			}
			i++
			toks = append(toks, likeToken{r: rs[i]})
		default:
			toks = append(toks, likeToken{r: r})
		}
	}
	return toks, true
}
