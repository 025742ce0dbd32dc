package cql2

import (
	"strings"
)

// ParseText parses a CQL2-Text filter. Keywords are case-insensitive.
// Errors are EINVALID with Pointer "filter:<byte offset>". A filter that
// nests parentheses, function calls, arrays and NOTs deeper than MaxDepth,
// or whose expressions nest deeper than MaxDepth, is rejected.
func ParseText(src string) (Expr, error) {
	// A coarse bound first, counting every parenthesis, those of
	// literals (WKT, BBOX, DATE) too; the parser counts exactly.
	if pos := parenNestingExceeds(src, MaxDepth+8); pos >= 0 {
		return nil, invalidText(pos, "filter is nested deeper than %d levels", MaxDepth)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, pos: map[Expr]int{}}
	if p.peek().kind == tEOF {
		return nil, invalidText(0, "filter is empty")
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	// Chains of infix operators nest the AST without nesting the parser,
	// so the depth of the result is measured on its own.
	if deep, _ := tooDeep(e); deep != nil {
		return nil, invalidText(p.pos[deep], "filter is nested deeper than %d levels", MaxDepth)
	}
	rememberPositions(p.pos)
	return e, nil
}

// parenNestingExceeds returns the offset of the first parenthesis of src
// that opens a level deeper than limit, or -1. It skips quoted strings and
// identifiers as the lexer reads them, and keeps no stack, so that a
// hostile filter is turned away before it is split into tokens.
func parenNestingExceeds(src string, limit int) int {
	depth := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '\'':
			// A doubled quote and a backslash-escaped quote stand for one.
			for i++; i < len(src); i++ {
				if (src[i] == '\'' || src[i] == '\\') && i+1 < len(src) && src[i+1] == '\'' {
					i++
				} else if src[i] == '\'' {
					break
				}
			}
		case '"':
			for i++; i < len(src) && src[i] != '"'; i++ {
			}
		case '(':
			if depth++; depth > limit {
				return i
			}
		case ')':
			depth--
		}
	}
	return -1
}

type parser struct {
	toks  []token
	i     int
	depth int          // open parentheses, calls, arrays and NOTs
	pos   map[Expr]int // where each node was found
}

// at records that e was found at byte offset pos and returns it.
func at[T Expr](p *parser, e T, pos int) T {
	p.pos[e] = pos
	return e
}

// enter opens a level of nesting at token t; leave closes it.
func (p *parser) enter(t token) error {
	if p.depth++; p.depth > MaxDepth {
		return invalidText(t.pos, "filter is nested deeper than %d levels", MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func isKeyword(t token, kw string) bool {
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func isPunct(t token, s string) bool { return t.kind == tPunct && t.text == s }

// acceptKeyword consumes the keyword kw if it comes next.
func (p *parser) acceptKeyword(kw string) bool {
	if isKeyword(p.peek(), kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) acceptPunct(s string) bool {
	if isPunct(p.peek(), s) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectPunct(s string) error {
	if p.acceptPunct(s) {
		return nil
	}
	t := p.peek()
	return invalidText(t.pos, "expected %q but found %s", s, describe(t))
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "the end of the filter"
	case tString:
		return "'" + t.text + "'"
	case tQuoted:
		return "\"" + t.text + "\""
	}
	return "\"" + t.text + "\""
}

func (p *parser) unexpected(t token) error {
	if t.kind == tEOF {
		return invalidText(t.pos, "unexpected end of filter")
	}
	return invalidText(t.pos, "unexpected %s", describe(t))
}

// parseOr: booleanTerm {OR booleanTerm}; a chain becomes one n-ary "or".
func (p *parser) parseOr() (Expr, error) {
	return p.parseChain("OR", "or", p.parseAnd)
}

func (p *parser) parseAnd() (Expr, error) {
	return p.parseChain("AND", "and", p.parseNot)
}

func (p *parser) parseChain(kw, op string, sub func() (Expr, error)) (Expr, error) {
	first, err := sub()
	if err != nil {
		return nil, err
	}
	args := []Expr{first}
	pos := p.peek().pos
	for p.acceptKeyword(kw) {
		e, err := sub()
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	if len(args) == 1 {
		return first, nil
	}
	return at(p, &Op{Name: op, Args: args}, pos), nil
}

func (p *parser) parseNot() (Expr, error) {
	if t := p.peek(); p.acceptKeyword("NOT") {
		if err := p.enter(t); err != nil {
			return nil, err
		}
		e, err := p.parseNot()
		p.leave()
		if err != nil {
			return nil, err
		}
		return p.not(e, t.pos), nil
	}
	return p.parsePredicate()
}

func (p *parser) not(e Expr, pos int) Expr {
	return at(p, &Op{Name: "not", Args: []Expr{e}}, pos)
}

var comparisons = map[string]bool{"=": true, "<>": true, "<": true, "<=": true, ">": true, ">=": true}

// parsePredicate parses a scalar expression and, when one follows, the
// comparison, LIKE, BETWEEN, IN or IS NULL that applies to it.
func (p *parser) parsePredicate() (Expr, error) {
	left, err := p.parseArith()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind == tPunct && comparisons[t.text] {
		p.next()
		right, err := p.parseArith()
		if err != nil {
			return nil, err
		}
		return at(p, &Op{Name: t.text, Args: []Expr{left, right}}, t.pos), nil
	}
	negate := false
	notPos := t.pos
	if isKeyword(t, "NOT") {
		if n := p.peekAt(1); isKeyword(n, "LIKE") || isKeyword(n, "BETWEEN") || isKeyword(n, "IN") {
			p.next()
			negate = true
		}
	}
	wrap := func(e Expr) Expr {
		if negate {
			return p.not(e, notPos)
		}
		return e
	}
	kw := p.peek()
	switch {
	case p.acceptKeyword("LIKE"):
		pattern, err := p.parseArith()
		if err != nil {
			return nil, err
		}
		return wrap(at(p, &Op{Name: "like", Args: []Expr{left, pattern}}, kw.pos)), nil
	case p.acceptKeyword("BETWEEN"):
		lo, err := p.parseArith()
		if err != nil {
			return nil, err
		}
		if !p.acceptKeyword("AND") {
			t := p.peek()
			return nil, invalidText(t.pos, "expected AND in BETWEEN but found %s", describe(t))
		}
		hi, err := p.parseArith()
		if err != nil {
			return nil, err
		}
		return wrap(at(p, &Op{Name: "between", Args: []Expr{left, lo, hi}}, kw.pos)), nil
	case p.acceptKeyword("IN"):
		if !isPunct(p.peek(), "(") {
			t := p.peek()
			return nil, invalidText(t.pos, "expected a parenthesised list after IN but found %s", describe(t))
		}
		list, err := p.parseArray()
		if err != nil {
			return nil, err
		}
		return wrap(at(p, &Op{Name: "in", Args: []Expr{left, list}}, kw.pos)), nil
	case p.acceptKeyword("IS"):
		notTok := p.peek()
		neg := p.acceptKeyword("NOT")
		if !p.acceptKeyword("NULL") {
			t := p.peek()
			return nil, invalidText(t.pos, "expected NULL after IS but found %s", describe(t))
		}
		e := Expr(at(p, &Op{Name: "isNull", Args: []Expr{left}}, kw.pos))
		if neg {
			e = p.not(e, notTok.pos)
		}
		return e, nil
	}
	return left, nil
}

// parseArith: arithmeticTerm {(+|-) arithmeticTerm}, left-associative.
func (p *parser) parseArith() (Expr, error) {
	return p.parseBinary(p.parseTerm, "+", "-")
}

func (p *parser) parseTerm() (Expr, error) {
	return p.parseBinary(p.parsePower, "*", "/", "%", "div")
}

func (p *parser) parseBinary(sub func() (Expr, error), ops ...string) (Expr, error) {
	left, err := sub()
	if err != nil {
		return nil, err
	}
	for chain := 0; ; chain++ {
		t := p.peek()
		name := ""
		for _, o := range ops {
			if isPunct(t, o) || o == "div" && isKeyword(t, "div") {
				name = o
			}
		}
		if name == "" {
			return left, nil
		}
		if chain >= MaxDepth {
			// Each operator of a chain nests the ones before it.
			return nil, invalidText(t.pos, "filter is nested deeper than %d levels", MaxDepth)
		}
		p.next()
		right, err := sub()
		if err != nil {
			return nil, err
		}
		left = at(p, &Op{Name: name, Args: []Expr{left, right}}, t.pos)
	}
}

// parsePower: arithmeticFactor ["^" arithmeticFactor]; the BNF makes "^"
// non-associative.
func (p *parser) parsePower() (Expr, error) {
	base, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if !p.acceptPunct("^") {
		return base, nil
	}
	exp, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	return at(p, &Op{Name: "^", Args: []Expr{base, exp}}, t.pos), nil
}

// parseUnary handles a leading sign. A signed number stays one literal;
// the negation of anything else becomes (-1 * x), as CQL2-JSON has no
// unary minus.
func (p *parser) parseUnary() (Expr, error) {
	t := p.peek()
	if !isPunct(t, "-") && !isPunct(t, "+") {
		return p.parsePrimary()
	}
	p.next()
	if n := p.peek(); n.kind == tNumber {
		p.next()
		if t.text == "-" {
			return at(p, &Number{Text: "-" + n.text}, t.pos), nil
		}
		return at(p, &Number{Text: n.text}, t.pos), nil
	}
	e, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	if t.text == "+" {
		return e, nil
	}
	return at(p, &Op{Name: "*", Args: []Expr{at(p, &Number{Text: "-1"}, t.pos), e}}, t.pos), nil
}

func (p *parser) parsePrimary() (Expr, error) {
	t := p.peek()
	switch t.kind {
	case tNumber:
		p.next()
		return at(p, &Number{Text: t.text}, t.pos), nil
	case tString:
		p.next()
		return at(p, &String{Value: t.text}, t.pos), nil
	case tQuoted:
		p.next()
		return at(p, &Property{Name: t.text}, t.pos), nil
	case tPunct:
		if t.text == "(" {
			return p.parseParen()
		}
		return nil, p.unexpected(t)
	case tIdent:
		return p.parseIdent()
	}
	return nil, p.unexpected(t)
}

// parseParen reads "(" … ")": a parenthesised expression, or an array
// when it is empty or holds a comma.
func (p *parser) parseParen() (Expr, error) {
	open := p.next()
	if err := p.enter(open); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.acceptPunct(")") {
		return at(p, &Array{Elems: []Expr{}}, open.pos), nil
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if isPunct(p.peek(), ",") {
		// An array: its first element is read already.
		return p.arrayRest(at(p, &Array{Elems: []Expr{e}}, open.pos))
	}
	if err := p.expectPunct(")"); err != nil {
		return nil, err
	}
	return e, nil
}

// parseArray reads "(" [element {"," element}] ")" as an array literal.
func (p *parser) parseArray() (Expr, error) {
	open := p.peek()
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	if err := p.enter(open); err != nil {
		return nil, err
	}
	defer p.leave()
	a := at(p, &Array{Elems: []Expr{}}, open.pos)
	if p.acceptPunct(")") {
		return a, nil
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	a.Elems = append(a.Elems, e)
	return p.arrayRest(a)
}

// arrayRest reads the elements of a after its first: {"," element} ")".
func (p *parser) arrayRest(a *Array) (Expr, error) {
	for {
		if p.acceptPunct(")") {
			return a, nil
		}
		if err := p.expectPunct(","); err != nil {
			return nil, err
		}
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		a.Elems = append(a.Elems, e)
	}
}

func (p *parser) parseIdent() (Expr, error) {
	t := p.next()
	up := strings.ToUpper(t.text)
	call := isPunct(p.peek(), "(")
	switch {
	case up == "TRUE" || up == "FALSE":
		return at(p, &Bool{Value: up == "TRUE"}, t.pos), nil
	case reserved[up]:
		return nil, p.unexpected(t)
	}
	if _, ok := geomTypes[up]; ok && (call || isKeyword(p.peek(), "Z")) {
		g, err := p.parseWKT(t)
		if err != nil {
			return nil, err
		}
		return at(p, &Geometry{GeoJSON: g.geoJSON()}, t.pos), nil
	}
	if !call {
		return at(p, &Property{Name: t.text}, t.pos), nil
	}
	switch up {
	case "BBOX":
		b, err := p.parseBBox()
		if err != nil {
			return nil, err
		}
		return at(p, b, t.pos), nil
	case "DATE", "TIMESTAMP":
		p.next()
		s := p.peek()
		if s.kind != tString {
			return nil, invalidText(s.pos, "%s needs a quoted instant, found %s", up, describe(s))
		}
		p.next()
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		if up == "DATE" {
			if !isDate(s.text) {
				return nil, invalidText(s.pos, "%q is not a date (YYYY-MM-DD)", s.text)
			}
			return at(p, &Date{Value: s.text}, t.pos), nil
		}
		if !isTimestamp(s.text) {
			return nil, invalidText(s.pos, "%q is not a UTC timestamp (YYYY-MM-DDThh:mm:ss[.f]Z)", s.text)
		}
		return at(p, &Timestamp{Value: s.text}, t.pos), nil
	case "INTERVAL":
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		iv, err := p.parseInterval()
		if err != nil {
			return nil, err
		}
		return at(p, iv, t.pos), nil
	}
	name, std := canonicalOp(t.text)
	if err := p.enter(t); err != nil {
		return nil, err
	}
	defer p.leave()
	p.next() // "("
	op := at(p, &Op{Name: name, Args: []Expr{}}, t.pos)
	isArrayOp := std && strings.HasPrefix(name, "a_")
	if !p.acceptPunct(")") {
		for {
			var e Expr
			var err error
			if isArrayOp && p.wholeGroup() {
				// An argument of A_* that is one parenthesised group is
				// an array, even of one element: A_CONTAINS(a, ('x')).
				e, err = p.parseArray()
			} else {
				e, err = p.parseOr()
			}
			if err != nil {
				return nil, err
			}
			op.Args = append(op.Args, e)
			if p.acceptPunct(")") {
				break
			}
			if err := p.expectPunct(","); err != nil {
				return nil, err
			}
		}
	}
	if std {
		if msg := checkArity(name, len(op.Args)); msg != "" {
			return nil, invalidText(t.pos, "%s", msg)
		}
	}
	return op, nil
}

// wholeGroup reports whether the next token opens a parenthesised group
// that its closing parenthesis ends, as an argument: the token after the
// group is "," or ")".
func (p *parser) wholeGroup() bool {
	if !isPunct(p.peek(), "(") {
		return false
	}
	depth := 0
	for i := p.i; i < len(p.toks); i++ {
		switch t := p.toks[i]; {
		case isPunct(t, "("):
			depth++
		case isPunct(t, ")"):
			if depth--; depth == 0 {
				next := p.toks[min(i+1, len(p.toks)-1)]
				return isPunct(next, ",") || isPunct(next, ")")
			}
		case t.kind == tEOF:
			return true
		}
	}
	return true
}

func (p *parser) parseInterval() (*Interval, error) {
	p.next() // "("
	var bounds [2]Expr
	for i := range bounds {
		if i == 1 {
			if err := p.expectPunct(","); err != nil {
				return nil, err
			}
		}
		t := p.peek()
		e, err := p.parseArith()
		if err != nil {
			return nil, err
		}
		if msg := checkIntervalBound(e); msg != "" {
			return nil, invalidText(t.pos, "%s", msg)
		}
		bounds[i] = e
	}
	if err := p.expectPunct(")"); err != nil {
		return nil, err
	}
	return &Interval{Start: bounds[0], End: bounds[1]}, nil
}

// signedNumber reads [sign] number, as coordinates and BBOX values are.
func (p *parser) signedNumber() (string, error) {
	sign := ""
	if t := p.peek(); isPunct(t, "-") || isPunct(t, "+") {
		p.next()
		if t.text == "-" {
			sign = "-"
		}
	}
	t := p.peek()
	if t.kind != tNumber {
		return "", invalidText(t.pos, "expected a number but found %s", describe(t))
	}
	p.next()
	return sign + t.text, nil
}

func (p *parser) parseBBox() (*BBox, error) {
	open := p.next()
	b := &BBox{}
	for {
		n, err := p.signedNumber()
		if err != nil {
			return nil, err
		}
		b.Coords = append(b.Coords, Number{Text: n})
		if p.acceptPunct(")") {
			break
		}
		if err := p.expectPunct(","); err != nil {
			return nil, err
		}
	}
	if len(b.Coords) != 4 && len(b.Coords) != 6 {
		return nil, invalidText(open.pos, "BBOX needs 4 or 6 numbers, got %d", len(b.Coords))
	}
	return b, nil
}

// parseWKT reads a WKT geometry whose keyword kw has been consumed.
func (p *parser) parseWKT(kw token) (*geom, error) {
	info := geomTypes[strings.ToUpper(kw.text)]
	p.acceptKeyword("Z")
	g := &geom{typ: info.name}
	if info.depth < 0 {
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		for {
			t := p.next()
			m, ok := geomTypes[strings.ToUpper(t.text)]
			if t.kind != tIdent || !ok || m.depth < 0 {
				return nil, invalidText(t.pos, "expected a geometry in GEOMETRYCOLLECTION but found %s", describe(t))
			}
			sub, err := p.parseWKT(t)
			if err != nil {
				return nil, err
			}
			g.geoms = append(g.geoms, sub)
			if p.acceptPunct(")") {
				return g, nil
			}
			if err := p.expectPunct(","); err != nil {
				return nil, err
			}
		}
	}
	var err error
	if info.depth == 0 {
		if err = p.expectPunct("("); err != nil {
			return nil, err
		}
		if g.coords, err = p.wktPosition(); err != nil {
			return nil, err
		}
		if err = p.expectPunct(")"); err != nil {
			return nil, err
		}
	} else if g.coords, err = p.wktLevel(info.depth, info.name == "MultiPoint"); err != nil {
		return nil, err
	}
	if msg := checkGeom(g); msg != "" {
		return nil, invalidText(kw.pos, "%s", msg)
	}
	return g, nil
}

// wktLevel reads "(" item {"," item} ")" where an item is a position at
// depth 1 and a nested level otherwise. A multi-point may wrap each of its
// positions in parentheses.
func (p *parser) wktLevel(depth int, multiPoint bool) (nested, error) {
	if err := p.expectPunct("("); err != nil {
		return nested{}, err
	}
	var n nested
	for {
		var k nested
		var err error
		switch {
		case depth > 1:
			k, err = p.wktLevel(depth-1, false)
		case multiPoint && isPunct(p.peek(), "("):
			p.next()
			if k, err = p.wktPosition(); err == nil {
				err = p.expectPunct(")")
			}
		default:
			k, err = p.wktPosition()
		}
		if err != nil {
			return nested{}, err
		}
		n.kids = append(n.kids, k)
		if p.acceptPunct(")") {
			return n, nil
		}
		if err := p.expectPunct(","); err != nil {
			return nested{}, err
		}
	}
}

func (p *parser) wktPosition() (nested, error) {
	var pos []string
	for len(pos) < 3 {
		t := p.peek()
		if len(pos) == 2 && !isPunct(t, "-") && !isPunct(t, "+") && t.kind != tNumber {
			break
		}
		n, err := p.signedNumber()
		if err != nil {
			return nested{}, err
		}
		pos = append(pos, n)
	}
	return nested{pos: pos}, nil
}
