package postgres

import (
	"encoding/json"
	"testing"

	geom "github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/ewkb"
	"github.com/twpayne/go-geom/encoding/geojson"

	"github.com/twinstac/twinstac/catalog"
)

func TestEncodeGeometry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, geojson string
	}{
		{"point", `{"type":"Point","coordinates":[11.5,48.1]}`},
		{"point with height", `{"type":"Point","coordinates":[11.5,48.1,520]}`},
		{"polygon", `{"type":"Polygon","coordinates":[[[10,40],[12,40],[12,42],[10,42],[10,40]]]}`},
		{"multipoint", `{"type":"MultiPoint","coordinates":[[1,2],[3,4]]}`},
		{"collection", `{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"LineString","coordinates":[[0,0],[1,1]]}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := catalog.ParseGeometry("/geometry", json.RawMessage(tc.geojson))
			if err != nil {
				t.Fatal(err)
			}
			b, err := encodeGeometry(g)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ewkb.Unmarshal(b)
			if err != nil {
				t.Fatalf("the encoding does not decode: %v", err)
			}
			if back.SRID() != 4326 {
				t.Fatalf("SRID = %d, want 4326", back.SRID())
			}
			if g.SRID() != 0 {
				t.Fatalf("the caller's geometry got SRID %d", g.SRID())
			}
			got, err := geojson.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := geojson.Marshal(g); string(got) != string(want) {
				t.Fatalf("round trip gave %s, want %s", got, want)
			}
		})
	}
	if b, err := encodeGeometry(nil); b != nil || err != nil {
		t.Fatalf("encodeGeometry(nil) = %v, %v; want nil, nil", b, err)
	}
	// A geometry that already carries an SRID is written with 4326.
	p := geom.NewPointFlat(geom.XY, []float64{1, 2}).SetSRID(3857)
	b, err := encodeGeometry(p)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ewkb.Unmarshal(b); err != nil || back.SRID() != 4326 {
		t.Fatalf("re-encoded SRID: %v, %v", back, err)
	}
}

func TestConflictID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		detail, collection, want string
		ok                       bool
	}{
		{"Key (collection, id)=(c, b00007) already exists.", "c", "b00007", true},
		{"Key (collection, id)=(a, b, x, y) already exists.", "a, b", "x, y", true},
		{"Key (collection, id)=(c, ) already exists.", "c", "", true},
		{"Key (collection, id)=(d, x) already exists.", "c", "", false},
		{"", "c", "", false},
	}
	for _, tc := range cases {
		got, ok := conflictID(tc.detail, tc.collection)
		if got != tc.want || ok != tc.ok {
			t.Fatalf("conflictID(%q, %q) = %q, %v; want %q, %v", tc.detail, tc.collection, got, ok, tc.want, tc.ok)
		}
	}
}
