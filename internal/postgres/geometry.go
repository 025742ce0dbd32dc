package postgres

import (
	"encoding/binary"
	"fmt"

	geom "github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/ewkb"
)

// sridWGS84 is the SRID of GeoJSON coordinates, and of the geometry column.
const sridWGS84 = 4326

// ewkbSRIDFlag marks an EWKB geometry type that is followed by an SRID.
const ewkbSRIDFlag = 0x20000000

// encodeGeometry returns g as little-endian EWKB with SRID 4326, or nil
// for a nil geometry.
//
// EWKB is what PostGIS's binary input (geometry_recv) reads. pgx knows
// nothing of the geometry type: in binary COPY, a []byte for a column of
// an unknown type is sent as it is, so the EWKB reaches geometry_recv
// untouched; in queries, a []byte parameter of an unknown type would go in
// text format, so the queries take it as bytea through ST_GeomFromEWKB.
//
// The SRID is written into the encoding rather than set on g, so the
// caller's geometry is not modified.
func encodeGeometry(g geom.T) ([]byte, error) {
	if g == nil {
		return nil, nil
	}
	b, err := ewkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode geometry: %w", err)
	}
	// b[0] is the byte order, b[1:5] the geometry type; with the SRID
	// flag set, b[5:9] is the SRID.
	typ := binary.LittleEndian.Uint32(b[1:5])
	if typ&ewkbSRIDFlag != 0 {
		binary.LittleEndian.PutUint32(b[5:9], sridWGS84)
		return b, nil
	}
	out := make([]byte, 0, len(b)+4)
	out = append(out, b[0])
	out = binary.LittleEndian.AppendUint32(out, typ|ewkbSRIDFlag)
	out = binary.LittleEndian.AppendUint32(out, sridWGS84)
	return append(out, b[5:]...), nil
}
