package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/storetest"
)

func TestSearchContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunSearch(t, func(t *testing.T) storetest.SearchStore { return openTestStore(t) })
}

// A search within a count budget is not counted when the planner expects
// its count to cost more than the limit; below it, the count is exact.
func TestSearchCountCost(t *testing.T) {
	t.Parallel()
	s, analyze := openAnalyzedStore(t)
	insertCollection(t, s, "c")
	var list []*catalog.Item
	for i := range 400 {
		list = append(list, storetest.NewItem(t, "c", fmt.Sprintf("i%03d", i), t0.Add(time.Duration(i)*time.Minute), "null", catalog.StatePublished))
	}
	storetest.InsertItems(t, s, list...)
	analyze()
	postgres.SetCountCostLimit(s, 0.001)
	count := func(ids []string) *int64 {
		t.Helper()
		q := search.Query{IDs: ids, Limit: 10, Count: true, CountBudget: time.Minute}
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		p, err := s.Search(t.Context(), &q)
		if err != nil {
			t.Fatal(err)
		}
		return p.Matched
	}
	var some []string
	for i := range 40 {
		some = append(some, fmt.Sprintf("i%03d", i*7))
	}
	for _, ids := range [][]string{nil, some} {
		if n := count(ids); n != nil {
			t.Fatalf("%d ids against a cost limit of 0.001: numberMatched %d, want none", len(ids), *n)
		}
	}
	postgres.SetCountCostLimit(s, 0)
	if n := count(nil); n == nil || *n != 400 {
		t.Fatalf("400 matches within a budget of a minute: numberMatched %v, want 400", n)
	}
	if n := count(some); n == nil || *n != 40 {
		t.Fatalf("40 matches within a budget of a minute: numberMatched %v, want 40", n)
	}
}

// The exact geometry test of a bbox search leaves the planner's estimate
// of its matches at what the box test alone gives: a boolean function
// would be expected to keep a third of the rows, which made the planner
// sort every match of a dense bbox rather than walk the time index
// (migration 0022).
func TestSpatialEstimate(t *testing.T) {
	t.Parallel()
	s, analyze := openAnalyzedStore(t)
	insertCollection(t, s, "c")
	var list []*catalog.Item
	for i := range 3000 {
		x, y := float64(i%60)*0.5, 40+float64(i/60)*0.4
		g := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
			x, y, x+0.3, y, x+0.3, y+0.3, x, y+0.3, x, y)
		list = append(list, storetest.NewItem(t, "c", fmt.Sprintf("i%04d", i), t0.Add(time.Duration(i)*time.Minute), g, catalog.StatePublished))
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertItems(t.Context(), "c", list) }); err != nil {
		t.Fatal(err)
	}
	box := []float64{10, 45, 20, 52}
	var plan []string
	rows, err := analyze().Query(t.Context(), `EXPLAIN SELECT 1 FROM items WHERE geometry && ST_MakeEnvelope($1, $2, $3, $4, 4326)`,
		box[0], box[1], box[2], box[3])
	if err != nil {
		t.Fatal(err)
	}
	if plan, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	boxOnly := expectedRows(t, plan)
	// Sorted by a property, the page is not read in time windows (see
	// TestSearchWindows): the plan's first node below the Limit holds the
	// estimate of every match.
	q := search.Query{BBox: box, Limit: 10, Sort: []search.SortKey{{Property: "platform"}}}
	if err := search.Prepare(&q); err != nil {
		t.Fatal(err)
	}
	explained, err := s.ExplainSearch(t.Context(), &q, false, false)
	if err != nil {
		t.Fatal(err)
	}
	searched := expectedRows(t, strings.Split(explained, "\n"))
	if searched < boxOnly*9/10 {
		t.Fatalf("the planner expects %d matches of the bbox search, %d of its box test alone:\n%s", searched, boxOnly, explained)
	}
}

// expectedRows returns the planner's estimate of the rows that pass every
// condition: that of the plan's first node but a Limit.
func expectedRows(t *testing.T, plan []string) int {
	t.Helper()
	for _, l := range plan {
		m := rowsRE.FindStringSubmatch(l)
		if m == nil || strings.Contains(l, "Limit") {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	t.Fatalf("no row estimate in the plan:\n%s", strings.Join(plan, "\n"))
	return 0
}

var rowsRE = regexp.MustCompile(`rows=(\d+)`)

// openAnalyzedStore opens a migrated store in a schema of its own, and a
// function that runs ANALYZE on its items and returns a connection to the
// schema, closed when the test ends.
func openAnalyzedStore(t *testing.T) (*postgres.Store, func() *pgx.Conn) {
	t.Helper()
	s, schema := openSchemaStore(t, "")
	return s, func() *pgx.Conn {
		t.Helper()
		cfg, err := pgx.ParseConfig(testURL(t))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["search_path"] = schema + ", public"
		conn, err := pgx.ConnectConfig(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		if _, err := conn.Exec(t.Context(), `ANALYZE items`); err != nil {
			t.Fatal(err)
		}
		return conn
	}
}

// A search that reads every partition whatever its values (no condition
// but the states and the page cursor, as an administrator) runs a
// prepared statement with a generic plan, made once per connection; any
// other search is planned for its values.
// TestSearchPagesUnprepared checks that a server whose connections may
// switch prepared statements to generic plans (plan_cache_mode other than
// force_custom_plan, given in the URL) runs the pages that need plans for
// their values as unnamed statements.
func TestSearchPagesUnprepared(t *testing.T) {
	t.Parallel()
	s, _ := openSchemaStore(t, "&pool_max_conns=1&plan_cache_mode=auto")
	insertCollection(t, s, "c")
	it := storetest.NewItem(t, "c", "i1", t0, "null", catalog.StatePublished)
	storetest.InsertItems(t, s, it)
	for range 7 {
		q := search.Query{Limit: 10, Collections: []string{"c"}}
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Search(t.Context(), &q); err != nil || len(p.Items) != 1 {
			t.Fatalf("search: %v, %v", p, err)
		}
	}
	var n int
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_prepared_statements
		WHERE statement LIKE 'SELECT collection, id, state%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d prepared search statements under plan_cache_mode=auto, want none", n)
	}
}

func TestSearchGenericPlan(t *testing.T) {
	t.Parallel()
	s, _ := openSchemaStore(t, "&pool_max_conns=1")
	insertCollection(t, s, "c")
	var list []*catalog.Item
	for i := range 30 {
		list = append(list, storetest.NewItem(t, "c", fmt.Sprintf("i%02d", i), t0.Add(time.Duration(i)*time.Minute), "null", catalog.StatePublished))
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertItems(t.Context(), "c", list) }); err != nil {
		t.Fatal(err)
	}
	plans := func() (generic, custom int64) {
		t.Helper()
		err := s.Pool().QueryRow(t.Context(), `SELECT COALESCE(sum(generic_plans), 0), COALESCE(sum(custom_plans), 0)
			FROM pg_prepared_statements WHERE statement LIKE 'SELECT collection, id, state%'`).Scan(&generic, &custom)
		if err != nil {
			t.Fatal(err)
		}
		return generic, custom
	}
	search1 := func(q search.Query) *search.Page {
		t.Helper()
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		p, err := s.Search(t.Context(), &q)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := search1(search.Query{Limit: 10})
	if len(first.Items) != 10 || first.Items[0].ID != "i29" {
		t.Fatalf("first page: %d items, first %v", len(first.Items), first.Items)
	}
	next := search1(search.Query{Limit: 10, After: first.Next})
	if len(next.Items) != 10 || next.Items[0].ID != "i19" {
		t.Fatalf("second page: %d items, first %v", len(next.Items), next.Items)
	}
	search1(search.Query{Limit: 10})
	if g, c := plans(); g != 3 || c != 0 {
		t.Fatalf("after three pages without conditions: %d generic and %d custom plans of prepared search statements, want 3 and 0", g, c)
	}
	search1(search.Query{Limit: 10, Collections: []string{"c"}})
	search1(search.Query{Limit: 10, IDs: []string{"i01"}})
	if g, c := plans(); g != 3 || c != 2 {
		t.Fatalf("searches with conditions: %d generic and %d custom plans of prepared search statements, want 3 and 2 (each planned for its values)", g, c)
	}
	// Under read rules the statement names the partitions it reads.
	insertCollection(t, s, "d")
	d := storetest.NewItem(t, "d", "d1", t0.Add(time.Hour), "null", catalog.StatePublished)
	storetest.InsertItems(t, s, d)
	reader := &search.Access{Collections: []string{"c"}}
	if p := search1(search.Query{Limit: 10, Access: reader}); len(p.Items) != 10 || p.Items[0].ID != "i29" {
		t.Fatalf("reader of c: %d items, first %v", len(p.Items), p.Items)
	}
	both := &search.Access{Collections: []string{"c", "d"}}
	if p := search1(search.Query{Limit: 10, Access: both}); len(p.Items) != 10 || p.Items[0].ID != "d1" || p.Items[1].ID != "i29" {
		t.Fatalf("reader of c and d: %d items, first %v", len(p.Items), p.Items)
	}
	if g, c := plans(); g != 5 || c != 2 {
		t.Fatalf("after two searches under read rules: %d generic and %d custom plans, want 5 and 2", g, c)
	}
	// Shared items: a caller whose shares are a large part of
	// shared_items walks it on the generic plan; one with few shares
	// among many is planned for its values. Owned items are planned for
	// their values.
	share := func(id string, refs ...string) {
		t.Helper()
		p := &access.Policy{ID: id, Subjects: []string{"user:" + id}, Actions: []string{"read"}, Effect: "allow", Created: t0}
		for _, r := range refs {
			p.Resources = append(p.Resources, "items:"+r)
		}
		if err := s.CreatePolicy(t.Context(), p, nil); err != nil {
			t.Fatal(err)
		}
		postgres.ForgetSharedRows(s)
	}
	share("p", "d/d1")
	sharer := &search.Access{Collections: []string{"c"}, Shares: []search.Share{{Policy: "p", Items: []search.ItemRef{{Collection: "d", ID: "d1"}}}}}
	generic, custom := plans()
	if p := search1(search.Query{Limit: 10, Access: sharer}); len(p.Items) != 10 || p.Items[0].ID != "d1" || p.Items[1].ID != "i29" {
		t.Fatalf("sharer's search: %d items, first %v", len(p.Items), p.Items)
	}
	if g, c := plans(); g != generic+1 || c != custom {
		t.Fatalf("after a search with all of shared_items shared: %d generic and %d custom plans, want %d and %d", g, c, generic+1, custom)
	}
	var many []*catalog.Item
	var refs []string
	for i := range 300 {
		many = append(many, storetest.NewItem(t, "d", fmt.Sprintf("m%03d", i), t0.Add(-time.Duration(i)*time.Minute), "null", catalog.StatePublished))
		refs = append(refs, fmt.Sprintf("d/m%03d", i))
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertItems(t.Context(), "d", many) }); err != nil {
		t.Fatal(err)
	}
	share("q", refs...)
	if p := search1(search.Query{Limit: 10, Access: sharer}); len(p.Items) != 10 || p.Items[0].ID != "d1" || p.Items[1].ID != "i29" {
		t.Fatalf("sharer's search among 301 shared items: %d items, first %v", len(p.Items), p.Items)
	}
	if g, c := plans(); g != generic+1 || c != custom+1 {
		t.Fatalf("after a search with 1 of 301 shared items shared: %d generic and %d custom plans, want %d and %d", g, c, generic+1, custom+1)
	}
	qItems := make([]search.ItemRef, len(refs))
	for i := range refs {
		qItems[i] = search.ItemRef{Collection: "d", ID: fmt.Sprintf("m%03d", i)}
	}
	many300 := &search.Access{Shares: []search.Share{{Policy: "q", Items: qItems}}}
	p1 := search1(search.Query{Limit: 10, Access: many300})
	p2 := search1(search.Query{Limit: 10, Access: many300, After: p1.Next})
	if len(p1.Items) != 10 || p1.Items[0].ID != "m000" || len(p2.Items) != 10 || p2.Items[0].ID != "m010" {
		t.Fatalf("pages of 300 of 301 shared items: %v, %v", p1.Items, p2.Items)
	}
	if g, c := plans(); g != generic+3 || c != custom+1 {
		t.Fatalf("after two pages with 300 of 301 shared items shared: %d generic and %d custom plans, want %d and %d", g, c, generic+3, custom+1)
	}
	owner := &search.Access{Collections: []string{"c"}, Owner: "olga"}
	search1(search.Query{Limit: 10, Access: owner}) // olga owns nothing yet: the arm of c only
	generic, custom = plans()
	mine := storetest.Sealed(t, "d", `{"type":"Feature","id":"o1","geometry":null,"properties":{"datetime":"2024-06-01T12:00:00Z","dt:owner":"olga"}}`, catalog.StatePublished)
	storetest.InsertItems(t, s, mine)
	if p := search1(search.Query{Limit: 10, Access: owner}); len(p.Items) != 10 || p.Items[0].ID != "o1" {
		t.Fatalf("olga's search: %d items, first %v", len(p.Items), p.Items)
	}
	// olga's search read her collections with the page planned for what
	// the store knew of them (none: the arm of c, generic), found d, and
	// read the page again with the arm of her items (custom); the next
	// one reads it once.
	if g, c := plans(); g != generic+1 || c != custom+1 {
		t.Fatalf("after olga's first search: %d generic and %d custom plans of prepared statements, want %d and %d", g, c, generic+1, custom+1)
	}
	if p := search1(search.Query{Limit: 10, Access: owner}); len(p.Items) != 10 || p.Items[0].ID != "o1" {
		t.Fatalf("olga's second search: %d items, first %v", len(p.Items), p.Items)
	}
	if g, c := plans(); g != generic+1 || c != custom+2 {
		t.Fatalf("after olga's second search: %d generic and %d custom plans of prepared statements, want %d and %d", g, c, generic+1, custom+2)
	}
	// A collection deleted and made again has a new partition: the
	// search finds it all the same.
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DeleteCollection(t.Context(), "d") }); err != nil {
		t.Fatal(err)
	}
	insertCollection(t, s, "d")
	d2 := storetest.NewItem(t, "d", "d2", t0.Add(2*time.Hour), "null", catalog.StatePublished)
	storetest.InsertItems(t, s, d2)
	if p := search1(search.Query{Limit: 10, Access: both}); len(p.Items) != 10 || p.Items[0].ID != "d2" || p.Items[1].ID != "i29" {
		t.Fatalf("reader of c and the new d: %d items, first %v", len(p.Items), p.Items)
	}
}

// TestSearchWindows checks spatial pages read in time windows (after an
// ANALYZE, which gives start_dt its histograms) against the reference
// search, page by page, forwards and backwards: boxes where matches are
// dense and sparse, a polygon, one collection, a datetime interval, a
// reader's arm, and the ascending order.
func TestSearchWindows(t *testing.T) {
	t.Parallel()
	s, _ := openSchemaStore(t, "")
	insertCollection(t, s, "c1")
	insertCollection(t, s, "c2")
	rng := rand.New(rand.NewPCG(7, 11))
	var items []*catalog.Item
	for i := range 600 {
		coll := []string{"c1", "c2"}[i%2]
		// Dense near (10, 50), sparse elsewhere; some items share a time.
		x, y := 10+rng.Float64()*2, 50+rng.Float64()*2
		if rng.IntN(4) == 0 {
			x, y = rng.Float64()*4, 40+rng.Float64()*4
		}
		d := 0.05 + rng.Float64()*0.3
		dt := t0.Add(time.Duration(rng.IntN(700)) * 24 * time.Hour)
		if i%50 == 0 {
			dt = t0
		}
		geom := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
			x, y, x+d, y+d/3, x+d, y+d, x, y+d/2, x, y)
		items = append(items, storetest.NewItem(t, coll, fmt.Sprintf("i%03d", i), dt, geom, catalog.StatePublished))
	}
	storetest.InsertItems(t, s, items...)
	if _, err := s.Pool().Exec(t.Context(), `ANALYZE items`); err != nil {
		t.Fatal(err)
	}
	pentagon := json.RawMessage(`{"type":"Polygon","coordinates":[[[9.5,49.5],[11,49.8],[12.5,51],[11,52.5],[9.6,51],[9.5,49.5]]]}`)
	end := t0.Add(300 * 24 * time.Hour)
	asc := []search.SortKey{{Property: search.PropDatetime}}
	cases := []struct {
		name    string
		q       search.Query
		windows bool
	}{
		{"dense box", search.Query{BBox: []float64{10, 50, 12, 52}}, true},
		{"sparse box", search.Query{BBox: []float64{0.5, 40.5, 2, 42}}, true},
		{"polygon", search.Query{Intersects: pentagon}, true},
		{"one collection", search.Query{BBox: []float64{0, 40, 4, 44}, Collections: []string{"c2"}}, true},
		{"interval", search.Query{BBox: []float64{10, 50, 12, 52}, End: &end}, true},
		{"reader", search.Query{BBox: []float64{10, 50, 12, 52}, Access: &search.Access{Collections: []string{"c1"}}}, true},
		{"ascending", search.Query{BBox: []float64{10, 50, 12, 52}, Sort: asc}, true},
		// A box over all the data: a walk reads less than the box holds.
		{"large box", search.Query{BBox: []float64{-1, 39, 13, 53}}, false},
	}
	for _, c := range cases {
		q := c.q
		q.Limit = 7
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		plan, err := s.ExplainSearch(t.Context(), &q, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(plan, "Function Scan on win") != c.windows {
			t.Fatalf("%s: read in windows %v, want %v:\n%s", c.name, !c.windows, c.windows, plan)
		}
		var pages []*search.Page
		cur := q
		for n := 0; ; n++ {
			got, err := s.Search(t.Context(), &cur)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := search.Run(&cur, items)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := pageIDs(got), pageIDs(want); !slices.Equal(g, w) || n > 100 {
				t.Fatalf("%s, page %d: %v, want %v", c.name, n, g, w)
			}
			pages = append(pages, got)
			if got.Next == nil {
				break
			}
			cur.After, cur.Before = got.Next, nil
		}
		if len(pages) < 2 {
			t.Fatalf("%s: one page only", c.name)
		}
		for i := len(pages) - 1; i > 0; i-- {
			cur.After, cur.Before = nil, pages[i].Prev
			got, err := s.Search(t.Context(), &cur)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := pageIDs(got), pageIDs(pages[i-1]); !slices.Equal(g, w) {
				t.Fatalf("%s, page %d read backwards: %v, want %v", c.name, i-1, g, w)
			}
		}
	}
}

func pageIDs(p *search.Page) []string {
	out := make([]string, len(p.Items))
	for i, it := range p.Items {
		out[i] = it.ID
	}
	return out
}
