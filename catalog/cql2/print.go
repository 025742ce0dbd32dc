package cql2

import (
	"strings"
)

// PrintText writes e as canonical CQL2-Text: upper-case keywords, every
// property double-quoted, arithmetic fully parenthesised, and parentheses
// around nested AND/OR groups and around boolean operands of predicates.
// ParseText(PrintText(e)) gives back e for any e the parsers produce, except
// what CQL2-Text cannot say: a one-element array outside IN and A_*
// cannot be told apart from a parenthesised expression, a property name
// cannot hold a double quote, and a string cannot hold a backslash right
// before a quote or at its end (a backslash-quote is an escaped quote). A
// filter near MaxDepth may also need more levels of parentheses in text
// than MaxDepth allows.
func PrintText(e Expr) string {
	var b strings.Builder
	writeText(&b, e)
	return b.String()
}

// boolOps are the operators whose result is boolean; they need
// parentheses when they appear as an operand of another predicate.
var boolOps = map[string]bool{
	"and": true, "or": true, "not": true, "=": true, "<>": true, "<": true,
	"<=": true, ">": true, ">=": true, "like": true, "between": true,
	"in": true, "isNull": true,
}

var arithOps = map[string]bool{"+": true, "-": true, "*": true, "/": true, "%": true, "div": true, "^": true}

func isOp(e Expr, names map[string]bool) bool {
	o, ok := e.(*Op)
	return ok && names[o.Name]
}

// writeOperand writes e, parenthesised when it is itself a predicate.
func writeOperand(b *strings.Builder, e Expr) {
	if isOp(e, boolOps) {
		b.WriteByte('(')
		writeText(b, e)
		b.WriteByte(')')
		return
	}
	writeText(b, e)
}

func writeList(b *strings.Builder, es []Expr) {
	for i, e := range es {
		if i > 0 {
			b.WriteString(", ")
		}
		writeText(b, e)
	}
}

func writeText(b *strings.Builder, e Expr) {
	switch v := e.(type) {
	case *Bool:
		if v.Value {
			b.WriteString("TRUE")
		} else {
			b.WriteString("FALSE")
		}
	case *Number:
		b.WriteString(v.Text)
	case *String:
		b.WriteString("'" + strings.ReplaceAll(v.Value, "'", "''") + "'")
	case *Date:
		b.WriteString("DATE('" + v.Value + "')")
	case *Timestamp:
		b.WriteString("TIMESTAMP('" + v.Value + "')")
	case *Interval:
		b.WriteString("INTERVAL(")
		writeText(b, v.Start)
		b.WriteString(", ")
		writeText(b, v.End)
		b.WriteByte(')')
	case *Property:
		b.WriteString(`"` + v.Name + `"`)
	case *Geometry:
		if g, err := decodeGeoJSONLiteral(v.GeoJSON); err == nil {
			b.WriteString(g.wkt())
			return
		}
		// Not valid GeoJSON: only a hand-built AST can get here. Write
		// something ParseText rejects rather than a different geometry.
		b.WriteString("GEOMETRY(" + string(v.GeoJSON) + ")")
	case *BBox:
		b.WriteString("BBOX(")
		for i, c := range v.Coords {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.Text)
		}
		b.WriteByte(')')
	case *Array:
		b.WriteByte('(')
		writeList(b, v.Elems)
		b.WriteByte(')')
	case *Op:
		writeOpText(b, v)
	}
}

func writeOpText(b *strings.Builder, o *Op) {
	args := o.Args
	n := len(args)
	switch {
	case (o.Name == "and" || o.Name == "or") && n >= 2:
		for i, a := range args {
			if i > 0 {
				b.WriteString(" " + strings.ToUpper(o.Name) + " ")
			}
			if isOp(a, map[string]bool{"and": true, "or": true}) {
				b.WriteByte('(')
				writeText(b, a)
				b.WriteByte(')')
			} else {
				writeText(b, a)
			}
		}
	case o.Name == "not" && n == 1:
		b.WriteString("NOT ")
		if isOp(args[0], map[string]bool{"and": true, "or": true}) {
			b.WriteByte('(')
			writeText(b, args[0])
			b.WriteByte(')')
		} else {
			writeText(b, args[0])
		}
	case comparisons[o.Name] && n == 2:
		writeOperand(b, args[0])
		b.WriteString(" " + o.Name + " ")
		writeOperand(b, args[1])
	case o.Name == "like" && n == 2:
		writeOperand(b, args[0])
		b.WriteString(" LIKE ")
		writeOperand(b, args[1])
	case o.Name == "between" && n == 3:
		writeOperand(b, args[0])
		b.WriteString(" BETWEEN ")
		writeOperand(b, args[1])
		b.WriteString(" AND ")
		writeOperand(b, args[2])
	case o.Name == "in" && n == 2:
		writeOperand(b, args[0])
		b.WriteString(" IN ")
		if a, ok := args[1].(*Array); ok {
			writeText(b, a)
		} else {
			b.WriteByte('(')
			writeText(b, args[1])
			b.WriteByte(')')
		}
	case o.Name == "isNull" && n == 1:
		writeOperand(b, args[0])
		b.WriteString(" IS NULL")
	case arithOps[o.Name] && n == 2:
		b.WriteByte('(')
		writeOperand(b, args[0])
		b.WriteString(" " + o.Name + " ")
		writeOperand(b, args[1])
		b.WriteByte(')')
	default:
		// casei, accenti, s_*, t_*, a_* and custom functions.
		_, std := opArity(o.Name)
		if std {
			b.WriteString(strings.ToUpper(o.Name))
		} else {
			b.WriteString(o.Name)
		}
		b.WriteByte('(')
		if std && strings.HasPrefix(o.Name, "a_") {
			// An argument of A_* that is one parenthesised group reads as
			// an array, so arithmetic goes without its outer parentheses.
			for i, a := range args {
				if i > 0 {
					b.WriteString(", ")
				}
				if x, ok := a.(*Op); ok && arithOps[x.Name] && len(x.Args) == 2 {
					writeOperand(b, x.Args[0])
					b.WriteString(" " + x.Name + " ")
					writeOperand(b, x.Args[1])
				} else {
					writeText(b, a)
				}
			}
		} else {
			writeList(b, args)
		}
		b.WriteByte(')')
	}
}
