package postgres_test

import (
	"os"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/storetest"
)

func TestPolicyContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunPolicies(t, func(t *testing.T) storetest.PolicyStore { return openTestStore(t) })
}

// TestItemReadersBackfill checks that migration 0012 derives the grants
// and readers of the policies stored before it as the store does when it
// writes a policy (access.SharedItem).
func TestItemReadersBackfill(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	insertCollection(t, s, "c1")
	var list []*catalog.Item
	for _, id := range []string{"a", "c", "<d>"} {
		list = append(list, storetest.NewItem(t, "c1", id, t0, point(1, 2), catalog.StatePublished))
	}
	if _, err := s.BulkLoad(ctx, "c1", catalog.BulkInsert, items(list)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*access.Policy{
		{ID: "p1", Resources: []string{"items:c1/a", "items:c1/b/x", "items:c1/<.*>", "items:c1/", "items:/a", "collections:c1", "items:c1/<d>", "items:c1/c"}},
		{ID: "p2", Resources: []string{"items:c1/a", "items:c1/a", "items:c2/zz"}},
	} {
		p.Subjects, p.Actions, p.Effect, p.Created = []string{"user:u"}, []string{"read"}, "allow", t0
		if err := s.CreatePolicy(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		var out string
		err := s.Pool().QueryRow(ctx, `SELECT
			(SELECT string_agg(id || '=' || array_to_string(readers, ','), ' ' ORDER BY id) FROM items WHERE readers IS NOT NULL) || ' | ' ||
			(SELECT string_agg(collection || '/' || id || '=' || policy, ' ' ORDER BY collection, id, policy) FROM item_grants)`).Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	const want = "a=p1,p2 c=p1 | c1/a=p1 c1/a=p2 c1/b/x=p1 c1/c=p1 c2/zz=p2"
	if got := state(); got != want {
		t.Fatalf("after CreatePolicy: %s, want %s", got, want)
	}
	raw, err := os.ReadFile("migrations/0012_item_readers.sql")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(raw), "-- The grants of the policies stored so far")
	if i < 0 {
		t.Fatal("migration 0012 has no backfill")
	}
	backfill := string(raw[i:])
	if _, err := s.Pool().Exec(ctx, `DELETE FROM item_grants; UPDATE items SET readers = NULL;`+backfill); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != want {
		t.Fatalf("after the migration's backfill: %s, want %s", got, want)
	}
	if err := s.DeletePolicy(ctx, "p1", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := state(), "a=p2 | c1/a=p2 c2/zz=p2"; got != want {
		t.Fatalf("after DeletePolicy: %s, want %s", got, want)
	}
}

// TestInsertItemsReaders checks that items inserted together get the
// readers of the policies that shared them before they existed, as an
// item inserted alone does.
func TestInsertItemsReaders(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	insertCollection(t, s, "c1")
	p := &access.Policy{ID: "p1", Resources: []string{"items:c1/x"}, Subjects: []string{"user:u"}, Actions: []string{"read"}, Effect: "allow", Created: t0}
	if err := s.CreatePolicy(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	list := []*catalog.Item{
		storetest.NewItem(t, "c1", "x", t0, point(1, 2), catalog.StatePublished),
		storetest.NewItem(t, "c1", "y", t0, point(1, 2), catalog.StatePublished),
	}
	if err := s.Update(ctx, func(tx catalog.Tx) error { return tx.InsertItems(ctx, "c1", list) }); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := s.Pool().QueryRow(ctx, `SELECT string_agg(id || '=' || coalesce(array_to_string(readers, ','), '-'), ' ' ORDER BY id) FROM items`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "x=p1 y=-" {
		t.Fatalf("readers: %s, want x=p1 y=-", got)
	}
}

// TestSharedItemsCopies checks that shared_items (migration 0020) holds
// an uncompressed copy of exactly the items with readers, as the
// triggers and the migration's backfill write them, and loses them with
// their policy and their collection.
func TestSharedItemsCopies(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	insertCollection(t, s, "c1")
	var list []*catalog.Item
	for _, id := range []string{"a", "b", "c"} {
		it := storetest.NewItem(t, "c1", id, t0, point(1, 2), catalog.StatePublished)
		// Big enough to be compressed in items.
		it.Props.Set("description", strings.Repeat("a twin of a water tank ", 200))
		if _, err := it.Seal(); err != nil {
			t.Fatal(err)
		}
		list = append(list, it)
	}
	if _, err := s.BulkLoad(ctx, "c1", catalog.BulkInsert, items(list)); err != nil {
		t.Fatal(err)
	}
	p := &access.Policy{ID: "p1", Subjects: []string{"user:u"}, Resources: []string{"items:c1/a", "items:c1/c"},
		Actions: []string{"read"}, Effect: "allow", Created: t0}
	if err := s.CreatePolicy(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	copies := func() string {
		var out string
		err := s.Pool().QueryRow(ctx, `SELECT coalesce(string_agg(c.id || '=' || array_to_string(c.readers, ',') ||
			CASE WHEN c.content = i.content AND c.etag = i.etag AND c.state = i.state THEN '' ELSE ' differs' END ||
			CASE WHEN pg_column_compression(c.content) IS NULL THEN '' ELSE ' compressed' END, ' ' ORDER BY c.id), '')
			FROM shared_items c JOIN items i USING (collection, id)`).Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if n := count(t, s, `SELECT count(*) FROM items WHERE pg_column_compression(content) IS NOT NULL`); n != 3 {
		t.Fatalf("%d of the items are stored compressed, want all 3", n)
	}
	const want = "a=p1 c=p1"
	if got := copies(); got != want {
		t.Fatalf("shared_items = %q, want %q", got, want)
	}
	raw, err := os.ReadFile("migrations/0020_shared_items.sql")
	if err != nil {
		t.Fatal(err)
	}
	backfill := string(raw[strings.LastIndex(string(raw), "INSERT INTO shared_items"):])
	if _, err := s.Pool().Exec(ctx, `DELETE FROM shared_items;`+backfill); err != nil {
		t.Fatal(err)
	}
	if got := copies(); got != want {
		t.Fatalf("shared_items after the backfill = %q, want %q", got, want)
	}
	if err := s.DeletePolicy(ctx, "p1", nil); err != nil {
		t.Fatal(err)
	}
	if got := copies(); got != "" {
		t.Fatalf("shared_items after DeletePolicy = %q", got)
	}
	if err := s.CreatePolicy(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx catalog.Tx) error { return tx.DeleteCollection(ctx, "c1") }); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM shared_items`); n != 0 {
		t.Fatalf("%d copies left after deleting their collection", n)
	}
}
