package cql2

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// geom is the decoded form of a geometry literal, shared by the GeoJSON and
// WKT readers and writers so that both encodings meet in one canonical
// GeoJSON text.
type geom struct {
	typ    string  // GeoJSON type name: "Point", "MultiPolygon", …
	coords nested  // coordinates, nested geomDepth(typ) levels deep
	geoms  []*geom // members of a GeometryCollection
}

// nested is a coordinate tree: a leaf holds one position (its numbers as
// written), an inner node holds the next level down.
type nested struct {
	pos  []string
	kids []nested
}

// geomTypes maps the upper-cased WKT keyword to the GeoJSON type and the
// depth of its coordinate array (0 for a single position).
var geomTypes = map[string]struct {
	name  string
	depth int
}{
	"POINT":              {"Point", 0},
	"LINESTRING":         {"LineString", 1},
	"POLYGON":            {"Polygon", 2},
	"MULTIPOINT":         {"MultiPoint", 1},
	"MULTILINESTRING":    {"MultiLineString", 2},
	"MULTIPOLYGON":       {"MultiPolygon", 3},
	"GEOMETRYCOLLECTION": {"GeometryCollection", -1},
}

// geoJSONType returns the WKT keyword and depth for a GeoJSON type name.
func geoJSONType(name string) (wkt string, depth int, ok bool) {
	for k, v := range geomTypes {
		if v.name == name {
			return k, v.depth, true
		}
	}
	return "", 0, false
}

// isGeoJSON reports whether a JSON object with these keys is a geometry.
func isGeoJSON(obj map[string]any) bool {
	_, ok := obj["type"]
	return ok
}

// decodeGeoJSONLiteral reads the GeoJSON of a Geometry node.
func decodeGeoJSONLiteral(raw json.RawMessage) (*geom, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil || obj == nil || !isGeoJSON(obj) {
		return nil, invalidJSON("", "not a GeoJSON geometry object")
	}
	return parseGeoJSON(obj, "")
}

// parseGeoJSON decodes and validates a GeoJSON geometry object (numbers
// as json.Number); ptr locates it for error messages.
func parseGeoJSON(obj map[string]any, ptr string) (*geom, error) {
	typ, ok := obj["type"].(string)
	if !ok {
		return nil, invalidJSON(ptr+"/type", "geometry type must be a string")
	}
	_, depth, ok := geoJSONType(typ)
	if !ok {
		return nil, invalidJSON(ptr+"/type", "unknown geometry type %q", typ)
	}
	g := &geom{typ: typ}
	if depth < 0 {
		raw, ok := obj["geometries"]
		if !ok {
			return nil, invalidJSON(ptr, "GeometryCollection needs \"geometries\"")
		}
		members, ok := raw.([]any)
		if !ok {
			return nil, invalidJSON(ptr+"/geometries", "\"geometries\" must be an array")
		}
		for i, m := range members {
			p := ptr + "/geometries/" + strconv.Itoa(i)
			o, ok := m.(map[string]any)
			if !ok || !isGeoJSON(o) {
				return nil, invalidJSON(p, "a geometry collection member must be a geometry object")
			}
			sub, err := parseGeoJSON(o, p)
			if err != nil {
				return nil, err
			}
			if sub.typ == "GeometryCollection" {
				return nil, invalidJSON(p, "nested geometry collections are not supported")
			}
			g.geoms = append(g.geoms, sub)
		}
		if len(g.geoms) == 0 {
			return nil, invalidJSON(ptr+"/geometries", "a geometry collection needs at least one member")
		}
		return g, nil
	}
	raw, ok := obj["coordinates"]
	if !ok {
		return nil, invalidJSON(ptr, "geometry needs \"coordinates\"")
	}
	c, err := parseCoords(raw, depth, ptr+"/coordinates")
	if err != nil {
		return nil, err
	}
	g.coords = c
	if msg := checkGeom(g); msg != "" {
		return nil, invalidJSON(ptr+"/coordinates", "%s", msg)
	}
	return g, nil
}

func parseCoords(v any, depth int, ptr string) (nested, error) {
	items, ok := v.([]any)
	if depth == 0 {
		if !ok || len(items) < 2 || len(items) > 3 {
			return nested{}, invalidJSON(ptr, "a position must be an array of 2 or 3 numbers")
		}
		pos := make([]string, len(items))
		for i, it := range items {
			n, ok := it.(json.Number)
			if !ok {
				return nested{}, invalidJSON(ptr, "a position must be an array of 2 or 3 numbers")
			}
			pos[i] = string(n)
		}
		return nested{pos: pos}, nil
	}
	if !ok {
		return nested{}, invalidJSON(ptr, "coordinates must be an array")
	}
	n := nested{kids: make([]nested, 0, len(items))}
	for i, it := range items {
		k, err := parseCoords(it, depth-1, ptr+"/"+strconv.Itoa(i))
		if err != nil {
			return nested{}, err
		}
		n.kids = append(n.kids, k)
	}
	return n, nil
}

// checkGeom enforces the minimum sizes CQL2 requires (lines of two
// positions, rings of four) and returns a message when one is broken.
func checkGeom(g *geom) string {
	line := func(n nested, min int, what string) string {
		if len(n.kids) < min {
			return what + " needs at least " + strconv.Itoa(min) + " positions"
		}
		return ""
	}
	switch g.typ {
	case "LineString":
		return line(g.coords, 2, "a line string")
	case "MultiPoint":
		if len(g.coords.kids) == 0 {
			return "a multi-point needs at least one point"
		}
	case "Polygon", "MultiLineString":
		if len(g.coords.kids) == 0 {
			return "a " + strings.ToLower(g.typ) + " needs at least one member"
		}
		for _, r := range g.coords.kids {
			if g.typ == "Polygon" {
				if m := line(r, 4, "a polygon ring"); m != "" {
					return m
				}
			} else if m := line(r, 2, "a line string"); m != "" {
				return m
			}
		}
	case "MultiPolygon":
		if len(g.coords.kids) == 0 {
			return "a multi-polygon needs at least one polygon"
		}
		for _, p := range g.coords.kids {
			if len(p.kids) == 0 {
				return "a polygon needs at least one ring"
			}
			for _, r := range p.kids {
				if m := line(r, 4, "a polygon ring"); m != "" {
					return m
				}
			}
		}
	}
	return ""
}

// geoJSON writes g as canonical GeoJSON.
func (g *geom) geoJSON() json.RawMessage {
	var b strings.Builder
	g.writeGeoJSON(&b)
	return json.RawMessage(b.String())
}

func (g *geom) writeGeoJSON(b *strings.Builder) {
	b.WriteString(`{"type":"` + g.typ + `",`)
	if g.typ == "GeometryCollection" {
		b.WriteString(`"geometries":[`)
		for i, m := range g.geoms {
			if i > 0 {
				b.WriteByte(',')
			}
			m.writeGeoJSON(b)
		}
		b.WriteString("]}")
		return
	}
	b.WriteString(`"coordinates":`)
	writeNestedJSON(b, g.coords)
	b.WriteByte('}')
}

func writeNestedJSON(b *strings.Builder, n nested) {
	b.WriteByte('[')
	if n.pos != nil {
		b.WriteString(strings.Join(n.pos, ","))
	} else {
		for i, k := range n.kids {
			if i > 0 {
				b.WriteByte(',')
			}
			writeNestedJSON(b, k)
		}
	}
	b.WriteByte(']')
}

// wkt writes g as WKT, adding Z when the positions have three numbers.
func (g *geom) wkt() string {
	var b strings.Builder
	g.writeWKT(&b)
	return b.String()
}

func (g *geom) writeWKT(b *strings.Builder) {
	kw, _, _ := geoJSONType(g.typ)
	b.WriteString(kw)
	if g.typ == "GeometryCollection" {
		b.WriteString(" (")
		for i, m := range g.geoms {
			if i > 0 {
				b.WriteString(", ")
			}
			m.writeWKT(b)
		}
		b.WriteByte(')')
		return
	}
	if firstPos(g.coords) == 3 {
		b.WriteString(" Z")
	}
	b.WriteByte(' ')
	if g.typ == "Point" {
		b.WriteString("(" + strings.Join(g.coords.pos, " ") + ")")
		return
	}
	writeNestedWKT(b, g.coords, g.typ == "MultiPoint")
}

// writeNestedWKT writes one level of parentheses per level of nesting;
// multiPoint wraps each point in its own parentheses, as the BNF asks.
func writeNestedWKT(b *strings.Builder, n nested, multiPoint bool) {
	if n.pos != nil {
		if multiPoint {
			b.WriteString("(" + strings.Join(n.pos, " ") + ")")
		} else {
			b.WriteString(strings.Join(n.pos, " "))
		}
		return
	}
	b.WriteByte('(')
	for i, k := range n.kids {
		if i > 0 {
			b.WriteString(", ")
		}
		writeNestedWKT(b, k, multiPoint)
	}
	b.WriteByte(')')
}

func firstPos(n nested) int {
	for n.pos == nil {
		if len(n.kids) == 0 {
			return 0
		}
		n = n.kids[0]
	}
	return len(n.pos)
}
