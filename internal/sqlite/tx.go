package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twinstac/twinstac/catalog"
)

// Tx is the catalog.Tx of Store.Update: one BEGIN IMMEDIATE transaction
// on the write connection. The transaction holds SQLite's write lock from
// its start, so every read in it is already locked against other writers.
type Tx struct {
	tx *sql.Tx
}

var _ catalog.Tx = (*Tx)(nil)

// GetCollection returns a collection. Codes: ENOTFOUND.
func (t *Tx) GetCollection(ctx context.Context, id string) (*catalog.Collection, error) {
	return getCollection(ctx, t.tx, id)
}

// visibilityColumn is the visibility column of c: "" is private.
func visibilityColumn(c *catalog.Collection) string {
	if c.Visibility == "" {
		return catalog.VisibilityPrivate
	}
	return c.Visibility
}

// InsertCollection stores a new collection. Codes: ECONFLICT.
func (t *Tx) InsertCollection(ctx context.Context, c *catalog.Collection) error {
	doc, err := json.Marshal(c.Doc)
	if err != nil {
		return catalog.Internal(err)
	}
	_, err = t.tx.ExecContext(ctx, "INSERT INTO collections (id, etag, created, updated, doc, owner, visibility) VALUES (?, ?, ?, ?, ?, ?, ?)",
		c.ID, c.ETag, micros(c.Created), micros(c.Updated), string(doc), c.Owner, visibilityColumn(c))
	if isUnique(err) {
		return &catalog.Error{Code: catalog.ECONFLICT, Message: fmt.Sprintf("collection %q already exists", c.ID), Err: err}
	}
	return dbError(err)
}

// UpdateCollection replaces a collection whose ETag is still etag, its
// owner and visibility columns included; its created time stays.
// Codes: ENOTFOUND, EPRECONDITION.
func (t *Tx) UpdateCollection(ctx context.Context, c *catalog.Collection, etag string) error {
	doc, err := json.Marshal(c.Doc)
	if err != nil {
		return catalog.Internal(err)
	}
	res, err := t.tx.ExecContext(ctx, "UPDATE collections SET etag = ?, updated = ?, doc = ?, owner = ?, visibility = ? WHERE id = ? AND etag = ?",
		c.ETag, micros(c.Updated), string(doc), c.Owner, visibilityColumn(c), c.ID, etag)
	if err != nil {
		return dbError(err)
	}
	return t.swapped(ctx, res, "SELECT etag FROM collections WHERE id = ?", []any{c.ID},
		catalog.ErrCollectionNotFound(c.ID), fmt.Sprintf("collection %q", c.ID))
}

// DeleteCollection removes a collection; its items and the sizes of its
// asset files go by the foreign keys' cascades, and the items' R*Tree
// rows by trigger. Codes: ENOTFOUND.
func (t *Tx) DeleteCollection(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, "DELETE FROM collections WHERE id = ?", id)
	if err != nil {
		return dbError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(err)
	}
	if n == 0 {
		return catalog.ErrCollectionNotFound(id)
	}
	return nil
}

// GetItem returns an item or tombstone. Codes: ENOTFOUND.
func (t *Tx) GetItem(ctx context.Context, collection, id string) (*catalog.Item, error) {
	return getItem(ctx, t.tx, collection, id)
}

const insertItemSQL = `INSERT INTO items (collection, id, state, start_us, end_us, minx, miny, maxx, maxy, created, updated, etag, content)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertTextSQL indexes a new item's free text. Inserts do it in Go
// (migration 0008 dropped the insert trigger: extracting the text with
// SQLite's JSON functions took a quarter of a bulk load); updates and
// deletes keep their triggers.
const insertTextSQL = `INSERT INTO items_fts (rowid, text) VALUES (?, ?)`

// indexText indexes the free text of the item an insert just stored.
func indexText(ctx context.Context, exec func(context.Context, ...any) (sql.Result, error), res sql.Result, c *itemColumns) error {
	if c.content == nil {
		return nil
	}
	rowid, err := res.LastInsertId()
	if err != nil {
		return dbError(err)
	}
	_, err = exec(ctx, rowid, c.text)
	return dbError(err)
}

func insertArgs(it *catalog.Item, c *itemColumns) []any {
	return []any{it.Collection, it.ID, c.state, c.startUS, c.endUS, c.minx, c.miny, c.maxx, c.maxy, c.created, c.updated, c.etag, c.content}
}

// InsertItems implements catalog.Tx: in SQLite, a row write is cheap
// and the transaction is the cost, so the items go one by one.
func (t *Tx) InsertItems(ctx context.Context, collection string, items []*catalog.Item) error {
	for _, it := range items {
		if it.Collection != collection {
			return catalog.Internal(fmt.Errorf("sqlite: item %q of collection %q inserted into %q", it.ID, it.Collection, collection))
		}
		if err := t.InsertItem(ctx, it); err != nil {
			return err
		}
	}
	return nil
}

// InsertItem stores a new item. Codes: ENOTFOUND (no collection),
// ECONFLICT (the id exists or existed).
func (t *Tx) InsertItem(ctx context.Context, it *catalog.Item) error {
	c, err := columnsOf(it)
	if err != nil {
		return err
	}
	res, err := t.tx.ExecContext(ctx, insertItemSQL, insertArgs(it, &c)...)
	if err != nil {
		return t.insertItemError(ctx, it, err)
	}
	return indexText(ctx, func(ctx context.Context, args ...any) (sql.Result, error) {
		return t.tx.ExecContext(ctx, insertTextSQL, args...)
	}, res, &c)
}

// insertItemError names the conflict or the missing collection of a
// failed item insert.
func (t *Tx) insertItemError(ctx context.Context, it *catalog.Item, err error) error {
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		var state string
		_ = t.tx.QueryRowContext(ctx, "SELECT state FROM items WHERE collection = ? AND id = ?", it.Collection, it.ID).Scan(&state)
		return catalog.ErrItemExists(it.Collection, it.ID, state == string(catalog.StateDeleted), err)
	case isForeignKey(err):
		return catalog.ErrCollectionNotFound(it.Collection)
	}
	return dbError(err)
}

// UpdateItem replaces an item whose ETag is still etag; an item without
// a document becomes a tombstone, and the sizes of its asset files are
// forgotten (see SetAssetBytes). Its created time stays.
// Codes: ENOTFOUND, EPRECONDITION.
func (t *Tx) UpdateItem(ctx context.Context, it *catalog.Item, etag string) error {
	c, err := columnsOf(it)
	if err != nil {
		return err
	}
	res, err := t.tx.ExecContext(ctx, `UPDATE items SET state = ?, start_us = ?, end_us = ?, minx = ?, miny = ?, maxx = ?, maxy = ?,
		updated = ?, etag = ?, content = ? WHERE collection = ? AND id = ? AND etag = ?`,
		c.state, c.startUS, c.endUS, c.minx, c.miny, c.maxx, c.maxy, c.updated, c.etag, c.content, it.Collection, it.ID, etag)
	if err != nil {
		return dbError(err)
	}
	err = t.swapped(ctx, res, "SELECT etag FROM items WHERE collection = ? AND id = ?", []any{it.Collection, it.ID},
		catalog.ErrItemNotFound(it.Collection, it.ID), fmt.Sprintf("item %q of collection %q", it.ID, it.Collection))
	if err != nil || c.content != nil {
		return err
	}
	return t.forgetItemAssetBytes(ctx, it.Collection, it.ID)
}

// swapped finishes a compare-and-swap UPDATE: when it touched no row, the
// row is either missing (ENOTFOUND) or has another ETag (EPRECONDITION).
func (t *Tx) swapped(ctx context.Context, res sql.Result, lookup string, args []any, notFound error, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(err)
	}
	if n > 0 {
		return nil
	}
	var cur string
	err = t.tx.QueryRowContext(ctx, lookup, args...).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return dbError(err)
	}
	return catalog.Errorf(catalog.EPRECONDITION, "%s has changed (its ETag is no longer the one given)", what)
}

// AppendEvents writes events to the outbox and sets their Seq.
func (t *Tx) AppendEvents(ctx context.Context, events ...*catalog.Event) error {
	for _, ev := range events {
		if err := appendEvent(ctx, t.tx, ev); err != nil {
			return err
		}
	}
	return nil
}
