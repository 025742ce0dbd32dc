// Package storetest is the contract suite every catalog.Store passes.
// Store packages call Run from their tests with a function that opens a
// fresh, migrated, empty store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
)

// Run runs the contract suite. open must return a new empty, migrated
// store for each call; it is closed by the suite.
func Run(t *testing.T, open func(t *testing.T) catalog.Store) {
	t.Helper()
	runSuite(t, open, []suiteCase[catalog.Store]{
		{"CollectionCRUD", testCollectionCRUD},
		{"CollectionPaging", testCollectionPaging},
		{"CollectionReadFilter", testCollectionReadFilter},
		{"ItemCRUD", testItemCRUD},
		{"ItemTombstone", testItemTombstone},
		{"InsertItems", testInsertItems},
		{"UpdateRollsBack", testUpdateRollsBack},
		{"DeleteCollectionRemovesItems", testDeleteCollectionRemovesItems},
		{"Events", testEvents},
		{"ListItemsPaging", testListItemsPaging},
		{"ListItemsFilters", testListItemsFilters},
		{"BulkInsert", testBulkInsert},
		{"BulkInsertConflict", testBulkInsertConflict},
		{"BulkAbort", testBulkAbort},
		{"BulkUpsert", testBulkUpsert},
		{"BulkMissingCollection", testBulkMissingCollection},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"AssetBytes", testAssetBytes},
		{"Expiry", testExpiry},
	})
}

// suiteCase is one named test of a contract suite.
type suiteCase[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

// runSuite runs each case in parallel on a store of its own, closed when
// the case ends.
func runSuite[S interface{ Close() error }](t *testing.T, open func(t *testing.T) S, cases []suiteCase[S]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

var t0 = time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)

// NewCollection returns a sealed collection ready to insert.
func NewCollection(t testing.TB, id string) *catalog.Collection {
	t.Helper()
	raw := fmt.Sprintf(`{"type":"Collection","id":%q,"description":"test collection","license":"CC-BY-4.0",
		"extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[["2020-01-01T00:00:00Z",null]]}},
		"links":[],"x:custom":{"kept":[1,2,3]}}`, id)
	c, err := catalog.ParseCollection("", []byte(raw))
	if err != nil {
		t.Fatalf("ParseCollection: %v", err)
	}
	c.Created, c.Updated = t0, t0
	if _, err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	return c
}

// NewItem returns a sealed item in state st. geometry is GeoJSON or "null".
func NewItem(t testing.TB, collection, id string, dt time.Time, geometry string, st catalog.State) *catalog.Item {
	t.Helper()
	raw := fmt.Sprintf(`{"type":"Feature","stac_version":"1.0.0","id":%q,"geometry":%s,
		"properties":{"datetime":%q,"platform":"sentinel-2a","eo:cloud_cover":12.5},
		"assets":{"data":{"href":"https://example.com/data.tif","type":"image/tiff"}},
		"links":[{"rel":"license","href":"https://example.com/license"}]}`, id, geometry, catalog.FormatTime(dt))
	return sealed(t, collection, raw, st)
}

// NewRangeItem returns a sealed item that spans [start, end].
func NewRangeItem(t testing.TB, collection, id string, start, end time.Time) *catalog.Item {
	t.Helper()
	raw := fmt.Sprintf(`{"type":"Feature","id":%q,"geometry":null,
		"properties":{"datetime":null,"start_datetime":%q,"end_datetime":%q}}`,
		id, catalog.FormatTime(start), catalog.FormatTime(end))
	return sealed(t, collection, raw, catalog.StateDraft)
}

// Sealed parses an item document and seals it in state st, ready to insert.
func Sealed(t testing.TB, collection, raw string, st catalog.State) *catalog.Item {
	t.Helper()
	return sealed(t, collection, raw, st)
}

func sealed(t testing.TB, collection, raw string, st catalog.State) *catalog.Item {
	t.Helper()
	it, err := catalog.ParseItem(collection, []byte(raw))
	if err != nil {
		t.Fatalf("ParseItem: %v", err)
	}
	it.State = st
	it.Created, it.Updated = t0, t0
	it.Props.Set(catalog.PropState, st)
	it.Props.Set(catalog.PropCreated, catalog.FormatTime(t0))
	it.Props.Set(catalog.PropUpdated, catalog.FormatTime(t0))
	if _, err := it.Seal(); err != nil {
		t.Fatal(err)
	}
	return it
}

func point(x, y float64) string {
	return fmt.Sprintf(`{"type":"Point","coordinates":[%v,%v]}`, x, y)
}

func ctx(t *testing.T) context.Context { return t.Context() }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := catalog.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func mustUpdate(t *testing.T, s catalog.Store, fn func(tx catalog.Tx) error) {
	t.Helper()
	if err := s.Update(ctx(t), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func insertCollection(t *testing.T, s catalog.Store, id string) *catalog.Collection {
	t.Helper()
	c := NewCollection(t, id)
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertCollection(ctx(t), c) })
	return c
}

// InsertItems inserts items in one transaction, failing the test on an
// error.
func InsertItems(t *testing.T, s catalog.Store, items ...*catalog.Item) {
	t.Helper()
	insertItems(t, s, items...)
}

func insertItems(t *testing.T, s catalog.Store, items ...*catalog.Item) {
	t.Helper()
	mustUpdate(t, s, func(tx catalog.Tx) error {
		for _, it := range items {
			if err := tx.InsertItem(ctx(t), it); err != nil {
				return err
			}
		}
		return nil
	})
}

func docJSON(t *testing.T, it *catalog.Item) string {
	t.Helper()
	b, err := it.MarshalDocument()
	if err != nil {
		t.Fatal(err)
	}
	return canonical(t, b)
}

func canonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func testCollectionCRUD(t *testing.T, s catalog.Store) {
	c := insertCollection(t, s, "c1")
	got, err := s.GetCollection(ctx(t), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "c1" || got.ETag != c.ETag || !got.Created.Equal(t0) {
		t.Fatalf("got %+v, want id c1 etag %s created %v", got, c.ETag, t0)
	}
	wb, _ := json.Marshal(c.Doc)
	gb, _ := json.Marshal(got.Doc)
	if canonical(t, wb) != canonical(t, gb) {
		t.Fatalf("document changed:\n got %s\nwant %s", gb, wb)
	}
	_, err = s.GetCollection(ctx(t), "nope")
	wantCode(t, err, catalog.ENOTFOUND)

	err = s.Update(ctx(t), func(tx catalog.Tx) error { return tx.InsertCollection(ctx(t), NewCollection(t, "c1")) })
	wantCode(t, err, catalog.ECONFLICT)

	// Compare-and-swap.
	old := c.ETag
	c.Doc.Set("title", "renamed")
	c.Updated = t0.Add(time.Hour)
	if _, err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateCollection(ctx(t), c, old) })
	err = s.Update(ctx(t), func(tx catalog.Tx) error { return tx.UpdateCollection(ctx(t), c, old) })
	wantCode(t, err, catalog.EPRECONDITION)
	got, err = s.GetCollection(ctx(t), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Doc["title"]) != `"renamed"` || got.ETag != c.ETag || !got.Updated.Equal(c.Updated) {
		t.Fatalf("after update got title %s etag %s updated %v", got.Doc["title"], got.ETag, got.Updated)
	}
	missing := NewCollection(t, "missing")
	err = s.Update(ctx(t), func(tx catalog.Tx) error { return tx.UpdateCollection(ctx(t), missing, missing.ETag) })
	wantCode(t, err, catalog.ENOTFOUND)

	// Locked read inside a transaction.
	mustUpdate(t, s, func(tx catalog.Tx) error {
		g, err := tx.GetCollection(ctx(t), "c1")
		if err != nil {
			return err
		}
		if g.ETag != c.ETag {
			return fmt.Errorf("tx read etag %s, want %s", g.ETag, c.ETag)
		}
		_, err = tx.GetCollection(ctx(t), "nope")
		if catalog.ErrorCode(err) != catalog.ENOTFOUND {
			return fmt.Errorf("tx read of missing collection: %v", err)
		}
		return nil
	})

	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.DeleteCollection(ctx(t), "c1") })
	_, err = s.GetCollection(ctx(t), "c1")
	wantCode(t, err, catalog.ENOTFOUND)
	err = s.Update(ctx(t), func(tx catalog.Tx) error { return tx.DeleteCollection(ctx(t), "c1") })
	wantCode(t, err, catalog.ENOTFOUND)
}

func testCollectionPaging(t *testing.T, s catalog.Store) {
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("col-%02d", i)
		ids = append(ids, id)
		insertCollection(t, s, id)
	}
	var seen []string
	q := catalog.CollectionQuery{Limit: 3}
	var pages []*catalog.CollectionPage
	for {
		p, err := s.ListCollections(ctx(t), q)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
		for _, c := range p.Collections {
			seen = append(seen, c.ID)
		}
		if p.Next == "" {
			break
		}
		if len(pages) > 10 {
			t.Fatal("paging does not end")
		}
		q = catalog.CollectionQuery{Limit: 3, After: p.Next}
	}
	if !slices.Equal(seen, ids) {
		t.Fatalf("pages gave %v, want %v", seen, ids)
	}
	if len(pages) != 3 || pages[0].Prev != "" || pages[1].Prev == "" {
		t.Fatalf("got %d pages, first prev %q, second prev %q", len(pages), pages[0].Prev, pages[1].Prev)
	}
	// Back from the last page.
	p, err := s.ListCollections(ctx(t), catalog.CollectionQuery{Limit: 3, Before: pages[2].Prev})
	if err != nil {
		t.Fatal(err)
	}
	var back []string
	for _, c := range p.Collections {
		back = append(back, c.ID)
	}
	if !slices.Equal(back, ids[3:6]) || p.Next == "" || p.Prev == "" {
		t.Fatalf("prev page = %v (next %q prev %q), want %v with both cursors", back, p.Next, p.Prev, ids[3:6])
	}
}

func testItemCRUD(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	it := NewItem(t, "c", "i1", t0, point(11.5, 48.1), catalog.StateDraft)
	insertItems(t, s, it)

	got, err := s.GetItem(ctx(t), "c", "i1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "i1" || got.Collection != "c" || got.State != catalog.StateDraft || got.ETag != it.ETag {
		t.Fatalf("got %s/%s state %s etag %s", got.Collection, got.ID, got.State, got.ETag)
	}
	if !got.Start.Equal(t0) || !got.End.Equal(t0) || !got.Created.Equal(t0) || !got.Updated.Equal(t0) {
		t.Fatalf("times: start %v end %v created %v updated %v", got.Start, got.End, got.Created, got.Updated)
	}
	if docJSON(t, got) != docJSON(t, it) {
		t.Fatalf("document changed:\n got %s\nwant %s", docJSON(t, got), docJSON(t, it))
	}
	if g, err := got.LoadGeometry(); err != nil || g == nil || len(got.BBox) != 4 {
		t.Fatalf("geometry %v (%v) bbox %v not restored", g, err, got.BBox)
	}

	_, err = s.GetItem(ctx(t), "c", "nope")
	wantCode(t, err, catalog.ENOTFOUND)
	_, err = s.GetItem(ctx(t), "nope", "i1")
	wantCode(t, err, catalog.ENOTFOUND)
	err = s.Update(ctx(t), func(tx catalog.Tx) error {
		return tx.InsertItem(ctx(t), NewItem(t, "c", "i1", t0, "null", catalog.StateDraft))
	})
	wantCode(t, err, catalog.ECONFLICT)
	err = s.Update(ctx(t), func(tx catalog.Tx) error {
		return tx.InsertItem(ctx(t), NewItem(t, "nope", "i9", t0, "null", catalog.StateDraft))
	})
	wantCode(t, err, catalog.ENOTFOUND)

	// The same id in another collection is another item.
	insertCollection(t, s, "d")
	insertItems(t, s, NewItem(t, "d", "i1", t0, "null", catalog.StateDraft))

	// Compare-and-swap update.
	old := it.ETag
	it.Props.Set("title", "changed")
	it.Updated = t0.Add(time.Minute)
	it.State = catalog.StatePublished
	if _, err := it.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error {
		cur, err := tx.GetItem(ctx(t), "c", "i1")
		if err != nil {
			return err
		}
		if cur.ETag != old {
			return fmt.Errorf("tx read etag %s, want %s", cur.ETag, old)
		}
		return tx.UpdateItem(ctx(t), it, old)
	})
	err = s.Update(ctx(t), func(tx catalog.Tx) error { return tx.UpdateItem(ctx(t), it, old) })
	wantCode(t, err, catalog.EPRECONDITION)
	err = s.Update(ctx(t), func(tx catalog.Tx) error {
		return tx.UpdateItem(ctx(t), NewItem(t, "c", "ghost", t0, "null", catalog.StateDraft), "x")
	})
	wantCode(t, err, catalog.ENOTFOUND)
	got, err = s.GetItem(ctx(t), "c", "i1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != catalog.StatePublished || got.ETag != it.ETag || !got.Updated.Equal(it.Updated) || string(got.Props["title"]) != `"changed"` {
		t.Fatalf("after update: state %s etag %s updated %v title %s", got.State, got.ETag, got.Updated, got.Props["title"])
	}
	if d, _ := s.GetItem(ctx(t), "d", "i1"); d == nil || d.Props.Has("title") {
		t.Fatal("update leaked into the other collection's item")
	}
}

func testItemTombstone(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	it := NewItem(t, "c", "gone", t0, point(1, 2), catalog.StatePublished)
	insertItems(t, s, it)
	old := it.ETag
	tomb := &catalog.Item{Collection: "c", ID: "gone", State: catalog.StateDeleted, Start: it.Start, End: it.End,
		Created: it.Created, Updated: t0.Add(time.Hour)}
	if _, err := tomb.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateItem(ctx(t), tomb, old) })
	got, err := s.GetItem(ctx(t), "c", "gone")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Deleted() || got.Doc != nil || !got.Updated.Equal(tomb.Updated) {
		t.Fatalf("tombstone: state %s doc %v updated %v", got.State, got.Doc, got.Updated)
	}
	err = s.Update(ctx(t), func(tx catalog.Tx) error {
		return tx.InsertItem(ctx(t), NewItem(t, "c", "gone", t0, "null", catalog.StateDraft))
	})
	wantCode(t, err, catalog.ECONFLICT)
	// A tombstone is not listed by default and never matches a bbox.
	p, err := s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 0 {
		t.Fatalf("default listing shows %d items, want none", len(p.Items))
	}
	p, err = s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", States: []catalog.State{catalog.StateDeleted}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || !p.Items[0].Deleted() {
		t.Fatalf("listing deleted items gave %d items", len(p.Items))
	}
	p, err = s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", States: []catalog.State{catalog.StateDeleted}, BBox: []float64{0, 0, 3, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 0 {
		t.Fatal("a tombstone matched a bbox")
	}
}

func testUpdateRollsBack(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	before, err := s.ListEvents(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = s.Update(ctx(t), func(tx catalog.Tx) error {
		it := NewItem(t, "c", "x", t0, "null", catalog.StateDraft)
		if err := tx.InsertItem(ctx(t), it); err != nil {
			return err
		}
		if err := tx.AppendEvents(ctx(t), catalog.NewItemEvent(catalog.EventItemCreated, it, t0)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the error of fn", err)
	}
	_, err = s.GetItem(ctx(t), "c", "x")
	wantCode(t, err, catalog.ENOTFOUND)
	after, err := s.ListEvents(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("rolled back update left %d events", len(after)-len(before))
	}
}

func testDeleteCollectionRemovesItems(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	insertCollection(t, s, "keep")
	insertItems(t, s, NewItem(t, "c", "a", t0, point(1, 1), catalog.StateDraft), NewItem(t, "keep", "a", t0, point(1, 1), catalog.StateDraft))
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.DeleteCollection(ctx(t), "c") })
	_, err := s.GetItem(ctx(t), "c", "a")
	wantCode(t, err, catalog.ENOTFOUND)
	_, err = s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c"})
	wantCode(t, err, catalog.ENOTFOUND)
	if _, err := s.GetItem(ctx(t), "keep", "a"); err != nil {
		t.Fatalf("item of another collection: %v", err)
	}
	// The id can be used again for a new, empty collection.
	insertCollection(t, s, "c")
	p, err := s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", BBox: []float64{0, 0, 2, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 0 {
		t.Fatalf("recreated collection lists %d old items", len(p.Items))
	}
}

func testEvents(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	start, err := s.ListEvents(ctx(t), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	if len(start) > 0 {
		last = start[len(start)-1].Seq
	}
	var sent []*catalog.Event
	for i := range 5 {
		it := NewItem(t, "c", fmt.Sprintf("e%d", i), t0, "null", catalog.StateDraft)
		ev := catalog.NewItemEvent(catalog.EventItemCreated, it, t0.Add(time.Duration(i)*time.Second))
		sent = append(sent, ev)
		mustUpdate(t, s, func(tx catalog.Tx) error {
			if err := tx.InsertItem(ctx(t), it); err != nil {
				return err
			}
			return tx.AppendEvents(ctx(t), ev)
		})
	}
	got, err := s.ListEvents(ctx(t), last, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("got %d events, want 5", len(got))
	}
	for i, ev := range got {
		if ev.ID != sent[i].ID || ev.Type != sent[i].Type || ev.Subject != sent[i].Subject || !ev.Time.Equal(sent[i].Time) {
			t.Fatalf("event %d = %+v, want %+v", i, ev, sent[i])
		}
		if canonical(t, ev.Payload) != canonical(t, sent[i].Payload) {
			t.Fatalf("payload %s, want %s", ev.Payload, sent[i].Payload)
		}
		if ev.Seq <= last {
			t.Fatalf("seq %d not increasing after %d", ev.Seq, last)
		}
		last = ev.Seq
	}
	two, err := s.ListEvents(ctx(t), got[2].Seq, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(two) != 2 || two[0].ID != sent[3].ID {
		t.Fatalf("ListEvents(after, 2) = %d events", len(two))
	}
}

func ids(items []*catalog.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func testListItemsPaging(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	insertCollection(t, s, "other")
	var items []*catalog.Item
	for i := range 23 {
		// Groups of three share a datetime, so the id breaks ties.
		dt := t0.Add(time.Duration(i/3) * time.Hour)
		items = append(items, NewItem(t, "c", fmt.Sprintf("it-%02d", i), dt, point(float64(i), 0), catalog.StateDraft))
	}
	insertItems(t, s, items...)
	insertItems(t, s, NewItem(t, "other", "x", t0, "null", catalog.StateDraft))
	want := slices.Clone(items)
	slices.SortFunc(want, func(a, b *catalog.Item) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return -cmpString(a.ID, b.ID)
	})
	var got []string
	var pages []*catalog.ItemPage
	q := catalog.ItemQuery{Collection: "c", Limit: 10}
	for {
		p, err := s.ListItems(ctx(t), q)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
		got = append(got, ids(p.Items)...)
		if p.Next == nil {
			break
		}
		if len(pages) > 5 {
			t.Fatal("paging does not end")
		}
		q = catalog.ItemQuery{Collection: "c", Limit: 10, After: p.Next}
	}
	if !slices.Equal(got, ids(want)) {
		t.Fatalf("forward paging:\n got %v\nwant %v", got, ids(want))
	}
	if len(pages) != 3 || pages[0].Prev != nil || pages[1].Prev == nil || pages[2].Prev == nil {
		t.Fatalf("%d pages; prev cursors %v %v", len(pages), pages[0].Prev, pages[1].Prev)
	}
	// Backwards from the last page.
	p, err := s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", Limit: 10, Before: pages[2].Prev})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(p.Items), ids(want[10:20])) || p.Prev == nil || p.Next == nil {
		t.Fatalf("backward page: %v (prev %v next %v), want %v", ids(p.Items), p.Prev, p.Next, ids(want[10:20]))
	}
	p, err = s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", Limit: 10, Before: p.Prev})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(p.Items), ids(want[:10])) || p.Prev != nil || p.Next == nil {
		t.Fatalf("first page reached backwards: %v (prev %v), want %v and no prev", ids(p.Items), p.Prev, ids(want[:10]))
	}
	// Limits clamp.
	p, err = s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != catalog.DefaultPageSize {
		t.Fatalf("default page has %d items, want %d", len(p.Items), catalog.DefaultPageSize)
	}
	p, err = s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", Limit: catalog.MaxPageSize + 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 23 || p.Next != nil {
		t.Fatalf("large limit gave %d items, next %v", len(p.Items), p.Next)
	}
	_, err = s.ListItems(ctx(t), catalog.ItemQuery{Collection: "nope"})
	wantCode(t, err, catalog.ENOTFOUND)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testListItemsFilters(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	day := 24 * time.Hour
	insertItems(t, s,
		NewItem(t, "c", "munich", t0, point(11.5, 48.1), catalog.StateDraft),
		NewItem(t, "c", "paris", t0.Add(day), point(2.35, 48.85), catalog.StatePublished),
		NewItem(t, "c", "fiji", t0.Add(2*day), point(179.5, -17.8), catalog.StateDeprecated),
		NewItem(t, "c", "samoa", t0.Add(3*day), point(-171.8, -13.8), catalog.StateArchived),
		NewItem(t, "c", "nowhere", t0.Add(4*day), "null", catalog.StatePublished),
		NewItem(t, "c", "poly", t0.Add(5*day), `{"type":"Polygon","coordinates":[[[10,40],[12,40],[12,42],[10,42],[10,40]]]}`, catalog.StateDraft),
		NewRangeItem(t, "c", "season", t0.Add(-10*day), t0.Add(10*day)),
	)
	all := []catalog.State{catalog.StateDraft, catalog.StatePublished, catalog.StateDeprecated, catalog.StateArchived, catalog.StateDeleted}
	ts := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	cases := []struct {
		name string
		q    catalog.ItemQuery
		want []string
	}{
		{"default states", catalog.ItemQuery{}, []string{"poly", "nowhere", "fiji", "paris", "munich", "season"}},
		{"archived asked for", catalog.ItemQuery{States: []catalog.State{catalog.StateArchived}}, []string{"samoa"}},
		{"published", catalog.ItemQuery{States: []catalog.State{catalog.StatePublished}}, []string{"nowhere", "paris"}},
		{"bbox europe", catalog.ItemQuery{BBox: []float64{0, 40, 20, 50}, States: all}, []string{"poly", "paris", "munich"}},
		{"bbox touching polygon", catalog.ItemQuery{BBox: []float64{11.9, 41.9, 13, 43}, States: all}, []string{"poly"}},
		{"bbox 3d", catalog.ItemQuery{BBox: []float64{11, 48, -100, 12, 49, 100}, States: all}, []string{"munich"}},
		{"bbox across antimeridian", catalog.ItemQuery{BBox: []float64{170, -20, -170, -10}, States: all}, []string{"samoa", "fiji"}},
		{"instant interval", catalog.ItemQuery{Start: ts(day), End: ts(day)}, []string{"paris", "season"}},
		{"closed interval", catalog.ItemQuery{Start: ts(day), End: ts(2 * day)}, []string{"fiji", "paris", "season"}},
		{"open end", catalog.ItemQuery{Start: ts(4 * day)}, []string{"poly", "nowhere", "season"}},
		{"open start", catalog.ItemQuery{End: ts(-day)}, []string{"season"}},
		{"interval and bbox", catalog.ItemQuery{Start: ts(-day), End: ts(day), BBox: []float64{0, 40, 20, 50}}, []string{"paris", "munich"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Collection = "c"
			tc.q.Limit = 100
			p, err := s.ListItems(ctx(t), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(p.Items), tc.want) {
				t.Fatalf("got %v, want %v", ids(p.Items), tc.want)
			}
		})
	}
}

// source yields items and then io.EOF, or fails after failAt items.
func source(items []*catalog.Item, failAt int, err error) func() (*catalog.Item, error) {
	i := 0
	return func() (*catalog.Item, error) {
		if failAt >= 0 && i == failAt {
			return nil, err
		}
		if i == len(items) {
			return nil, io.EOF
		}
		i++
		return items[i-1], nil
	}
}

func bulkItems(t *testing.T, collection, prefix string, n int, st catalog.State) []*catalog.Item {
	var items []*catalog.Item
	for i := range n {
		g := point(float64(i%360)-179.5, float64(i%170)-85)
		if i%20 == 0 {
			g = "null"
		}
		items = append(items, NewItem(t, collection, fmt.Sprintf("%s%05d", prefix, i), t0.Add(time.Duration(i)*time.Minute), g, st))
	}
	return items
}

func countEvents(t *testing.T, s catalog.Store, typ string) int {
	t.Helper()
	evs, err := s.ListEvents(ctx(t), 0, 1000000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func testBulkInsert(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	items := bulkItems(t, "c", "b", 2500, catalog.StateDraft)
	res, err := s.BulkLoad(ctx(t), "c", catalog.BulkInsert, source(items, -1, nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 2500 || res.Updated != 0 {
		t.Fatalf("result %+v, want 2500 inserted", res)
	}
	if n := countEvents(t, s, catalog.EventItemCreated); n != 2500 {
		t.Fatalf("%d item.created events, want 2500", n)
	}
	for _, i := range []int{0, 1, 1234, 2499} {
		got, err := s.GetItem(ctx(t), "c", items[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		g, err := got.LoadGeometry()
		if err != nil || docJSON(t, got) != docJSON(t, items[i]) || got.ETag != items[i].ETag || (g == nil) != (items[i].Geometry == nil) {
			t.Fatalf("bulk item %s differs", items[i].ID)
		}
	}
	p, err := s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", BBox: []float64{-180, -90, 180, 90}, Limit: catalog.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2500-125 {
		t.Fatalf("bbox over the world matched %d items, want %d (those with a geometry)", len(p.Items), 2500-125)
	}
}

func testBulkInsertConflict(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	insertItems(t, s, NewItem(t, "c", "b00007", t0, "null", catalog.StateDraft))
	before := countEvents(t, s, catalog.EventItemCreated)
	_, err := s.BulkLoad(ctx(t), "c", catalog.BulkInsert, source(bulkItems(t, "c", "b", 50, catalog.StateDraft), -1, nil))
	wantCode(t, err, catalog.ECONFLICT)
	p, err := s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 {
		t.Fatalf("failed bulk load left %d items, want the 1 from before", len(p.Items))
	}
	if n := countEvents(t, s, catalog.EventItemCreated); n != before {
		t.Fatalf("failed bulk load left %d events", n-before)
	}
	// A duplicate inside one load conflicts too.
	dup := bulkItems(t, "c", "d", 3, catalog.StateDraft)
	dup = append(dup, dup[1])
	_, err = s.BulkLoad(ctx(t), "c", catalog.BulkInsert, source(dup, -1, nil))
	wantCode(t, err, catalog.ECONFLICT)
}

func testBulkAbort(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	bad := catalog.Invalid("/features/7/id", "broken")
	_, err := s.BulkLoad(ctx(t), "c", catalog.BulkInsert, source(bulkItems(t, "c", "b", 3000, catalog.StateDraft), 2900, bad))
	wantCode(t, err, catalog.EINVALID)
	p, err := s.ListItems(ctx(t), catalog.ItemQuery{Collection: "c", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 0 || countEvents(t, s, catalog.EventItemCreated) != 0 {
		t.Fatalf("aborted load left %d items", len(p.Items))
	}
}

func testBulkUpsert(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	first := bulkItems(t, "c", "u", 10, catalog.StateDraft)
	if _, err := s.BulkLoad(ctx(t), "c", catalog.BulkInsert, source(first, -1, nil)); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(48 * time.Hour)
	var second []*catalog.Item
	for i := 5; i < 15; i++ {
		it := NewItem(t, "c", fmt.Sprintf("u%05d", i), t0, point(5, 5), catalog.StateDraft)
		it.Created, it.Updated = later, later
		it.Props.Set(catalog.PropCreated, catalog.FormatTime(later))
		it.Props.Set(catalog.PropUpdated, catalog.FormatTime(later))
		it.Props.Set("title", "v2")
		if _, err := it.Seal(); err != nil {
			t.Fatal(err)
		}
		second = append(second, it)
	}
	res, err := s.BulkLoad(ctx(t), "c", catalog.BulkUpsert, source(second, -1, nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 5 || res.Updated != 5 {
		t.Fatalf("upsert result %+v, want 5 inserted, 5 updated", res)
	}
	if n := countEvents(t, s, catalog.EventItemUpdated); n != 5 {
		t.Fatalf("%d item.updated events, want 5", n)
	}
	replaced, err := s.GetItem(ctx(t), "c", "u00007")
	if err != nil {
		t.Fatal(err)
	}
	if string(replaced.Props["title"]) != `"v2"` || !replaced.Created.Equal(t0) || !replaced.Updated.Equal(later) {
		t.Fatalf("replaced: title %s created %v updated %v; want v2, created kept at %v", replaced.Props["title"], replaced.Created, replaced.Updated, t0)
	}
	if c, _, _ := replaced.Props.Time("", catalog.PropCreated); !c.Equal(t0) {
		t.Fatalf("created property = %v, want it kept at %v", c, t0)
	}
	fresh, err := s.GetItem(ctx(t), "c", "u00012")
	if err != nil {
		t.Fatal(err)
	}
	if !fresh.Created.Equal(later) {
		t.Fatalf("new item created %v, want %v", fresh.Created, later)
	}
	// Free text finds the new title of the replaced and the new items.
	if se, ok := s.(search.Searcher); ok {
		q := search.Query{Collections: []string{"c"}, Q: []string{"v2"}, States: []catalog.State{catalog.StateDraft}, Limit: 100}
		if err := search.Prepare(&q); err != nil {
			t.Fatal(err)
		}
		p, err := se.Search(ctx(t), &q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		slices.Sort(got)
		if want := []string{"u00005", "u00006", "u00007", "u00008", "u00009", "u00010", "u00011", "u00012", "u00013", "u00014"}; !slices.Equal(got, want) {
			t.Fatalf("free text v2 after the upsert finds %v, want %v", got, want)
		}
	}
	// A published item is immutable: upserting it fails the whole load.
	insertItems(t, s, NewItem(t, "c", "pub", t0, "null", catalog.StatePublished))
	again := []*catalog.Item{NewItem(t, "c", "new-one", t0, "null", catalog.StateDraft), NewItem(t, "c", "pub", t0, "null", catalog.StateDraft)}
	_, err = s.BulkLoad(ctx(t), "c", catalog.BulkUpsert, source(again, -1, nil))
	wantCode(t, err, catalog.ECONFLICT)
	_, err = s.GetItem(ctx(t), "c", "new-one")
	wantCode(t, err, catalog.ENOTFOUND)
}

func testBulkMissingCollection(t *testing.T, s catalog.Store) {
	_, err := s.BulkLoad(ctx(t), "nope", catalog.BulkInsert, source(bulkItems(t, "nope", "x", 3, catalog.StateDraft), -1, nil))
	wantCode(t, err, catalog.ENOTFOUND)
}

// testConcurrentUpdates runs read-modify-write transactions from several
// goroutines; the row lock of Tx.GetItem must serialise them so that no
// update is lost.
func testConcurrentUpdates(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	insertItems(t, s, NewItem(t, "c", "counter", t0, "null", catalog.StateDraft))
	const workers, each = 4, 10
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range each {
				err := s.Update(ctx(t), func(tx catalog.Tx) error {
					it, err := tx.GetItem(ctx(t), "c", "counter")
					if err != nil {
						return err
					}
					var n int
					if v, ok := it.Props["n"]; ok {
						_ = json.Unmarshal(v, &n)
					}
					old := it.ETag
					it.Props.Set("n", n+1)
					if _, err := it.Seal(); err != nil {
						return err
					}
					return tx.UpdateItem(ctx(t), it, old)
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	it, err := s.GetItem(ctx(t), "c", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if string(it.Props["n"]) != fmt.Sprint(workers*each) {
		t.Fatalf("counter = %s, want %d", it.Props["n"], workers*each)
	}
}

// testInsertItems: InsertItems stores every item as InsertItem would, or
// none: a taken id, an id named twice or a missing collection fail the
// whole write.
func testInsertItems(t *testing.T, s catalog.Store) {
	insertCollection(t, s, "c")
	insertItems(t, s, NewItem(t, "c", "taken", t0, "null", catalog.StateDraft))
	list := []*catalog.Item{
		NewItem(t, "c", "a", t0, point(1, 2), catalog.StatePublished),
		NewItem(t, "c", "b", t0.Add(time.Hour), "null", catalog.StateDraft),
		NewItem(t, "c", "c:d", t0.Add(2*time.Hour), point(-3, 4), catalog.StateDraft),
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertItems(ctx(t), "c", list) })
	for _, it := range list {
		got, err := s.GetItem(ctx(t), "c", it.ID)
		if err != nil {
			t.Fatalf("item %s: %v", it.ID, err)
		}
		if got.State != it.State || got.ETag != it.ETag || !got.Start.Equal(it.Start) || !got.Created.Equal(it.Created) ||
			docJSON(t, got) != docJSON(t, it) || len(got.BBox) != len(it.BBox) {
			t.Fatalf("item %s: got %s etag %s bbox %v\n%s\nwant %s etag %s bbox %v\n%s", it.ID, got.State, got.ETag, got.BBox,
				docJSON(t, got), it.State, it.ETag, it.BBox, docJSON(t, it))
		}
	}
	for name, c := range map[string]struct {
		coll string
		ids  []string
		want string
	}{
		"a taken id":           {"c", []string{"new1", "taken"}, catalog.ECONFLICT},
		"an id named twice":    {"c", []string{"new1", "new2", "new1"}, catalog.ECONFLICT},
		"a missing collection": {"nope", []string{"new1", "new2"}, catalog.ENOTFOUND},
	} {
		var items []*catalog.Item
		for _, id := range c.ids {
			items = append(items, NewItem(t, c.coll, id, t0, "null", catalog.StateDraft))
		}
		err := s.Update(ctx(t), func(tx catalog.Tx) error { return tx.InsertItems(ctx(t), c.coll, items) })
		if catalog.ErrorCode(err) != c.want {
			t.Fatalf("%s: %v, want code %s", name, err, c.want)
		}
		if _, err := s.GetItem(ctx(t), "c", "new1"); catalog.ErrorCode(err) != catalog.ENOTFOUND {
			t.Fatalf("%s: new1 was stored (%v)", name, err)
		}
	}
}
