package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/storetest"
	"github.com/twinstac/twinstac/internal/testdb"
)

const urlEnv = "TWINSTAC_TEST_POSTGRES_URL"

// testURL returns the URL of the test database. Without one the test is
// skipped, or fails when TWINSTAC_TEST_REQUIRE_SERVICES=1.
func testURL(t testing.TB) string {
	t.Helper()
	return testdb.ServiceURL(t, urlEnv)
}

// newSchema returns a fresh schema name and drops the schema when the
// test ends.
func newSchema(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// openTestStore opens a migrated store in a schema of its own, dropped
// (after the store is closed) when the test ends.
func openTestStore(t testing.TB) *postgres.Store {
	t.Helper()
	s, _ := openSchemaStore(t, "")
	return s
}

// openSchemaStore is openTestStore with params added to the test URL
// (such as "&pool_max_conns=1"); it returns the schema too.
func openSchemaStore(t testing.TB, params string) (*postgres.Store, string) {
	t.Helper()
	url := testURL(t)
	schema := newSchema(t, url)
	s, err := postgres.Open(context.Background(), url+params, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, schema
}

func TestContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.Run(t, func(t *testing.T) catalog.Store { return openTestStore(t) })
}

var t0 = time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := catalog.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func insertCollection(t *testing.T, s catalog.Store, id string) {
	t.Helper()
	c := storetest.NewCollection(t, id)
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertCollection(t.Context(), c) }); err != nil {
		t.Fatalf("insert collection %s: %v", id, err)
	}
}

// items yields the items and then io.EOF.
func items(list []*catalog.Item) func() (*catalog.Item, error) {
	i := 0
	return func() (*catalog.Item, error) {
		if i == len(list) {
			return nil, io.EOF
		}
		i++
		return list[i-1], nil
	}
}

func point(x, y float64) string {
	return fmt.Sprintf(`{"type":"Point","coordinates":[%v,%v]}`, x, y)
}

// count runs a count query in the store's schema.
func count(t *testing.T, s *postgres.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5", postgres.Options{})
	wantCode(t, err, catalog.EUNAVAILABLE)
	_, err = postgres.Open(ctx, "postgres://postgres:secret@127.0.0.1:notaport/postgres", postgres.Options{})
	wantCode(t, err, catalog.EINVALID)
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	url := testURL(t)
	schema := newSchema(t, url)
	const n = 4
	stores := make([]*postgres.Store, n)
	for i := range stores {
		s, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	errs := make(chan error, n)
	for _, s := range stores {
		go func() { errs <- s.Migrate(t.Context()) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	if err := stores[0].Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	s := stores[0]
	files, err := fs.Glob(postgres.Migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if got := count(t, s, `SELECT count(*) FROM schema_migrations`); got != len(files) {
		t.Fatalf("schema_migrations has %d rows, want one per migration file (%d)", got, len(files))
	}
	if got := count(t, s, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('collections', 'items', 'outbox')`, schema); got != 3 {
		t.Fatalf("schema %s has %d of the 3 tables", schema, got)
	}
	// The store works on the migrated schema.
	insertCollection(t, s, "c")
	if _, err := s.GetCollection(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
}

// partitions returns the partitions of items with their bounds.
func partitions(t *testing.T, s *postgres.Store) map[string]string {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'items'::regclass`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var name, bound string
	if _, err := pgx.ForEachRow(rows, []any{&name, &bound}, func() error { got[name] = bound; return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCollectionPartitions(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	if got := partitions(t, s); len(got) != 0 {
		t.Fatalf("fresh store has partitions %v", got)
	}
	// An id that needs quoting in SQL.
	const odd = `it's "odd", isn't it`
	insertCollection(t, s, odd)
	insertCollection(t, s, "plain")
	var key int
	if err := s.Pool().QueryRow(t.Context(), `SELECT key FROM collections WHERE id = $1`, odd).Scan(&key); err != nil {
		t.Fatal(err)
	}
	got := partitions(t, s)
	name := fmt.Sprintf("items_c%d", key)
	if len(got) != 2 || got[name] != `FOR VALUES IN ('it''s "odd", isn''t it')` {
		t.Fatalf("partitions = %v, want 2 with %s for %q", got, name, odd)
	}
	it := storetest.NewItem(t, odd, "i1", t0, point(1, 2), catalog.StateDraft)
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertItem(t.Context(), it) }); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM `+pgx.Identifier{name}.Sanitize()); n != 1 {
		t.Fatalf("partition %s holds %d rows, want the item", name, n)
	}
	// A failed transaction takes its partition with it.
	boom := errors.New("boom")
	err := s.Update(t.Context(), func(tx catalog.Tx) error {
		if err := tx.InsertCollection(t.Context(), storetest.NewCollection(t, "rolled-back")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if got := partitions(t, s); len(got) != 2 {
		t.Fatalf("after a rolled back insert: partitions %v", got)
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DeleteCollection(t.Context(), odd) }); err != nil {
		t.Fatal(err)
	}
	got = partitions(t, s)
	if _, ok := got[name]; ok || len(got) != 1 {
		t.Fatalf("after delete: partitions %v, want %s gone", got, name)
	}
	if n := count(t, s, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1`, name); n != 0 {
		t.Fatalf("the table %s of a deleted collection still exists", name)
	}
}

// TestDDLDuringBulkLoad holds a bulk load open and changes collections
// meanwhile. Creating a collection attaches a partition, which does not
// wait for the load; deleting one detaches a partition, which needs the
// whole items table: it gives up after its bounded retries with
// EUNAVAILABLE instead of stalling every query on items.
func TestDDLDuringBulkLoad(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "a")
	insertCollection(t, s, "gone")
	next := items(genItems(t, "a", "x", 6000, catalog.StateDraft))
	paused, resume := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(resume) })
	defer release()
	n := 0
	src := func() (*catalog.Item, error) {
		if n == 5500 { // the first chunk and its events are written
			close(paused)
			<-resume
		}
		n++
		return next()
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.BulkLoad(t.Context(), "a", catalog.BulkInsert, src)
		done <- err
	}()
	<-paused

	insertCollection(t, s, "b")
	p, err := s.ListItems(t.Context(), catalog.ItemQuery{Collection: "a"})
	if err != nil || len(p.Items) != 0 {
		t.Fatalf("listing during the load: %d items, %v; want none yet", len(p.Items), err)
	}
	err = s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DeleteCollection(t.Context(), "gone") })
	wantCode(t, err, catalog.EUNAVAILABLE)

	release()
	if err := <-done; err != nil {
		t.Fatalf("BulkLoad: %v", err)
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DeleteCollection(t.Context(), "gone") }); err != nil {
		t.Fatalf("delete after the load: %v", err)
	}
	if got := count(t, s, `SELECT count(*) FROM items WHERE collection = 'a'`); got != 6000 {
		t.Fatalf("collection a holds %d items, want 6000", got)
	}
}

// genItems returns n sealed items with ids prefix00000...; every tenth
// has a null geometry.
func genItems(t testing.TB, collection, prefix string, n int, st catalog.State) []*catalog.Item {
	t.Helper()
	list := make([]*catalog.Item, n)
	for i := range list {
		g := point(float64(i%360)-179.5, float64(i%170)-85)
		if i%10 == 0 {
			g = "null"
		}
		list[i] = storetest.NewItem(t, collection, fmt.Sprintf("%s%05d", prefix, i), t0.Add(time.Duration(i)*time.Minute), g, st)
	}
	return list
}

func TestConcurrentBulkLoads(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "shared")
	const loads = 20
	// Ten loads into one collection, each with 300 of the same 500 ids in
	// its own order, half inserting and half upserting drafts; ten loads
	// into collections of their own.
	pool := genItems(t, "shared", "x", 500, catalog.StateDraft)
	type load struct {
		collection string
		mode       catalog.BulkMode
		items      []*catalog.Item
	}
	var plan []load
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := range loads {
		if i%2 == 0 {
			list := slices.Clone(pool)
			rng.Shuffle(len(list), func(a, b int) { list[a], list[b] = list[b], list[a] })
			mode := catalog.BulkInsert
			if i%4 == 2 {
				mode = catalog.BulkUpsert
			}
			plan = append(plan, load{"shared", mode, list[:300]})
			continue
		}
		c := fmt.Sprintf("own-%02d", i)
		insertCollection(t, s, c)
		plan = append(plan, load{c, catalog.BulkInsert, genItems(t, c, "y", 300, catalog.StateDraft)})
	}

	type outcome struct {
		res catalog.BulkResult
		err error
	}
	results := make([]outcome, loads)
	var wg sync.WaitGroup
	for i, l := range plan {
		wg.Go(func() {
			res, err := s.BulkLoad(t.Context(), l.collection, l.mode, items(l.items))
			results[i] = outcome{res, err}
		})
	}
	wg.Wait()

	ok := map[string]int{}
	events := 0
	written := map[string]bool{}
	for i, r := range results {
		l := plan[i]
		switch catalog.ErrorCode(r.err) {
		case "":
			ok[l.collection]++
			events += r.res.Inserted + r.res.Updated
			if got := r.res.Inserted + r.res.Updated; got != len(l.items) {
				t.Fatalf("load %d wrote %d items, want %d", i, got, len(l.items))
			}
			if l.collection == "shared" {
				for _, it := range l.items {
					written[it.ID] = true
				}
			}
		case catalog.ECONFLICT:
			if l.collection != "shared" {
				t.Fatalf("load %d into its own collection: %v", i, r.err)
			}
		default:
			t.Fatalf("load %d (%s into %s) failed with %v; want success or a conflict", i, l.mode, l.collection, r.err)
		}
	}
	if ok["shared"] == 0 {
		t.Fatal("no load into the shared collection succeeded")
	}
	for i := 1; i < loads; i += 2 {
		if ok[plan[i].collection] != 1 {
			t.Fatalf("load into %s did not succeed", plan[i].collection)
		}
	}
	if got := count(t, s, `SELECT count(*) FROM items WHERE collection = 'shared'`); got != len(written) {
		t.Fatalf("shared collection holds %d items, want the %d of the successful loads", got, len(written))
	}
	if got := count(t, s, `SELECT count(*) FROM outbox`); got != events {
		t.Fatalf("outbox holds %d events, want %d", got, events)
	}
}

// failingAfter yields the items and fails after n of them.
func failingAfter(list []*catalog.Item, n int, err error) func() (*catalog.Item, error) {
	next := items(list)
	i := 0
	return func() (*catalog.Item, error) {
		if i == n {
			return nil, err
		}
		i++
		return next()
	}
}

func TestBulkLoadFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	// Some items and events exist before.
	if _, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items(genItems(t, "c", "old", 10, catalog.StateDraft))); err != nil {
		t.Fatal(err)
	}
	// 12,000 items span three chunks: two are written, with their events,
	// before next fails.
	list := genItems(t, "c", "new", 12000, catalog.StateDraft)
	broken := catalog.Invalid("/features/11000", "broken")
	for _, mode := range []catalog.BulkMode{catalog.BulkInsert, catalog.BulkUpsert} {
		t.Run(string(mode), func(t *testing.T) {
			_, err := s.BulkLoad(t.Context(), "c", mode, failingAfter(list, 11000, broken))
			if !errors.Is(err, broken) {
				t.Fatalf("BulkLoad = %v, want the error of next", err)
			}
			if got := count(t, s, `SELECT count(*) FROM items`); got != 10 {
				t.Fatalf("items: %d, want the 10 from before", got)
			}
			if got := count(t, s, `SELECT count(*) FROM outbox`); got != 10 {
				t.Fatalf("events: %d, want the 10 from before", got)
			}
		})
	}
}

func TestBulkLoadPanicInNext(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	list := genItems(t, "c", "p", 6000, catalog.StateDraft)
	next := items(list)
	n := 0
	src := func() (*catalog.Item, error) {
		if n == 5500 {
			panic("decoder bug")
		}
		n++
		return next()
	}
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _ = s.BulkLoad(t.Context(), "c", catalog.BulkInsert, src)
		return nil
	}()
	if got != "decoder bug" {
		t.Fatalf("BulkLoad raised %v, want the panic of next", got)
	}
	if n := count(t, s, `SELECT count(*) FROM items`) + count(t, s, `SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("a load that panicked left %d rows", n)
	}
	// The connection went back to the pool: the store still loads.
	if _, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items(list)); err != nil {
		t.Fatal(err)
	}
}

func TestBulkInsertConflictNamesTheID(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	list := genItems(t, "c", "b", 20, catalog.StateDraft)
	if _, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items(list[7:8])); err != nil {
		t.Fatal(err)
	}
	// Delete b00009: its tombstone keeps the id.
	tomb := &catalog.Item{Collection: "c", ID: "b00009", State: catalog.StateDeleted, Start: t0, End: t0, Created: t0, Updated: t0}
	if _, err := tomb.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertItem(t.Context(), tomb) }); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		load []*catalog.Item
		want string
	}{
		{"exists", list[5:8], `item "b00007" already exists in collection "c"`},
		{"deleted", list[8:10], `item "b00009" existed in collection "c" and was deleted; the id of a deleted item is not reused`},
		{"twice", append(slices.Clone(list[10:13]), list[11]), `item "b00011" comes more than once in the load`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items(tc.load))
			wantCode(t, err, catalog.ECONFLICT)
			if got := catalog.ErrorMessage(err); got != tc.want {
				t.Fatalf("message = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBulkUpsert(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	first := genItems(t, "c", "u", 6000, catalog.StateDraft)
	if _, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items(first)); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(48 * time.Hour)
	var second []*catalog.Item
	for i := 5500; i < 6500; i++ {
		it := storetest.NewItem(t, "c", fmt.Sprintf("u%05d", i), t0, point(5, 5), catalog.StateDraft)
		it.Created, it.Updated = later, later
		it.Props.Set(catalog.PropCreated, catalog.FormatTime(later))
		it.Props.Set(catalog.PropUpdated, catalog.FormatTime(later))
		it.Props.Set("title", "v2")
		if _, err := it.Seal(); err != nil {
			t.Fatal(err)
		}
		second = append(second, it)
	}
	res, err := s.BulkLoad(t.Context(), "c", catalog.BulkUpsert, items(second))
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 500 || res.Updated != 500 {
		t.Fatalf("result %+v, want 500 inserted and 500 updated", res)
	}
	got, err := s.GetItem(t.Context(), "c", "u05700")
	if err != nil {
		t.Fatal(err)
	}
	if created, _, _ := got.Props.Time("", catalog.PropCreated); !got.Created.Equal(t0) || !created.Equal(t0) {
		t.Fatalf("replaced item: created column %v, property %v; want both kept at %v", got.Created, created, t0)
	}
	if string(got.Props["title"]) != `"v2"` || !got.Updated.Equal(later) || got.ETag != second[200].ETag {
		t.Fatalf("replaced item: title %s updated %v etag %s", got.Props["title"], got.Updated, got.ETag)
	}
	if got := count(t, s, `SELECT count(*) FROM outbox WHERE type = 'item.updated'`); got != 500 {
		t.Fatalf("%d item.updated events, want 500", got)
	}
	if got := count(t, s, `SELECT count(*) FROM outbox WHERE type = 'item.updated' AND payload->>'etag' = $1`, second[200].ETag); got != 1 {
		t.Fatalf("%d events carry the replaced item's ETag, want 1", got)
	}

	// An id twice in one load conflicts, in one chunk or across chunks.
	twiceInChunk := []*catalog.Item{second[0], second[1], second[0]}
	_, err = s.BulkLoad(t.Context(), "c", catalog.BulkUpsert, items(twiceInChunk))
	wantCode(t, err, catalog.ECONFLICT)
	acrossChunks := append(slices.Clone(first[:5001]), first[3])
	_, err = s.BulkLoad(t.Context(), "c", catalog.BulkUpsert, items(acrossChunks))
	wantCode(t, err, catalog.ECONFLICT)
	if want := `item "u00003" comes more than once in the load`; catalog.ErrorMessage(err) != want {
		t.Fatalf("message %q, want %q", catalog.ErrorMessage(err), want)
	}
}

func TestNullAndVariousGeometries(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	geoms := map[string]string{
		"null":       "null",
		"point":      point(11.5, 48.1),
		"point3d":    `{"type":"Point","coordinates":[11.5,48.1,520]}`,
		"line":       `{"type":"LineString","coordinates":[[0,0],[1,1]]}`,
		"polygon":    `{"type":"Polygon","coordinates":[[[10,40],[12,40],[12,42],[10,42],[10,40]]]}`,
		"multipoly":  `{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[2,2],[3,2],[3,3],[2,2]]]]}`,
		"collection": `{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"LineString","coordinates":[[0,0],[1,1]]}]}`,
	}
	var list []*catalog.Item
	for _, id := range slices.Sorted(maps.Keys(geoms)) {
		list = append(list, storetest.NewItem(t, "c", id, t0, geoms[id], catalog.StatePublished))
	}
	res, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items(list))
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != len(list) {
		t.Fatalf("inserted %d, want %d", res.Inserted, len(list))
	}
	// The same through Tx.InsertItem.
	insertCollection(t, s, "d")
	err = s.Update(t.Context(), func(tx catalog.Tx) error {
		for _, it := range list {
			c := storetest.NewItem(t, "d", it.ID, t0, geoms[it.ID], catalog.StatePublished)
			if err := tx.InsertItem(t.Context(), c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"c", "d"} {
		if got := count(t, s, `SELECT count(*) FROM items WHERE collection = $1 AND geometry IS NULL`, c); got != 1 {
			t.Fatalf("%s: %d null geometries, want 1", c, got)
		}
		if got := count(t, s, `SELECT count(*) FROM items WHERE collection = $1 AND ST_SRID(geometry) = 4326 AND ST_IsValid(geometry)`, c); got != len(list)-1 {
			t.Fatalf("%s: %d valid geometries with SRID 4326, want %d", c, got, len(list)-1)
		}
		if got := count(t, s, `SELECT count(*) FROM items WHERE collection = $1 AND id = 'point3d' AND ST_Z(geometry) = 520`, c); got != 1 {
			t.Fatalf("%s: the height of point3d was lost", c)
		}
		for _, it := range list {
			got, err := s.GetItem(t.Context(), c, it.ID)
			if err != nil {
				t.Fatal(err)
			}
			if g, _ := got.LoadGeometry(); (g == nil) != (it.Geometry == nil) {
				t.Fatalf("%s/%s: geometry %v, want %v", c, it.ID, got.Geometry, it.Geometry)
			}
		}
	}
}

// TestUpdateRetriesDeadlock makes two transactions lock two items in
// opposite orders. PostgreSQL aborts one with a deadlock; Update runs its
// fn again and both commit.
func TestUpdateRetriesDeadlock(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	a := storetest.NewItem(t, "c", "a", t0, "null", catalog.StateDraft)
	b := storetest.NewItem(t, "c", "b", t0, "null", catalog.StateDraft)
	if _, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items([]*catalog.Item{a, b})); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		attempts int
		locked   sync.WaitGroup // both hold their first lock
	)
	locked.Add(2)
	run := func(first, second string) error {
		var once sync.Once
		return s.Update(t.Context(), func(tx catalog.Tx) error {
			mu.Lock()
			attempts++
			mu.Unlock()
			if _, err := tx.GetItem(t.Context(), "c", first); err != nil {
				return err
			}
			once.Do(func() { locked.Done(); locked.Wait() })
			it, err := tx.GetItem(t.Context(), "c", second)
			if err != nil {
				return err
			}
			old := it.ETag
			it.Props.Set("by", first)
			if _, err := it.Seal(); err != nil {
				return err
			}
			return tx.UpdateItem(t.Context(), it, old)
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run("a", "b") }()
	go func() { errs <- run("b", "a") }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	if attempts < 3 {
		t.Fatalf("fn ran %d times; want a retry after the deadlock", attempts)
	}
}

// benchItem is an item of the size of the benchmark workload's (about
// 1.5 KB of JSON): a footprint polygon, a dozen properties, three assets.
func benchItem(b *testing.B, collection string, i int) *catalog.Item {
	x, y := float64(i%3000)/10-150, float64(i%1400)/10-70
	raw := fmt.Sprintf(`{"type":"Feature","stac_version":"1.0.0","id":"S2B_MSIL2A_%08d","collection":%q,
		"geometry":{"type":"Polygon","coordinates":[[[%[3]v,%[4]v],[%[5]v,%[4]v],[%[5]v,%[6]v],[%[3]v,%[6]v],[%[3]v,%[4]v]]]},
		"properties":{"datetime":%[7]q,"platform":"sentinel-2b","constellation":"sentinel-2","instruments":["msi"],
			"eo:cloud_cover":%[8]v,"s2:mgrs_tile":"32UQD","proj:epsg":32632,"gsd":10,"view:sun_azimuth":151.2,
			"view:sun_elevation":27.4,"s2:processing_baseline":"05.09","dt:lifecycle":"operational","s2:degraded_msi_data_percentage":0.02},
		"assets":{
			"B04":{"href":"https://example.com/S2B/%[1]d/B04.tif","type":"image/tiff; application=geotiff; profile=cloud-optimized","roles":["data"],"title":"Red (band 4) - 10m","eo:bands":[{"name":"B04","common_name":"red"}]},
			"B08":{"href":"https://example.com/S2B/%[1]d/B08.tif","type":"image/tiff; application=geotiff; profile=cloud-optimized","roles":["data"],"title":"NIR 1 (band 8) - 10m","eo:bands":[{"name":"B08","common_name":"nir"}]},
			"thumbnail":{"href":"https://example.com/S2B/%[1]d/thumb.jpg","type":"image/jpeg","roles":["thumbnail"],"title":"Thumbnail"}},
		"links":[{"rel":"license","href":"https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"}]}`,
		i, collection, x, y, x+1, y+1, catalog.FormatTime(t0.Add(time.Duration(i)*time.Minute)), i%100)
	it, err := catalog.ParseItem(collection, []byte(raw))
	if err != nil {
		b.Fatalf("ParseItem: %v", err)
	}
	it.State, it.Created, it.Updated = catalog.StatePublished, t0, t0
	it.Props.Set(catalog.PropState, it.State)
	if _, err := it.Seal(); err != nil {
		b.Fatal(err)
	}
	return it
}

// BenchmarkBulkLoad loads 10,000 items per iteration into a fresh
// collection and reports the rate. Making the items (parsing, sealing)
// is not timed; encoding them for the database is.
func BenchmarkBulkLoad(b *testing.B) {
	s := openTestStore(b)
	const n = 10000
	var loaded int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := fmt.Sprintf("bench-%d", i)
		col := storetest.NewCollection(b, c)
		if err := s.Update(b.Context(), func(tx catalog.Tx) error { return tx.InsertCollection(b.Context(), col) }); err != nil {
			b.Fatal(err)
		}
		list := make([]*catalog.Item, n)
		for j := range list {
			list[j] = benchItem(b, c, j)
		}
		b.StartTimer()
		res, err := s.BulkLoad(b.Context(), c, catalog.BulkInsert, items(list))
		if err != nil {
			b.Fatal(err)
		}
		loaded += res.Inserted
	}
	b.ReportMetric(float64(loaded)/b.Elapsed().Seconds(), "items/s")
}

// TestItemDatetimeMigration: migration 0018 gives items stored without
// properties.datetime a null one, and leaves the others alone.
func TestItemDatetimeMigration(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	list := []*catalog.Item{
		storetest.NewItem(t, "c", "a", t0, point(1, 2), catalog.StateDraft),
		storetest.NewItem(t, "c", "b", t0, point(1, 2), catalog.StateDraft),
	}
	if _, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items(list)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(t.Context(), `UPDATE items SET content = content #- '{properties,datetime}' WHERE id = 'a'`); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("migrations/0018_item_datetime.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(t.Context(), string(raw)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM items WHERE id = 'a' AND jsonb_typeof(content->'properties'->'datetime') = 'null'`); n != 1 {
		t.Fatal("the item without datetime did not get a null one")
	}
	if n := count(t, s, `SELECT count(*) FROM items WHERE id = 'b' AND jsonb_typeof(content->'properties'->'datetime') = 'string'`); n != 1 {
		t.Fatal("the item with a datetime changed")
	}
}

// ownedItem is a published item that names its own owner.
func ownedItem(t *testing.T, coll, id, owner string) *catalog.Item {
	return storetest.Sealed(t, coll, fmt.Sprintf(`{"type":"Feature","id":%q,"geometry":null,
		"properties":{"datetime":"2024-01-01T00:00:00Z","dt:owner":%q}}`, id, owner), catalog.StatePublished)
}

// item_owners (migration 0019) gets the owner of every item that names
// one, from the trigger and from the migration's backfill alike, and
// loses the collections that are deleted.
func TestItemOwners(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	insertCollection(t, s, "d")
	owned := func(coll, id, owner string) *catalog.Item { return ownedItem(t, coll, id, owner) }
	list := []*catalog.Item{owned("c", "a", "ana"), owned("c", "b", "bob"), owned("c", "a2", "ana"),
		storetest.NewItem(t, "c", "none", t0, "null", catalog.StatePublished)}
	if _, err := s.BulkLoad(t.Context(), "c", catalog.BulkInsert, items(list)); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertItem(t.Context(), owned("d", "x", "bob")) }); err != nil {
		t.Fatal(err)
	}
	pairs := func() string {
		var out string
		if err := s.Pool().QueryRow(t.Context(), `SELECT coalesce(string_agg(owner || '@' || collection, ' ' ORDER BY owner, collection), '') FROM item_owners`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	const want = "ana@c bob@c bob@d"
	if got := pairs(); got != want {
		t.Fatalf("item_owners after the writes = %q, want %q", got, want)
	}
	raw, err := os.ReadFile("migrations/0019_item_owners.sql")
	if err != nil {
		t.Fatal(err)
	}
	backfill := string(raw[strings.LastIndex(string(raw), "INSERT INTO item_owners"):])
	if _, err := s.Pool().Exec(t.Context(), `DELETE FROM item_owners`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(t.Context(), backfill); err != nil {
		t.Fatal(err)
	}
	if got := pairs(); got != want {
		t.Fatalf("item_owners after the backfill = %q, want %q", got, want)
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DeleteCollection(t.Context(), "d") }); err != nil {
		t.Fatal(err)
	}
	if got := pairs(); got != "ana@c bob@c" {
		t.Fatalf("item_owners after deleting d = %q", got)
	}
}

// A bulk load records its items' owners itself, and the owner trigger
// (which reads every new document) is skipped for it (migration 0021);
// other writes go through the trigger.
func TestBulkLoadSkipsOwnerTrigger(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	insertCollection(t, s, "c")
	if _, err := s.Pool().Exec(t.Context(), `CREATE TABLE owner_calls (owner text);
CREATE OR REPLACE FUNCTION note_item_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO owner_calls VALUES (NEW.content #>> ARRAY['properties', 'dt:owner']);
    INSERT INTO item_owners (owner, collection) VALUES (NEW.content #>> ARRAY['properties', 'dt:owner'], NEW.collection) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$`); err != nil {
		t.Fatal(err)
	}
	owned := func(id, owner string) *catalog.Item { return ownedItem(t, "c", id, owner) }
	for _, mode := range []catalog.BulkMode{catalog.BulkInsert, catalog.BulkUpsert} {
		list := []*catalog.Item{owned("a-"+string(mode), "ana"), owned("b-"+string(mode), "bob")}
		if _, err := s.BulkLoad(t.Context(), "c", mode, items(list)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM owner_calls`); n != 0 {
		t.Fatalf("the owner trigger ran %d times for bulk loads", n)
	}
	if n := count(t, s, `SELECT count(*) FROM item_owners WHERE collection = 'c' AND owner IN ('ana', 'bob')`); n != 2 {
		t.Fatalf("%d owners recorded by the bulk loads, want 2", n)
	}
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertItem(t.Context(), owned("c", "carl")) }); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM owner_calls WHERE owner = 'carl'`); n != 1 {
		t.Fatalf("the owner trigger ran %d times for a single insert, want 1", n)
	}
}
