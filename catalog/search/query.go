// Package search is the item search of the catalog: the query a STAC API
// search, an item listing, a count or an aggregation asks a store, the
// planner that splits its CQL2 filter into what a store pushes down and a
// residual, and the reference semantics every store is tested against
// (Match and Less, over the cql2 evaluator).
//
// It imports catalog and catalog/cql2 and no storage driver; stores
// (internal/postgres, internal/sqlite) implement Searcher.
package search

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
)

// Searcher runs searches. Stores implement it.
type Searcher interface {
	// Search returns one page of the items that match q, in q's order.
	// q has been through Prepare. Codes: EINVALID (a filter the store
	// cannot run, a bad cursor), EUNAVAILABLE.
	Search(ctx context.Context, q *Query) (*Page, error)
}

// Query selects items across collections. The zero Query matches every
// item in the default states, newest first.
type Query struct {
	// Collections keeps items of these collections; empty: any.
	Collections []string
	// IDs keeps items with these ids; empty: any.
	IDs []string
	// BBox keeps items whose geometry intersects it: 4 numbers (west,
	// south, east, north), or 6 with heights, which are ignored. West
	// greater than east crosses the antimeridian. Items without a
	// geometry never match.
	BBox []float64
	// Intersects keeps items whose geometry intersects this GeoJSON
	// geometry.
	Intersects json.RawMessage
	// Start and End keep items whose time range overlaps [Start, End];
	// nil is an open bound.
	Start, End *time.Time
	// Filter is a CQL2 filter (checked with cql2.Check); nil: none.
	Filter cql2.Expr
	// Q are free-text terms, alternatives (see MatchText); Prepare
	// normalises them to their words.
	Q []string
	// Sort orders the page; empty: DefaultSort. Prepare appends the id
	// and collection tie-breakers.
	Sort []SortKey
	// States keeps items in these states; empty: DefaultStates(Filter).
	// Deleted items (tombstones, with no document) are found only when
	// States names them.
	States []catalog.State
	// Access limits the items to those a caller may read; nil: all.
	Access *Access
	// Limit is the page size, 1 to catalog.MaxPageSize (0: default).
	Limit int
	// After and Before are the cursors of a next or a previous page; at
	// most one is set.
	After, Before *Cursor
	// Count asks for the number of matches, when it can be had within
	// CountBudget (0: no limit).
	Count       bool
	CountBudget time.Duration

	// match is the checked spatial and filter part of Match, built on
	// first use.
	match func(cql2.Feature) bool
}

// Access describes the items a caller may read, resolved from ownership,
// visibility and policies so that a store can push it into its query: an
// item is readable when it is in one of Collections and not a draft, or a
// draft in one of Drafts, or a non-draft shared on its own by one of
// Shares, or owned by Owner (results and snapshots belong to who made
// them).
type Access struct {
	Collections []string
	Drafts      []string
	Shares      []Share
	// Owner is the caller's user id ("" for an anonymous caller, who owns
	// nothing): items whose dt:owner is Owner are readable in any state.
	Owner string
}

// ItemRef names an item.
type ItemRef struct {
	Collection, ID string
}

// Share is a policy that shares items with the caller one by one. The
// store holds the policy: it may find the shared items by the policy's
// id (PostgreSQL keeps, with each item, the policies that name it) or by
// the items' keys.
type Share struct {
	Policy string
	Items  []ItemRef
}

// SharedItems returns the items of every share, each once.
func (a *Access) SharedItems() []ItemRef {
	var out []ItemRef
	seen := map[ItemRef]bool{}
	for _, s := range a.Shares {
		for _, r := range s.Items {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// SharePolicies returns the ids of the shares' policies.
func (a *Access) SharePolicies() []string {
	out := make([]string, len(a.Shares))
	for i, s := range a.Shares {
		out[i] = s.Policy
	}
	return out
}

// Page is one page of a search. Next and Prev are the cursors of the
// neighbouring pages, nil when there is none. Matched is the number of
// matches when it was asked for and could be had exactly in time.
type Page struct {
	Items      []*catalog.Item
	Next, Prev *Cursor
	Matched    *int64
}

// Properties of an item a query may name besides its properties.
const (
	PropID         = "id"
	PropCollection = "collection"
	PropDatetime   = "datetime"
	PropGeometry   = "geometry"
	PropState      = catalog.PropState
	// PropGeom is the geometry's name in the OGC test data; it reads the
	// item geometry too.
	PropGeom = "geom"
)

// NormalizeProperty maps the names clients use for a property to the one
// queries use: "properties.eo:cloud_cover" and "eo:cloud_cover" are the
// same property.
func NormalizeProperty(name string) string {
	if p, ok := strings.CutPrefix(name, "properties."); ok && p != "" {
		return p
	}
	return name
}

// DefaultStates returns the states a search keeps when it names none:
// every state but archived and deleted, unless the filter names
// dt:state, which opts into archived items too.
func DefaultStates(filter cql2.Expr) []catalog.State {
	if filter != nil && NamesProperty(filter, PropState) {
		return []catalog.State{catalog.StateDraft, catalog.StatePublished, catalog.StateDeprecated, catalog.StateArchived}
	}
	return []catalog.State{catalog.StateDraft, catalog.StatePublished, catalog.StateDeprecated}
}

// NamesProperty reports whether e reads the property name.
func NamesProperty(e cql2.Expr, name string) bool {
	found := false
	Walk(e, func(x cql2.Expr) bool {
		if p, ok := x.(*cql2.Property); ok && p.Name == name {
			found = true
		}
		return !found
	})
	return found
}

// Walk calls fn for e and, while fn returns true, for every node below it.
func Walk(e cql2.Expr, fn func(cql2.Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch x := e.(type) {
	case *cql2.Op:
		for _, a := range x.Args {
			Walk(a, fn)
		}
	case *cql2.Array:
		for _, a := range x.Elems {
			Walk(a, fn)
		}
	case *cql2.Interval:
		Walk(x.Start, fn)
		Walk(x.End, fn)
	}
}

// Prepare checks q and fills in its defaults: the limit, the states, the
// sort with its tie-breakers. Codes: EINVALID.
func Prepare(q *Query) error {
	if q.After != nil && q.Before != nil {
		return catalog.Errorf(catalog.EINVALID, "a page has either an after or a before cursor, not both")
	}
	switch {
	case q.Limit == 0:
		q.Limit = catalog.DefaultPageSize
	case q.Limit < 1 || q.Limit > catalog.MaxPageSize:
		return catalog.Invalid("limit", "limit must be between 1 and %d, not %d", catalog.MaxPageSize, q.Limit)
	}
	if q.BBox != nil {
		if err := CheckBBox("bbox", q.BBox); err != nil {
			return err
		}
	}
	if q.Start != nil && q.End != nil && q.Start.After(*q.End) {
		return catalog.Invalid("datetime", "the interval ends before it starts")
	}
	if q.Filter != nil {
		if err := cql2.Check(q.Filter); err != nil {
			return err
		}
	}
	terms, err := prepareTerms(q.Q)
	if err != nil {
		return err
	}
	q.Q = terms
	if len(q.States) == 0 {
		q.States = DefaultStates(q.Filter)
	}
	for _, st := range q.States {
		if !st.Valid() {
			return catalog.Invalid("dt:state", "%q is not a lifecycle state", st)
		}
	}
	sort, err := prepareSort(q.Sort)
	if err != nil {
		return err
	}
	q.Sort = sort
	for _, c := range []*Cursor{q.After, q.Before} {
		if c != nil && len(c.Keys) != len(q.Sort) {
			return catalog.Invalid("token", "the page token belongs to a search with another sort order")
		}
	}
	return nil
}

// CheckBBox checks a bbox: 4 or 6 finite numbers, south not above north,
// longitudes within ±180 and latitudes within ±90.
func CheckBBox(pointer string, b []float64) error {
	if len(b) != 4 && len(b) != 6 {
		return catalog.Invalid(pointer, "a bbox has 4 or 6 numbers, not %d", len(b))
	}
	w, s, e, n := Corners(b)
	for _, v := range []float64{w, e} {
		if !(v >= -180 && v <= 180) {
			return catalog.Invalid(pointer, "longitudes lie between -180 and 180, not %v", v)
		}
	}
	for _, v := range []float64{s, n} {
		if !(v >= -90 && v <= 90) {
			return catalog.Invalid(pointer, "latitudes lie between -90 and 90, not %v", v)
		}
	}
	if s > n {
		return catalog.Invalid(pointer, "the south edge %v lies north of the north edge %v", s, n)
	}
	if len(b) == 6 && b[2] > b[5] {
		return catalog.Invalid(pointer, "the lower height %v is above the upper height %v", b[2], b[5])
	}
	return nil
}

// Corners returns west, south, east and north of a 4- or 6-number bbox.
func Corners(b []float64) (w, s, e, n float64) {
	if len(b) == 6 {
		return b[0], b[1], b[3], b[4]
	}
	return b[0], b[1], b[2], b[3]
}

// Rects returns the rectangles [west, south, east, north] of a 4- or
// 6-number bbox in the plane: one whose west edge lies east of its east
// edge crosses the antimeridian and is two.
func Rects(b []float64) [][4]float64 {
	w, s, e, n := Corners(b)
	s, n = min(s, n), max(s, n)
	if w <= e {
		return [][4]float64{{w, s, e, n}}
	}
	return [][4]float64{{min(w, 180), s, max(w, 180), n}, {min(-180, e), s, max(-180, e), n}}
}
