package cql2

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// The spatial predicates are planar: coordinates are taken as x, y in the
// plane, as PostGIS does for the geometry type; a Z value is ignored.

type pt struct{ x, y float64 }

// shape is a geometry broken into the parts the predicates work on:
// points, polylines and polygons (outer ring first, then holes).
type shape struct {
	points   []pt
	lines    [][]pt
	polygons [][][]pt
}

func (ev evaluator) spatial(op *Op) (tri, error) {
	switch op.Name {
	case "s_intersects", "s_disjoint":
	default:
		return triUnknown, evalError(op.Name, "not supported yet")
	}
	var shapes [2]*shape
	for i, arg := range op.Args {
		g, err := ev.geometryArg(op.Name, arg)
		if err != nil || g == nil {
			return triUnknown, err
		}
		shapes[i] = g
	}
	hit := shapes[0].intersects(shapes[1])
	if op.Name == "s_disjoint" {
		hit = !hit
	}
	return triOf(hit), nil
}

// geometryArg evaluates a spatial operand; nil without an error is NULL.
func (ev evaluator) geometryArg(op string, e Expr) (*shape, error) {
	var v any
	if p, ok := e.(*Property); ok && (p.Name == "geometry" || p.Name == "geom") {
		if raw := ev.f.Geometry(); len(raw) > 0 && string(raw) != "null" {
			v = geomValue{raw: raw}
		}
	}
	if v == nil {
		var err error
		if v, err = ev.value(e); err != nil {
			return nil, err
		}
	}
	switch g := v.(type) {
	case nil:
		return nil, nil
	case *shape:
		return g, nil
	case geomValue:
		s := &shape{}
		if err := s.addGeoJSON(g.raw); err != nil {
			return nil, evalError(op, "bad geometry: %v", err)
		}
		return s, nil
	}
	return nil, evalError(op, "needs geometries, got %s", describeValue(v))
}

// bboxGeom turns a BBOX literal into polygons; a box whose west edge is
// east of its east edge crosses the antimeridian and becomes two.
func bboxGeom(b *BBox) (any, error) {
	n := make([]float64, len(b.Coords))
	for i, c := range b.Coords {
		f, err := strconv.ParseFloat(c.Text, 64)
		if err != nil {
			return nil, evalError("bbox", "%q is not a number", c.Text)
		}
		n[i] = f
	}
	w, s, e, nn := n[0], n[1], n[2], n[3]
	if len(n) == 6 {
		w, s, e, nn = n[0], n[1], n[3], n[4]
	}
	box := func(w, e float64) [][]pt {
		return [][]pt{{{w, s}, {e, s}, {e, nn}, {w, nn}, {w, s}}}
	}
	if w > e {
		return &shape{polygons: [][][]pt{box(w, 180), box(-180, e)}}, nil
	}
	return &shape{polygons: [][][]pt{box(w, e)}}, nil
}

func (s *shape) addGeoJSON(raw json.RawMessage) error {
	var g struct {
		Type        string            `json:"type"`
		Coordinates json.RawMessage   `json:"coordinates"`
		Geometries  []json.RawMessage `json:"geometries"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return err
	}
	var err error
	switch g.Type {
	case "Point":
		var c []float64
		if err = json.Unmarshal(g.Coordinates, &c); err == nil && len(c) >= 2 {
			s.points = append(s.points, pt{c[0], c[1]})
		}
	case "MultiPoint":
		var c [][]float64
		if err = json.Unmarshal(g.Coordinates, &c); err == nil {
			s.points = append(s.points, toPts(c)...)
		}
	case "LineString":
		var c [][]float64
		if err = json.Unmarshal(g.Coordinates, &c); err == nil {
			s.lines = append(s.lines, toPts(c))
		}
	case "MultiLineString":
		var c [][][]float64
		if err = json.Unmarshal(g.Coordinates, &c); err == nil {
			for _, l := range c {
				s.lines = append(s.lines, toPts(l))
			}
		}
	case "Polygon":
		var c [][][]float64
		if err = json.Unmarshal(g.Coordinates, &c); err == nil {
			s.polygons = append(s.polygons, toRings(c))
		}
	case "MultiPolygon":
		var c [][][][]float64
		if err = json.Unmarshal(g.Coordinates, &c); err == nil {
			for _, p := range c {
				s.polygons = append(s.polygons, toRings(p))
			}
		}
	case "GeometryCollection":
		for _, m := range g.Geometries {
			if err := s.addGeoJSON(m); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown geometry type %q", g.Type)
	}
	return err
}

func toPts(c [][]float64) []pt {
	out := make([]pt, 0, len(c))
	for _, p := range c {
		if len(p) >= 2 {
			out = append(out, pt{p[0], p[1]})
		}
	}
	return out
}

func toRings(c [][][]float64) [][]pt {
	out := make([][]pt, len(c))
	for i, r := range c {
		out[i] = toPts(r)
	}
	return out
}

// intersects reports whether s and o share at least one point, boundaries
// included.
func (s *shape) intersects(o *shape) bool {
	for _, p := range s.points {
		if o.containsPoint(p) {
			return true
		}
	}
	for _, p := range o.points {
		if s.containsPoint(p) {
			return true
		}
	}
	// Every edge of s against every edge of o finds crossing boundaries
	// and lines; what is left is one part lying wholly inside a polygon of
	// the other, which any one of its vertices reveals.
	sEdges, oEdges := s.edges(), o.edges()
	for _, a := range sEdges {
		for _, b := range oEdges {
			if segmentsIntersect(a[0], a[1], b[0], b[1]) {
				return true
			}
		}
	}
	for _, v := range s.vertices() {
		if o.inPolygons(v) {
			return true
		}
	}
	for _, v := range o.vertices() {
		if s.inPolygons(v) {
			return true
		}
	}
	return false
}

// containsPoint reports whether p lies on or in any part of s.
func (s *shape) containsPoint(p pt) bool {
	for _, q := range s.points {
		if p == q {
			return true
		}
	}
	for _, e := range s.edges() {
		if onSegment(p, e[0], e[1]) {
			return true
		}
	}
	return s.inPolygons(p)
}

// edges returns the segments of the lines and of every polygon ring.
func (s *shape) edges() [][2]pt {
	var out [][2]pt
	add := func(l []pt) {
		for i := 0; i+1 < len(l); i++ {
			out = append(out, [2]pt{l[i], l[i+1]})
		}
	}
	for _, l := range s.lines {
		add(l)
	}
	for _, p := range s.polygons {
		for _, r := range p {
			add(r)
		}
	}
	return out
}

// vertices returns one vertex of each line and each polygon's outer ring:
// enough to find a part lying wholly inside another shape.
func (s *shape) vertices() []pt {
	var out []pt
	for _, l := range s.lines {
		if len(l) > 0 {
			out = append(out, l[0])
		}
	}
	for _, p := range s.polygons {
		if len(p) > 0 && len(p[0]) > 0 {
			out = append(out, p[0][0])
		}
	}
	return out
}

// inPolygons reports whether p lies in the interior or on the boundary of
// any polygon of s: inside the outer ring and not strictly inside a hole.
func (s *shape) inPolygons(p pt) bool {
	for _, poly := range s.polygons {
		if len(poly) == 0 || !inRing(p, poly[0]) {
			continue
		}
		inHole := false
		for _, h := range poly[1:] {
			if inRing(p, h) && !onRing(p, h) {
				inHole = true
				break
			}
		}
		if !inHole {
			return true
		}
	}
	return false
}

// inRing is the even-odd test with the boundary counted as inside.
func inRing(p pt, r []pt) bool {
	if onRing(p, r) {
		return true
	}
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		a, b := r[i], r[j]
		if (a.y > p.y) != (b.y > p.y) && p.x < (b.x-a.x)*(p.y-a.y)/(b.y-a.y)+a.x {
			in = !in
		}
	}
	return in
}

func onRing(p pt, r []pt) bool {
	for i := 0; i+1 < len(r); i++ {
		if onSegment(p, r[i], r[i+1]) {
			return true
		}
	}
	return false
}

// orient is the sign of the cross product (b-a)×(c-a).
func orient(a, b, c pt) int {
	v := (b.x-a.x)*(c.y-a.y) - (b.y-a.y)*(c.x-a.x)
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func onSegment(p, a, b pt) bool {
	return orient(a, b, p) == 0 &&
		min(a.x, b.x) <= p.x && p.x <= max(a.x, b.x) &&
		min(a.y, b.y) <= p.y && p.y <= max(a.y, b.y)
}

// segmentsIntersect reports whether segments ab and cd share a point.
func segmentsIntersect(a, b, c, d pt) bool {
	o1, o2 := orient(a, b, c), orient(a, b, d)
	o3, o4 := orient(c, d, a), orient(c, d, b)
	if o1*o2 < 0 && o3*o4 < 0 {
		return true
	}
	return onSegment(c, a, b) || onSegment(d, a, b) || onSegment(a, c, d) || onSegment(b, c, d)
}
