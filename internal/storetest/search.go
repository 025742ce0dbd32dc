package storetest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
	"github.com/twinstac/twinstac/internal/access"
)

// SearchStore is a store that searches.
type SearchStore interface {
	catalog.Store
	search.Searcher
}

// RunSearch runs the search contract: the OGC CQL2 test suite, a
// differential test against the reference search (search.Run) over
// generated items and filters, and paging.
func RunSearch(t *testing.T, open func(t *testing.T) SearchStore) {
	t.Helper()
	runSuite(t, open, []suiteCase[SearchStore]{
		{"CQL2ConformanceSuite", testCQL2ATS},
		{"Differential", testSearchDifferential},
		{"Paging", testSearchPaging},
		{"PagingUnderInserts", testSearchPagingUnderInserts},
		{"SortByProperty", testSearchSortByProperty},
		{"Access", testSearchAccess},
		{"Queryables", testQueryables},
		{"Aggregations", testAggregations},
	})
}

// SharedDir returns a directory of the workplace's shared test data
// (../shared beside the module), skipping the test when it is absent and
// failing it when TWINSTAC_TEST_REQUIRE_SERVICES=1.
func SharedDir(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("shared test data missing at %s: %v", p, err)
		}
		t.Skipf("../shared/%s not found (looked at %s): a clone outside the workplace", rel, p)
	}
	return p
}

// searchAll runs q (prepared here) and fails the test on an error.
func searchAll(t *testing.T, s SearchStore, q search.Query) *search.Page {
	t.Helper()
	if err := search.Prepare(&q); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	p, err := s.Search(ctx(t), &q)
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	return p
}

type atsRow struct {
	Class         string   `json:"class"`
	Layer         string   `json:"layer"`
	FilterText    string   `json:"filter_text"`
	ExpectedCount int      `json:"expected_count"`
	Note          string   `json:"note"`
	DependsOn     []string `json:"depends_on"`
}

var noteCount = regexp.MustCompile(`yields (\d+)`)

// want returns the count a row must give: the published one, or the one
// its note states when the note disputes it.
func (r atsRow) want() int {
	if strings.Contains(r.Note, "disputed") {
		if m := noteCount.FindStringSubmatch(r.Note); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return r.ExpectedCount
}

// loadATSLayer stores one layer of the CQL2 test data as a collection of
// published items, all with the same datetime; the layer's geometry
// ("geom" in the suite) is the item geometry.
func loadATSLayer(t *testing.T, s SearchStore, dir, layer string) []*catalog.Item {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "data", layer+".ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	insertCollection(t, s, layer)
	var items []*catalog.Item
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var f struct {
			ID         json.RawMessage            `json:"id"`
			Geometry   json.RawMessage            `json:"geometry"`
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("%s: %v", layer, err)
		}
		props := f.Properties
		props["datetime"] = json.RawMessage(`"2024-01-01T00:00:00Z"`)
		doc := map[string]any{
			"type": "Feature", "stac_version": "1.0.0", "id": strings.Trim(string(f.ID), `"`),
			"geometry": f.Geometry, "properties": props, "links": []any{}, "assets": map[string]any{},
		}
		b, _ := json.Marshal(doc)
		items = append(items, sealed(t, layer, string(b), catalog.StatePublished))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	insertItems(t, s, items...)
	return items
}

func testCQL2ATS(t *testing.T, s SearchStore) {
	dir := SharedDir(t, "conformance/cql2")
	raw, err := os.ReadFile(filepath.Join(dir, "ats.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []atsRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	layers := map[string][]*catalog.Item{}
	for _, r := range rows {
		if layers[r.Layer] == nil {
			layers[r.Layer] = loadATSLayer(t, s, dir, r.Layer)
		}
	}
	var mu sync.Mutex
	ran, passed := map[string]int{}, map[string]int{}
	t.Cleanup(func() {
		classes := make([]string, 0, len(ran))
		for c := range ran {
			classes = append(classes, c)
		}
		slices.Sort(classes)
		for _, c := range classes {
			t.Logf("ATS class %s: %d of %d rows pass", c, passed[c], ran[c])
		}
	})
	for i, r := range rows {
		ran[r.Class]++
		t.Run(fmt.Sprintf("%03d", i), func(t *testing.T) {
			e, err := cql2.ParseText(r.FilterText)
			if err != nil {
				t.Fatalf("row %d %q: ParseText: %v", i, r.FilterText, err)
			}
			q := search.Query{Collections: []string{r.Layer}, Filter: e, Limit: catalog.MaxPageSize, Count: true}
			p := searchAll(t, s, q)
			if len(p.Items) != r.want() {
				t.Fatalf("row %d (%s) %q: %d items, want %d", i, r.Class, r.FilterText, len(p.Items), r.want())
			}
			if p.Matched == nil || *p.Matched != int64(r.want()) {
				t.Fatalf("row %d %q: numberMatched %v, want %d", i, r.FilterText, p.Matched, r.want())
			}
			mu.Lock()
			passed[r.Class]++
			mu.Unlock()
		})
	}
	// Every item of a layer has the same datetime: paging must break the
	// ties on id and still visit each match once.
	t.Run("paging", func(t *testing.T) {
		e, err := cql2.ParseText("pop_max > 1000000")
		if err != nil {
			t.Fatal(err)
		}
		q := search.Query{Collections: []string{"ne_110m_populated_places_simple"}, Filter: e, Limit: 7}
		want := searchAll(t, s, search.Query{Collections: q.Collections, Filter: e, Limit: catalog.MaxPageSize})
		walkPages(t, s, q, ids(want.Items))
	})
}

// walkPages follows next cursors from the first page to the last, then
// prev cursors back to the first, and checks both walks against want.
func walkPages(t *testing.T, s SearchStore, q search.Query, want []string) {
	t.Helper()
	if err := search.Prepare(&q); err != nil {
		t.Fatal(err)
	}
	var got []string
	var pages [][]string
	cur := q
	for n := 0; ; n++ {
		if n > len(want)+2 {
			t.Fatalf("paging does not end: pages %v, want %v", pages, want)
		}
		p, err := s.Search(ctx(t), &cur)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(p.Items)...)
		pages = append(pages, ids(p.Items))
		if p.Next == nil {
			break
		}
		cur.After, cur.Before = p.Next, nil
		// A token goes through its text form, as it does over HTTP.
		c, before, err := search.DecodeToken(search.EncodeToken(p.Next, false), q.Sort)
		if err != nil || before {
			t.Fatalf("DecodeToken: %v", err)
		}
		cur.After = c
	}
	if !slices.Equal(got, want) {
		t.Fatalf("walking next links visits\n%v\nwant\n%v", got, want)
	}
	// Back from the last page.
	for i := len(pages) - 1; i > 0; i-- {
		p, err := s.Search(ctx(t), &cur)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(p.Items), pages[i]) {
			t.Fatalf("page %d read backwards is %v, want %v", i, ids(p.Items), pages[i])
		}
		if p.Prev == nil {
			t.Fatalf("page %d has no prev link", i)
		}
		cur.After, cur.Before = nil, p.Prev
	}
	p, err := s.Search(ctx(t), &cur)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) > 1 && !slices.Equal(ids(p.Items), pages[0]) {
		t.Fatalf("first page read backwards is %v, want %v", ids(p.Items), pages[0])
	}
	if len(pages) > 1 && p.Prev != nil {
		t.Fatal("the first page has a prev link")
	}
}

// genItems returns n items of two collections with properties of mixed
// types, some missing or null, geometries (some null) and times.
func genItems(t *testing.T, rng *rand.Rand, n int) []*catalog.Item {
	t.Helper()
	words := []string{"alpha", "Alpha", "ALPHA", "beta", "Ærø", "æro", "Chișinău", "chisinau", "Zürich", "zurich", "b_c", "b%c", "Ωmega", "ωmega", ""}
	var items []*catalog.Item
	for i := range n {
		props := map[string]any{}
		base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(400*24)) * time.Hour)
		if rng.IntN(5) == 0 {
			props["datetime"] = nil
			props["start_datetime"] = catalog.FormatTime(base)
			props["end_datetime"] = catalog.FormatTime(base.Add(time.Duration(rng.IntN(100)) * time.Hour))
		} else {
			props["datetime"] = catalog.FormatTime(base)
		}
		switch rng.IntN(8) {
		case 0: // missing
		case 1:
			props["n"] = nil
		case 2:
			props["n"] = words[rng.IntN(len(words))]
		default:
			props["n"] = float64(rng.IntN(21)-5) + []float64{0, 0.5, 0.25}[rng.IntN(3)]
		}
		props["m"] = float64(rng.IntN(10))
		if rng.IntN(6) > 0 {
			props["s"] = words[rng.IntN(len(words))]
		}
		if rng.IntN(4) > 0 {
			props["b"] = rng.IntN(2) == 0
		}
		if rng.IntN(5) > 0 {
			var tags []any
			for range rng.IntN(4) {
				tags = append(tags, []string{"flood", "fire", "urban", "forest"}[rng.IntN(4)])
			}
			if tags == nil {
				tags = []any{}
			}
			props["tags"] = tags
		} else if rng.IntN(2) == 0 {
			props["tags"] = "flood"
		}
		switch rng.IntN(4) {
		case 0:
			props["t"] = base.Add(time.Duration(rng.IntN(48)) * time.Hour).Format("2006-01-02")
		case 1:
			props["t"] = "not a date"
		default:
			props["t"] = catalog.FormatTime(base.Add(time.Duration(rng.IntN(48)) * time.Hour))
		}
		x, y := float64(rng.IntN(360)-180)+0.5, float64(rng.IntN(160)-80)+0.5
		var geometry string
		switch rng.IntN(6) {
		case 0:
			geometry = "null"
		case 1, 2:
			d := float64(rng.IntN(5) + 1)
			x = min(x, 180-d)
			geometry = fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%v,%v],[%v,%v],[%v,%v],[%v,%v],[%v,%v]]]}`,
				x, y, x+d, y, x+d, y+d, x, y+d, x, y)
		case 3:
			geometry = fmt.Sprintf(`{"type":"LineString","coordinates":[[%v,%v],[%v,%v]]}`, x, y, min(x+3, 180), y+1)
		default:
			geometry = point(x, y)
		}
		titles := []string{"Flood model of Zürich", "flood-model Zurich", "Urban heat (v2.1)", "Heat: urban island", "Ωmega twin", "Water tank twin #3"}
		if rng.IntN(3) > 0 {
			props["title"] = titles[rng.IntN(len(titles))]
		}
		if rng.IntN(3) == 0 {
			props["description"] = titles[rng.IntN(len(titles))] + " for Chișinău"
		}
		switch rng.IntN(4) {
		case 0, 1:
			// Quotes, backslashes and control characters separate words
			// like any other character that is neither letter nor digit.
			kw := []string{"flood", "heat", "water-tank", "say \"tank\"", "back\\slash", "line\nbreak", "tab\tflood", "bell\u0007heat"}
			props["keywords"] = []any{kw[rng.IntN(len(kw))], 7, "Twin", []any{"nested"}}
		case 2:
			props["keywords"] = "flood" // not an array: no keywords
		}
		coll := []string{"c1", "c2"}[rng.IntN(2)]
		st := []catalog.State{catalog.StatePublished, catalog.StatePublished, catalog.StateDraft, catalog.StateDeprecated, catalog.StateArchived}[rng.IntN(5)]
		if rng.IntN(10) == 0 {
			props[catalog.PropOwner] = "carol"
		}
		pb, _ := json.Marshal(props)
		raw := fmt.Sprintf(`{"type":"Feature","stac_version":"1.0.0","id":"i%03d","geometry":%s,"properties":%s,"links":[],"assets":{}}`, i, geometry, pb)
		items = append(items, sealed(t, coll, raw, st))
	}
	return items
}

// genFilter returns a random CQL2-Text filter over genItems' properties.
func genFilter(rng *rand.Rand, depth int) string {
	if depth > 0 && rng.IntN(3) == 0 {
		switch rng.IntN(3) {
		case 0:
			return "(" + genFilter(rng, depth-1) + " AND " + genFilter(rng, depth-1) + ")"
		case 1:
			return "(" + genFilter(rng, depth-1) + " OR " + genFilter(rng, depth-1) + ")"
		default:
			return "NOT (" + genFilter(rng, depth-1) + ")"
		}
	}
	ops := []string{"=", "<>", "<", "<=", ">", ">="}
	op := ops[rng.IntN(len(ops))]
	num := strconv.Itoa(rng.IntN(21) - 5)
	word := []string{"'alpha'", "'ALPHA'", "'beta'", "'æro'", "'zurich'", "'Zürich'", "'b_c'", "'Ωmega'", "''"}[rng.IntN(9)]
	ts := fmt.Sprintf("TIMESTAMP('2024-%02d-%02dT00:00:00Z')", rng.IntN(12)+1, rng.IntN(28)+1)
	iv := fmt.Sprintf("INTERVAL('2024-%02d-01','2024-%02d-15')", rng.IntN(6)+1, rng.IntN(6)+7)
	box := func() string {
		x, y := rng.IntN(360)-180, rng.IntN(160)-80
		w, h := rng.IntN(60)+1, rng.IntN(40)+1
		return fmt.Sprintf("BBOX(%d,%d,%d,%d)", x, y, min(x+w, 180), min(y+h, 90))
	}
	switch rng.IntN(24) {
	case 0:
		return "n " + op + " " + num
	case 1:
		return "s " + op + " " + word
	case 2:
		return "n " + op + " m"
	case 3:
		return "n BETWEEN " + num + " AND " + strconv.Itoa(rng.IntN(10))
	case 4:
		return "n IN (1, 2.5, " + num + ")"
	case 5:
		return "s IN ('alpha', " + word + ")"
	case 6:
		return []string{"n IS NULL", "s IS NULL", "b IS NOT NULL", "tags IS NULL", "geometry IS NULL"}[rng.IntN(5)]
	case 7:
		return "s LIKE " + []string{"'a%'", "'%a'", "'b_c'", "'b\\%c'", "'_lpha'", "'%'", "'Z_rich'"}[rng.IntN(7)]
	case 8:
		return "CASEI(s) = CASEI(" + word + ")"
	case 9:
		return "ACCENTI(s) = ACCENTI(" + word + ")"
	case 10:
		return "ACCENTI(CASEI(s)) LIKE ACCENTI(CASEI(" + strings.TrimSuffix(word, "'") + "%'))"
	case 11:
		return "b = " + []string{"TRUE", "FALSE"}[rng.IntN(2)]
	case 12:
		return "t " + op + " " + ts
	case 13:
		return []string{"T_BEFORE", "T_AFTER", "T_INTERSECTS", "T_DURING", "T_DISJOINT", "T_CONTAINS"}[rng.IntN(6)] + "(t, " + iv + ")"
	case 14:
		return []string{"T_INTERSECTS", "T_BEFORE", "T_EQUALS", "T_AFTER"}[rng.IntN(4)] + "(t, " + ts + ")"
	case 15:
		return []string{"A_CONTAINS", "A_CONTAINEDBY", "A_OVERLAPS", "A_EQUALS"}[rng.IntN(4)] + "(tags, " +
			[]string{"('flood')", "('flood', 'fire')", "('urban', 'forest', 'fire')", "('x')"}[rng.IntN(4)] + ")"
	case 16:
		return []string{"S_INTERSECTS", "S_WITHIN", "S_DISJOINT", "S_CONTAINS", "S_TOUCHES", "S_CROSSES", "S_OVERLAPS"}[rng.IntN(7)] + "(geometry, " + box() + ")"
	case 17:
		return "S_INTERSECTS(geometry, POLYGON((0 0, 60 10, 40 50, 0 0)))"
	case 18:
		return "n + m " + op + " " + num
	case 19:
		return "n * 2 - m " + op + " " + num
	case 20:
		return "n / m " + op + " 1"
	case 21:
		return "id " + op + " 'i2" + strconv.Itoa(rng.IntN(10)) + "'"
	case 22:
		return "collection = 'c" + strconv.Itoa(rng.IntN(2)+1) + "'"
	default:
		return "\"dt:state\" = '" + []string{"published", "archived", "draft"}[rng.IntN(3)] + "'"
	}
}

func testSearchDifferential(t *testing.T, s SearchStore) {
	rng := rand.New(rand.NewPCG(42, 7))
	items := genItems(t, rng, 600)
	insertCollection(t, s, "c1")
	insertCollection(t, s, "c2")
	insertItems(t, s, items...)
	// Under the race detector the same code paths run with fewer cases.
	filters := 1500
	if testing.Short() || raceEnabled {
		filters = 250
	}
	for i := range filters {
		text := genFilter(rng, 3)
		e, err := cql2.ParseText(text)
		if err != nil {
			t.Fatalf("generated filter %q: %v", text, err)
		}
		q := search.Query{Filter: e, Limit: catalog.MaxPageSize, Count: true}
		if i%5 == 0 {
			q.Collections = []string{"c2"}
		}
		if i%7 == 0 {
			terms := []string{"flood", "FLOOD MODEL", "model zurich", "zürich", "heat", "urban heat", "v2", "2 1", "water tank", "twin 3", "ωMEGA", "chișinău", "7", "island", "tank", "say tank", "back slash", "line break", "nbreak", "tab flood", "bell heat", "u0007heat", "nested"}
			q.Q = []string{terms[rng.IntN(len(terms))], terms[rng.IntN(len(terms))]}[:1+rng.IntN(2)]
		}
		if msg := diffSearch(t, s, q, items); msg != "" {
			min := minimise(e, func(x cql2.Expr) bool {
				q := q
				q.Filter = x
				return diffSearch(t, s, q, items) != ""
			})
			q.Filter = min
			t.Fatalf("filter %s (q %q)\nminimised to %s:\n%s", text, q.Q, cql2.PrintText(min), diffSearch(t, s, q, items))
		}
	}
}

// diffSearch compares a store's search with the reference; "" when they
// agree.
func diffSearch(t *testing.T, s SearchStore, q search.Query, items []*catalog.Item) string {
	t.Helper()
	if err := search.Prepare(&q); err != nil {
		return "Prepare: " + err.Error()
	}
	want, n, werr := search.Run(&q, items)
	got, gerr := s.Search(ctx(t), &q)
	switch {
	case werr != nil || gerr != nil:
		if catalog.ErrorCode(werr) != catalog.ErrorCode(gerr) {
			return fmt.Sprintf("reference error %v, store error %v", werr, gerr)
		}
		return ""
	case !slices.Equal(ids(got.Items), ids(want.Items)):
		extra, missing := setDiff(ids(got.Items), ids(want.Items)), setDiff(ids(want.Items), ids(got.Items))
		return fmt.Sprintf("store returns %d items, reference %d; only in the store: %v; only in the reference: %v",
			len(got.Items), len(want.Items), extra, missing)
	case got.Matched == nil || *got.Matched != n:
		return fmt.Sprintf("numberMatched %v, want %d", got.Matched, n)
	}
	return ""
}

func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	if len(out) > 10 {
		out = append(out[:10], "…")
	}
	return out
}

// minimise shrinks a failing filter: it replaces a node by one of its
// boolean children, or drops an argument of AND/OR, while the failure
// persists.
func minimise(e cql2.Expr, fails func(cql2.Expr) bool) cql2.Expr {
	for changed := true; changed; {
		changed = false
		for _, cand := range shrinks(e) {
			if fails(cand) {
				e, changed = cand, true
				break
			}
		}
	}
	return e
}

func shrinks(e cql2.Expr) []cql2.Expr {
	op, ok := e.(*cql2.Op)
	if !ok {
		return nil
	}
	var out []cql2.Expr
	switch op.Name {
	case "and", "or", "not":
		out = append(out, op.Args...)
		if len(op.Args) > 2 {
			for i := range op.Args {
				out = append(out, &cql2.Op{Name: op.Name, Args: slices.Delete(slices.Clone(op.Args), i, i+1)})
			}
		}
		for i, a := range op.Args {
			for _, s := range shrinks(a) {
				args := slices.Clone(op.Args)
				args[i] = s
				out = append(out, &cql2.Op{Name: op.Name, Args: args})
			}
		}
	}
	return out
}

func testSearchPaging(t *testing.T, s SearchStore) {
	rng := rand.New(rand.NewPCG(1, 2))
	items := genItems(t, rng, 150)
	insertCollection(t, s, "c1")
	insertCollection(t, s, "c2")
	insertItems(t, s, items...)
	for _, tc := range []struct {
		name   string
		filter string
		sort   []search.SortKey
		limit  int
	}{
		{"default order", "", nil, 7},
		{"filtered", "n > 2 OR s LIKE 'a%'", nil, 5},
		{"ascending", "", []search.SortKey{{Property: "datetime"}}, 9},
		{"by id", "", []search.SortKey{{Property: "id", Desc: true}}, 11},
		{"by property", "", []search.SortKey{{Property: "properties.n"}}, 8},
		{"by state", "", []search.SortKey{{Property: "dt:state", Desc: true}}, 13},
		{"mixed directions", "", []search.SortKey{{Property: "m", Desc: true}, {Property: "s"}}, 6},
		{"residual", "S_WITHIN(geometry, BBOX(-180,-90,20,90)) AND ACCENTI(s) LIKE 'z%'", nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := search.Query{Sort: tc.sort, Limit: tc.limit}
			if tc.filter != "" {
				e, err := cql2.ParseText(tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				q.Filter = e
			}
			full := q
			full.Limit = catalog.MaxPageSize
			if err := search.Prepare(&full); err != nil {
				t.Fatal(err)
			}
			want, _, err := search.Run(&full, items)
			if err != nil {
				t.Fatal(err)
			}
			walkPages(t, s, q, ids(want.Items))
		})
	}
}

// testSearchPagingUnderInserts walks the pages while items are added at
// both ends and in the middle of the order: every item that was there
// before the walk is visited exactly once.
func testSearchPagingUnderInserts(t *testing.T, s SearchStore) {
	insertCollection(t, s, "c1")
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	var before []string
	for i := range 60 {
		it := NewItem(t, "c1", fmt.Sprintf("a%03d", i), base.Add(time.Duration(i)*time.Hour), point(1, 1), catalog.StatePublished)
		insertItems(t, s, it)
		before = append(before, it.ID)
	}
	q := search.Query{Limit: 7}
	if err := search.Prepare(&q); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for n := 0; ; n++ {
		p, err := s.Search(ctx(t), &q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			seen[it.ID]++
		}
		// New items: newer than all, older than all, and beside the page.
		insertItems(t, s,
			NewItem(t, "c1", fmt.Sprintf("new%03d", 3*n), base.Add(1000*time.Hour), point(1, 1), catalog.StatePublished),
			NewItem(t, "c1", fmt.Sprintf("new%03d", 3*n+1), base.Add(-1000*time.Hour), point(1, 1), catalog.StatePublished),
			NewItem(t, "c1", fmt.Sprintf("new%03d", 3*n+2), base.Add(time.Duration(60-7*n)*time.Hour-time.Minute), point(1, 1), catalog.StatePublished),
		)
		if p.Next == nil {
			break
		}
		q.After = p.Next
		if n > 100 {
			t.Fatal("paging does not end")
		}
	}
	for _, id := range before {
		if seen[id] != 1 {
			t.Errorf("item %s visited %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("item %s visited %d times", id, n)
		}
	}
}

func testSearchSortByProperty(t *testing.T, s SearchStore) {
	insertCollection(t, s, "c1")
	vals := []string{`3`, `-1.5`, `"b"`, `"B"`, `"a"`, `"ä"`, `true`, `false`, `null`, `[1]`, ``, `10`, `"10"`}
	var items []*catalog.Item
	for i, v := range vals {
		prop := ""
		if v != "" {
			prop = `,"v":` + v
		}
		raw := fmt.Sprintf(`{"type":"Feature","id":"s%02d","geometry":null,"properties":{"datetime":"2024-01-01T00:00:00Z"%s}}`, i, prop)
		items = append(items, sealed(t, "c1", raw, catalog.StatePublished))
	}
	insertItems(t, s, items...)
	for _, desc := range []bool{false, true} {
		q := search.Query{Sort: []search.SortKey{{Property: "properties.v", Desc: desc}}, Limit: 100}
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		want, _, err := search.Run(&q, items)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Search(ctx(t), &q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got.Items), ids(want.Items)) {
			t.Fatalf("desc=%v: order %v, want %v", desc, ids(got.Items), ids(want.Items))
		}
		walkPages(t, s, search.Query{Sort: q.Sort[:1], Limit: 3}, ids(want.Items))
	}
	// Numbers first, then strings by code point, booleans, arrays, null.
	q := search.Query{Sort: []search.SortKey{{Property: "v"}}, Limit: 100}
	got := searchAll(t, s, q)
	var order []string
	for _, it := range got.Items {
		order = append(order, string(it.Props["v"]))
	}
	want := []string{`-1.5`, `3`, `10`, `"10"`, `"B"`, `"a"`, `"b"`, `"ä"`, `false`, `true`, `[1]`}
	if !slices.Equal(order[:len(want)], want) {
		t.Fatalf("ascending order of values %v, want %v then nulls", order, want)
	}
}

func testSearchAccess(t *testing.T, s SearchStore) {
	ps, ok := s.(access.PolicyStore)
	if !ok {
		t.Fatal("the store keeps no policies")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	items := genItems(t, rng, 200)
	insertCollection(t, s, "c1")
	insertCollection(t, s, "c2")
	// Shares are policies of the store, which may find the shared items
	// by the policy: a policy written before its items, one written
	// after them, one deleted, and one whose id a deleted policy had.
	share := func(id string, refs ...search.ItemRef) search.Share {
		t.Helper()
		res := []string{"collections:c9", "items:c2/<.*>"} // not shared one by one
		for _, r := range refs {
			res = append(res, access.ItemResource(r.Collection, r.ID))
		}
		p := &access.Policy{ID: id, Subjects: []string{"user:carol"}, Resources: res,
			Actions: []string{"read"}, Effect: "allow", Created: time.Now().UTC().Truncate(time.Microsecond)}
		if err := ps.CreatePolicy(ctx(t), p, nil); err != nil {
			t.Fatalf("CreatePolicy %s: %v", id, err)
		}
		return search.Share{Policy: id, Items: refs}
	}
	ref := func(it *catalog.Item) search.ItemRef { return search.ItemRef{Collection: it.Collection, ID: it.ID} }
	// Shared before they exist: non-drafts (shares list no drafts) of
	// either half, and an item that never comes.
	var before []search.ItemRef
	for _, half := range [][]*catalog.Item{items[:100], items[100:]} {
		n := 0
		for _, it := range half {
			if it.State != catalog.StateDraft && n < 3 {
				before, n = append(before, ref(it)), n+1
			}
		}
	}
	early := share("early", append(before, search.ItemRef{Collection: "c1", ID: "never"})...)
	// Half the items by bulk loads (an insert and an upsert), the rest
	// one by one.
	for _, mode := range []catalog.BulkMode{catalog.BulkInsert, catalog.BulkUpsert} {
		coll := map[catalog.BulkMode]string{catalog.BulkInsert: "c1", catalog.BulkUpsert: "c2"}[mode]
		var load []*catalog.Item
		for _, it := range items[100:] {
			if it.Collection == coll {
				load = append(load, it)
			}
		}
		if _, err := s.BulkLoad(ctx(t), coll, mode, source(load, -1, nil)); err != nil {
			t.Fatalf("BulkLoad %s: %v", coll, err)
		}
	}
	insertItems(t, s, items[:100]...)
	// Items shared with carol that she owns too, and some she does not.
	var carols []search.ItemRef
	for i, it := range items {
		if it.Owner() == "carol" || i%25 == 0 {
			carols = append(carols, ref(it))
		}
	}
	carol := share("carol", carols...)
	share("gone", ref(items[3]), ref(items[4]), ref(items[160]))
	if err := ps.DeletePolicy(ctx(t), "gone", nil); err != nil {
		t.Fatal(err)
	}
	again := share("gone", ref(items[5]), ref(items[1]))
	one := share("one", ref(items[7]))
	for _, a := range []*search.Access{
		{},
		{Owner: "carol", Shares: []search.Share{carol}},
		{Collections: []string{"c1"}, Owner: "carol", Shares: []search.Share{carol}},
		{Collections: []string{"c1"}},
		{Collections: []string{"c1"}, Drafts: []string{"c1"}},
		{Drafts: []string{"c2"}, Shares: []search.Share{early, again}},
		{Owner: "carol"},
		{Collections: []string{"c2"}, Owner: "carol", Shares: []search.Share{one}},
		{Collections: []string{"c2"}, Shares: []search.Share{early, carol, again}},
		{Shares: []search.Share{early}},
	} {
		for _, states := range [][]catalog.State{nil, {catalog.StateArchived, catalog.StateDraft}} {
			q := search.Query{Access: a, States: states, Limit: catalog.MaxPageSize, Count: true}
			if msg := diffSearch(t, s, q, items); msg != "" {
				t.Errorf("access %+v, states %v: %s", a, states, msg)
			}
		}
		// Small pages walk the arms of the rules in step, forwards and
		// back, in the default order, by a property and under a filter.
		for _, q := range []search.Query{
			{Access: a, Limit: 3},
			{Access: a, Limit: 5, Collections: []string{"c1"}},
			{Access: a, Limit: 4, Sort: []search.SortKey{{Property: "n", Desc: true}}},
			{Access: a, Limit: 2, Filter: mustFilter(t, "n > 10 OR s IS NULL"), States: []catalog.State{catalog.StateArchived}},
			{Access: a, Limit: 3, BBox: []float64{-180, -80, 20, 80}, Filter: mustFilter(t, "m < 8")},
			{Access: a, Limit: 2, Filter: mustFilter(t, "S_INTERSECTS(geometry, POLYGON((-180 -80, 0 -80, 0 80, -180 80, -180 -80))) AND m < 7")},
		} {
			if err := search.Prepare(&q); err != nil {
				t.Fatal(err)
			}
			all := q
			all.Limit = catalog.MaxPageSize
			want, _, err := search.Run(&all, items)
			if err != nil {
				t.Fatal(err)
			}
			walkPages(t, s, q, ids(want.Items))
		}
	}
	// Items that come to be carol's later: one given to her by an
	// update, of a collection where she owned nothing, and one created
	// hers in a new collection by a group insert. Her owned items are
	// found wherever they are, however they were written.
	given, err := catalog.ParseItem(items[1].Collection, mustDoc(t, items[1]))
	if err != nil {
		t.Fatal(err)
	}
	given.State, given.Created, given.Updated = items[1].State, items[1].Created, items[1].Updated
	given.Props.Set(catalog.PropOwner, "dave")
	if _, err := given.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateItem(ctx(t), given, items[1].ETag) })
	insertCollection(t, s, "c3")
	fresh := Sealed(t, "c3", `{"type":"Feature","stac_version":"1.0.0","id":"new","geometry":null,
		"properties":{"datetime":"2024-01-01T00:00:00Z","dt:owner":"dave"}}`, catalog.StateDraft)
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertItems(ctx(t), "c3", []*catalog.Item{fresh}) })
	all := append(slices.Clone(items), fresh)
	all[1] = given
	// Shared items that change after they were shared: one gets a new
	// value and state, one becomes a tombstone. Readers of the shares see
	// them as they are now.
	var changed, gone *catalog.Item
	for _, r := range carols {
		i := slices.IndexFunc(all, func(it *catalog.Item) bool { return it.Collection == r.Collection && it.ID == r.ID })
		it := all[i]
		if it.Owner() != "" || it.State == catalog.StateDraft || i == 1 {
			continue
		}
		next, err := catalog.ParseItem(it.Collection, mustDoc(t, it))
		if err != nil {
			t.Fatal(err)
		}
		next.Created, next.Updated, next.State = it.Created, it.Updated, catalog.StateDeprecated
		next.Props.Set("n", 1e6)
		next.Props.Set(catalog.PropState, catalog.StateDeprecated)
		if changed == nil {
			changed = next
		} else {
			next.Doc, next.State = nil, catalog.StateDeleted
			gone = next
		}
		if _, err := next.Seal(); err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateItem(ctx(t), next, it.ETag) })
		all[i] = next
		if gone != nil {
			break
		}
	}
	if gone == nil {
		t.Fatal("too few shared items to change")
	}
	all = slices.DeleteFunc(all, func(it *catalog.Item) bool { return it == gone })
	for _, q := range []search.Query{
		{Access: &search.Access{Owner: "dave"}},
		{Access: &search.Access{Owner: "dave", Collections: []string{"c2"}}},
		{Access: &search.Access{Shares: []search.Share{carol}}},
		{Access: &search.Access{Shares: []search.Share{carol}}, Filter: mustFilter(t, "n = 1000000")},
		{Access: &search.Access{Collections: []string{"c1"}, Shares: []search.Share{carol}}, States: []catalog.State{catalog.StateDeprecated}},
	} {
		q.Limit, q.Count = catalog.MaxPageSize, true
		if msg := diffSearch(t, s, q, all); msg != "" {
			t.Errorf("access %+v, filter %v after the changes: %s", q.Access, q.Filter, msg)
		}
	}
}

func mustDoc(t *testing.T, it *catalog.Item) []byte {
	t.Helper()
	b, err := it.MarshalDocument()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testQueryables(t *testing.T, s SearchStore) {
	qs, ok := s.(search.QueryableStore)
	if !ok {
		t.Fatal("the store keeps no queryables")
	}
	insertCollection(t, s, "c1")
	if doc, err := qs.Queryables(ctx(t), "c1"); err != nil || doc != nil {
		t.Fatalf("Queryables of a new collection = %s, %v", doc, err)
	}
	doc := json.RawMessage(`{"title":"T","properties":{"platform":{"type":"string","x-twinstac-index":true}}}`)
	raw, idx, err := search.ParseRefined(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := qs.SetQueryables(ctx(t), "c1", raw, idx); err != nil {
		t.Fatal(err)
	}
	got, err := qs.Queryables(ctx(t), "c1")
	if err != nil || canonical(t, got) != canonical(t, doc) {
		t.Fatalf("Queryables = %s, %v; want %s", got, err, doc)
	}
	// Replaced, not merged.
	if err := qs.SetQueryables(ctx(t), "c1", json.RawMessage(`{"properties":{}}`), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := qs.Queryables(ctx(t), "c1"); canonical(t, got) != `{"properties":{}}` {
		t.Fatalf("after replacing: %s", got)
	}
	wantCode(t, qs.SetQueryables(ctx(t), "nope", raw, idx), catalog.ENOTFOUND)
	_, err = qs.Queryables(ctx(t), "nope")
	wantCode(t, err, catalog.ENOTFOUND)
	// They go with their collection.
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.DeleteCollection(ctx(t), "c1") })
	insertCollection(t, s, "c1")
	if doc, err := qs.Queryables(ctx(t), "c1"); err != nil || doc != nil {
		t.Fatalf("Queryables of a collection made again = %s, %v", doc, err)
	}
}

func testAggregations(t *testing.T, s SearchStore) {
	rng := rand.New(rand.NewPCG(5, 6))
	items := genItems(t, rng, 400)
	insertCollection(t, s, "c1")
	insertCollection(t, s, "c2")
	insertItems(t, s, items...)
	names := []string{"total_count", "datetime_min", "datetime_max", "datetime_frequency", "collection_frequency",
		"spatial_extent", "tags_frequency", "s_frequency", "dt:state_frequency", "b_frequency", "m_frequency", "n_frequency"}
	for _, tc := range []struct {
		filter   string
		interval string
		states   []catalog.State
	}{
		{"", "", nil},
		{"", "day", []catalog.State{catalog.StateArchived, catalog.StatePublished}},
		{"n > 2 AND s LIKE 'a%'", "month", nil},
		{"S_INTERSECTS(geometry, BBOX(-100, -50, 100, 50))", "", nil},
		{"ACCENTI(s) = 'zurich'", "hour", nil}, // a residual on SQLite
		{"id = 'none'", "", nil},
	} {
		specs, err := search.ParseAggregations("aggregations", names, tc.interval)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, search.AggSpec{Name: "m_ranges", Kind: search.AggRanges, Property: "m", Edges: []float64{0, 2.5, 5, 7}})
		q := search.Query{States: tc.states}
		if tc.filter != "" {
			e, err := cql2.ParseText(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			q.Filter = e
		}
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		var matched []*catalog.Item
		for _, it := range items {
			ok, err := search.Match(&q, it)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				matched = append(matched, it)
			}
		}
		want, _ := json.Marshal(search.AggregateItems(specs, matched))
		res, err := search.Aggregate(ctx(t), s, &q, specs)
		if err != nil {
			t.Fatalf("%q: %v", tc.filter, err)
		}
		got, _ := json.Marshal(res)
		if string(got) != string(want) {
			t.Errorf("filter %q:\n got %s\nwant %s", tc.filter, got, want)
		}
	}
	if _, err := search.ParseAggregations("aggregations", []string{"nonsense"}, ""); catalog.ErrorCode(err) != catalog.EINVALID {
		t.Fatalf("unknown aggregation: %v", err)
	}
}

// mustFilter parses a CQL2 text filter.
func mustFilter(t *testing.T, text string) cql2.Expr {
	t.Helper()
	e, err := cql2.ParseText(text)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
