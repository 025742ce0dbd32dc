package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
	"github.com/twinstac/twinstac/internal/storetest"
)

// searchItem describes an item of the search fixture.
type searchItem struct {
	coll, id string
	state    catalog.State
	when     string // datetime, or "start/end"
	geometry string // GeoJSON or "null"
	props    string // more properties, as JSON members
}

var searchFixture = []searchItem{
	{"c1", "i01", catalog.StatePublished, "2024-01-01T00:00:00Z", point(10, 10), `"num":5,"name":"alpha","flag":true,"tags":["a","b"],"num2":5,"other":"alpha"`},
	{"c1", "i02", catalog.StatePublished, "2024-01-02T00:00:00Z", point(11, 11), `"num":5.5,"name":"Alpha","flag":false,"num2":2,"other":"beta"`},
	{"c1", "i03", catalog.StateDraft, "2024-01-03T00:00:00Z", point(-10, -10), `"num":-3,"name":"beta","flag":"true","weird\"key":1`},
	{"c1", "i04", catalog.StatePublished, "2024-01-03T00:00:00Z", point(20, 0), `"num":"5","name":"é","flag":null,"num2":"x"`},
	{"c1", "i05", catalog.StateDeprecated, "2024-01-03T00:00:00.000001Z", "null", `"num":true,"name":"zeta","back\\slash":"x"`},
	{"c1", "i06", catalog.StateArchived, "2024-01-04T00:00:00Z", point(0, 0), `"num":[1,2],"name":"a%b_c","tags":[]`},
	{"c1", "i07", catalog.StatePublished, "2024-01-05T00:00:00Z", point(179.5, 5), `"num":{"k":1},"name":"a\u0000b","dt:owner":"alice"`},
	{"c1", "i08", catalog.StateDeleted, "2024-01-05T00:00:00Z", point(1, 1), `"num":5`},
	{"c1", "i09", catalog.StatePublished, "2023-12-31T23:59:59.999999Z", point(-179.5, 0), `"num":1e400,"name":"😀","big":1e400`},
	{"c1", "i10", catalog.StatePublished, "2024-02-01T00:00:00Z/2024-03-01T00:00:00Z", `{"type":"Polygon","coordinates":[[[0,0],[30,0],[30,30],[0,30],[0,0]]]}`, `"num":0,"name":"","num2":0`},
	{"c2", "i01", catalog.StatePublished, "2024-01-01T00:00:00Z", point(10, 10), `"num":5,"name":"alpha","dt:owner":"bob"`},
	{"c2", "i11", catalog.StateDraft, "2024-01-06T00:00:00Z", point(5, 5), `"num":9007199254740993,"name":"ab","other":"ab","dt:owner":"alice"`},
	{"c2", "i12", catalog.StatePublished, "2024-01-07T00:00:00Z", point(6, 6), `"num":-0.0,"name":"abab","flag":true,"flag2":true`},
	{"c2", "i13", catalog.StatePublished, "2024-01-08T00:00:00Z", point(7, 7), `"num":100,"name":"a_b","flag":false,"flag2":true,"big":-1e400`},
	{"c2", "i14", catalog.StateArchived, "2024-01-09T00:00:00Z", point(8, 8), `"num":7,"name":"ALPHA","num2":7`},
	{"c2", "i15", catalog.StatePublished, "2024-01-09T00:00:00Z", `{"type":"MultiPolygon","coordinates":[[[[170,-10],[180,-10],[180,10],[170,10],[170,-10]]],[[[-180,-10],[-170,-10],[-170,10],[-180,10],[-180,-10]]]]}`, `"num":2,"name":"across"`},
	{"c2", "i16", catalog.StatePublished, "2024-01-10T00:00:00Z", point(9, 9), `"num":1.5,"name":"b","dt:owner":5`},
	{"c2", "i17", catalog.StateDeprecated, "2024-01-11T00:00:00Z", point(12, -12), `"num":3,"name":"alphabet"`},
	{"c3", "i18", catalog.StatePublished, "2024-01-12T00:00:00Z", point(40, 40), `"num":4,"name":"alpha\nbeta","a.b[0]":3,"$x":"it's"`},
	{"c3", "i19", catalog.StateDraft, "2024-01-12T00:00:00Z", point(41, 41), `"num":6,"name":"x*y?[z]"`},
	{"c3", "i20", catalog.StatePublished, "2024-01-13T00:00:00Z", point(42, 42), `"num":8,"name":"Ωmega"`},
	{"c3", "i21", catalog.StatePublished, "2024-01-14T00:00:00Z", "null", `"num":10`},
	{"c3", "i22", catalog.StatePublished, "2024-01-15T00:00:00Z", point(-42, 42), `"name":"no num"`},
	{"c3", "i23", catalog.StatePublished, "2022-06-01T00:00:00Z/2025-01-01T00:00:00Z", point(1, 2), `"num":2,"name":"long"`},
	{"c3", "i24", catalog.StatePublished, "2024-01-16T00:00:00Z", point(3, 4), `"num":12.25,"name":"abcab"`},
	{"c3", "i25", catalog.StateDeprecated, "2024-01-17T00:00:00Z", point(5, 6), `"num":-7.5,"name":"beta"`},
}

// newSearchFixture stores the fixture and returns it as read back.
func newSearchFixture(t *testing.T) (*Store, []*catalog.Item) {
	t.Helper()
	s := openTestStore(t)
	for _, c := range []string{"c1", "c2", "c3"} {
		insertCollection(t, s, c)
	}
	var items []*catalog.Item
	for _, f := range searchFixture {
		when := fmt.Sprintf(`"datetime":%q`, f.when)
		if start, end, ok := strings.Cut(f.when, "/"); ok {
			when = fmt.Sprintf(`"datetime":null,"start_datetime":%q,"end_datetime":%q`, start, end)
		}
		raw := fmt.Sprintf(`{"type":"Feature","stac_version":"1.0.0","id":%q,"geometry":%s,"properties":{%s,%s}}`,
			f.id, f.geometry, when, f.props)
		it, err := catalog.ParseItem(f.coll, []byte(raw))
		if err != nil {
			t.Fatalf("ParseItem %s/%s: %v", f.coll, f.id, err)
		}
		it.State = f.state
		it.Created, it.Updated = t0, t0
		it.Props.Set(catalog.PropState, f.state)
		if _, err := it.Seal(); err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertItem(t.Context(), it) })
	}
	for _, f := range searchFixture {
		it, err := s.GetItem(t.Context(), f.coll, f.id)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	return s, items
}

func mustFilter(t *testing.T, src string) cql2.Expr {
	t.Helper()
	var (
		e   cql2.Expr
		err error
	)
	if strings.HasPrefix(src, "{") {
		e, err = cql2.ParseJSON([]byte(src))
	} else {
		e, err = cql2.ParseText(src)
	}
	if err != nil {
		t.Fatalf("parsing %q: %v", src, err)
	}
	return e
}

func pageKeys(p *search.Page) []string {
	out := make([]string, len(p.Items))
	for i, it := range p.Items {
		out[i] = it.Collection + "/" + it.ID
	}
	return out
}

func token(c *search.Cursor, before bool) string {
	if c == nil {
		return "-"
	}
	return search.EncodeToken(c, before)
}

// samePage checks that the store's page is the reference's, item by item
// and cursor by cursor.
func samePage(t *testing.T, what string, got, want *search.Page) {
	t.Helper()
	g, w := pageKeys(got), pageKeys(want)
	if strings.Join(g, " ") != strings.Join(w, " ") {
		t.Fatalf("%s: items\n got %v\nwant %v", what, g, w)
	}
	if token(got.Next, false) != token(want.Next, false) {
		t.Fatalf("%s: next cursor %s, want %s", what, token(got.Next, false), token(want.Next, false))
	}
	if token(got.Prev, true) != token(want.Prev, true) {
		t.Fatalf("%s: prev cursor %s, want %s", what, token(got.Prev, true), token(want.Prev, true))
	}
}

// checkSearch runs q against the store and the reference, then walks the
// next links to the end and the prev links back to the start, page by
// page, and checks the count.
func checkSearch(t *testing.T, s *Store, items []*catalog.Item, q search.Query) {
	t.Helper()
	if err := search.Prepare(&q); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	run := func(q search.Query) (*search.Page, *search.Page, int64) {
		t.Helper()
		want, n, err := search.Run(&q, items)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		got, err := s.Search(t.Context(), &q)
		if err != nil {
			sql, _, _ := describeSearch(&q)
			t.Fatalf("Search: %v\n%s", err, sql)
		}
		return got, want, n
	}
	q.Count = true
	got, want, n := run(q)
	samePage(t, "first page", got, want)
	if got.Matched == nil || *got.Matched != n {
		t.Fatalf("first page: matched %v, want %d", got.Matched, n)
	}
	pages := 1
	total := len(got.Items)
	for got.Next != nil {
		next := q
		next.After, next.Before = got.Next, nil
		next.Count = pages%2 == 0
		got, want, n = run(next)
		samePage(t, fmt.Sprintf("page %d", pages+1), got, want)
		if next.Count && (got.Matched == nil || *got.Matched != n) {
			t.Fatalf("page %d: matched %v, want %d", pages+1, got.Matched, n)
		}
		pages++
		total += len(got.Items)
		if pages > 100 {
			t.Fatal("no end to the next links")
		}
	}
	if int64(total) != n {
		t.Fatalf("the pages hold %d items, want %d", total, n)
	}
	back := 0
	for got.Prev != nil {
		prev := q
		prev.After, prev.Before = nil, got.Prev
		prev.Count = back%2 == 1
		got, want, n = run(prev)
		samePage(t, fmt.Sprintf("page %d back", back+1), got, want)
		if prev.Count && (got.Matched == nil || *got.Matched != n) {
			t.Fatalf("page %d back: matched %v, want %d", back+1, got.Matched, n)
		}
		back++
		if back > 100 {
			t.Fatal("no end to the prev links")
		}
	}
	if pages > 1 && back != pages-1 {
		t.Fatalf("walked %d pages forward but %d back", pages, back)
	}
}

// push says how a filter splits: all pushed, part, or none.
type push int

const (
	pushAll push = iota
	pushSome
	pushNone
)

// searchFilters are checked against the reference, and with NOT in front
// when they push whole, to tell unknown from false.
var searchFilters = []struct {
	filter string
	push   push
}{
	{"num = 5", pushAll},
	{"num <> 5", pushAll},
	{"num < 5", pushAll},
	{"num >= 2.5", pushAll},
	{"num > -0.0", pushAll},
	{"num = 9007199254740992", pushAll},
	{"num > 1e300", pushAll},
	{"num BETWEEN 1 AND 10", pushAll},
	{"num IN (1, 5, 'alpha', true)", pushAll},
	{"num IN (2, 7)", pushAll},
	{"name IN ('alpha', 'é', 'beta')", pushAll},
	{"name = 'alpha'", pushAll},
	{"name < 'b'", pushAll},
	{"name > 'Zeta'", pushAll},
	{"name >= 'a\u0000'", pushAll},
	{"name = num", pushAll},
	{"num = num2", pushAll},
	{"num < num2", pushAll},
	{"name = other", pushAll},
	{"name <= other", pushAll},
	{"flag = flag2", pushAll},
	{"flag <> flag2", pushAll},
	{"flag = true", pushAll},
	{"flag <> false", pushAll},
	{"flag", pushAll},
	{"(num > 4) = flag", pushAll},
	{"flag IS NULL", pushAll},
	{"num IS NULL", pushAll},
	{"tags IS NULL", pushAll},
	{"id IS NULL", pushAll},
	{"id = 'i03'", pushAll},
	{"id < 'i05'", pushAll},
	{"id IN ('i01', 'i13', 'i99')", pushAll},
	{"collection = 'c2'", pushAll},
	{"collection IN ('c1', 'c3')", pushAll},
	{`"dt:state" = 'archived'`, pushAll},
	{`"dt:state" IN ('draft', 'deprecated')`, pushAll},
	{"id LIKE 'i0%'", pushAll},
	{"id LIKE 'i_3'", pushAll},
	{"id LIKE '%1'", pushAll},
	{"collection LIKE 'c_'", pushAll},
	{"name LIKE 'al%'", pushAll},
	{"name LIKE 'Al%'", pushAll},
	{"name LIKE '%ph%'", pushAll},
	{"name LIKE '%a'", pushAll},
	{"name LIKE 'a%b'", pushAll},
	{"name LIKE 'ab%ab'", pushAll},
	{"name LIKE '%'", pushAll},
	{"name LIKE '%%'", pushAll},
	{"name LIKE 'alpha'", pushAll},
	{`name LIKE 'a\%b%'`, pushAll},
	{`name LIKE 'a%\_c'`, pushAll},
	{"name LIKE 'a%'", pushAll},
	{"name LIKE 'x*y?[z]'", pushAll},
	{"name LIKE 'a_pha'", pushNone},
	{"name LIKE '%a%b%'", pushNone},
	{"name LIKE 'a%b%'", pushNone},
	{"num LIKE '5'", pushAll},
	{"num + 1 > 5", pushAll},
	{"num * 2 = 10", pushAll},
	{"num - num2 = 0", pushAll},
	{"num / num2 > 1", pushAll},
	{"(num / num2) IS NULL", pushAll},
	{"num % 3 = 1", pushAll},
	{"num % -2 < 0", pushAll},
	{"num div 2 = 2", pushAll},
	{"big * 0 IS NULL", pushAll},
	{"big > 1e308", pushAll},
	{"num ^ 2 > 10", pushNone},
	{"NOT (num > 5)", pushAll},
	{"num > 5 OR name = 'alpha'", pushAll},
	{"num IS NULL OR num < 0", pushAll},
	{"NOT (num = 1 AND flag = true)", pushAll},
	{`{"op":"=","args":[{"property":"weird\"key"},1]}`, pushAll},
	{`{"op":"isNull","args":[{"property":"back\\slash"}]}`, pushAll},
	{`{"op":"=","args":[{"property":"a.b[0]"},3]}`, pushAll},
	{`{"op":"=","args":[{"property":"$x"},"it's"]}`, pushAll},
	{`"dt:state" = 'deleted'`, pushAll},
	{`"dt:state" IS NULL`, pushAll},
	{`"dt:state" LIKE '%e%'`, pushAll},
	{`{"op":"=","args":[{"property":"ctl\u0001"},1]}`, pushNone},
	{"num > 1 AND CASEI(name) = 'alpha'", pushSome},
	{"CASEI(name) LIKE 'al%'", pushNone},
	{"ACCENTI(name) = 'e'", pushNone},
	{"T_AFTER(datetime, TIMESTAMP('2024-01-08T00:00:00Z'))", pushNone},
	{"datetime > TIMESTAMP('2024-01-08T00:00:00Z') AND num > 2", pushSome},
	{"A_CONTAINS(tags, ('a'))", pushNone},
	{"geometry IS NULL", pushNone},
	{"S_INTERSECTS(geometry, BBOX(0, 0, 15, 15)) AND num >= 5", pushSome},
	{"S_WITHIN(geometry, POLYGON((0 0, 50 0, 50 50, 0 50, 0 0)))", pushNone},
	{"S_INTERSECTS(geom, BBOX(175, -20, -175, 20))", pushNone},
	{"S_DISJOINT(geometry, BBOX(0, 0, 15, 15))", pushNone},
	{"S_INTERSECTS(geometry, POINT(10 10)) OR num = 10", pushNone},
	{"S_INTERSECTS(geometry, POINT(10 10)) OR (S_TOUCHES(geom, BBOX(40, 40, 41, 41)) AND num > 1) OR S_EQUALS(geometry, POINT(-42 42))", pushNone},
	{"num > 1 AND (name = 'alpha' OR CASEI(name) = 'beta')", pushSome},
}

func TestSearchFilters(t *testing.T) {
	t.Parallel()
	s, items := newSearchFixture(t)
	for _, tc := range searchFilters {
		t.Run(tc.filter, func(t *testing.T) {
			f := mustFilter(t, tc.filter)
			if err := cql2.Check(f); err != nil {
				t.Fatalf("Check: %v", err)
			}
			pushed, residual := search.Split(f, pushable)
			var got push
			switch {
			case residual == nil:
				got = pushAll
			case pushed == nil:
				got = pushNone
			default:
				got = pushSome
			}
			if got != tc.push {
				t.Fatalf("split: pushed %v, residual %v; want %d", pushed, residual, tc.push)
			}
			filters := []cql2.Expr{f}
			if tc.push == pushAll {
				filters = append(filters, &cql2.Op{Name: "not", Args: []cql2.Expr{f}})
			}
			for _, f := range filters {
				for _, limit := range []int{3, 100} {
					// Tombstones too: they have no document to read.
					checkSearch(t, s, items, search.Query{Filter: f, Limit: limit, States: []catalog.State{catalog.StateDraft,
						catalog.StatePublished, catalog.StateDeprecated, catalog.StateArchived, catalog.StateDeleted}})
				}
			}
		})
	}
}

func TestSearchQueries(t *testing.T) {
	t.Parallel()
	s, items := newSearchFixture(t)
	ts := func(v string) *time.Time {
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatal(err)
		}
		return &tm
	}
	all := []catalog.State{catalog.StateDraft, catalog.StatePublished, catalog.StateDeprecated, catalog.StateArchived, catalog.StateDeleted}
	cases := []struct {
		name string
		q    search.Query
	}{
		{"default", search.Query{Limit: 4}},
		{"one a page", search.Query{Limit: 1}},
		{"all states", search.Query{Limit: 5, States: all}},
		{"archived only", search.Query{States: []catalog.State{catalog.StateArchived}}},
		{"collections", search.Query{Limit: 2, Collections: []string{"c2", "c3"}}},
		{"one collection", search.Query{Limit: 2, Collections: []string{"c3"}}},
		{"ids", search.Query{Limit: 2, IDs: []string{"i01", "i12", "i20", "nope"}}},
		{"one id", search.Query{IDs: []string{"i01"}}},
		{"start", search.Query{Limit: 3, Start: ts("2024-01-10T00:00:00Z")}},
		{"end", search.Query{Limit: 3, End: ts("2024-01-03T00:00:00Z")}},
		{"start with a fraction", search.Query{Start: ts("2024-01-03T00:00:00.0000005Z"), End: ts("2024-01-05T00:00:00Z")}},
		{"end with a fraction", search.Query{End: ts("2024-01-03T00:00:00.0000015Z"), Start: ts("2024-01-02T12:00:00Z")}},
		{"range overlap", search.Query{Start: ts("2024-02-15T00:00:00Z"), End: ts("2024-02-16T00:00:00Z")}},
		{"bbox", search.Query{Limit: 2, BBox: []float64{0, 0, 15, 15}}},
		{"bbox 3d", search.Query{BBox: []float64{0, 0, -100, 15, 15, 100}}},
		{"bbox on a point", search.Query{BBox: []float64{10, 10, 10, 10}}},
		{"bbox across the antimeridian", search.Query{BBox: []float64{175, -20, -175, 20}}},
		{"bbox east of the antimeridian", search.Query{BBox: []float64{-179.9, -1, -179, 1}}},
		{"bbox touching", search.Query{BBox: []float64{30, 30, 35, 35}}},
		{"intersects polygon", search.Query{Intersects: json.RawMessage(`{"type":"Polygon","coordinates":[[[0,0],[12,0],[12,12],[0,12],[0,0]]]}`)}},
		{"intersects point", search.Query{Intersects: json.RawMessage(`{"type":"Point","coordinates":[25,25]}`)}},
		{"intersects line", search.Query{Intersects: json.RawMessage(`{"type":"LineString","coordinates":[[-20,-20],[20,20]]}`)}},
		{"intersects collection", search.Query{Intersects: json.RawMessage(`{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[40,40]},{"type":"Point","coordinates":[-42,42]}]}`)}},
		{"bbox and intersects", search.Query{BBox: []float64{0, 0, 50, 50}, Intersects: json.RawMessage(`{"type":"Point","coordinates":[5,5]}`)}},
		{"bbox and filter", search.Query{Limit: 1, BBox: []float64{-180, -90, 180, 90}, Filter: mustFilter(t, "num > 2 AND CASEI(name) LIKE '%a%'")}},
		{"sort num", search.Query{Limit: 3, Sort: []search.SortKey{{Property: "num"}}, States: all}},
		{"sort num desc", search.Query{Limit: 4, Sort: []search.SortKey{{Property: "properties.num", Desc: true}}, States: all}},
		{"sort name", search.Query{Limit: 5, Sort: []search.SortKey{{Property: "name"}}}},
		{"sort flag desc", search.Query{Limit: 5, Sort: []search.SortKey{{Property: "flag", Desc: true}}}},
		{"sort big", search.Query{Limit: 2, Sort: []search.SortKey{{Property: "big"}}}},
		{"sort mixed directions", search.Query{Limit: 3, Sort: []search.SortKey{{Property: "num"}, {Property: "datetime", Desc: true}, {Property: "id"}}}},
		{"sort mixed directions 2", search.Query{Limit: 2, Sort: []search.SortKey{{Property: "collection", Desc: true}, {Property: "name"}}}},
		{"sort datetime asc", search.Query{Limit: 3, Sort: []search.SortKey{{Property: "datetime"}}}},
		{"sort id", search.Query{Limit: 6, Sort: []search.SortKey{{Property: "id"}}}},
		{"sort state", search.Query{Limit: 4, Sort: []search.SortKey{{Property: "dt:state"}}, States: all}},
		{"sort odd name", search.Query{Limit: 4, Sort: []search.SortKey{{Property: `weird"key`, Desc: true}}}},
		{"sort by a name a path cannot hold", search.Query{Limit: 4, Sort: []search.SortKey{{Property: "odd\x00name\n"}, {Property: "back\\slash"}}}},
		{"sort missing", search.Query{Limit: 7, Sort: []search.SortKey{{Property: "nothing"}}}},
		{"sort with residual", search.Query{Limit: 2, Sort: []search.SortKey{{Property: "name"}}, Filter: mustFilter(t, "CASEI(name) LIKE 'a%' OR num > 5")}},
		{"residual only", search.Query{Limit: 2, Filter: mustFilter(t, "ACCENTI(CASEI(name)) IN ('alpha', 'e', 'omega')")}},
		{"access none", search.Query{Access: &search.Access{}}},
		{"access collections", search.Query{Limit: 3, Access: &search.Access{Collections: []string{"c1", "c3"}}}},
		{"access drafts", search.Query{Access: &search.Access{Drafts: []string{"c1", "c2"}}}},
		{"access items", search.Query{Access: &search.Access{Shares: []search.Share{{Policy: "p", Items: []search.ItemRef{{Collection: "c2", ID: "i13"}, {Collection: "c3", ID: "i19"}, {Collection: "c1", ID: "i20"}}}}}}},
		{"access owner", search.Query{Access: &search.Access{Owner: "alice"}}},
		{"access owner that is a number", search.Query{Access: &search.Access{Owner: "5"}}},
		{"access mixed", search.Query{Limit: 2, Access: &search.Access{Collections: []string{"c3"}, Drafts: []string{"c1"}, Owner: "bob"}, States: all}},
		{"everything", search.Query{Limit: 1, Collections: []string{"c1", "c2"}, Start: ts("2024-01-01T00:00:00Z"),
			BBox: []float64{-20, -20, 20, 20}, Filter: mustFilter(t, "num >= 0 AND name LIKE '%a%' AND T_BEFORE(datetime, DATE('2024-01-10'))"),
			Access: &search.Access{Collections: []string{"c1", "c2"}, Drafts: []string{"c2"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkSearch(t, s, items, tc.q)
		})
	}
}

// TestSearchCursorFraction pages from cursors whose time falls between
// two microseconds, which no stored time does.
func TestSearchCursorFraction(t *testing.T) {
	t.Parallel()
	s, items := newSearchFixture(t)
	at := time.Date(2024, 1, 3, 0, 0, 0, 500, time.UTC)
	for _, sort := range [][]search.SortKey{nil, {{Property: "datetime"}}, {{Property: "datetime"}, {Property: "id", Desc: true}}} {
		for _, before := range []bool{false, true} {
			q := search.Query{Limit: 3, Sort: sort}
			if err := search.Prepare(&q); err != nil {
				t.Fatal(err)
			}
			c := &search.Cursor{Keys: make([]any, len(q.Sort))}
			for i, k := range q.Sort {
				switch k.Property {
				case "datetime":
					c.Keys[i] = at
				default:
					c.Keys[i] = "i04"
				}
			}
			if before {
				q.Before = c
			} else {
				q.After = c
			}
			want, _, err := search.Run(&q, items)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Search(t.Context(), &q)
			if err != nil {
				t.Fatal(err)
			}
			samePage(t, fmt.Sprintf("sort %v before %v", sort, before), got, want)
		}
	}
}

func TestSearchCountBudget(t *testing.T) {
	t.Parallel()
	s, _ := newSearchFixture(t)
	for _, f := range []string{"num > 0", "CASEI(name) LIKE '%a%'"} {
		// Past the first page, the count needs a query of its own; a
		// budget already spent leaves it out.
		q := search.Query{Limit: 1, Count: true, CountBudget: time.Nanosecond, Filter: mustFilter(t, f)}
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		p, err := s.Search(t.Context(), &q)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if p.Matched != nil {
			t.Fatalf("%s: matched %d within a nanosecond", f, *p.Matched)
		}
		if len(p.Items) != 1 || p.Next == nil {
			t.Fatalf("%s: page %v, next %v", f, pageKeys(p), p.Next)
		}
		q.CountBudget = time.Hour
		if p, err = s.Search(t.Context(), &q); err != nil || p.Matched == nil {
			t.Fatalf("%s: matched %v, %v", f, p, err)
		}
	}
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	s, _ := newSearchFixture(t)
	q := search.Query{}
	if err := search.Prepare(&q); err != nil {
		t.Fatal(err)
	}
	bad := q
	bad.After = &search.Cursor{Keys: []any{"not a time", "a", "b"}}
	_, err := s.Search(t.Context(), &bad)
	wantCode(t, err, catalog.EINVALID)
	bad = q
	bad.After = &search.Cursor{Keys: []any{time.Now()}}
	_, err = s.Search(t.Context(), &bad)
	wantCode(t, err, catalog.EINVALID)
	bad = q
	bad.Intersects = json.RawMessage(`{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1]]]}`)
	_, err = s.Search(t.Context(), &bad)
	wantCode(t, err, catalog.EINVALID)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Search(ctx, &q); err == nil {
		t.Fatal("a search with a cancelled context succeeded")
	}
}

// TestSearchPlan checks the SQL SQLite runs: the R*Tree for the spatial
// parameters and predicates, and no residual where the filter pushes.
func TestSearchPlan(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	q := search.Query{BBox: []float64{0, 0, 1, 1}, Filter: mustFilter(t,
		"num > 1 AND S_WITHIN(geometry, BBOX(0, 0, 2, 2)) AND (S_INTERSECTS(geometry, POINT(1 1)) OR S_CROSSES(geom, BBOX(170, 0, -170, 1)))")}
	if err := search.Prepare(&q); err != nil {
		t.Fatal(err)
	}
	p, err := planSearch(&q)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(p.where, " AND "), "items_rtree"); n != 5 {
		t.Fatalf("the plan looks %d boxes up in the R*Tree, want 5:\n%s", n, strings.Join(p.where, "\n"))
	}
	query, args, err := describeSearch(&q)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, query)
	}
	defer func() { _ = rows.Close() }()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "items_rtree") {
		t.Fatalf("the plan does not use the R*Tree:\n%s", strings.Join(plan, "\n"))
	}
}

func TestSearchContract(t *testing.T) {
	t.Parallel()
	storetest.RunSearch(t, func(t *testing.T) storetest.SearchStore { return openTestStore(t) })
}
