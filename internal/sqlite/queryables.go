package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
)

var _ search.QueryableStore = (*Store)(nil)

// Queryables returns a collection's refined queryables document, nil
// when none was set. Codes: ENOTFOUND.
func (s *Store) Queryables(ctx context.Context, collection string) (json.RawMessage, error) {
	var doc sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT q.doc FROM collections c LEFT JOIN queryables q ON q.collection = c.id WHERE c.id = ?`, collection).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, catalog.ErrCollectionNotFound(collection)
	}
	if err != nil {
		return nil, dbError(err)
	}
	if !doc.Valid {
		return nil, nil
	}
	return json.RawMessage(doc.String), nil
}

// IndexesProperties reports that this store builds no property indexes:
// filters on properties read every candidate row's document.
func (s *Store) IndexesProperties() bool { return false }

// SetQueryables stores a collection's refined queryables document. The
// indexed properties are kept in the document only. Codes: ENOTFOUND.
func (s *Store) SetQueryables(ctx context.Context, collection string, doc json.RawMessage, _ []search.IndexedProperty) error {
	return s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		if _, err := t.GetCollection(ctx, collection); err != nil {
			return err
		}
		_, err := t.tx.ExecContext(ctx, `INSERT INTO queryables (collection, doc, updated) VALUES (?, ?, ?)
			ON CONFLICT (collection) DO UPDATE SET doc = excluded.doc, updated = excluded.updated`,
			collection, string(doc), micros(time.Now()))
		return dbError(err)
	})
}
