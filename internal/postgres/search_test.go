package postgres_test

import (
	"fmt"
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
