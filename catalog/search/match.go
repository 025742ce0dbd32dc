package search

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
)

// Feature returns an item as the cql2 evaluator sees it: its properties,
// "id" and "collection", and its geometry.
func Feature(it *catalog.Item) cql2.Feature { return itemFeature{it} }

type itemFeature struct{ it *catalog.Item }

func (f itemFeature) Property(name string) (any, bool) {
	switch name {
	case PropID:
		return f.it.ID, true
	case PropCollection:
		return f.it.Collection, true
	case PropState:
		// The item's state, which a tombstone (no document) has too.
		return string(f.it.State), true
	case PropGeometry, PropGeom:
		// The item geometry, as the stores read these names.
		if g := f.Geometry(); g != nil {
			return g, true
		}
		return nil, true
	}
	raw, ok := f.it.Props[name]
	if !ok {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

func (f itemFeature) Geometry() json.RawMessage {
	raw := bytes.TrimSpace(f.it.Doc["geometry"])
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// SpatialFilter returns the bbox and intersects parameters of q as CQL2
// (S_INTERSECTS on the item geometry), nil when q has neither.
func SpatialFilter(q *Query) cql2.Expr {
	var args []cql2.Expr
	geometry := &cql2.Property{Name: PropGeometry}
	if q.BBox != nil {
		w, s, e, n := Corners(q.BBox)
		box := &cql2.BBox{}
		for _, v := range []float64{w, s, e, n} {
			box.Coords = append(box.Coords, cql2.Number{Text: strconv.FormatFloat(v, 'g', -1, 64)})
		}
		args = append(args, &cql2.Op{Name: "s_intersects", Args: []cql2.Expr{geometry, box}})
	}
	if q.Intersects != nil {
		args = append(args, &cql2.Op{Name: "s_intersects", Args: []cql2.Expr{geometry, &cql2.Geometry{GeoJSON: q.Intersects}}})
	}
	switch len(args) {
	case 0:
		return nil
	case 1:
		return args[0]
	}
	return &cql2.Op{Name: "and", Args: args}
}

// Readable reports whether an item passes a's rules.
func (a *Access) Readable(it *catalog.Item) bool {
	if a == nil {
		return true
	}
	if a.Owner != "" && it.Owner() == a.Owner {
		return true
	}
	if it.State == catalog.StateDraft {
		return slices.Contains(a.Drafts, it.Collection)
	}
	if slices.Contains(a.Collections, it.Collection) {
		return true
	}
	ref := ItemRef{Collection: it.Collection, ID: it.ID}
	for _, s := range a.Shares {
		if slices.Contains(s.Items, ref) {
			return true
		}
	}
	return false
}

// Match reports whether an item matches a prepared query (all of it but
// the sort and the page): the reference semantics of Search. Errors are
// those of the filter (EINVALID).
func Match(q *Query, it *catalog.Item) (bool, error) {
	if !slices.Contains(q.States, it.State) {
		return false, nil
	}
	if len(q.Collections) > 0 && !slices.Contains(q.Collections, it.Collection) {
		return false, nil
	}
	if len(q.IDs) > 0 && !slices.Contains(q.IDs, it.ID) {
		return false, nil
	}
	if q.Start != nil && it.End.Before(*q.Start) {
		return false, nil
	}
	if q.End != nil && it.Start.After(*q.End) {
		return false, nil
	}
	if !q.Access.Readable(it) {
		return false, nil
	}
	if len(q.Q) > 0 && (it.Props == nil || !MatchText(q.Q, ItemText(it.Props))) {
		return false, nil
	}
	if q.match == nil {
		var all []cql2.Expr
		for _, e := range []cql2.Expr{SpatialFilter(q), q.Filter} {
			if e != nil {
				all = append(all, e)
			}
		}
		if e := and(all); e != nil {
			m, err := cql2.NewFilter(e)
			if err != nil {
				return false, err
			}
			q.match = m.Match
		} else {
			q.match = func(cql2.Feature) bool { return true }
		}
	}
	return q.match(Feature(it)), nil
}

// Split divides a filter into the part a store pushes into its query and
// the residual it applies with the evaluator: the arguments of a
// top-level AND go one way or the other by pushable; any other filter
// goes whole. Either result may be nil.
func Split(e cql2.Expr, pushable func(cql2.Expr) bool) (pushed, residual cql2.Expr) {
	if e == nil {
		return nil, nil
	}
	op, ok := e.(*cql2.Op)
	if !ok || op.Name != "and" {
		if pushable(e) {
			return e, nil
		}
		return nil, e
	}
	var in, out []cql2.Expr
	for _, a := range op.Args {
		p, r := Split(a, pushable)
		if p != nil {
			in = append(in, p)
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return and(in), and(out)
}

func and(args []cql2.Expr) cql2.Expr {
	switch len(args) {
	case 0:
		return nil
	case 1:
		return args[0]
	}
	return &cql2.Op{Name: "and", Args: args}
}

// NewPage builds a page from rows a store read for a prepared query: at
// most q.Limit+1 matches, in the order of the read (the reverse of the
// sort when the query had Before). It trims the extra row, restores the
// sort order and sets the cursors: Next when more follow the page (or
// the query had Before), Prev when the query had After (or had Before
// and more precede the page). An empty page has no cursors.
func NewPage(items []*catalog.Item, q *Query) *Page {
	if len(items) == 0 {
		return &Page{Items: []*catalog.Item{}}
	}
	backward := q.Before != nil
	more := len(items) > q.Limit
	if more {
		items = items[:q.Limit]
	}
	if backward {
		slices.Reverse(items)
	}
	page := &Page{Items: items}
	first, last := CursorOf(q.Sort, items[0]), CursorOf(q.Sort, items[len(items)-1])
	switch {
	case backward:
		page.Next = last
		if more {
			page.Prev = first
		}
	default:
		if more {
			page.Next = last
		}
		if q.After != nil {
			page.Prev = first
		}
	}
	return page
}

// Run is the reference search over items held in memory: Match, Compare
// and the keyset page. Tests hold the stores to it.
func Run(q *Query, items []*catalog.Item) (*Page, int64, error) {
	var matched []*catalog.Item
	for _, it := range items {
		ok, err := Match(q, it)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			matched = append(matched, it)
		}
	}
	n := int64(len(matched))
	slices.SortFunc(matched, func(a, b *catalog.Item) int { return Compare(q.Sort, a, b) })
	var rows []*catalog.Item
	switch {
	case q.Before != nil:
		for i := len(matched) - 1; i >= 0 && len(rows) <= q.Limit; i-- {
			if CompareCursor(q.Sort, matched[i], q.Before) < 0 {
				rows = append(rows, matched[i])
			}
		}
	default:
		for _, it := range matched {
			if len(rows) > q.Limit {
				break
			}
			if q.After == nil || CompareCursor(q.Sort, it, q.After) > 0 {
				rows = append(rows, it)
			}
		}
	}
	return NewPage(rows, q), n, nil
}
