package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// readFilterCollections are the collections testCollectionReadFilter
// lists, in id order: id, owner, visibility. The ids put unreadable
// collections between readable ones, hold LIKE's wildcards (% and _), and
// come in near misses of each other ("eo-" and "eo_x", "p%q" and "pzq").
var readFilterCollections = []struct{ id, owner, visibility string }{
	{"a-pub", "alice", catalog.VisibilityPublic},
	{"b-node", "bob", catalog.VisibilityNode},
	{"c-alice", "alice", catalog.VisibilityPrivate},
	{"d-bob", "bob", catalog.VisibilityPrivate},
	{"eo-1", "bob", catalog.VisibilityPrivate},
	{"eo-2", "bob", catalog.VisibilityPrivate},
	{"eo_x", "bob", catalog.VisibilityPrivate},
	{"p%q", "bob", catalog.VisibilityPrivate},
	{"pzq", "bob", catalog.VisibilityPrivate},
	// No owner, and Visibility "" (which stores as private): an
	// anonymous caller, whose user is "" too, must not own it.
	{"z-orphan", "", ""},
}

// newOwnedCollection returns a sealed collection with an owner and a
// visibility, in its fields and its document.
func newOwnedCollection(t *testing.T, id, owner, visibility string) *catalog.Collection {
	t.Helper()
	c := NewCollection(t, id)
	c.SetOwner(owner)
	if visibility != "" {
		c.Doc.Set(catalog.PropVisibility, visibility)
	}
	c.Visibility = visibility
	if _, err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	return c
}

// listIDs returns the ids of a page.
func listIDs(p *catalog.CollectionPage) []string {
	ids := make([]string, 0, len(p.Collections))
	for _, c := range p.Collections {
		ids = append(ids, c.ID)
	}
	return ids
}

// readableIDs lists, in one page, the ids f lets its caller read.
func readableIDs(t *testing.T, s catalog.Store, f *catalog.ReadFilter) []string {
	t.Helper()
	p, err := s.ListCollections(ctx(t), catalog.CollectionQuery{Readable: f, Limit: 100})
	if err != nil {
		t.Fatalf("ListCollections(%+v): %v", f, err)
	}
	if p.Next != "" || p.Prev != "" {
		t.Fatalf("ListCollections(%+v): a single page has cursors next %q prev %q", f, p.Next, p.Prev)
	}
	return listIDs(p)
}

// checkFilteredPaging pages through the listing of f, limit ids a
// page, forward and then back, and checks that the pages give want in
// order, each id once, that every page but the last is full, and that
// the cursors are set exactly when there is a neighbouring page.
func checkFilteredPaging(t *testing.T, s catalog.Store, f *catalog.ReadFilter, limit int, want []string) {
	t.Helper()
	var (
		pages [][]string
		seen  []string
	)
	q := catalog.CollectionQuery{Readable: f, Limit: limit}
	for {
		p, err := s.ListCollections(ctx(t), q)
		if err != nil {
			t.Fatalf("ListCollections(%+v): %v", q, err)
		}
		ids := listIDs(p)
		if len(ids) == 0 {
			if len(want) != 0 || len(pages) != 0 || p.Next != "" || p.Prev != "" {
				t.Fatalf("page %d is empty (next %q prev %q), want %v", len(pages)+1, p.Next, p.Prev, want)
			}
			return
		}
		last := len(seen)+len(ids) == len(want)
		if !last && len(ids) != limit {
			t.Fatalf("page %d = %v, want %d ids (a full page)", len(pages)+1, ids, limit)
		}
		if wantNext := !last; (p.Next != "") != wantNext || (wantNext && p.Next != ids[len(ids)-1]) {
			t.Fatalf("page %d = %v has next %q; want it set to its last id: %v", len(pages)+1, ids, p.Next, wantNext)
		}
		if wantPrev := len(pages) > 0; (p.Prev != "") != wantPrev || (wantPrev && p.Prev != ids[0]) {
			t.Fatalf("page %d = %v has prev %q; want it set to its first id: %v", len(pages)+1, ids, p.Prev, wantPrev)
		}
		pages = append(pages, ids)
		seen = append(seen, ids...)
		if len(seen) > len(want) {
			t.Fatalf("pages gave %v, more than %v", seen, want)
		}
		if p.Next == "" {
			break
		}
		q = catalog.CollectionQuery{Readable: f, Limit: limit, After: p.Next}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("forward pages gave %v, want %v", seen, want)
	}
	// Back from the last page: the pages before it, in turn.
	before := pages[len(pages)-1][0]
	for k := len(pages) - 2; k >= 0; k-- {
		p, err := s.ListCollections(ctx(t), catalog.CollectionQuery{Readable: f, Limit: limit, Before: before})
		if err != nil {
			t.Fatalf("ListCollections(before %q): %v", before, err)
		}
		ids := listIDs(p)
		if !slices.Equal(ids, pages[k]) {
			t.Fatalf("page before %q = %v, want %v", before, ids, pages[k])
		}
		if p.Next != ids[len(ids)-1] {
			t.Fatalf("page before %q has next %q, want %q", before, p.Next, ids[len(ids)-1])
		}
		if wantPrev := k > 0; (p.Prev != "") != wantPrev || (wantPrev && p.Prev != ids[0]) {
			t.Fatalf("page before %q = %v has prev %q; want it set to its first id: %v", before, ids, p.Prev, wantPrev)
		}
		before = p.Prev
	}
}

func testCollectionReadFilter(t *testing.T, s catalog.Store) {
	var all []string
	mustUpdate(t, s, func(tx catalog.Tx) error {
		for _, rc := range readFilterCollections {
			all = append(all, rc.id)
			if err := tx.InsertCollection(ctx(t), newOwnedCollection(t, rc.id, rc.owner, rc.visibility)); err != nil {
				return fmt.Errorf("insert %s: %w", rc.id, err)
			}
		}
		return nil
	})

	// Owner and visibility round-trip; "" is stored as private.
	for _, rc := range readFilterCollections {
		got, err := s.GetCollection(ctx(t), rc.id)
		if err != nil {
			t.Fatal(err)
		}
		want := rc.visibility
		if want == "" {
			want = catalog.VisibilityPrivate
		}
		if got.Owner != rc.owner || got.Visibility != want {
			t.Fatalf("collection %s has owner %q visibility %q, want %q %q", rc.id, got.Owner, got.Visibility, rc.owner, want)
		}
	}

	tests := []struct {
		name   string
		filter *catalog.ReadFilter
		want   []string
	}{
		{"NoFilter", nil, all},
		{"Anonymous", &catalog.ReadFilter{}, []string{"a-pub"}},
		{"SignedInWithoutCollections", &catalog.ReadFilter{User: "carol"}, []string{"a-pub", "b-node"}},
		{"Owner", &catalog.ReadFilter{User: "alice"}, []string{"a-pub", "b-node", "c-alice"}},
		{"OwnerOfMany", &catalog.ReadFilter{User: "bob"},
			[]string{"a-pub", "b-node", "d-bob", "eo-1", "eo-2", "eo_x", "p%q", "pzq"}},
		{"GrantedIDs", &catalog.ReadFilter{IDs: []string{"d-bob", "missing", "eo_x"}}, []string{"a-pub", "d-bob", "eo_x"}},
		{"GrantedIDIsNotAPattern", &catalog.ReadFilter{IDs: []string{"p%", "eo_", "p_q"}}, []string{"a-pub"}},
		{"GrantedIDsAndUser", &catalog.ReadFilter{User: "alice", IDs: []string{"pzq"}},
			[]string{"a-pub", "b-node", "c-alice", "pzq"}},
		{"Prefix", &catalog.ReadFilter{Prefixes: []string{"eo-"}}, []string{"a-pub", "eo-1", "eo-2"}},
		{"PrefixUnderscore", &catalog.ReadFilter{Prefixes: []string{"eo_"}}, []string{"a-pub", "eo_x"}},
		{"PrefixPercent", &catalog.ReadFilter{Prefixes: []string{"p%"}}, []string{"a-pub", "p%q"}},
		{"PrefixWholeID", &catalog.ReadFilter{Prefixes: []string{"c-alice"}}, []string{"a-pub", "c-alice"}},
		{"PrefixLongerThanID", &catalog.ReadFilter{Prefixes: []string{"eo-1x"}}, []string{"a-pub"}},
		{"PrefixesIDsAndUser", &catalog.ReadFilter{User: "carol", IDs: []string{"pzq"}, Prefixes: []string{"eo-", "d"}},
			[]string{"a-pub", "b-node", "d-bob", "eo-1", "eo-2", "pzq"}},
		{"EmptyPrefix", &catalog.ReadFilter{Prefixes: []string{"nothing", ""}}, all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := readableIDs(t, s, tc.filter); !slices.Equal(got, tc.want) {
				t.Fatalf("listing gave %v, want %v", got, tc.want)
			}
			checkFilteredPaging(t, s, tc.filter, 2, tc.want)
		})
	}

	// A cursor at a collection the caller may not read still pages.
	p, err := s.ListCollections(ctx(t), catalog.CollectionQuery{Readable: &catalog.ReadFilter{User: "carol", Prefixes: []string{"eo-"}}, Limit: 2, After: "c-alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got := listIDs(p); !slices.Equal(got, []string{"eo-1", "eo-2"}) || p.Next != "" || p.Prev != "eo-1" {
		t.Fatalf("page after c-alice = %v (next %q prev %q), want [eo-1 eo-2] with prev only", got, p.Next, p.Prev)
	}

	// An update rewrites the columns: c-alice goes public, d-bob moves
	// to carol.
	update := func(id string, change func(c *catalog.Collection)) {
		t.Helper()
		mustUpdate(t, s, func(tx catalog.Tx) error {
			c, err := tx.GetCollection(ctx(t), id)
			if err != nil {
				return err
			}
			old := c.ETag
			change(c)
			c.Updated = t0.Add(time.Hour)
			if _, err := c.Seal(); err != nil {
				return err
			}
			return tx.UpdateCollection(ctx(t), c, old)
		})
	}
	update("c-alice", func(c *catalog.Collection) {
		c.Doc.Set(catalog.PropVisibility, catalog.VisibilityPublic)
		c.Visibility = catalog.VisibilityPublic
	})
	update("d-bob", func(c *catalog.Collection) { c.SetOwner("carol") })
	got, err := s.GetCollection(ctx(t), "c-alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Visibility != catalog.VisibilityPublic || got.Owner != "alice" {
		t.Fatalf("c-alice after update has owner %q visibility %q, want alice public", got.Owner, got.Visibility)
	}
	if ids := readableIDs(t, s, &catalog.ReadFilter{}); !slices.Equal(ids, []string{"a-pub", "c-alice"}) {
		t.Fatalf("anonymous listing after c-alice went public = %v, want [a-pub c-alice]", ids)
	}
	if ids := readableIDs(t, s, &catalog.ReadFilter{User: "carol"}); !slices.Equal(ids, []string{"a-pub", "b-node", "c-alice", "d-bob"}) {
		t.Fatalf("carol's listing after d-bob moved to her = %v, want [a-pub b-node c-alice d-bob]", ids)
	}
	if ids := readableIDs(t, s, &catalog.ReadFilter{User: "bob"}); slices.Contains(ids, "d-bob") {
		t.Fatalf("bob's listing after d-bob moved to carol = %v, still has d-bob", ids)
	}
}
