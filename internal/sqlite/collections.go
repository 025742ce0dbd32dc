package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"

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
// on the id, with the same cursor rules as ListItems. q.Readable is part
// of the keyset query, so that a filtered page is as full as an
// unfiltered one and its cursors point at readable rows.
// Codes: EINVALID (both cursors).
func (s *Store) ListCollections(ctx context.Context, q catalog.CollectionQuery) (*catalog.CollectionPage, error) {
	if q.After != "" && q.Before != "" {
		return nil, catalog.Errorf(catalog.EINVALID, "a page has either an after or a before cursor, not both")
	}
	limit := clampLimit(q.Limit)
	var (
		where []string
		args  []any
	)
	if q.Readable != nil {
		if cond, condArgs := readableSQL(q.Readable); cond != "" {
			where, args = append(where, cond), append(args, condArgs...)
		}
	}
	order := "id"
	switch {
	case q.After != "":
		where, args = append(where, "id > ?"), append(args, q.After)
	case q.Before != "":
		where, args = append(where, "id < ?"), append(args, q.Before)
		order = "id DESC"
	}
	query := "SELECT " + collectionColumnList + " FROM collections"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + order + " LIMIT ?"
	args = append(args, limit+1)
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

// readableSQL returns the condition that keeps the collections f lets
// its caller read, with its arguments; "" when f grants every collection
// (an empty prefix). Values are only ever bound, never spliced into the
// SQL. The granted ids and prefixes go in as one JSON array each, read
// with json_each, so that no number of grants runs into SQLite's limit
// on parameters. A prefix matches by comparing the id's first characters
// with it (substr and length count the same characters), which, unlike
// LIKE or GLOB, gives no character of the prefix a meaning.
func readableSQL(f *catalog.ReadFilter) (string, []any) {
	if slices.Contains(f.Prefixes, "") {
		return "", nil
	}
	arms := []string{"visibility = 'public'"}
	var args []any
	if f.User != "" {
		arms = append(arms, "visibility = 'node'", "owner = ?")
		args = append(args, f.User)
	}
	if len(f.IDs) > 0 {
		ids, _ := json.Marshal(f.IDs) // a []string always marshals
		arms = append(arms, "id IN (SELECT value FROM json_each(?))")
		args = append(args, string(ids))
	}
	if len(f.Prefixes) > 0 {
		prefixes, _ := json.Marshal(f.Prefixes)
		// json_each has an id column of its own: the collection's is
		// named in full.
		arms = append(arms, "EXISTS (SELECT 1 FROM json_each(?) AS p WHERE substr(collections.id, 1, length(p.value)) = p.value)")
		args = append(args, string(prefixes))
	}
	return "(" + strings.Join(arms, " OR ") + ")", args
}
