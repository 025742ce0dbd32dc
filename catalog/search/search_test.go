package search_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
)

func parse(t *testing.T, s string) cql2.Expr {
	t.Helper()
	e, err := cql2.ParseText(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPrepare(t *testing.T) {
	q := search.Query{Sort: []search.SortKey{{Property: "properties.eo:cloud_cover", Desc: true}}}
	if err := search.Prepare(&q); err != nil {
		t.Fatal(err)
	}
	want := []search.SortKey{{Property: "eo:cloud_cover", Desc: true}, {Property: "id", Desc: true}, {Property: "collection", Desc: true}}
	if !slices.Equal(q.Sort, want) || q.Limit != catalog.DefaultPageSize {
		t.Fatalf("sort %v limit %d", q.Sort, q.Limit)
	}
	if !slices.Equal(q.States, []catalog.State{catalog.StateDraft, catalog.StatePublished, catalog.StateDeprecated}) {
		t.Fatalf("default states %v", q.States)
	}
	// A filter on dt:state opts into archived items.
	q = search.Query{Filter: parse(t, `"dt:state" = 'archived'`)}
	if err := search.Prepare(&q); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(q.States, catalog.StateArchived) || slices.Contains(q.States, catalog.StateDeleted) {
		t.Fatalf("states with a dt:state filter: %v", q.States)
	}
	for _, bad := range []search.Query{
		{Limit: catalog.MaxPageSize + 1},
		{Limit: -1},
		{BBox: []float64{1, 2, 3}},
		{BBox: []float64{0, 10, 1, 5}},
		{BBox: []float64{0, 0, 200, 5}},
		{Sort: []search.SortKey{{Property: "geometry"}}},
		{Sort: []search.SortKey{{Property: "a"}, {Property: "properties.a"}}},
		{Filter: parse(t, "a < 'x' AND 1 < 'x'")},
		{States: []catalog.State{"frozen"}},
		{After: &search.Cursor{}, Before: &search.Cursor{}},
	} {
		if err := search.Prepare(&bad); catalog.ErrorCode(err) != catalog.EINVALID {
			t.Errorf("Prepare(%+v) = %v, want EINVALID", bad, err)
		}
	}
}

func TestTokens(t *testing.T) {
	q := search.Query{Sort: []search.SortKey{{Property: "datetime", Desc: true}, {Property: "platform"}}}
	if err := search.Prepare(&q); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 6, 1, 10, 0, 0, 123456000, time.UTC)
	c := &search.Cursor{Keys: []any{at, json.RawMessage(`"sentinel-2b"`), "item-1", "c1"}}
	for _, before := range []bool{false, true} {
		tok := search.EncodeToken(c, before)
		got, b, err := search.DecodeToken(tok, q.Sort)
		if err != nil || b != before {
			t.Fatalf("DecodeToken(%q) = %v, %v", tok, b, err)
		}
		raw, _ := got.Keys[1].(json.RawMessage)
		if !got.Keys[0].(time.Time).Equal(at) || string(raw) != `"sentinel-2b"` || got.Keys[2] != "item-1" || got.Keys[3] != "c1" {
			t.Fatalf("round trip: %#v", got.Keys)
		}
	}
	other := search.Query{}
	if err := search.Prepare(&other); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", "x", "nnot-base64!", "n" + "e30", search.EncodeToken(c, false)} {
		if _, _, err := search.DecodeToken(tok, other.Sort); catalog.ErrorCode(err) != catalog.EINVALID {
			t.Errorf("DecodeToken(%q) for another sort = %v, want EINVALID", tok, err)
		}
	}
}

func TestSplit(t *testing.T) {
	pushable := func(e cql2.Expr) bool { return !search.NamesProperty(e, "r") }
	for _, tc := range []struct{ filter, pushed, residual string }{
		{"a = 1", "a = 1", ""},
		{"r = 1", "", "r = 1"},
		{"a = 1 AND r = 2 AND b = 3", "(a = 1 AND b = 3)", "r = 2"},
		{"a = 1 OR r = 2", "", "(a = 1 OR r = 2)"},
	} {
		p, r := search.Split(parse(t, tc.filter), pushable)
		text := func(e cql2.Expr) string {
			if e == nil {
				return ""
			}
			return cql2.PrintText(e)
		}
		if text(p) != text(parseOrNil(t, tc.pushed)) || text(r) != text(parseOrNil(t, tc.residual)) {
			t.Errorf("Split(%s) = %q | %q, want %q | %q", tc.filter, text(p), text(r), tc.pushed, tc.residual)
		}
	}
}

func parseOrNil(t *testing.T, s string) cql2.Expr {
	if s == "" {
		return nil
	}
	return parse(t, s)
}
