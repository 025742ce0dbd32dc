package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/storetest"
)

// openTestStore opens and migrates a store in a fresh temporary directory.
func openTestStore(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "twinstac.db"))
}

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) catalog.Store { return openTestStore(t) })
}

var t0 = time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := catalog.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func mustUpdate(t *testing.T, s *Store, fn func(tx catalog.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func insertCollection(t *testing.T, s *Store, id string) {
	t.Helper()
	c := storetest.NewCollection(t, id)
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertCollection(t.Context(), c) })
}

func point(x, y float64) string { return fmt.Sprintf(`{"type":"Point","coordinates":[%v,%v]}`, x, y) }

// count runs a counting query on the read pool.
func count(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.r.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenCreatesDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "data.db")
	s := openAt(t, path)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	var mode string
	if err := s.r.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q (%v), want wal", mode, err)
	}
}

func TestOpenOddPath(t *testing.T) {
	t.Parallel()
	// Characters that a SQLite URI would take for its query or fragment.
	path := filepath.Join(t.TempDir(), "odd?name#1 %20", "data.db")
	s := openAt(t, path)
	insertCollection(t, s, "c")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not at %q: %v", path, err)
	}
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if got := count(t, s, "SELECT count(*) FROM schema_migrations"); got != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", got, len(ms))
	}
	if _, err := s.GetCollection(t.Context(), "c"); err != nil {
		t.Fatalf("collection after second Migrate: %v", err)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	if _, err := s.w.ExecContext(t.Context(), "INSERT INTO schema_migrations (version, name, applied) VALUES (9999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	err := s.Migrate(t.Context())
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Migrate on a newer schema = %v, want a refusal", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	insertCollection(t, s, "c")
	it := storetest.NewItem(t, "c", "kept", t0, point(1, 2), catalog.StatePublished)
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertItem(t.Context(), it) })
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openAt(t, path)
	got, err := s.GetItem(t.Context(), "c", "kept")
	if err != nil {
		t.Fatalf("GetItem after reopen: %v", err)
	}
	if got.ETag != it.ETag || got.State != catalog.StatePublished {
		t.Fatalf("after reopen: etag %s state %s, want %s %s", got.ETag, got.State, it.ETag, catalog.StatePublished)
	}
	p, err := s.ListItems(t.Context(), catalog.ItemQuery{Collection: "c", BBox: []float64{0, 0, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 {
		t.Fatalf("bbox after reopen matched %d items, want 1", len(p.Items))
	}
}

// rtreeBox returns the R*Tree row of an item, or ok false when it has none.
func rtreeBox(t *testing.T, s *Store, collection, id string) (box [4]float64, ok bool) {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT r.minx, r.miny, r.maxx, r.maxy FROM items i
		JOIN items_rtree r ON r.id = i.rowid WHERE i.collection = ? AND i.id = ?`, collection, id)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		if ok {
			t.Fatalf("item %s/%s has more than one R*Tree row", collection, id)
		}
		if err := rows.Scan(&box[0], &box[1], &box[2], &box[3]); err != nil {
			t.Fatal(err)
		}
		ok = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return box, ok
}

func TestRTreeFollowsItems(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	insertCollection(t, s, "c")
	it := storetest.NewItem(t, "c", "a", t0, point(10, 20), catalog.StateDraft)
	none := storetest.NewItem(t, "c", "none", t0, "null", catalog.StateDraft)
	cross := storetest.NewItem(t, "c", "cross", t0, `{"type":"LineString","coordinates":[[170,1],[179,2]]}`, catalog.StateDraft)
	cross.BBox = []float64{170, 1, -170, 2} // a bbox written across the antimeridian
	if _, err := cross.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error {
		for _, x := range []*catalog.Item{it, none, cross} {
			if err := tx.InsertItem(ctx, x); err != nil {
				return err
			}
		}
		return nil
	})
	if box, ok := rtreeBox(t, s, "c", "a"); !ok || box != [4]float64{10, 20, 10, 20} {
		t.Fatalf("after insert: rtree %v (%v), want [10 20 10 20]", box, ok)
	}
	if _, ok := rtreeBox(t, s, "c", "none"); ok {
		t.Fatal("an item without geometry has an R*Tree row")
	}
	if box, ok := rtreeBox(t, s, "c", "cross"); !ok || box != [4]float64{-180, 1, 180, 2} {
		t.Fatalf("antimeridian bbox: rtree %v (%v), want [-180 1 180 2]", box, ok)
	}

	// Moving the geometry moves the row.
	moved := storetest.NewItem(t, "c", "a", t0, point(-30, -40), catalog.StateDraft)
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateItem(ctx, moved, it.ETag) })
	if box, ok := rtreeBox(t, s, "c", "a"); !ok || box != [4]float64{-30, -40, -30, -40} {
		t.Fatalf("after update: rtree %v (%v), want [-30 -40 -30 -40]", box, ok)
	}
	// Giving a geometry to an item without one adds a row.
	placed := storetest.NewItem(t, "c", "none", t0, point(5, 5), catalog.StateDraft)
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateItem(ctx, placed, none.ETag) })
	if _, ok := rtreeBox(t, s, "c", "none"); !ok {
		t.Fatal("an item given a geometry has no R*Tree row")
	}

	// A tombstone leaves the index.
	tomb := &catalog.Item{Collection: "c", ID: "a", State: catalog.StateDeleted, Start: t0, End: t0, Created: t0, Updated: t0}
	if _, err := tomb.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateItem(ctx, tomb, moved.ETag) })
	if _, ok := rtreeBox(t, s, "c", "a"); ok {
		t.Fatal("a tombstone kept its R*Tree row")
	}
	if got := count(t, s, "SELECT count(*) FROM items WHERE id = 'a' AND content IS NULL AND minx IS NULL"); got != 1 {
		t.Fatalf("tombstone row: %d rows without content and bbox, want 1", got)
	}

	// Deleting the collection empties the index.
	if got := count(t, s, "SELECT count(*) FROM items_rtree"); got != 2 {
		t.Fatalf("%d R*Tree rows before the collection delete, want 2", got)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.DeleteCollection(ctx, "c") })
	if got := count(t, s, "SELECT count(*) FROM items_rtree"); got != 0 {
		t.Fatalf("%d R*Tree rows after the collection delete, want 0", got)
	}
	if got := count(t, s, "SELECT count(*) FROM items"); got != 0 {
		t.Fatalf("%d items after the collection delete, want 0", got)
	}
}

func TestAntimeridianItemMatchesBothSides(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	cross := storetest.NewItem(t, "c", "cross", t0, `{"type":"LineString","coordinates":[[170,1],[179,2]]}`, catalog.StateDraft)
	cross.BBox = []float64{170, 1, -170, 2}
	if _, err := cross.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertItem(t.Context(), cross) })
	for _, bbox := range [][]float64{{175, 0, 178, 3}, {-175, 0, -172, 3}, {178, 0, -178, 3}} {
		p, err := s.ListItems(t.Context(), catalog.ItemQuery{Collection: "c", BBox: bbox})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != 1 {
			t.Fatalf("bbox %v matched %d items, want 1", bbox, len(p.Items))
		}
	}
}

// TestConcurrentWriters checks that writers queue for the one write
// connection instead of failing with SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	const workers, each = 8, 50
	var items [workers][each]*catalog.Item
	for w := range workers {
		for i := range each {
			items[w][i] = storetest.NewItem(t, "c", fmt.Sprintf("w%d-%d", w, i), t0, point(float64(w), float64(i)), catalog.StateDraft)
		}
	}
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				err := s.Update(t.Context(), func(tx catalog.Tx) error {
					it := items[w][i]
					if err := tx.InsertItem(t.Context(), it); err != nil {
						return err
					}
					return tx.AppendEvents(t.Context(), catalog.NewItemEvent(catalog.EventItemCreated, it, t0))
				})
				if err != nil {
					errs <- err
					return
				}
				// Readers run beside the writers.
				if _, err := s.ListItems(t.Context(), catalog.ItemQuery{Collection: "c", Limit: 5}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent writer: %v", err)
		}
	}
	if got := count(t, s, "SELECT count(*) FROM items"); got != workers*each {
		t.Fatalf("%d items, want %d", got, workers*each)
	}
	if got := count(t, s, "SELECT count(*) FROM outbox"); got != workers*each {
		t.Fatalf("%d events, want %d", got, workers*each)
	}
}

// TestBusyIsUnavailable holds the write lock from a second store on the
// same file (as another process would) and checks that a writer that
// gives up waiting reports EUNAVAILABLE, without the driver's message.
func TestBusyIsUnavailable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data.db")
	holder := openAt(t, path)
	impatient, err := open(t.Context(), path, options{busyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = impatient.Close() })

	locked, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- holder.Update(t.Context(), func(catalog.Tx) error {
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	err = impatient.Update(t.Context(), func(tx catalog.Tx) error {
		return tx.InsertCollection(t.Context(), storetest.NewCollection(t, "c"))
	})
	close(release)
	wantCode(t, err, catalog.EUNAVAILABLE)
	if msg := catalog.ErrorMessage(err); strings.Contains(strings.ToLower(msg), "sqlite") {
		t.Fatalf("message %q shows the driver", msg)
	}
	if err := <-done; err != nil {
		t.Fatalf("holder: %v", err)
	}
}

func TestConflictMessages(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	insertCollection(t, s, "c")
	it := storetest.NewItem(t, "c", "dup", t0, "null", catalog.StateDraft)
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertItem(ctx, it) })

	cases := []struct {
		name string
		fn   func(tx catalog.Tx) error
		code string
		msg  string
	}{
		{"item exists", func(tx catalog.Tx) error { return tx.InsertItem(ctx, it) },
			catalog.ECONFLICT, `item "dup" already exists in collection "c"`},
		{"collection exists", func(tx catalog.Tx) error { return tx.InsertCollection(ctx, storetest.NewCollection(t, "c")) },
			catalog.ECONFLICT, `collection "c" already exists`},
		{"no collection", func(tx catalog.Tx) error {
			return tx.InsertItem(ctx, storetest.NewItem(t, "nope", "x", t0, "null", catalog.StateDraft))
		}, catalog.ENOTFOUND, `collection "nope" not found`},
		{"stale etag", func(tx catalog.Tx) error { return tx.UpdateItem(ctx, it, "stale") },
			catalog.EPRECONDITION, `item "dup" of collection "c" has changed`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(ctx, tc.fn)
			wantCode(t, err, tc.code)
			msg := catalog.ErrorMessage(err)
			if !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q, want it to contain %q", msg, tc.msg)
			}
			if strings.Contains(msg, "constraint") || strings.Contains(msg, "SQLITE") {
				t.Fatalf("message %q shows the driver", msg)
			}
		})
	}
}

func TestBulkLoadFailingSourceLeavesNothing(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	boom := errors.New("reading the upload failed")
	n := 0
	next := func() (*catalog.Item, error) {
		if n == 500 {
			return nil, boom
		}
		n++
		return storetest.NewItem(t, "c", fmt.Sprintf("b%04d", n), t0.Add(time.Duration(n)*time.Minute), point(1, 1), catalog.StateDraft), nil
	}
	_, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, next)
	if !errors.Is(err, boom) {
		t.Fatalf("BulkLoad = %v, want the error of next", err)
	}
	for table, want := range map[string]int{"items": 0, "items_rtree": 0, "outbox": 0} {
		if got := count(t, s, "SELECT count(*) FROM "+table); got != want {
			t.Fatalf("%s has %d rows after the failed load, want %d", table, got, want)
		}
	}
	// The write connection is free again.
	insertCollection(t, s, "after")
}

func TestBulkLoadUpsertKeepsCreated(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	orig := storetest.NewItem(t, "c", "x", t0, point(1, 1), catalog.StateDraft)
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertItem(t.Context(), orig) })

	later := t0.Add(time.Hour)
	repl := storetest.NewItem(t, "c", "x", t0, point(2, 2), catalog.StateDraft)
	repl.Created, repl.Updated = later, later
	repl.Props.Set(catalog.PropCreated, catalog.FormatTime(later))
	if _, err := repl.Seal(); err != nil {
		t.Fatal(err)
	}
	given := repl.ETag
	sent := false
	res, err := s.BulkLoad(t.Context(), "c", catalog.BulkUpsert, func() (*catalog.Item, error) {
		if sent {
			return nil, io.EOF
		}
		sent = true
		return repl, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res != (catalog.BulkResult{Updated: 1}) {
		t.Fatalf("result %+v, want 1 updated", res)
	}
	if repl.ETag != given || !repl.Created.Equal(later) {
		t.Fatal("BulkLoad changed the caller's item")
	}
	got, err := s.GetItem(t.Context(), "c", "x")
	if err != nil {
		t.Fatal(err)
	}
	// The ETag is that of the stored document: sealing what was read
	// gives the same one.
	stored := got.ETag
	if _, err := got.Seal(); err != nil {
		t.Fatal(err)
	}
	if got.ETag != stored || stored == given {
		t.Fatalf("stored etag %s, resealed %s, given %s: want the stored one to match its document", stored, got.ETag, given)
	}
	evs, err := s.ListEvents(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var payload catalog.EventPayload
	if len(evs) != 1 || evs[0].Type != catalog.EventItemUpdated || json.Unmarshal(evs[0].Payload, &payload) != nil || payload.ETag != stored {
		t.Fatalf("events %+v, want one item.updated with etag %s", evs, stored)
	}
	if box, ok := rtreeBox(t, s, "c", "x"); !ok || box != [4]float64{2, 2, 2, 2} {
		t.Fatalf("rtree after upsert %v (%v), want [2 2 2 2]", box, ok)
	}
}

func TestBulkLoadUnknownMode(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	_, err := s.BulkLoad(t.Context(), "c", "merge", func() (*catalog.Item, error) { return nil, io.EOF })
	wantCode(t, err, catalog.EINVALID)
}

func TestEmptyPages(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	p, err := s.ListItems(t.Context(), catalog.ItemQuery{Collection: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Items == nil || len(p.Items) != 0 || p.Next != nil || p.Prev != nil {
		t.Fatalf("empty collection page = %+v, want an empty, non-nil list and no cursors", p)
	}
	_, err = s.ListItems(t.Context(), catalog.ItemQuery{Collection: "c", After: &catalog.Cursor{ID: "a"}, Before: &catalog.Cursor{ID: "b"}})
	wantCode(t, err, catalog.EINVALID)
}

func BenchmarkBulkLoad(b *testing.B) {
	const n = 10000
	s := openTestStore(b)
	ctx := context.Background()
	template := make([]*catalog.Item, n)
	for i := range template {
		g := point(float64(i%360)-179.5, float64(i%170)-85)
		template[i] = storetest.NewItem(b, "tmpl", fmt.Sprintf("item-%06d", i), t0.Add(time.Duration(i)*time.Minute), g, catalog.StateDraft)
	}
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		id := fmt.Sprintf("bench-%d", iter)
		c := storetest.NewCollection(b, id)
		if err := s.Update(ctx, func(tx catalog.Tx) error { return tx.InsertCollection(ctx, c) }); err != nil {
			b.Fatal(err)
		}
		items := make([]*catalog.Item, n)
		for i, tm := range template {
			it := *tm
			it.Collection = id
			it.Doc = tm.Doc.Clone()
			it.Doc.Set("collection", id)
			if _, err := it.Seal(); err != nil {
				b.Fatal(err)
			}
			items[i] = &it
		}
		k := 0
		b.StartTimer()
		res, err := s.BulkLoad(ctx, id, catalog.BulkInsert, func() (*catalog.Item, error) {
			if k == n {
				return nil, io.EOF
			}
			k++
			return items[k-1], nil
		})
		if err != nil || res.Inserted != n {
			b.Fatalf("BulkLoad = %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "items/s")
}

// TestItemDatetimeMigration: migration 0013 gives items stored without
// properties.datetime a null one, and leaves the others alone.
func TestItemDatetimeMigration(t *testing.T) {
	s := openTestStore(t)
	insertCollection(t, s, "c")
	mustUpdate(t, s, func(tx catalog.Tx) error {
		for _, id := range []string{"a", "b"} {
			if err := tx.InsertItem(t.Context(), storetest.NewItem(t, "c", id, time.Unix(0, 0), point(1, 2), catalog.StateDraft)); err != nil {
				return err
			}
		}
		return nil
	})
	w, _ := s.DBs()
	if _, err := w.ExecContext(t.Context(), `UPDATE items SET content = json_remove(content, '$.properties.datetime') WHERE id = 'a'`); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("migrations/0013_item_datetime.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(t.Context(), string(raw)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM items WHERE json_type(content, '$.properties.datetime') = 'null' AND id = 'a'`); n != 1 {
		t.Fatal("the item without datetime did not get a null one")
	}
	if n := count(t, s, `SELECT count(*) FROM items WHERE json_type(content, '$.properties.datetime') = 'text' AND id = 'b'`); n != 1 {
		t.Fatal("the item with a datetime changed")
	}
}
