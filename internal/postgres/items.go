package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
)

// itemRow holds the column values an item is written with.
type itemRow struct {
	state                        string
	start, end, created, updated time.Time
	geometry                     []byte // EWKB, nil without a geometry
	etag                         string
	content                      []byte // the document, nil for a tombstone
}

// rowOf extracts the stored columns of a sealed item. An item without a
// document, or in state deleted, is written as a tombstone: no content and
// no geometry, so that it never matches a bbox (as in the SQLite store).
func rowOf(it *catalog.Item) (itemRow, error) {
	if it.ETag == "" {
		return itemRow{}, catalog.Internal(fmt.Errorf("postgres: item %q of collection %q is not sealed", it.ID, it.Collection))
	}
	r := itemRow{
		state:   string(it.State),
		start:   it.Start,
		end:     it.End,
		created: it.Created,
		updated: it.Updated,
		etag:    it.ETag,
	}
	if it.Doc == nil || it.State == catalog.StateDeleted {
		r.state = string(catalog.StateDeleted)
		return r, nil
	}
	doc, err := it.SealedDocument()
	if err != nil {
		return itemRow{}, catalog.Internal(err)
	}
	r.content = doc
	g, err := it.LoadGeometry()
	if err != nil {
		return itemRow{}, catalog.Internal(err)
	}
	if r.geometry, err = encodeGeometry(g); err != nil {
		return itemRow{}, catalog.Internal(err)
	}
	return r, nil
}

// itemColumnList is what item reads select, in scanItem's order.
const itemColumnList = `id, state, etag, created, updated, start_dt, end_dt, content`

// scanItem reads a row selected with itemColumnList. Start and End come
// from the columns, which are what listings order and page by; for a
// tombstone, which has no document, they are the only source.
func scanItem(collection string, row pgx.Row) (*catalog.Item, error) {
	var (
		id, state, etag              string
		created, updated, start, end time.Time
		content                      []byte
	)
	if err := row.Scan(&id, &state, &etag, &created, &updated, &start, &end, &content); err != nil {
		return nil, err
	}
	it, err := catalog.LoadItem(collection, id, catalog.State(state), etag, created.UTC(), updated.UTC(), content)
	if err != nil {
		return nil, err
	}
	it.Start, it.End = start.UTC(), end.UTC()
	return it, nil
}

func getItem(ctx context.Context, q querier, collection, id string, lock bool) (*catalog.Item, error) {
	query := `SELECT ` + itemColumnList + ` FROM items WHERE collection = $1 AND id = $2`
	if lock {
		query += ` FOR UPDATE`
	}
	it, err := scanItem(collection, q.QueryRow(ctx, query, collection, id))
	if isNoRows(err) {
		return nil, catalog.ErrItemNotFound(collection, id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	return it, nil
}

// GetItem returns an item, a tombstone for a deleted one.
// Codes: ENOTFOUND.
func (s *Store) GetItem(ctx context.Context, collection, id string) (*catalog.Item, error) {
	return getItem(ctx, s.pool, collection, id, false)
}

// ListItems returns a page of a collection's items ordered by Start
// descending, then id descending, by keyset: a page after a cursor reads
// on from it in that order; a page before a cursor reads backwards
// (ascending) from it and is reversed. One row more than the page is read
// to learn whether more follow. Next is set when more items follow the
// page or the query had Before; Prev when the query had After, or it had
// Before and more items precede the page. An empty page has no cursors.
// Codes: ENOTFOUND (no collection), EINVALID (both cursors, or a bbox
// that is not 4 or 6 numbers).
func (s *Store) ListItems(ctx context.Context, q catalog.ItemQuery) (*catalog.ItemPage, error) {
	if q.After != nil && q.Before != nil {
		return nil, catalog.Errorf(catalog.EINVALID, "a page has either an after or a before cursor, not both")
	}
	if q.BBox != nil && len(q.BBox) != 4 && len(q.BBox) != 6 {
		return nil, catalog.Invalid("query.bbox", "a bbox has 4 or 6 numbers, not %d", len(q.BBox))
	}
	limit := clampLimit(q.Limit)
	states := q.States
	if len(states) == 0 {
		states = catalog.DefaultListStates
	}
	stateNames := make([]string, len(states))
	for i, st := range states {
		stateNames[i] = string(st)
	}

	var sb strings.Builder
	args := []any{q.Collection, stateNames}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	sb.WriteString(`SELECT ` + itemColumnList + ` FROM items WHERE collection = $1 AND state = ANY($2::text[])`)

	// Interval overlap: the item starts before the query ends and ends
	// after it starts. The columns hold whole microseconds and pgx
	// truncates parameters to microseconds, so a start with a fraction of
	// a microsecond is rounded up to keep the comparison exact.
	if q.End != nil {
		fmt.Fprintf(&sb, ` AND start_dt <= %s::timestamptz`, arg(*q.End))
	}
	if q.Start != nil {
		start := q.Start.Truncate(time.Microsecond)
		if start.Before(*q.Start) {
			start = start.Add(time.Microsecond)
		}
		fmt.Fprintf(&sb, ` AND end_dt >= %s::timestamptz`, arg(start))
	}

	if q.BBox != nil {
		w, south, e, n := corners(q.BBox)
		envelope := func(w, e float64) string {
			return fmt.Sprintf(`ST_Intersects(geometry, ST_MakeEnvelope(%s::float8, %s::float8, %s::float8, %s::float8, 4326))`,
				arg(w), arg(south), arg(e), arg(n))
		}
		if w <= e {
			sb.WriteString(` AND ` + envelope(w, e))
		} else {
			// Across the antimeridian: [w, 180] or [-180, e].
			sb.WriteString(` AND (` + envelope(w, 180) + ` OR ` + envelope(-180, e) + `)`)
		}
	}

	backward := q.Before != nil
	switch {
	case q.After != nil:
		fmt.Fprintf(&sb, ` AND (start_dt, id) < (%s::timestamptz, %s::text)`, arg(q.After.Start), arg(q.After.ID))
	case backward:
		fmt.Fprintf(&sb, ` AND (start_dt, id) > (%s::timestamptz, %s::text)`, arg(q.Before.Start), arg(q.Before.ID))
	}
	if backward {
		sb.WriteString(` ORDER BY start_dt ASC, id ASC`)
	} else {
		sb.WriteString(` ORDER BY start_dt DESC, id DESC`)
	}
	fmt.Fprintf(&sb, ` LIMIT %s`, arg(limit+1))

	rows, err := s.pool.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, dbError(err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*catalog.Item, error) { return scanItem(q.Collection, r) })
	if err != nil {
		return nil, dbError(err)
	}
	if len(items) == 0 {
		// Tell an empty page of an existing collection from a missing one.
		if _, err := getCollection(ctx, s.pool, q.Collection, false); err != nil {
			return nil, err
		}
		return &catalog.ItemPage{Items: []*catalog.Item{}}, nil
	}
	return catalog.NewItemPage(items, q, limit), nil
}

// corners returns west, south, east and north of a 4- or 6-number bbox;
// the heights of a 6-number bbox are ignored.
func corners(b []float64) (w, s, e, n float64) {
	if len(b) == 6 {
		return b[0], b[1], b[3], b[4]
	}
	return b[0], b[1], b[2], b[3]
}
