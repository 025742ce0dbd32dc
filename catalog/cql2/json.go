package cql2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

func invalidJSON(ptr, format string, args ...any) error {
	return catalog.Invalid(ptr, format, args...)
}

// maxJSONNesting bounds the nesting of arrays and objects in a CQL2-JSON
// filter: each level of expression takes two ({"op": …, "args": […]}) and
// a geometry literal up to seven more ({"geometries": [{"coordinates":
// [[[[…]]]]}]}), so that any filter within MaxDepth fits.
const maxJSONNesting = 2*MaxDepth + 8

// ParseJSON parses a CQL2-JSON filter. Errors are EINVALID with a JSON
// pointer to the offending member. A filter whose expressions nest deeper
// than MaxDepth is rejected, and so, before it is decoded, is one whose
// arrays and objects nest deeper than that filter could.
func ParseJSON(raw []byte) (Expr, error) {
	if jsonNestingExceeds(raw, maxJSONNesting) {
		return nil, invalidJSON("", "filter nests arrays and objects more than %d deep", maxJSONNesting)
	}
	if !json.Valid(raw) {
		return nil, invalidJSON("", "filter is not valid JSON")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, invalidJSON("", "filter is not valid JSON")
	}
	return parseJSONValue(v, "", 1)
}

// jsonNestingExceeds reports whether the arrays and objects of raw nest
// deeper than limit, counting brackets outside strings. It reads raw once
// and keeps no stack, so that a hostile input is turned away before a
// recursive decoder sees it.
func jsonNestingExceeds(raw []byte, limit int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > limit {
				return true
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return false
}

// tooDeepJSON is the error of an expression nested deeper than MaxDepth.
func tooDeepJSON(ptr string) error {
	return invalidJSON(ptr, "filter is nested deeper than %d levels", MaxDepth)
}

// parseJSONValue converts a decoded JSON value (numbers as json.Number) at
// nesting level depth into an expression.
func parseJSONValue(v any, ptr string, depth int) (Expr, error) {
	if depth > MaxDepth {
		return nil, tooDeepJSON(ptr)
	}
	switch x := v.(type) {
	case map[string]any:
		return parseJSONObject(x, ptr, depth)
	case []any:
		a := &Array{Elems: make([]Expr, 0, len(x))}
		for i, it := range x {
			e, err := parseJSONValue(it, ptr+"/"+strconv.Itoa(i), depth+1)
			if err != nil {
				return nil, err
			}
			a.Elems = append(a.Elems, e)
		}
		return a, nil
	case string:
		return &String{Value: x}, nil
	case bool:
		return &Bool{Value: x}, nil
	case json.Number:
		return &Number{Text: string(x)}, nil
	case nil:
		return nil, invalidJSON(ptr, "null is not a CQL2 value")
	}
	return nil, invalidJSON(ptr, "unexpected JSON value")
}

func parseJSONObject(obj map[string]any, ptr string, depth int) (Expr, error) {
	has := func(key string) bool {
		_, ok := obj[key]
		return ok
	}
	str := func(key string) (string, error) {
		s, ok := obj[key].(string)
		if !ok {
			return "", invalidJSON(ptr+"/"+key, "%q must be a string", key)
		}
		return s, nil
	}
	switch {
	case has("op"):
		return parseJSONOp(obj, ptr, depth)
	case has("property"):
		name, err := str("property")
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, invalidJSON(ptr+"/property", "property name is empty")
		}
		return &Property{Name: name}, nil
	case has("timestamp"):
		s, err := str("timestamp")
		if err != nil {
			return nil, err
		}
		if !isTimestamp(s) {
			return nil, invalidJSON(ptr+"/timestamp", "%q is not a UTC timestamp (YYYY-MM-DDThh:mm:ss[.f]Z)", s)
		}
		return &Timestamp{Value: s}, nil
	case has("date"):
		s, err := str("date")
		if err != nil {
			return nil, err
		}
		if !isDate(s) {
			return nil, invalidJSON(ptr+"/date", "%q is not a date (YYYY-MM-DD)", s)
		}
		return &Date{Value: s}, nil
	case has("interval"):
		items, ok := obj["interval"].([]any)
		if !ok || len(items) != 2 {
			return nil, invalidJSON(ptr+"/interval", "\"interval\" must be an array of two instants")
		}
		var bounds [2]Expr
		for i, it := range items {
			p := ptr + "/interval/" + strconv.Itoa(i)
			e, err := parseJSONValue(it, p, depth+1)
			if err != nil {
				return nil, err
			}
			if msg := checkIntervalBound(e); msg != "" {
				return nil, invalidJSON(p, "%s", msg)
			}
			bounds[i] = e
		}
		return &Interval{Start: bounds[0], End: bounds[1]}, nil
	case isGeoJSON(obj):
		g, err := parseGeoJSON(obj, ptr)
		if err != nil {
			return nil, err
		}
		return &Geometry{GeoJSON: g.geoJSON()}, nil
	case has("bbox"):
		items, ok := obj["bbox"].([]any)
		if !ok || (len(items) != 4 && len(items) != 6) {
			return nil, invalidJSON(ptr+"/bbox", "\"bbox\" must be an array of 4 or 6 numbers")
		}
		b := &BBox{}
		for _, it := range items {
			n, ok := it.(json.Number)
			if !ok {
				return nil, invalidJSON(ptr+"/bbox", "\"bbox\" must be an array of 4 or 6 numbers")
			}
			b.Coords = append(b.Coords, Number{Text: string(n)})
		}
		return b, nil
	}
	return nil, invalidJSON(ptr, "unrecognised object: expected op, property, timestamp, date, interval, bbox or a GeoJSON geometry")
}

func parseJSONOp(obj map[string]any, ptr string, depth int) (Expr, error) {
	name, ok := obj["op"].(string)
	if !ok {
		return nil, invalidJSON(ptr+"/op", "\"op\" must be a string")
	}
	canon, std := canonicalOp(name)
	if !std && (!isIdentifier(name) || textLiteralKeyword(name)) {
		return nil, invalidJSON(ptr+"/op", "unknown operator %q", name)
	}
	rawArgs, ok := obj["args"]
	if !ok {
		return nil, invalidJSON(ptr, "operator %q needs \"args\"", name)
	}
	items, ok := rawArgs.([]any)
	if !ok {
		return nil, invalidJSON(ptr+"/args", "\"args\" must be an array")
	}
	if msg := checkArity(canon, len(items)); msg != "" {
		return nil, invalidJSON(ptr+"/args", "%s", msg)
	}
	op := &Op{Name: canon, Args: make([]Expr, 0, len(items))}
	for i, it := range items {
		e, err := parseJSONValue(it, ptr+"/args/"+strconv.Itoa(i), depth+1)
		if err != nil {
			return nil, err
		}
		op.Args = append(op.Args, e)
	}
	if canon == "in" {
		if _, ok := op.Args[1].(*Array); !ok {
			return nil, invalidJSON(ptr+"/args/1", "the second argument of \"in\" must be an array")
		}
	}
	return op, nil
}

// textLiteralKeyword reports whether name, followed by a parenthesis,
// starts a literal in CQL2-Text (a geometry, BBOX, DATE, TIMESTAMP or
// INTERVAL), so that it cannot name a function.
func textLiteralKeyword(name string) bool {
	up := strings.ToUpper(name)
	if _, ok := geomTypes[up]; ok {
		return true
	}
	switch up {
	case "BBOX", "DATE", "TIMESTAMP", "INTERVAL":
		return true
	}
	return false
}

// checkIntervalBound returns a message when e cannot be an interval end.
func checkIntervalBound(e Expr) string {
	switch v := e.(type) {
	case *String:
		if v.Value == ".." || isDate(v.Value) || isTimestamp(v.Value) {
			return ""
		}
		return fmt.Sprintf("%q is neither a date, a timestamp nor \"..\"", v.Value)
	case *Property:
		return ""
	case *Op:
		if _, std := opArity(v.Name); !std {
			return ""
		}
	}
	return "an interval bound must be a date, a timestamp, \"..\", a property or a function"
}

func isDate(s string) bool {
	_, err := time.Parse("2006-01-02", s)
	return err == nil && len(s) == 10
}

func isTimestamp(s string) bool {
	if !strings.HasSuffix(s, "Z") || len(s) < 20 || s[10] != 'T' {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// PrintJSON writes e as canonical CQL2-JSON: compact, keys in a fixed
// order, numbers as written.
func PrintJSON(e Expr) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, e); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// MarshalJSON is PrintJSON; it exists so callers may use either name.
func MarshalJSON(e Expr) ([]byte, error) { return PrintJSON(e) }

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a Go string always encodes
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

func writeJSON(b *bytes.Buffer, e Expr) error {
	switch v := e.(type) {
	case *Bool:
		b.WriteString(strconv.FormatBool(v.Value))
	case *Number:
		b.WriteString(v.Text)
	case *String:
		writeJSONString(b, v.Value)
	case *Date:
		b.WriteString(`{"date":`)
		writeJSONString(b, v.Value)
		b.WriteByte('}')
	case *Timestamp:
		b.WriteString(`{"timestamp":`)
		writeJSONString(b, v.Value)
		b.WriteByte('}')
	case *Interval:
		b.WriteString(`{"interval":[`)
		if err := writeJSON(b, v.Start); err != nil {
			return err
		}
		b.WriteByte(',')
		if err := writeJSON(b, v.End); err != nil {
			return err
		}
		b.WriteString("]}")
	case *Property:
		b.WriteString(`{"property":`)
		writeJSONString(b, v.Name)
		b.WriteByte('}')
	case *Geometry:
		b.Write(v.GeoJSON)
	case *BBox:
		b.WriteString(`{"bbox":[`)
		for i, c := range v.Coords {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(c.Text)
		}
		b.WriteString("]}")
	case *Array:
		b.WriteByte('[')
		for i, el := range v.Elems {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, el); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case *Op:
		b.WriteString(`{"op":`)
		writeJSONString(b, v.Name)
		b.WriteString(`,"args":[`)
		for i, a := range v.Args {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, a); err != nil {
				return err
			}
		}
		b.WriteString("]}")
	default:
		return catalog.Internal(fmt.Errorf("cql2: cannot print %T as JSON", e))
	}
	return nil
}
