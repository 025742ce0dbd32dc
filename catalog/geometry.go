package catalog

import (
	"encoding/json"
	"fmt"
	"math"

	geom "github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"
)

// ParseGeometry decodes and checks a GeoJSON geometry. It returns nil for
// a JSON null. pointer locates the geometry in the request for errors.
// Beyond the shape that the decoder checks, it requires 2 or 3 numbers
// per position, longitudes in [-180, 180], latitudes in [-90, 90], at
// least two positions per line and closed rings of at least four.
// Codes: EINVALID.
func ParseGeometry(pointer string, raw json.RawMessage) (geom.T, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var g geom.T
	if err := geojson.Unmarshal(raw, &g); err != nil {
		return nil, Invalid(pointer, "not a GeoJSON geometry: %s", cleanGeoJSONError(err))
	}
	if err := checkGeometry(g); err != nil {
		return nil, Invalid(pointer, "bad geometry: %s", err)
	}
	return g, nil
}

func cleanGeoJSONError(err error) string {
	switch e := err.(type) {
	case geojson.ErrUnsupportedType:
		return fmt.Sprintf("unsupported type %q", string(e))
	case *json.UnmarshalTypeError:
		return "coordinates have the wrong nesting for the type"
	}
	return err.Error()
}

// coordSlack is how far past ±180 and ±90 a coordinate may lie: the
// rounding error of data producers (Natural Earth has 180.00000000000006).
// Coordinates are kept as given.
const coordSlack = 1e-9

func checkGeometry(g geom.T) error {
	switch g := g.(type) {
	case *geom.GeometryCollection:
		if g.NumGeoms() == 0 {
			return fmt.Errorf("empty GeometryCollection")
		}
		for i := 0; i < g.NumGeoms(); i++ {
			if err := checkGeometry(g.Geom(i)); err != nil {
				return fmt.Errorf("geometries[%d]: %w", i, err)
			}
		}
		return nil
	}
	if g.Layout() != geom.XY && g.Layout() != geom.XYZ {
		return fmt.Errorf("positions must have 2 or 3 numbers")
	}
	flat, stride := g.FlatCoords(), g.Stride()
	if len(flat) == 0 {
		return fmt.Errorf("no coordinates")
	}
	for i := 0; i < len(flat); i += stride {
		x, y := flat[i], flat[i+1]
		if math.IsNaN(x) || x < -180-coordSlack || x > 180+coordSlack {
			return fmt.Errorf("longitude %v out of range [-180, 180]", x)
		}
		if math.IsNaN(y) || y < -90-coordSlack || y > 90+coordSlack {
			return fmt.Errorf("latitude %v out of range [-90, 90]", y)
		}
	}
	switch g := g.(type) {
	case *geom.LineString:
		if g.NumCoords() < 2 {
			return fmt.Errorf("a LineString needs at least two positions")
		}
	case *geom.MultiLineString:
		for i := 0; i < g.NumLineStrings(); i++ {
			if g.LineString(i).NumCoords() < 2 {
				return fmt.Errorf("line %d needs at least two positions", i)
			}
		}
	case *geom.Polygon:
		return checkRings(g)
	case *geom.MultiPolygon:
		if g.NumPolygons() == 0 {
			return fmt.Errorf("no polygons")
		}
		for i := 0; i < g.NumPolygons(); i++ {
			if err := checkRings(g.Polygon(i)); err != nil {
				return fmt.Errorf("polygon %d: %w", i, err)
			}
		}
	}
	return nil
}

func checkRings(p *geom.Polygon) error {
	if p.NumLinearRings() == 0 {
		return fmt.Errorf("a Polygon needs at least one ring")
	}
	for i := 0; i < p.NumLinearRings(); i++ {
		r := p.LinearRing(i)
		n := r.NumCoords()
		if n < 4 {
			return fmt.Errorf("ring %d has %d positions; a ring needs at least 4", i, n)
		}
		first, last := r.Coord(0), r.Coord(n-1)
		if first.X() != last.X() || first.Y() != last.Y() {
			return fmt.Errorf("ring %d is not closed (first and last positions differ)", i)
		}
	}
	return nil
}

// GeometryBBox returns the 2D bounding box [minx, miny, maxx, maxy] of g,
// or the 3D one [minx, miny, minz, maxx, maxy, maxz] when g has heights.
func GeometryBBox(g geom.T) []float64 {
	b := g.Bounds()
	if b.Layout().Stride() >= 3 && b.Layout().ZIndex() >= 0 {
		return []float64{b.Min(0), b.Min(1), b.Min(2), b.Max(0), b.Max(1), b.Max(2)}
	}
	return []float64{b.Min(0), b.Min(1), b.Max(0), b.Max(1)}
}

// ParseBBox checks a STAC bbox: 4 or 6 finite numbers, south <= north
// (and bottom <= top). West may exceed east for a box that crosses the
// antimeridian. Codes: EINVALID.
func ParseBBox(pointer string, b []float64) error {
	if len(b) != 4 && len(b) != 6 {
		return Invalid(pointer, "a bbox has 4 or 6 numbers, not %d", len(b))
	}
	for _, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Invalid(pointer, "bbox numbers must be finite")
		}
	}
	w, s, e, n := bboxCorners(b)
	if s > n {
		return Invalid(pointer, "bbox south (%v) is greater than north (%v)", s, n)
	}
	if len(b) == 6 && b[2] > b[5] {
		return Invalid(pointer, "bbox bottom (%v) is greater than top (%v)", b[2], b[5])
	}
	const lon, lat = 180 + coordSlack, 90 + coordSlack
	if w < -lon || w > lon || e < -lon || e > lon || s < -lat || n > lat {
		return Invalid(pointer, "bbox is outside [-180, -90, 180, 90]")
	}
	return nil
}

func bboxCorners(b []float64) (w, s, e, n float64) {
	if len(b) == 6 {
		return b[0], b[1], b[3], b[4]
	}
	return b[0], b[1], b[2], b[3]
}

// bboxTolerance absorbs rounding in bboxes that clients compute.
const bboxTolerance = 1e-6

// bboxCovers reports whether the item bbox b covers the geometry's bounds g.
func bboxCovers(b, g []float64) bool {
	w, s, e, n := bboxCorners(b)
	gw, gs, ge, gn := bboxCorners(g)
	if gs < s-bboxTolerance || gn > n+bboxTolerance {
		return false
	}
	lonIn := func(x float64) bool {
		if w <= e {
			return x >= w-bboxTolerance && x <= e+bboxTolerance
		}
		return x >= w-bboxTolerance || x <= e+bboxTolerance // crosses the antimeridian
	}
	if w <= e {
		return lonIn(gw) && lonIn(ge)
	}
	// A box across the antimeridian: the geometry's own bounds span the
	// globe in longitude, so only its extreme longitudes can be checked.
	return lonIn(gw) && lonIn(ge)
}
