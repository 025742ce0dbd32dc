package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/storetest"
)

// propertyIndexes lists the property indexes of the collections'
// partitions.
func propertyIndexes(t *testing.T, s *postgres.Store) []string {
	return indexesLike(t, s, "^items_c[0-9]+_q")
}

// indexesLike lists the indexes whose names match a pattern.
func indexesLike(t *testing.T, s *postgres.Store, pattern string) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT indexname FROM pg_indexes
		WHERE schemaname = current_schema() AND indexname ~ $1 ORDER BY 1`, pattern)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestIndexedQueryables(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	insertCollection(t, s, "eo")
	var items []*catalog.Item
	for i := range 3000 {
		kw := fmt.Sprintf(`"k%d","all"`, i%40)
		if i%500 == 0 {
			kw += `,"rare"`
		}
		raw := fmt.Sprintf(`{"type":"Feature","id":"i%04d","geometry":null,"properties":{"datetime":"2024-01-01T00:00:00Z","platform":"p%d","cloud":%d,"keywords":[%s]}}`, i, i%50, i%100, kw)
		items = append(items, storetest.Sealed(t, "eo", raw, catalog.StatePublished))
	}
	if err := s.Update(ctx, func(tx catalog.Tx) error {
		for _, it := range items {
			if err := tx.InsertItem(ctx, it); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE items"); err != nil {
		t.Fatal(err)
	}
	doc := json.RawMessage(`{"properties":{"platform":{"type":"string","x-twinstac-index":true},"cloud":{"type":"integer","x-twinstac-index":true},
		"keywords":{"type":"array","x-twinstac-index":true}}}`)
	_, idx, err := search.ParseRefined(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueryables(ctx, "eo", doc, idx); err != nil {
		t.Fatal(err)
	}
	if got := propertyIndexes(t, s); len(got) != 5 {
		t.Fatalf("indexes after marking three properties (an array has no sort index): %v", got)
	}
	// The copies of shared items get the filter index of each property
	// some collection marks, for as long as one does.
	if got := indexesLike(t, s, "^shared_items_q"); len(got) != 3 {
		t.Fatalf("shared_items indexes after marking three properties: %v", got)
	}
	insertCollection(t, s, "eo2")
	platform := json.RawMessage(`{"properties":{"platform":{"type":"string","x-twinstac-index":true}}}`)
	_, pidx, err := search.ParseRefined(platform)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueryables(ctx, "eo2", platform, pidx); err != nil {
		t.Fatal(err)
	}
	if got := indexesLike(t, s, "^shared_items_q"); len(got) != 3 {
		t.Fatalf("shared_items indexes after a second collection marks one of them: %v", got)
	}
	back, err := s.Queryables(ctx, "eo")
	if err != nil || !strings.Contains(string(back), "x-twinstac-index") {
		t.Fatalf("Queryables = %s, %v", back, err)
	}
	// The planner uses them: an equality on the indexed property, newest
	// first, and a sort by it.
	e, err := cql2.ParseText("platform = 'p7' AND cloud < 50")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []search.Query{
		{Filter: e},
		{Sort: []search.SortKey{{Property: "cloud", Desc: true}}},
	} {
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		plan, err := s.ExplainSearch(ctx, &q, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "_q") {
			t.Errorf("the plan does not use a property index:\n%s", plan)
		}
	}
	// The planner knows from the GIN index's statistics how many arrays
	// hold a value (75 of 3,000 hold "k7", all of them "all"; without
	// them it expects 1 in 100), and reads the index for a rare one (6
	// hold "rare").
	if _, err := s.Pool().Exec(ctx, "ANALYZE items"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		filter   string
		min, max int
		index    bool
	}{{`A_CONTAINS(keywords, ('k7'))`, 50, 150, false}, {`A_CONTAINS(keywords, ('all'))`, 2500, 3100, false}, {`A_CONTAINS(keywords, ('rare'))`, 1, 20, true}} {
		e, err := cql2.ParseText(c.filter)
		if err != nil {
			t.Fatal(err)
		}
		q := search.Query{Filter: e, Limit: 10}
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		plan, err := s.ExplainSearch(ctx, &q, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if n := expectedRows(t, strings.Split(plan, "\n")); n < c.min || n > c.max {
			t.Errorf("%s: the planner expects %d matches, want %d–%d:\n%s", c.filter, n, c.min, c.max, plan)
		}
		if c.index && !strings.Contains(plan, "_q") {
			t.Errorf("%s: the plan does not use the array's index:\n%s", c.filter, plan)
		}
		p, err := s.Search(ctx, &q)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(10, c.max); len(p.Items) != want && len(p.Items) != 6 {
			t.Errorf("%s: %d items, want %d", c.filter, len(p.Items), want)
		}
	}
	// Setting it again is a no-op; unmarking drops the indexes.
	if err := s.SetQueryables(ctx, "eo", doc, idx); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueryables(ctx, "eo", json.RawMessage(`{"properties":{"platform":{"type":"string"}}}`), nil); err != nil {
		t.Fatal(err)
	}
	if got := propertyIndexes(t, s); len(got) != 2 {
		t.Fatalf("indexes after unmarking (eo2's platform stays): %v", got)
	}
	if got := indexesLike(t, s, "^shared_items_q"); len(got) != 1 {
		t.Fatalf("shared_items indexes after eo unmarks both and eo2 keeps platform: %v", got)
	}
	if err := s.SetQueryables(ctx, "eo2", json.RawMessage(`{"properties":{}}`), nil); err != nil {
		t.Fatal(err)
	}
	if got := indexesLike(t, s, "^(items_c[0-9]+|shared_items)_q"); len(got) != 0 {
		t.Fatalf("indexes after unmarking everything: %v", got)
	}
	if err := s.SetQueryables(ctx, "nope", doc, idx); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("SetQueryables on a missing collection: %v", err)
	}
	if _, err := s.Queryables(ctx, "nope"); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("Queryables of a missing collection: %v", err)
	}
}
