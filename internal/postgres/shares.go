package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/internal/access"
)

// Items shared one by one (migration 0012): item_grants holds the items
// each policy names, and items.readers the policies that name an item.

// shareLockSQL takes the share lock of a collection for a policy change
// (exclusive) and shareLockSharedSQL for an item insert (shared). A
// policy change holds it while it writes grants and mends readers; an
// insert takes it before it reads the grants of its new item. Whichever
// comes second waits for the first to commit and then, in a new
// statement, sees its rows.
const (
	shareLockSQL       = `SELECT pg_advisory_xact_lock(hashtextextended('twinstac.shares.' || current_schema() || '.' || c, 0)) FROM unnest($1::text[]) AS c`
	shareLockSharedSQL = `SELECT pg_advisory_xact_lock_shared(hashtextextended('twinstac.shares.' || current_schema() || '.' || $1::text, 0))`
)

// lockShares takes the share locks of collections, in byte order, so
// that two policy changes take them in the same order.
func (t *Tx) lockShares(ctx context.Context, collections []string) error {
	colls := slices.Clone(collections)
	slices.Sort(colls)
	colls = slices.Compact(colls)
	if _, err := t.tx.Exec(ctx, shareLockSQL, colls); err != nil {
		return t.fail(err)
	}
	return nil
}

// grantItems records the items a new policy names one by one and adds
// the policy to their readers.
func (t *Tx) grantItems(ctx context.Context, p *access.Policy) error {
	refs := access.SharedItems(p)
	if len(refs) == 0 {
		return nil
	}
	colls, ids := make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		colls[i], ids[i] = r.Collection, r.ID
	}
	if err := t.lockShares(ctx, colls); err != nil {
		return err
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO item_grants (collection, id, policy)
SELECT c, i, $3 FROM unnest($1::text[], $2::text[]) AS u(c, i)`, colls, ids, p.ID); err != nil {
		return t.fail(err)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE items SET readers = array_append(COALESCE(readers, '{}'), $3::text)
FROM unnest($1::text[], $2::text[]) AS u(c, i)
WHERE items.collection = u.c AND items.id = u.i`, colls, ids, p.ID); err != nil {
		return t.fail(err)
	}
	return nil
}

// revokeItems takes a policy about to be deleted out of its items'
// readers; its grants go with it (ON DELETE CASCADE).
func (t *Tx) revokeItems(ctx context.Context, policy string) error {
	rows, err := t.tx.Query(ctx, `SELECT DISTINCT collection FROM item_grants WHERE policy = $1`, policy)
	if err != nil {
		return t.fail(err)
	}
	colls, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return t.fail(err)
	}
	if len(colls) == 0 {
		return nil
	}
	if err := t.lockShares(ctx, colls); err != nil {
		return err
	}
	if _, err := t.tx.Exec(ctx, `UPDATE items SET readers = NULLIF(array_remove(readers, $1::text), '{}')
WHERE readers @> ARRAY[$1::text]`, policy); err != nil {
		return t.fail(err)
	}
	return nil
}

// takeReadersSQL sets the readers of items of a collection ($1) just
// written in this transaction (ids $2, or all of the collection's
// granted items for NULL) from their grants. It runs after
// shareLockSharedSQL, in a statement of its own.
const takeReadersSQL = `UPDATE items SET readers = g.policies
FROM (SELECT id, array_agg(policy ORDER BY policy) AS policies FROM item_grants
      WHERE collection = $1 AND ($2::text[] IS NULL OR id = ANY($2::text[])) GROUP BY id) AS g
WHERE items.collection = $1 AND items.id = g.id AND items.readers IS DISTINCT FROM g.policies`

// takeReaders gives new items of a collection the readers their grants
// name (ids nil: every granted item of the collection).
func takeReaders(ctx context.Context, tx pgx.Tx, collection string, ids []string) error {
	b := &pgx.Batch{}
	b.Queue(shareLockSharedSQL, collection)
	b.Queue(takeReadersSQL, collection, ids)
	return tx.SendBatch(ctx, b).Close()
}
