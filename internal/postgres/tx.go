package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twinstac/twinstac/catalog"
)

// Tx is the catalog.Tx of Store.Update: one READ COMMITTED transaction.
// Reads lock the rows they return (SELECT ... FOR UPDATE) and updates are
// compare-and-swap on the ETag, so read-modify-write sequences do not
// lose updates. A Tx is used by one goroutine and only inside fn.
type Tx struct {
	tx pgx.Tx
	// retry is set when a statement failed with a deadlock or a
	// serialization failure: Update then runs fn again, whatever fn made
	// of the error.
	retry bool
}

var _ catalog.Tx = (*Tx)(nil)

// fail notes a retryable failure and translates err.
func (t *Tx) fail(err error) error {
	if retryable(err) {
		t.retry = true
	}
	return dbError(err)
}

// GetCollection returns a collection and locks its row until the
// transaction ends. Codes: ENOTFOUND.
func (t *Tx) GetCollection(ctx context.Context, id string) (*catalog.Collection, error) {
	c, err := getCollection(ctx, t.tx, id, true)
	if err != nil {
		return nil, t.fail(err)
	}
	return c, nil
}

// insertCollectionSQL skips a taken id instead of failing, so that the
// conflict leaves the transaction usable.
const insertCollectionSQL = `INSERT INTO collections (id, etag, created, updated, doc, owner, visibility)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING key`

// visibilityColumn is the visibility column of c: "" is private.
func visibilityColumn(c *catalog.Collection) string {
	if c.Visibility == "" {
		return catalog.VisibilityPrivate
	}
	return c.Visibility
}

// InsertCollection stores a new collection and creates the partition
// for its items (see attach_item_partition in the migrations).
// Codes: ECONFLICT, EUNAVAILABLE (the items table stayed locked by
// others for longer than the DDL lock timeout).
func (t *Tx) InsertCollection(ctx context.Context, c *catalog.Collection) error {
	doc, err := json.Marshal(c.Doc)
	if err != nil {
		return catalog.Internal(err)
	}
	var key int32
	err = t.tx.QueryRow(ctx, insertCollectionSQL, c.ID, c.ETag, c.Created, c.Updated, doc,
		c.Owner, visibilityColumn(c)).Scan(&key)
	if isNoRows(err) {
		return catalog.Errorf(catalog.ECONFLICT, "collection %q already exists", c.ID)
	}
	if err != nil {
		return t.fail(err)
	}
	if _, err := t.tx.Exec(ctx, `SELECT attach_item_partition($1, $2)`, key, c.ID); err != nil {
		return t.fail(err)
	}
	return nil
}

// UpdateCollection replaces a collection whose ETag is still etag, its
// owner and visibility columns included; its created time stays.
// Codes: ENOTFOUND, EPRECONDITION.
func (t *Tx) UpdateCollection(ctx context.Context, c *catalog.Collection, etag string) error {
	doc, err := json.Marshal(c.Doc)
	if err != nil {
		return catalog.Internal(err)
	}
	tag, err := t.tx.Exec(ctx, `UPDATE collections SET etag = $2, updated = $3, doc = $4, owner = $6, visibility = $7
		WHERE id = $1 AND etag = $5`,
		c.ID, c.ETag, c.Updated, doc, etag, c.Owner, visibilityColumn(c))
	if err != nil {
		return t.fail(err)
	}
	return t.swapped(ctx, tag, `SELECT etag FROM collections WHERE id = $1`, []any{c.ID},
		catalog.ErrCollectionNotFound(c.ID), fmt.Sprintf("collection %q", c.ID))
}

// DeleteCollection removes a collection and drops the partition of its
// items; the sizes of its asset files go by the foreign key's cascade
// (see migration 0005). Dropping the partition locks the items table
// exclusively until the transaction ends, so it is best the last write of
// the transaction.
// Codes: ENOTFOUND, EUNAVAILABLE (the items table stayed locked by others
// for longer than the DDL lock timeout).
func (t *Tx) DeleteCollection(ctx context.Context, id string) error {
	var key int32
	err := t.tx.QueryRow(ctx, `DELETE FROM collections WHERE id = $1 RETURNING key`, id).Scan(&key)
	if isNoRows(err) {
		return catalog.ErrCollectionNotFound(id)
	}
	if err != nil {
		return t.fail(err)
	}
	if _, err := t.tx.Exec(ctx, `SELECT drop_item_partition($1)`, key); err != nil {
		return t.fail(err)
	}
	return nil
}

// GetItem returns an item or tombstone and locks its row until the
// transaction ends. Codes: ENOTFOUND.
func (t *Tx) GetItem(ctx context.Context, collection, id string) (*catalog.Item, error) {
	it, err := getItem(ctx, t.tx, collection, id, true)
	if err != nil {
		return nil, t.fail(err)
	}
	return it, nil
}

// insertItemSQL inserts an item if its collection exists and its id is
// free. Neither a missing collection nor a taken id raises an error,
// which would abort the transaction: the statement inserts nothing, and
// InsertItem finds out which it was. The item's readers are the policies
// that grant it (item_grants); shareLockSharedSQL runs first.
const insertItemSQL = `INSERT INTO items (collection, id, state, start_dt, end_dt, geometry, created, updated, etag, content, readers)
SELECT $1::text, $2::text, $3::text, $4::timestamptz, $5::timestamptz, ST_GeomFromEWKB($6::bytea),
	$7::timestamptz, $8::timestamptz, $9::text, $10::jsonb,
	(SELECT array_agg(policy ORDER BY policy) FROM item_grants WHERE collection = $1 AND id = $2)
WHERE EXISTS (SELECT 1 FROM collections WHERE id = $1)
ON CONFLICT (collection, id) DO NOTHING`

// InsertItem stores a new item. Codes: ENOTFOUND (no collection),
// ECONFLICT (the id exists or existed).
func (t *Tx) InsertItem(ctx context.Context, it *catalog.Item) error {
	r, err := rowOf(it)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(shareLockSharedSQL, it.Collection)
	b.Queue(insertItemSQL, it.Collection, it.ID, r.state, r.start, r.end, r.geometry,
		r.created, r.updated, r.etag, r.content)
	br := t.tx.SendBatch(ctx, b)
	_, err = br.Exec()
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if noPartition(err) {
		// No partition for the collection: it was deleted by a
		// transaction that committed after this statement's snapshot.
		return catalog.ErrCollectionNotFound(it.Collection)
	}
	if err != nil {
		return t.fail(err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var (
		collectionExists bool
		state            *string
	)
	err = t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM collections WHERE id = $1),
		(SELECT state FROM items WHERE collection = $1 AND id = $2)`, it.Collection, it.ID).Scan(&collectionExists, &state)
	if err != nil {
		return t.fail(err)
	}
	if !collectionExists {
		return catalog.ErrCollectionNotFound(it.Collection)
	}
	return catalog.ErrItemExists(it.Collection, it.ID, state != nil && *state == string(catalog.StateDeleted), nil)
}

// insertItemsSQL is insertItemSQL for many items of one collection ($1),
// in one statement; it returns the ids it inserted.
const insertItemsSQL = `INSERT INTO items (collection, id, state, start_dt, end_dt, geometry, created, updated, etag, content, readers)
SELECT $1::text, x.id, x.state, x.start_dt, x.end_dt, ST_GeomFromEWKB(x.geometry), x.created, x.updated, x.etag, x.content::jsonb,
	(SELECT array_agg(g.policy ORDER BY g.policy) FROM item_grants AS g WHERE g.collection = $1 AND g.id = x.id)
FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bytea[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[])
	AS x(id, state, start_dt, end_dt, geometry, created, updated, etag, content)
WHERE EXISTS (SELECT 1 FROM collections WHERE id = $1)
ON CONFLICT (collection, id) DO NOTHING
RETURNING id`

// InsertItems implements catalog.Tx: one INSERT for all the items. An
// id that is taken (or comes twice) is skipped by the statement, which
// leaves the transaction usable, and reported as InsertItem would.
func (t *Tx) InsertItems(ctx context.Context, collection string, items []*catalog.Item) error {
	if len(items) == 1 && items[0].Collection == collection {
		return t.InsertItem(ctx, items[0])
	}
	n := len(items)
	var (
		ids, states, etags, contents = make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
		starts, ends, created, upd   = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		geoms                        = make([][]byte, n)
	)
	for i, it := range items {
		if it.Collection != collection {
			return catalog.Internal(fmt.Errorf("postgres: item %q of collection %q inserted into %q", it.ID, it.Collection, collection))
		}
		r, err := rowOf(it)
		if err != nil {
			return err
		}
		ids[i], states[i], etags[i] = it.ID, r.state, r.etag
		starts[i], ends[i], created[i], upd[i] = r.start, r.end, r.created, r.updated
		geoms[i] = r.geometry
		if r.content != nil {
			c := string(r.content)
			contents[i] = &c
		}
	}
	b := &pgx.Batch{}
	b.Queue(shareLockSharedSQL, collection)
	b.Queue(insertItemsSQL, collection, ids, states, starts, ends, geoms, created, upd, etags, contents)
	br := t.tx.SendBatch(ctx, b)
	_, err := br.Exec()
	inserted := make(map[string]bool, n)
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			var id string
			_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
				inserted[id] = true
				return nil
			})
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if noPartition(err) {
		return catalog.ErrCollectionNotFound(collection)
	}
	if err != nil {
		return t.fail(err)
	}
	if len(inserted) == n {
		return nil
	}
	// Which one was it: no collection, or a taken id (here first, or
	// earlier in the list).
	var exists bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM collections WHERE id = $1)`, collection).Scan(&exists); err != nil {
		return t.fail(err)
	}
	if !exists {
		return catalog.ErrCollectionNotFound(collection)
	}
	seen := make(map[string]bool, n)
	for _, it := range items {
		if inserted[it.ID] && !seen[it.ID] {
			seen[it.ID] = true
			continue
		}
		var state *string
		if err := t.tx.QueryRow(ctx, `SELECT state FROM items WHERE collection = $1 AND id = $2`, collection, it.ID).Scan(&state); err != nil && !isNoRows(err) {
			return t.fail(err)
		}
		return catalog.ErrItemExists(collection, it.ID, state != nil && *state == string(catalog.StateDeleted), nil)
	}
	return catalog.Internal(fmt.Errorf("postgres: %d of %d items inserted, none refused", len(inserted), n))
}

const updateItemSQL = `UPDATE items SET state = $3, start_dt = $4, end_dt = $5, geometry = ST_GeomFromEWKB($6::bytea),
	updated = $7, etag = $8, content = $9
WHERE collection = $1 AND id = $2 AND etag = $10`

// UpdateItem replaces an item whose ETag is still etag; an item without a
// document becomes a tombstone, and the sizes of its asset files are
// forgotten (see SetAssetBytes). Its created time stays.
// Codes: ENOTFOUND, EPRECONDITION.
func (t *Tx) UpdateItem(ctx context.Context, it *catalog.Item, etag string) error {
	r, err := rowOf(it)
	if err != nil {
		return err
	}
	tag, err := t.tx.Exec(ctx, updateItemSQL, it.Collection, it.ID, r.state, r.start, r.end, r.geometry,
		r.updated, r.etag, r.content, etag)
	if err != nil {
		return t.fail(err)
	}
	err = t.swapped(ctx, tag, `SELECT etag FROM items WHERE collection = $1 AND id = $2`, []any{it.Collection, it.ID},
		catalog.ErrItemNotFound(it.Collection, it.ID), fmt.Sprintf("item %q of collection %q", it.ID, it.Collection))
	if err != nil || r.content != nil {
		return err
	}
	return t.forgetItemAssetBytes(ctx, it.Collection, it.ID)
}

// swapped finishes a compare-and-swap UPDATE: when it touched no row, the
// row is either missing (ENOTFOUND) or has another ETag (EPRECONDITION).
func (t *Tx) swapped(ctx context.Context, tag pgconn.CommandTag, lookup string, args []any, notFound error, what string) error {
	if tag.RowsAffected() > 0 {
		return nil
	}
	var cur string
	err := t.tx.QueryRow(ctx, lookup, args...).Scan(&cur)
	if isNoRows(err) {
		return notFound
	}
	if err != nil {
		return t.fail(err)
	}
	return catalog.Errorf(catalog.EPRECONDITION, "%s has changed (its ETag is no longer the one given)", what)
}

const insertEventSQL = `INSERT INTO outbox (id, type, subject, time, payload) VALUES ($1, $2, $3, $4, $5) RETURNING seq`

// insertEventsSQL writes many events in one statement, in their order:
// the seqs are drawn as the rows go in, so the i-th smallest seq
// returned is the i-th event's.
const insertEventsSQL = `INSERT INTO outbox (id, type, subject, time, payload)
SELECT e.id, e.type, e.subject, e.time, e.payload::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) WITH ORDINALITY AS e(id, type, subject, time, payload, n)
ORDER BY e.n
RETURNING seq`

// AppendEvents writes events to the outbox, in one statement, and sets
// their Seq.
func (t *Tx) AppendEvents(ctx context.Context, events ...*catalog.Event) error {
	switch len(events) {
	case 0:
		return nil
	case 1:
		ev := events[0]
		if err := t.tx.QueryRow(ctx, insertEventSQL, eventArgs(ev)...).Scan(&ev.Seq); err != nil {
			return t.fail(err)
		}
		return nil
	}
	n := len(events)
	ids, types, subjects, payloads, times := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	for i, ev := range events {
		ids[i], types[i], subjects[i], times[i] = ev.ID, ev.Type, ev.Subject, ev.Time
		payloads[i] = "null"
		if len(ev.Payload) > 0 {
			payloads[i] = string(ev.Payload)
		}
	}
	rows, err := t.tx.Query(ctx, insertEventsSQL, ids, types, subjects, times, payloads)
	if err != nil {
		return t.fail(err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return t.fail(err)
	}
	if len(seqs) != n {
		return catalog.Internal(fmt.Errorf("postgres: %d events written, %d returned", n, len(seqs)))
	}
	slices.Sort(seqs)
	for i, ev := range events {
		ev.Seq = seqs[i]
	}
	return nil
}

// eventColumns are the outbox columns an event is written to.
var eventColumns = []string{"id", "type", "subject", "time", "payload"}

func eventArgs(ev *catalog.Event) []any {
	payload := []byte(ev.Payload)
	if len(payload) == 0 {
		payload = []byte("null")
	}
	return []any{ev.ID, ev.Type, ev.Subject, ev.Time, payload}
}
