package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
)

// querier is what *sql.DB and *sql.Tx share, so that the store's reads
// and the transaction's locked reads run the same SQL.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// itemColumns are the column values an item is written with.
type itemColumns struct {
	state                  string
	startUS, endUS         int64
	minx, miny, maxx, maxy any // float64, or nil without a geometry
	created, updated       int64
	etag                   string
	content                any // the document as a string, or nil for a tombstone
	// text is what free text matches (search.ItemText), for items_fts;
	// none for a tombstone.
	text string
}

// columnsOf extracts the stored columns of a sealed item. An item without
// a document, or in state deleted, is written as a tombstone: no content
// and no place in the spatial index.
func columnsOf(it *catalog.Item) (itemColumns, error) {
	if it.ETag == "" {
		return itemColumns{}, catalog.Internal(fmt.Errorf("sqlite: item %q of collection %q is not sealed", it.ID, it.Collection))
	}
	c := itemColumns{
		state:   string(it.State),
		startUS: micros(it.Start),
		endUS:   micros(it.End),
		created: micros(it.Created),
		updated: micros(it.Updated),
		etag:    it.ETag,
	}
	if it.Doc == nil || it.State == catalog.StateDeleted {
		c.state = string(catalog.StateDeleted)
		return c, nil
	}
	doc, err := it.SealedDocument()
	if err != nil {
		return itemColumns{}, catalog.Internal(err)
	}
	c.content = string(doc)
	c.text = search.ItemText(it.Props)
	g, err := it.LoadGeometry()
	if err != nil {
		return itemColumns{}, catalog.Internal(err)
	}
	if g != nil {
		b := it.BBox
		if len(b) != 4 && len(b) != 6 {
			b = catalog.GeometryBBox(g)
		}
		w, s, e, n := corners(b)
		if w > e { // across the antimeridian: index the whole longitude range
			w, e = -180, 180
		}
		c.minx, c.miny, c.maxx, c.maxy = w, s, e, n
	}
	return c, nil
}

// corners returns west, south, east and north of a 4- or 6-number bbox.
func corners(b []float64) (w, s, e, n float64) {
	if len(b) == 6 {
		return b[0], b[1], b[3], b[4]
	}
	return b[0], b[1], b[2], b[3]
}

// loadItem rebuilds an item from its row. A tombstone has no document to
// take Start and End from, so they come from the columns: listings that
// show deleted items then hand out cursors that match the row.
func loadItem(collection, id, state, etag string, created, updated, startUS, endUS int64, content []byte) (*catalog.Item, error) {
	it, err := catalog.LoadItem(collection, id, catalog.State(state), etag, fromMicros(created), fromMicros(updated), content)
	if err != nil {
		return nil, err
	}
	if it.Doc == nil {
		it.Start, it.End = fromMicros(startUS), fromMicros(endUS)
	}
	return it, nil
}

const itemColumnList = "id, state, etag, created, updated, start_us, end_us, content"

// scanItem reads a row selected with itemColumnList.
func scanItem(collection string, row interface{ Scan(...any) error }) (*catalog.Item, error) {
	var (
		id, state, etag                  string
		created, updated, startUS, endUS int64
		content                          []byte
	)
	if err := row.Scan(&id, &state, &etag, &created, &updated, &startUS, &endUS, &content); err != nil {
		return nil, err
	}
	return loadItem(collection, id, state, etag, created, updated, startUS, endUS, content)
}

func getItem(ctx context.Context, q querier, collection, id string) (*catalog.Item, error) {
	row := q.QueryRowContext(ctx, "SELECT "+itemColumnList+" FROM items WHERE collection = ? AND id = ?", collection, id)
	it, err := scanItem(collection, row)
	if errors.Is(err, sql.ErrNoRows) {
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
	return getItem(ctx, s.r, collection, id)
}

// ListItems returns a page of a collection's items ordered by Start
// descending, then id descending, by keyset: a page after a cursor reads
// on from it in that order; a page before a cursor reads backwards
// (ascending) from it and is reversed. One row more than the page is read
// to learn whether more follow. Codes: ENOTFOUND (no collection), EINVALID
// (both cursors, or a bbox that is not 4 or 6 numbers).
func (s *Store) ListItems(ctx context.Context, q catalog.ItemQuery) (*catalog.ItemPage, error) {
	if q.After != nil && q.Before != nil {
		return nil, catalog.Errorf(catalog.EINVALID, "a page has either an after or a before cursor, not both")
	}
	if q.BBox != nil && len(q.BBox) != 4 && len(q.BBox) != 6 {
		return nil, catalog.Invalid("query.bbox", "a bbox has 4 or 6 numbers, not %d", len(q.BBox))
	}
	limit := clampLimit(q.Limit)
	var (
		sb   strings.Builder
		args []any
	)
	sb.WriteString("SELECT i.id, i.state, i.etag, i.created, i.updated, i.start_us, i.end_us, i.content FROM items i")
	if q.BBox != nil {
		sb.WriteString(" JOIN items_rtree r ON r.id = i.rowid")
	}
	sb.WriteString(" WHERE i.collection = ?")
	args = append(args, q.Collection)

	states := q.States
	if len(states) == 0 {
		states = catalog.DefaultListStates
	}
	sb.WriteString(" AND i.state IN (")
	for k, st := range states {
		if k > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("?")
		args = append(args, string(st))
	}
	sb.WriteString(")")

	// Interval overlap: the item starts before the query ends and ends
	// after it starts, in whole microseconds as stored.
	if q.End != nil {
		sb.WriteString(" AND i.start_us <= ?")
		args = append(args, micros(*q.End))
	}
	if q.Start != nil {
		us := micros(*q.Start)
		if fromMicros(us).Before(*q.Start) {
			us++ // round up: end_us >= the start of the query, to the nanosecond
		}
		sb.WriteString(" AND i.end_us >= ?")
		args = append(args, us)
	}

	if q.BBox != nil {
		w, south, e, n := corners(q.BBox)
		// The R*Tree holds 32-bit floats rounded outwards, so it finds a
		// superset; the exact 64-bit columns of items decide.
		for _, t := range []string{"r", "i"} {
			sb.WriteString(fmt.Sprintf(" AND %[1]s.miny <= ? AND %[1]s.maxy >= ?", t))
			args = append(args, n, south)
			if w <= e {
				sb.WriteString(fmt.Sprintf(" AND %[1]s.minx <= ? AND %[1]s.maxx >= ?", t))
				args = append(args, e, w)
			} else {
				// Across the antimeridian: [w, 180] or [-180, e].
				sb.WriteString(fmt.Sprintf(" AND (%[1]s.maxx >= ? OR %[1]s.minx <= ?)", t))
				args = append(args, w, e)
			}
		}
	}

	backward := q.Before != nil
	switch {
	case q.After != nil:
		sb.WriteString(" AND (i.start_us, i.id) < (?, ?)")
		args = append(args, micros(q.After.Start), q.After.ID)
	case backward:
		sb.WriteString(" AND (i.start_us, i.id) > (?, ?)")
		args = append(args, micros(q.Before.Start), q.Before.ID)
	}
	if backward {
		sb.WriteString(" ORDER BY i.start_us ASC, i.id ASC")
	} else {
		sb.WriteString(" ORDER BY i.start_us DESC, i.id DESC")
	}
	sb.WriteString(" LIMIT ?")
	args = append(args, limit+1)

	items, err := queryItems(ctx, s.r, q.Collection, sb.String(), args...)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		// Tell an empty page of an existing collection from a missing one.
		if _, err := getCollection(ctx, s.r, q.Collection); err != nil {
			return nil, err
		}
		return &catalog.ItemPage{Items: []*catalog.Item{}}, nil
	}
	return catalog.NewItemPage(items, q, limit), nil
}

func queryItems(ctx context.Context, q querier, collection, query string, args ...any) ([]*catalog.Item, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = rows.Close() }()
	var items []*catalog.Item
	for rows.Next() {
		it, err := scanItem(collection, rows)
		if err != nil {
			return nil, dbError(err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	return items, nil
}
