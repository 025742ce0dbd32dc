package cql2

import (
	"encoding/json"
	"math"
	"strconv"

	sf "github.com/peterstace/simplefeatures/geom"
)

// The spatial predicates are planar, as PostGIS's are for the geometry
// type: coordinates are x, y in the plane, Z is dropped. Their meaning is
// the DE-9IM one of OGC Simple Features, computed by simplefeatures.

// spatialPatterns are the DE-9IM patterns of the predicates that need a
// matrix, as OGC Simple Features defines them; a predicate holds when the
// matrix matches one of its patterns. s_crosses and s_overlaps depend on
// the dimensions of their operands (see relate). s_intersects is
// sf.Intersects and s_disjoint its negation.
var spatialPatterns = map[string][]string{
	"s_contains": {"T*****FF*"},
	"s_within":   {"T*F**F***"},
	"s_touches":  {"FT*******", "F**T*****", "F***T****"},
	"s_equals":   {"T*F**FFF*"},
}

func (ev evaluator) spatial(op *Op) tri {
	name := op.Name
	if name == "s_disjoint" {
		name = "s_intersects"
	}
	a, ok1 := ev.geometryArg(op.Args[0])
	b, ok2 := ev.geometryArg(op.Args[1])
	if !ok1 || !ok2 {
		return triUnknown
	}
	t := relate(name, a, b)
	if op.Name == "s_disjoint" {
		t = t.not()
	}
	return t
}

// relate applies the predicate name to a and b. A geometry that makes
// simplefeatures fail (or panic, as it may on invalid input, which is not
// validated) gives unknown.
//
// Every predicate but s_intersects and s_disjoint matches the DE-9IM
// matrix that simplefeatures computes from an overlay of the two
// geometries. The overlay snaps positions closer than a few units in the
// last place together, which can collapse a sliver of a polygon and leave
// the overlay labelled wrongly. So what can be decided without the
// overlay is decided first (each of these predicates needs the geometries
// to share a point, which sf.Intersects decides on its own; contains,
// within and equals need one envelope to cover the other), and a matrix
// that contradicts what is known for certain (the exteriors of two bounded
// geometries always share an area; the geometries intersect) is not
// trusted: the predicate is unknown.
func relate(name string, a, b sf.Geometry) (t tri) {
	defer func() {
		if recover() != nil {
			t = triUnknown
		}
	}()
	if name == "s_equals" && a.IsEmpty() && b.IsEmpty() {
		return triTrue
	}
	if !sf.Intersects(a, b) {
		return triFalse
	}
	ea, eb := a.Envelope(), b.Envelope()
	switch name {
	case "s_intersects":
		return triTrue
	case "s_contains":
		if !ea.Covers(eb) {
			return triFalse
		}
	case "s_within":
		if !eb.Covers(ea) {
			return triFalse
		}
	case "s_equals":
		if !ea.Covers(eb) || !eb.Covers(ea) {
			return triFalse
		}
	}
	m, ok := trustedMatrix(a, b)
	if !ok {
		// Retry without the slivers the overlay cannot resolve.
		tol := snapDistance(ea, eb)
		if m, ok = trustedMatrix(despike(a, tol), despike(b, tol)); !ok {
			return triUnknown
		}
	}
	patterns := spatialPatterns[name]
	da, db := a.Dimension(), b.Dimension()
	switch name {
	case "s_crosses":
		switch {
		case da < db:
			patterns = []string{"T*T******"}
		case da > db:
			patterns = []string{"T*****T**"}
		case da == 1 && db == 1:
			patterns = []string{"0********"}
		}
	case "s_overlaps":
		switch {
		case da == db && da != 1:
			patterns = []string{"T*T***T**"}
		case da == 1 && db == 1:
			patterns = []string{"1*T***T**"}
		}
	}
	for _, p := range patterns {
		if ok, err := sf.RelateMatches(m, p); err == nil && ok {
			return triTrue
		}
	}
	return triFalse
}

// trustedMatrix returns the DE-9IM matrix of two intersecting geometries,
// and false when it contradicts what is known for certain: that they
// intersect and that their exteriors share an area.
func trustedMatrix(a, b sf.Geometry) (string, bool) {
	m, err := sf.Relate(a, b)
	if err != nil || len(m) != 9 || m[8] != '2' || m[0] == 'F' && m[1] == 'F' && m[3] == 'F' && m[4] == 'F' {
		return "", false
	}
	return m, true
}

// snapDistance is a generous bound on the distance within which the
// overlay of geometries with these envelopes snaps a position onto a
// segment: 1024 units in the last place of the largest coordinate.
func snapDistance(envs ...sf.Envelope) float64 {
	largest := 0.0
	for _, e := range envs {
		for _, p := range []sf.Point{e.Min(), e.Max()} {
			if xy, ok := p.XY(); ok {
				largest = max(largest, math.Abs(xy.X), math.Abs(xy.Y))
			}
		}
	}
	return 1024 * (math.Nextafter(largest, math.Inf(1)) - largest)
}

// despike returns g with every polygon ring rid of the vertices that make
// a sliver narrower than tol with their neighbours: a vertex lying within
// tol of the segment joining its neighbours, or the apex of a spike whose
// return leg runs within tol of its outward one. The area given up is less
// than tol times the ring's length, below what the overlay resolves.
func despike(g sf.Geometry, tol float64) sf.Geometry {
	switch g.Type() {
	case sf.TypePolygon:
		return despikePolygon(g.MustAsPolygon(), tol).AsGeometry()
	case sf.TypeMultiPolygon:
		m := g.MustAsMultiPolygon()
		ps := make([]sf.Polygon, m.NumPolygons())
		for i := range ps {
			ps[i] = despikePolygon(m.PolygonN(i), tol)
		}
		return sf.NewMultiPolygon(ps).AsGeometry()
	case sf.TypeGeometryCollection:
		c := g.MustAsGeometryCollection()
		gs := make([]sf.Geometry, c.NumGeometries())
		for i := range gs {
			gs[i] = despike(c.GeometryN(i), tol)
		}
		return sf.NewGeometryCollection(gs).AsGeometry()
	}
	return g
}

func despikePolygon(p sf.Polygon, tol float64) sf.Polygon {
	seqs := p.Coordinates()
	rings := make([]sf.LineString, len(seqs))
	for i, seq := range seqs {
		rings[i] = despikeRing(seq, tol)
	}
	return sf.NewPolygon(rings)
}

func despikeRing(seq sf.Sequence, tol float64) sf.LineString {
	n := seq.Length() - 1 // the last position repeats the first
	pts := make([]sf.XY, 0, max(n, 0))
	for i := range n {
		pts = append(pts, seq.GetXY(i))
	}
	for changed := true; changed && len(pts) > 3; {
		changed = false
		for i := range pts {
			k := len(pts)
			prev, cur, next := pts[(i+k-1)%k], pts[i], pts[(i+1)%k]
			if segmentDistance(cur, prev, next) < tol || segmentDistance(next, prev, cur) < tol || segmentDistance(prev, cur, next) < tol {
				pts = append(pts[:i], pts[i+1:]...)
				changed = true
				break
			}
		}
	}
	if len(pts) < 3 {
		return sf.NewLineString(seq)
	}
	floats := make([]float64, 0, 2*len(pts)+2)
	for _, xy := range append(pts, pts[0]) {
		floats = append(floats, xy.X, xy.Y)
	}
	return sf.NewLineString(sf.NewSequence(floats, sf.DimXY))
}

// segmentDistance is the distance from p to the segment ab.
func segmentDistance(p, a, b sf.XY) float64 {
	dx, dy := b.X-a.X, b.Y-a.Y
	l2 := dx*dx + dy*dy
	if l2 == 0 {
		return math.Hypot(p.X-a.X, p.Y-a.Y)
	}
	t := max(0, min(1, ((p.X-a.X)*dx+(p.Y-a.Y)*dy)/l2))
	return math.Hypot(p.X-(a.X+t*dx), p.Y-(a.Y+t*dy))
}

// geometryArg evaluates a spatial operand; ok is false when it is NULL,
// not a geometry or not a geometry that can be evaluated.
func (ev evaluator) geometryArg(e Expr) (sf.Geometry, bool) {
	g, ok := ev.value(e).(geomValue)
	if !ok {
		return sf.Geometry{}, false
	}
	if g.box != nil {
		return bboxGeometry(g.box)
	}
	return decodeGeometry(g.raw)
}

// decodeGeometry reads a GeoJSON geometry without validating it, drops Z
// and checks that it has the shape the algorithms rely on: lines of two
// distinct positions or more, rings closed around three distinct positions
// or more. Anything else (self-intersections, holes outside their shell,
// overlapping members) is evaluated as it is.
func decodeGeometry(raw json.RawMessage) (g sf.Geometry, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	g, err := sf.UnmarshalGeoJSON(raw, sf.NoValidate{})
	if err != nil {
		return sf.Geometry{}, false
	}
	g = g.Force2D()
	return g, usable(g)
}

// usable reports whether g has the structure described at decodeGeometry.
func usable(g sf.Geometry) bool {
	switch g.Type() {
	case sf.TypePoint, sf.TypeMultiPoint:
		return true
	case sf.TypeLineString:
		return usableLine(g.MustAsLineString())
	case sf.TypeMultiLineString:
		m := g.MustAsMultiLineString()
		for i := range m.NumLineStrings() {
			if !usableLine(m.LineStringN(i)) {
				return false
			}
		}
		return true
	case sf.TypePolygon:
		return usablePolygon(g.MustAsPolygon())
	case sf.TypeMultiPolygon:
		m := g.MustAsMultiPolygon()
		for i := range m.NumPolygons() {
			if !usablePolygon(m.PolygonN(i)) {
				return false
			}
		}
		return true
	case sf.TypeGeometryCollection:
		c := g.MustAsGeometryCollection()
		for i := range c.NumGeometries() {
			if !usable(c.GeometryN(i)) {
				return false
			}
		}
		return true
	}
	return false
}

// distinctXY counts the distinct positions of seq, up to limit.
func distinctXY(seq sf.Sequence, limit int) int {
	seen := make(map[sf.XY]bool, limit)
	for i := range seq.Length() {
		seen[seq.GetXY(i)] = true
		if len(seen) >= limit {
			break
		}
	}
	return len(seen)
}

func usableLine(l sf.LineString) bool {
	seq := l.Coordinates()
	return seq.Length() == 0 || distinctXY(seq, 2) >= 2
}

func usablePolygon(p sf.Polygon) bool {
	for _, seq := range p.Coordinates() {
		n := seq.Length()
		if n < 4 || seq.GetXY(0) != seq.GetXY(n-1) || distinctXY(seq, 3) < 3 {
			return false
		}
	}
	return true
}

// bboxGeometry turns a BBOX literal into a geometry: a polygon (a line or
// a point when it has no area), or for a box whose west edge is east of its
// east edge, one crossing the antimeridian, the multi-polygon of its halves
// west of 180 and east of -180.
func bboxGeometry(b *BBox) (sf.Geometry, bool) {
	n := make([]float64, len(b.Coords))
	for i, c := range b.Coords {
		f, err := strconv.ParseFloat(c.Text, 64)
		if err != nil {
			return sf.Geometry{}, false
		}
		n[i] = f
	}
	var w, s, e, north float64
	switch len(n) {
	case 4:
		w, s, e, north = n[0], n[1], n[2], n[3]
	case 6:
		w, s, e, north = n[0], n[1], n[3], n[4]
	default:
		return sf.Geometry{}, false
	}
	box := func(w, e float64) sf.Geometry {
		return sf.NewEnvelope(sf.XY{X: w, Y: s}, sf.XY{X: e, Y: north}).AsGeometry()
	}
	if w <= e {
		return box(w, e), true
	}
	east, west := box(w, 180), box(-180, e)
	if east.IsPolygon() && west.IsPolygon() {
		return sf.NewMultiPolygon([]sf.Polygon{east.MustAsPolygon(), west.MustAsPolygon()}).AsGeometry(), true
	}
	return sf.NewGeometryCollection([]sf.Geometry{east, west}).AsGeometry(), true
}
