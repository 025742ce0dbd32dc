package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/twinstac/twinstac/catalog"
)

const collectionColumnList = "id, etag, created, updated, doc"

func scanCollection(row interface{ Scan(...any) error }) (*catalog.Collection, error) {
	var (
		id, etag         string
		created, updated int64
		doc              []byte
	)
	if err := row.Scan(&id, &etag, &created, &updated, &doc); err != nil {
		return nil, err
	}
	return catalog.LoadCollection(id, etag, fromMicros(created), fromMicros(updated), doc)
}

func getCollection(ctx context.Context, q querier, id string) (*catalog.Collection, error) {
	c, err := scanCollection(q.QueryRowContext(ctx, "SELECT "+collectionColumnList+" FROM collections WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, catalog.ErrCollectionNotFound(id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	return c, nil
}

// GetCollection returns a collection. Codes: ENOTFOUND.
func (s *Store) GetCollection(ctx context.Context, id string) (*catalog.Collection, error) {
	return getCollection(ctx, s.r, id)
}

// ListCollections returns a page of collections ordered by id, by keyset
// on the id, with the same cursor rules as ListItems. Codes: EINVALID
// (both cursors).
func (s *Store) ListCollections(ctx context.Context, q catalog.CollectionQuery) (*catalog.CollectionPage, error) {
	if q.After != "" && q.Before != "" {
		return nil, catalog.Errorf(catalog.EINVALID, "a page has either an after or a before cursor, not both")
	}
	limit := clampLimit(q.Limit)
	query, args := "SELECT "+collectionColumnList+" FROM collections ORDER BY id LIMIT ?", []any{limit + 1}
	switch {
	case q.After != "":
		query, args = "SELECT "+collectionColumnList+" FROM collections WHERE id > ? ORDER BY id LIMIT ?", []any{q.After, limit + 1}
	case q.Before != "":
		query, args = "SELECT "+collectionColumnList+" FROM collections WHERE id < ? ORDER BY id DESC LIMIT ?", []any{q.Before, limit + 1}
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = rows.Close() }()
	cs := []*catalog.Collection{}
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, dbError(err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	page := &catalog.CollectionPage{Collections: cs}
	if len(cs) == 0 {
		return page, nil
	}
	more := len(cs) > limit
	if more {
		cs = cs[:limit]
		page.Collections = cs
	}
	if q.Before != "" {
		slices.Reverse(cs)
		page.Next = cs[len(cs)-1].ID
		if more {
			page.Prev = cs[0].ID
		}
		return page, nil
	}
	if more {
		page.Next = cs[len(cs)-1].ID
	}
	if q.After != "" {
		page.Prev = cs[0].ID
	}
	return page, nil
}
