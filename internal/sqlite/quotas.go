package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// Store keeps the per-user quota overrides too, in the table of
// migration 0005, so that an override commits with its audit event in
// the outbox.
var _ access.QuotaStore = (*Store)(nil)

const upsertAssetBytesSQL = `INSERT INTO asset_bytes (collection, item, key, size) VALUES (?, ?, ?, ?)
ON CONFLICT (collection, item, key) DO UPDATE SET size = excluded.size`

// storedBytesSQL sums the asset bytes of an owner's collections: the
// collections by collections_owner_idx, each one's sizes by a range of
// the primary key of asset_bytes.
const storedBytesSQL = `SELECT coalesce(sum(a.size), 0)
FROM collections AS c JOIN asset_bytes AS a ON a.collection = c.id
WHERE c.owner = ?`

// SetAssetBytes records the size of an asset file of an item, replacing
// the size recorded for that key; size 0 forgets it. The item itself is
// not looked at: an upload records the size in the transaction that
// updates the item. Codes: ENOTFOUND (no collection), EINVALID (a
// negative size).
func (t *Tx) SetAssetBytes(ctx context.Context, collection, item, key string, size int64) error {
	if size < 0 {
		return catalog.Errorf(catalog.EINVALID, "asset %q of item %q cannot have a negative size (%d bytes)", key, item, size)
	}
	if size > 0 {
		_, err := t.tx.ExecContext(ctx, upsertAssetBytesSQL, collection, item, key, size)
		if isForeignKey(err) {
			return catalog.ErrCollectionNotFound(collection)
		}
		return dbError(err)
	}
	res, err := t.tx.ExecContext(ctx, "DELETE FROM asset_bytes WHERE collection = ? AND item = ? AND key = ?", collection, item, key)
	if err != nil {
		return dbError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(err)
	}
	if n > 0 {
		return nil
	}
	// Nothing to forget: fine, if the collection exists.
	var exists bool
	if err := t.tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM collections WHERE id = ?)", collection).Scan(&exists); err != nil {
		return dbError(err)
	}
	if !exists {
		return catalog.ErrCollectionNotFound(collection)
	}
	return nil
}

// forgetItemAssetBytes deletes the asset sizes of an item that became a
// tombstone.
func (t *Tx) forgetItemAssetBytes(ctx context.Context, collection, item string) error {
	_, err := t.tx.ExecContext(ctx, "DELETE FROM asset_bytes WHERE collection = ? AND item = ?", collection, item)
	return dbError(err)
}

// StoredBytes returns the asset bytes stored in the collections owner
// owns, this transaction's writes included. The transaction holds the
// database's write lock, so no other writer changes the sum until it
// ends.
func (t *Tx) StoredBytes(ctx context.Context, owner string) (int64, error) {
	return storedBytes(ctx, t.tx, owner)
}

// StoredBytes returns the asset bytes stored in the collections owner
// owns, 0 when there are none.
func (s *Store) StoredBytes(ctx context.Context, owner string) (int64, error) {
	return storedBytes(ctx, s.r, owner)
}

func storedBytes(ctx context.Context, q querier, owner string) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, storedBytesSQL, owner).Scan(&n); err != nil {
		return 0, dbError(err)
	}
	return n, nil
}

// StoredBytesLimit returns a user's override of the stored-bytes limit;
// ok is false when the user has none.
func (s *Store) StoredBytesLimit(ctx context.Context, user string) (limit int64, ok bool, err error) {
	err = s.r.QueryRowContext(ctx, "SELECT stored_bytes FROM quotas WHERE user_id = ?", user).Scan(&limit)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, dbError(err)
	}
	return limit, true, nil
}

// setQuotaSQL sets an override; setting the value it has updates no row,
// so that SetStoredBytesLimit can tell that nothing changed.
const setQuotaSQL = `INSERT INTO quotas (user_id, stored_bytes) VALUES (?, ?)
ON CONFLICT (user_id) DO UPDATE SET stored_bytes = excluded.stored_bytes
WHERE quotas.stored_bytes <> excluded.stored_bytes`

// SetStoredBytesLimit sets (limit >= 0) or removes (limit < 0) a user's
// override and writes the audit event (none when audit is nil), in one
// transaction. A call that changes nothing (the same limit again, or
// removing an override the user does not have) writes no event, as
// revoking a revoked token writes none. Codes: EINVALID (empty user),
// EUNAVAILABLE.
func (s *Store) SetStoredBytesLimit(ctx context.Context, user string, limit int64, audit *catalog.Event) error {
	if user == "" {
		return catalog.Invalid("/user", "a quota override needs a user")
	}
	return s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		var (
			res sql.Result
			err error
		)
		if limit < 0 {
			res, err = t.tx.ExecContext(ctx, "DELETE FROM quotas WHERE user_id = ?", user)
		} else {
			res, err = t.tx.ExecContext(ctx, setQuotaSQL, user, limit)
		}
		if err != nil {
			return dbError(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbError(err)
		}
		if n == 0 || audit == nil {
			return nil
		}
		return t.AppendEvents(ctx, audit)
	})
}
