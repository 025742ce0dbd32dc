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

// propertyIndexes lists the property indexes of a collection's partition.
func propertyIndexes(t *testing.T, s *postgres.Store) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT indexname FROM pg_indexes
		WHERE schemaname = current_schema() AND indexname ~ '^items_c[0-9]+_q' ORDER BY 1`)
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
		raw := fmt.Sprintf(`{"type":"Feature","id":"i%04d","geometry":null,"properties":{"datetime":"2024-01-01T00:00:00Z","platform":"p%d","cloud":%d}}`, i, i%50, i%100)
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
	doc := json.RawMessage(`{"properties":{"platform":{"type":"string","x-twinstac-index":true},"cloud":{"type":"integer","x-twinstac-index":true}}}`)
	_, idx, err := search.ParseRefined(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueryables(ctx, "eo", doc, idx); err != nil {
		t.Fatal(err)
	}
	if got := propertyIndexes(t, s); len(got) != 4 {
		t.Fatalf("indexes after marking two properties: %v", got)
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
	// Setting it again is a no-op; unmarking drops the indexes.
	if err := s.SetQueryables(ctx, "eo", doc, idx); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueryables(ctx, "eo", json.RawMessage(`{"properties":{"platform":{"type":"string"}}}`), nil); err != nil {
		t.Fatal(err)
	}
	if got := propertyIndexes(t, s); len(got) != 0 {
		t.Fatalf("indexes after unmarking: %v", got)
	}
	if err := s.SetQueryables(ctx, "nope", doc, idx); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("SetQueryables on a missing collection: %v", err)
	}
	if _, err := s.Queryables(ctx, "nope"); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("Queryables of a missing collection: %v", err)
	}
}
