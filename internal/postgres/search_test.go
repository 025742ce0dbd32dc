package postgres_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/storetest"
)

func TestSearchContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunSearch(t, func(t *testing.T) storetest.SearchStore { return openTestStore(t) })
}

// TestSearchContractShortProbes runs the contract with probes of a few
// rows, so that spatial pages take every way: a probe that fills the
// page, one that runs out of its prefix, and one whose arm ends first.
func TestSearchContractShortProbes(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunSearch(t, func(t *testing.T) storetest.SearchStore {
		s := openTestStore(t)
		postgres.SetProbeRows(s, 7)
		return s
	})
}

// A search within a count budget is not counted when the planner expects
// its count to cost more than the limit; below it, the count is exact.
func TestSearchCountCost(t *testing.T) {
	t.Parallel()
	url := testURL(t)
	schema := newSchema(t, url)
	s, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	insertCollection(t, s, "c")
	var list []*catalog.Item
	for i := range 400 {
		list = append(list, storetest.NewItem(t, "c", fmt.Sprintf("i%03d", i), t0.Add(time.Duration(i)*time.Minute), "null", catalog.StatePublished))
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error {
		for _, it := range list {
			if err := tx.InsertItem(t.Context(), it); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema + ", public"
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	if _, err := conn.Exec(t.Context(), `ANALYZE items`); err != nil {
		t.Fatal(err)
	}
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

// TestSearchProbes walks every page of spatial searches whose pages start
// with a probe of the order index, with probes that fill a page, run out
// of their prefix or reach the end of their arm, as administrator and
// under read rules, and holds each page to the reference search.
func TestSearchProbes(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	var all []*catalog.Item
	for c, coll := range []string{"c1", "c2", "c3"} {
		insertCollection(t, s, coll)
		for i := range 120 {
			// Points on a 12×10 grid; every collection's times interleave.
			geom := fmt.Sprintf(`{"type":"Point","coordinates":[%d.5,%d.5]}`, i%12, i/12)
			st := catalog.StatePublished
			if i%17 == 0 {
				st = catalog.StateDraft
			}
			all = append(all, storetest.NewItem(t, coll, fmt.Sprintf("i%03d", i), t0.Add(time.Duration(3*i+c)*time.Minute), geom, st))
		}
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error {
		for _, it := range all {
			if err := tx.InsertItem(t.Context(), it); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var shared []search.ItemRef
	for i := 0; i < 120; i += 9 {
		shared = append(shared, search.ItemRef{Collection: "c2", ID: fmt.Sprintf("i%03d", i)})
	}
	accesses := map[string]*search.Access{
		"admin":  nil,
		"reader": {Collections: []string{"c1", "c3"}, Drafts: []string{"c3"}, Items: shared, Owner: "nobody"},
	}
	boxes := [][]float64{{0, 0, 12, 10}, {2, 2, 5, 4}, {11, 9, 12, 10}, {20, 20, 21, 21}}
	for _, rows := range []int{0, 3, 50} {
		postgres.SetProbeRows(s, rows)
		for name, access := range accesses {
			for _, box := range boxes {
				for _, limit := range []int{2, 13} {
					for _, desc := range []bool{true, false} {
						q := search.Query{BBox: box, Limit: limit, Access: access}
						if !desc {
							q.Sort = []search.SortKey{{Property: search.PropDatetime}}
						}
						if err := search.Prepare(&q); err != nil {
							t.Fatal(err)
						}
						for pages := 0; ; pages++ {
							if pages > 400 {
								t.Fatal("paging does not end")
							}
							got, err := s.Search(t.Context(), &q)
							if err != nil {
								t.Fatal(err)
							}
							want, _, err := search.Run(&q, all)
							if err != nil {
								t.Fatal(err)
							}
							if g, w := refs(got.Items), refs(want.Items); !slices.Equal(g, w) {
								t.Fatalf("probe %d, %s, bbox %v, limit %d, desc %v, page %d: got %v, want %v", rows, name, box, limit, desc, pages, g, w)
							}
							if got.Next == nil {
								break
							}
							q.After = got.Next
						}
					}
				}
			}
		}
	}
}

func refs(items []*catalog.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Collection + "/" + it.ID
	}
	return out
}
