package postgres

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/twinstac/twinstac/catalog/search"
)

func TestTimeWindows(t *testing.T) {
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	bounds := make([]time.Time, 101)
	for i := range bounds {
		bounds[i] = t0.Add(time.Duration(i) * day)
	}
	at := func(d time.Duration) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t0.Add(d), Valid: true} }
	inf := pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	ninf := pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	check := func(name string, lo, hi, wantLo, wantHi []pgtype.Timestamptz) {
		t.Helper()
		if len(lo) != len(wantLo) || len(hi) != len(wantHi) {
			t.Fatalf("%s: lo %v hi %v, want %v %v", name, lo, hi, wantLo, wantHi)
		}
		for i := range lo {
			if lo[i] != wantLo[i] || hi[i] != wantHi[i] {
				t.Fatalf("%s: window %d is [%v, %v), want [%v, %v)", name, i, lo[i], hi[i], wantLo[i], wantHi[i])
			}
		}
	}
	// Newest first: an eighth of a bucket, then twice as much each time
	// (1/8, 1/4, 1/2, 1, 2, ..., 64 buckets back from the last bound).
	cuts := []time.Duration{100*day - 3*time.Hour, 100*day - 6*time.Hour, 100*day - 12*time.Hour, 99 * day, 98 * day, 96 * day, 92 * day, 84 * day, 68 * day, 36 * day}
	var wantLo, wantHi []pgtype.Timestamptz
	upper := inf
	for _, c := range cuts {
		wantLo, wantHi = append(wantLo, at(c)), append(wantHi, upper)
		upper = at(c)
	}
	wantLo, wantHi = append(wantLo, ninf), append(wantHi, upper)
	lo, hi := timeWindows(bounds, true, nil)
	check("newest first", lo, hi, wantLo, wantHi)

	// Oldest first from day 90 and a half.
	edge := t0.Add(90*day + 12*time.Hour)
	lo, hi = timeWindows(bounds, false, &edge)
	cuts = []time.Duration{90*day + 15*time.Hour, 90*day + 18*time.Hour, 91 * day, 91*day + 12*time.Hour, 92*day + 12*time.Hour, 94*day + 12*time.Hour, 98*day + 12*time.Hour}
	wantLo, wantHi = nil, nil
	lower := ninf
	for _, c := range cuts {
		wantLo, wantHi = append(wantLo, lower), append(wantHi, at(c))
		lower = at(c)
	}
	wantLo, wantHi = append(wantLo, lower), append(wantHi, inf)
	check("oldest first from day 90.5", lo, hi, wantLo, wantHi)

	// Newest first from before the histogram: no windows to cut.
	early := t0.Add(-day)
	if lo, _ := timeWindows(bounds, true, &early); lo != nil {
		t.Fatalf("from before the first bound: windows %v, want none", lo)
	}
	if lo, _ := timeWindows(bounds[:1], true, nil); lo != nil {
		t.Fatalf("one bound: windows %v, want none", lo)
	}
	// Bounds that repeat (many items at one time) make no empty window.
	same := []time.Time{t0, t0, t0, t0.Add(day)}
	lo, hi = timeWindows(same, true, nil)
	for i := range lo {
		if lo[i] == hi[i] {
			t.Fatalf("repeated bounds: empty window %d in %v %v", i, lo, hi)
		}
	}
}

// TestWindowed checks the choice of windows on the benchmark's
// partitions (their estimated extents and rows): the small boxes of q3
// and q6 are read in windows, the box over Germany of q8 is walked.
func TestWindowed(t *testing.T) {
	parts := []partStats{
		{rows: 475159, box: [4]float64{-10.03, 34.97, 29.63, 70.13}, extent: true},
		{rows: 284921, box: [4]float64{-10.26, 34.65, 31.81, 71.75}, extent: true},
		{rows: 189763, box: [4]float64{-9.76, 37.53, 25.77, 60.63}, extent: true},
	}
	for _, c := range []struct {
		name string
		q    search.Query
		page int
		want bool
	}{
		{"q3", search.Query{BBox: []float64{11.3, 48.0, 11.9, 48.3}}, 11, true},
		{"q6", search.Query{Intersects: json.RawMessage(`{"type":"Polygon","coordinates":[[[4.1,51.85],[4.6,51.75],[4.9,52.0],[4.5,52.2],[4.15,52.1],[4.1,51.85]]]}`)}, 11, true},
		{"q8", search.Query{BBox: []float64{5.9, 47.3, 15.0, 55.0}}, 101, false},
		{"outside the data", search.Query{BBox: []float64{170, -10, -170, 10}}, 11, true},
		{"the whole world", search.Query{BBox: []float64{-180, -90, 180, 90}}, 11, false},
	} {
		boxes, ok := queryBoxes(&c.q)
		if !ok {
			t.Fatalf("%s: no box", c.name)
		}
		if got := windowed(boxes, parts, c.page); got != c.want {
			t.Fatalf("%s: windowed %v, want %v", c.name, got, c.want)
		}
	}
	if boxes, _ := queryBoxes(&search.Query{BBox: []float64{170, -10, -170, 10}}); len(boxes) != 2 {
		t.Fatalf("a bbox across the antimeridian: %v, want two boxes", boxes)
	}
	if windowed([][4]float64{{0, 0, 1, 1}}, []partStats{{rows: 100}}, 11) {
		t.Fatal("windows without an extent")
	}
}
