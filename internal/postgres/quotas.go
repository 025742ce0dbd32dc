package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// Store keeps the per-user quota overrides too, in the table of
// migration 0005, so that an override commits with its audit event in
// the outbox.
var _ access.QuotaStore = (*Store)(nil)

// upsertAssetBytesSQL records an asset file's size if the collection
// exists. A missing collection inserts nothing rather than raising an
// error, which would abort the transaction.
const upsertAssetBytesSQL = `INSERT INTO asset_bytes (collection, item, key, size)
SELECT $1::text, $2::text, $3::text, $4::bigint
WHERE EXISTS (SELECT 1 FROM collections WHERE id = $1)
ON CONFLICT (collection, item, key) DO UPDATE SET size = excluded.size`

// storedBytesSQL sums the asset bytes of an owner's collections: the
// collections by collections_owner_idx, each one's sizes by a range of
// the primary key of asset_bytes.
const storedBytesSQL = `SELECT coalesce(sum(a.size), 0)::bigint
FROM collections c JOIN asset_bytes a ON a.collection = c.id
WHERE c.owner = $1`

// quotaLockSQL serialises, per owner, the transactions that read the
// owner's stored bytes (Tx.StoredBytes). See Tx.StoredBytes.
const quotaLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('twinstac.quota.' || current_schema() || '.' || $1::text, 0))`

// SetAssetBytes records the size of an asset file of an item, replacing
// the size recorded for that key; size 0 forgets it. The item itself is
// not looked at: an upload records the size in the transaction that
// updates the item. Codes: ENOTFOUND (no collection), EINVALID (a
// negative size).
func (t *Tx) SetAssetBytes(ctx context.Context, collection, item, key string, size int64) error {
	if size < 0 {
		return catalog.Errorf(catalog.EINVALID, "asset %q of item %q cannot have a negative size (%d bytes)", key, item, size)
	}
	var (
		tag pgconn.CommandTag
		err error
	)
	if size == 0 {
		tag, err = t.tx.Exec(ctx, `DELETE FROM asset_bytes WHERE collection = $1 AND item = $2 AND key = $3`, collection, item, key)
	} else {
		tag, err = t.tx.Exec(ctx, upsertAssetBytesSQL, collection, item, key, size)
	}
	if pgCode(err) == codeForeignKeyViolation {
		// The collection was deleted by a transaction that committed
		// after this statement's snapshot.
		return catalog.ErrCollectionNotFound(collection)
	}
	if err != nil {
		return t.fail(err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	if size > 0 {
		return catalog.ErrCollectionNotFound(collection)
	}
	// Nothing to forget: fine, if the collection exists.
	var exists bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM collections WHERE id = $1)`, collection).Scan(&exists); err != nil {
		return t.fail(err)
	}
	if !exists {
		return catalog.ErrCollectionNotFound(collection)
	}
	return nil
}

// forgetItemAssetBytes deletes the asset sizes of an item that became a
// tombstone.
func (t *Tx) forgetItemAssetBytes(ctx context.Context, collection, item string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM asset_bytes WHERE collection = $1 AND item = $2`, collection, item); err != nil {
		return t.fail(err)
	}
	return nil
}

// StoredBytes returns the asset bytes stored in the collections owner
// owns, this transaction's writes included.
//
// It first takes a transaction-scoped lock on the owner's quota, and
// reads the sum after it has the lock. Of two transactions that record
// sizes for the same owner and then check the sum against a limit, the
// second thus waits until the first commits, and its sum counts the
// first's sizes too: without the lock, READ COMMITTED would let each
// count only its own new file and both stay under the limit together.
// Transactions that do not call StoredBytes take no lock.
func (t *Tx) StoredBytes(ctx context.Context, owner string) (int64, error) {
	if _, err := t.tx.Exec(ctx, quotaLockSQL, owner); err != nil {
		return 0, t.fail(err)
	}
	var n int64
	if err := t.tx.QueryRow(ctx, storedBytesSQL, owner).Scan(&n); err != nil {
		return 0, t.fail(err)
	}
	return n, nil
}

// StoredBytes returns the asset bytes stored in the collections owner
// owns, 0 when there are none.
func (s *Store) StoredBytes(ctx context.Context, owner string) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, storedBytesSQL, owner).Scan(&n); err != nil {
		return 0, dbError(err)
	}
	return n, nil
}

// StoredBytesLimit returns a user's override of the stored-bytes limit;
// ok is false when the user has none.
func (s *Store) StoredBytesLimit(ctx context.Context, user string) (limit int64, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT stored_bytes FROM quotas WHERE user_id = $1`, user).Scan(&limit)
	if isNoRows(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, dbError(err)
	}
	return limit, true, nil
}

// setQuotaSQL sets an override; setting the value it has updates no row,
// so that SetStoredBytesLimit can tell that nothing changed.
const setQuotaSQL = `INSERT INTO quotas (user_id, stored_bytes) VALUES ($1, $2)
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
			tag pgconn.CommandTag
			err error
		)
		if limit < 0 {
			tag, err = t.tx.Exec(ctx, `DELETE FROM quotas WHERE user_id = $1`, user)
		} else {
			tag, err = t.tx.Exec(ctx, setQuotaSQL, user, limit)
		}
		if err != nil {
			return t.fail(err)
		}
		if tag.RowsAffected() == 0 || audit == nil {
			return nil
		}
		return t.AppendEvents(ctx, audit)
	})
}
