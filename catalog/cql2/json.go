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

// ParseJSON parses a CQL2-JSON filter. Errors are EINVALID with a JSON
// pointer to the offending member.
func ParseJSON(raw []byte) (Expr, error) {
	if !json.Valid(raw) {
		return nil, &catalog.Error{Code: catalog.EINVALID, Message: "filter is not valid JSON", Pointer: ""}
	}
	return parseJSONValue(bytes.TrimSpace(raw), "")
}

func parseJSONValue(raw json.RawMessage, ptr string) (Expr, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, invalidJSON(ptr, "missing value")
	}
	switch c := raw[0]; {
	case c == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, invalidJSON(ptr, "malformed object")
		}
		return parseJSONObject(obj, ptr)
	case c == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, invalidJSON(ptr, "malformed array")
		}
		a := &Array{Elems: make([]Expr, 0, len(items))}
		for i, it := range items {
			e, err := parseJSONValue(it, ptr+"/"+strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			a.Elems = append(a.Elems, e)
		}
		return a, nil
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalidJSON(ptr, "malformed string")
		}
		return &String{Value: s}, nil
	case c == 't' || c == 'f':
		return &Bool{Value: c == 't'}, nil
	case c == 'n':
		return nil, invalidJSON(ptr, "null is not a CQL2 value")
	default:
		return &Number{Text: string(raw)}, nil
	}
}

func parseJSONObject(obj map[string]json.RawMessage, ptr string) (Expr, error) {
	str := func(key string) (string, error) {
		var s string
		if err := json.Unmarshal(obj[key], &s); err != nil {
			return "", invalidJSON(ptr+"/"+key, "%q must be a string", key)
		}
		return s, nil
	}
	switch {
	case obj["op"] != nil:
		return parseJSONOp(obj, ptr)
	case obj["property"] != nil:
		name, err := str("property")
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, invalidJSON(ptr+"/property", "property name is empty")
		}
		return &Property{Name: name}, nil
	case obj["timestamp"] != nil:
		s, err := str("timestamp")
		if err != nil {
			return nil, err
		}
		if !isTimestamp(s) {
			return nil, invalidJSON(ptr+"/timestamp", "%q is not a UTC timestamp (YYYY-MM-DDThh:mm:ss[.f]Z)", s)
		}
		return &Timestamp{Value: s}, nil
	case obj["date"] != nil:
		s, err := str("date")
		if err != nil {
			return nil, err
		}
		if !isDate(s) {
			return nil, invalidJSON(ptr+"/date", "%q is not a date (YYYY-MM-DD)", s)
		}
		return &Date{Value: s}, nil
	case obj["interval"] != nil:
		var items []json.RawMessage
		if err := json.Unmarshal(obj["interval"], &items); err != nil || len(items) != 2 {
			return nil, invalidJSON(ptr+"/interval", "\"interval\" must be an array of two instants")
		}
		var bounds [2]Expr
		for i, it := range items {
			p := ptr + "/interval/" + strconv.Itoa(i)
			e, err := parseJSONValue(it, p)
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
	case obj["bbox"] != nil:
		var nums []json.Number
		d := json.NewDecoder(bytes.NewReader(obj["bbox"]))
		d.UseNumber()
		if err := d.Decode(&nums); err != nil || (len(nums) != 4 && len(nums) != 6) {
			return nil, invalidJSON(ptr+"/bbox", "\"bbox\" must be an array of 4 or 6 numbers")
		}
		b := &BBox{}
		for _, n := range nums {
			b.Coords = append(b.Coords, Number{Text: n.String()})
		}
		return b, nil
	}
	return nil, invalidJSON(ptr, "unrecognised object: expected op, property, timestamp, date, interval, bbox or a GeoJSON geometry")
}

func parseJSONOp(obj map[string]json.RawMessage, ptr string) (Expr, error) {
	var name string
	if err := json.Unmarshal(obj["op"], &name); err != nil {
		return nil, invalidJSON(ptr+"/op", "\"op\" must be a string")
	}
	canon, std := canonicalOp(name)
	if !std && !isIdentifier(name) {
		return nil, invalidJSON(ptr+"/op", "unknown operator %q", name)
	}
	rawArgs, ok := obj["args"]
	if !ok {
		return nil, invalidJSON(ptr, "operator %q needs \"args\"", name)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(rawArgs, &items); err != nil {
		return nil, invalidJSON(ptr+"/args", "\"args\" must be an array")
	}
	if msg := checkArity(canon, len(items)); msg != "" {
		return nil, invalidJSON(ptr+"/args", "%s", msg)
	}
	op := &Op{Name: canon, Args: make([]Expr, 0, len(items))}
	for i, it := range items {
		e, err := parseJSONValue(it, ptr+"/args/"+strconv.Itoa(i))
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
