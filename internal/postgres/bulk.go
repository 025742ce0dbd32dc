package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twinstac/twinstac/catalog"
)

// bulkChunk is how many items one COPY carries. After each chunk the
// chunk's events are written (and, in upsert mode, the chunk is merged),
// so a load holds at most one chunk's ids and events in memory, never
// the items themselves: they stream from next into COPY.
const bulkChunk = 5000

// itemCopyColumns are the columns of items that a bulk load writes, in
// the order of bulkSource.Values.
var itemCopyColumns = []string{"collection", "id", "state", "start_dt", "end_dt", "geometry", "created", "updated", "etag", "content"}

// bulkLockSQL serialises the bulk loads into one collection. Two loads
// that insert overlapping ids in different orders would otherwise
// deadlock: each waits on the unique index for an id the other inserted
// and has not committed yet. One transaction-scoped advisory lock per
// collection makes the second load wait until the first commits, and then
// fail cleanly on the ids it finds taken. Loads into different
// collections take different locks and run in parallel.
const bulkLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('twinstac.bulk.' || current_schema() || '.' || $1::text, 0))`

// bulkStageSQL creates the staging table of an upsert load. It lives for
// the transaction only.
const bulkStageSQL = `CREATE TEMP TABLE bulk_stage (LIKE items INCLUDING DEFAULTS) ON COMMIT DROP`

// bulkMergeSQL moves a staged chunk into the collection's partition (%s).
// An existing draft is replaced but keeps its created column and the
// "created" property of its document; an existing item in any other
// state, and a row that this load wrote itself (xmin is this
// transaction: the id came twice), is left alone and is missing from
// the result, which bulkLoad.merge turns into ECONFLICT. Rows are taken
// in id order, so that two writers lock them in the same order. xmax is
// zero on a freshly inserted row and set on a replaced one.
const bulkMergeSQL = `INSERT INTO %s AS t (collection, id, state, start_dt, end_dt, geometry, created, updated, etag, content)
SELECT collection, id, state, start_dt, end_dt, geometry, created, updated, etag, content
FROM bulk_stage ORDER BY id
ON CONFLICT (collection, id) DO UPDATE SET
	state = excluded.state, start_dt = excluded.start_dt, end_dt = excluded.end_dt, geometry = excluded.geometry,
	updated = excluded.updated, etag = excluded.etag,
	content = CASE
		WHEN excluded.content IS NULL OR t.content #> '{properties,created}' IS NULL THEN excluded.content
		ELSE jsonb_set(excluded.content, '{properties,created}', t.content #> '{properties,created}')
	END
WHERE t.state = 'draft' AND t.xmin <> pg_current_xact_id()::xid
RETURNING id, (xmax = 0) AS inserted`

// BulkLoad writes the items next yields into one collection in one
// transaction, with one event per item, all or nothing.
//
// Items stream from next into the collection's partition by binary COPY
// in chunks of bulkChunk; each chunk's item.created (item.updated)
// events follow by COPY into the outbox. In BulkInsert mode the items go
// straight into the partition, and an id that exists, existed or comes
// twice fails the load with ECONFLICT. In BulkUpsert mode each chunk goes
// through a staging table and is merged: a draft is replaced, keeping its
// created time (column and property); the replaced item keeps the ETag
// it was sealed with, which identifies the new version although it was
// computed before the created property was restored. Any other state,
// or an id twice in one load, fails the load with ECONFLICT.
//
// next is called from a goroutine of pgx's, one call at a time, while
// the COPY sends what it returned; a panic in next is raised again on the
// caller's goroutine.
//
// Loads into one collection run one after another (see bulkLockSQL), so
// they never deadlock; loads into different collections run in parallel.
// A load holds a lock on the items table that deleting any collection
// must wait for (see drop_item_partition).
// Codes: ENOTFOUND (no collection), ECONFLICT, EINVALID (unknown mode),
// those of next, EUNAVAILABLE.
func (s *Store) BulkLoad(ctx context.Context, collection string, mode catalog.BulkMode, next func() (*catalog.Item, error)) (catalog.BulkResult, error) {
	if mode != catalog.BulkInsert && mode != catalog.BulkUpsert {
		return catalog.BulkResult{}, catalog.Errorf(catalog.EINVALID, "unknown bulk mode %q; use %q or %q", mode, catalog.BulkInsert, catalog.BulkUpsert)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return catalog.BulkResult{}, dbError(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	l := &bulkLoad{
		store:      s,
		tx:         tx,
		collection: collection,
		mode:       mode,
		next:       next,
		now:        time.Now().UTC().Truncate(time.Microsecond),
	}
	if err := l.run(ctx); err != nil {
		return catalog.BulkResult{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return catalog.BulkResult{}, dbError(err)
	}
	return l.res, nil
}

// bulkLoad is the state of one BulkLoad.
type bulkLoad struct {
	store      *Store
	tx         pgx.Tx
	collection string
	mode       catalog.BulkMode
	next       func() (*catalog.Item, error)
	now        time.Time

	partition pgx.Identifier
	res       catalog.BulkResult

	// chunk lists the items of the current chunk, for their events.
	chunk []loaded
	// owners are the users who own loaded items of their own: the load
	// records them in item_owners (migration 0021) in place of the
	// trigger.
	owners map[string]bool
	// eof is set once next has returned io.EOF.
	eof bool
}

// loaded is what an item's event needs.
type loaded struct {
	id    string
	state catalog.State
	etag  string
}

func (l *bulkLoad) run(ctx context.Context) error {
	var key int32
	err := l.tx.QueryRow(ctx, `SELECT key FROM collections WHERE id = $1`, l.collection).Scan(&key)
	if isNoRows(err) {
		return catalog.ErrCollectionNotFound(l.collection)
	}
	if err != nil {
		return dbError(err)
	}
	l.partition = pgx.Identifier{partitionName(key)}
	if _, err := l.tx.Exec(ctx, bulkLockSQL, l.collection); err != nil {
		return dbError(err)
	}
	if _, err := l.tx.Exec(ctx, `SELECT set_config('twinstac.owners_noted', 'on', true)`); err != nil {
		return dbError(err)
	}
	target := l.partition
	if l.mode == catalog.BulkUpsert {
		if _, err := l.tx.Exec(ctx, bulkStageSQL); err != nil {
			return dbError(err)
		}
		target = pgx.Identifier{"bulk_stage"}
	}
	for !l.eof {
		l.chunk = l.chunk[:0]
		src := &bulkSource{l: l}
		_, err := l.tx.CopyFrom(ctx, target, itemCopyColumns, src)
		if src.panicked != nil {
			panic(src.panicked)
		}
		if src.err != nil {
			// An error of next is returned as it is; the COPY was
			// cancelled, and the rollback undoes everything.
			return src.err
		}
		if err != nil {
			return l.copyError(ctx, err)
		}
		if len(l.chunk) == 0 {
			break
		}
		inserted := map[string]bool(nil)
		if l.mode == catalog.BulkUpsert {
			if inserted, err = l.merge(ctx); err != nil {
				return err
			}
		}
		if err := l.writeEvents(ctx, inserted); err != nil {
			return err
		}
	}
	if len(l.owners) > 0 {
		if _, err := l.tx.Exec(ctx, `INSERT INTO item_owners (owner, collection)
SELECT o, $2 FROM unnest($1::text[]) AS o ON CONFLICT DO NOTHING`, slices.Collect(maps.Keys(l.owners)), l.collection); err != nil {
			return dbError(err)
		}
	}
	// New items take the readers their grants name.
	if err := takeReaders(ctx, l.tx, l.collection, nil); err != nil {
		return dbError(err)
	}
	return nil
}

// partitionName names the items partition of the collection with the
// given key; attach_item_partition in the migrations names it the same.
func partitionName(key int32) string { return fmt.Sprintf("items_c%d", key) }

// bulkSource feeds one chunk of items from next to COPY. pgx calls it
// from a goroutine of its own while CopyFrom runs; the load reads chunk
// and eof only after CopyFrom has returned.
type bulkSource struct {
	l    *bulkLoad
	vals []any
	err  error
	// panicked holds what next panicked with, to panic again on the
	// caller's goroutine: a panic on pgx's would end the process.
	panicked any
}

// errNextPanicked aborts the COPY when next panics.
var errNextPanicked = errors.New("postgres: the item source of a bulk load panicked")

func (s *bulkSource) Next() (more bool) {
	defer func() {
		if r := recover(); r != nil {
			s.panicked, s.err, more = r, errNextPanicked, false
		}
	}()
	l := s.l
	if s.err != nil || l.eof || len(l.chunk) >= bulkChunk {
		return false
	}
	it, err := l.next()
	if errors.Is(err, io.EOF) {
		l.eof = true
		return false
	}
	if err != nil {
		s.err = err
		return false
	}
	if it == nil || it.Collection != l.collection {
		s.err = catalog.Internal(fmt.Errorf("postgres: bulk load into %q got an item of another collection", l.collection))
		return false
	}
	r, err := rowOf(it)
	if err != nil {
		s.err = err
		return false
	}
	var geometry, content any // untyped nil: NULL
	if r.geometry != nil {
		geometry = r.geometry
	}
	if r.content != nil {
		content = r.content
	}
	s.vals = append(s.vals[:0], l.collection, it.ID, r.state, r.start, r.end, geometry, r.created, r.updated, r.etag, content)
	if o := it.Owner(); o != "" {
		if l.owners == nil {
			l.owners = map[string]bool{}
		}
		l.owners[o] = true
	}
	l.chunk = append(l.chunk, loaded{id: it.ID, state: catalog.State(r.state), etag: r.etag})
	return true
}

func (s *bulkSource) Values() ([]any, error) { return s.vals, nil }

func (s *bulkSource) Err() error { return s.err }

// copyError translates a failed COPY of items. A unique violation names
// the id in its detail; whether that id exists, was deleted or came twice
// in the load is read after the aborted transaction is rolled back.
func (l *bulkLoad) copyError(ctx context.Context, err error) error {
	if noPartition(err) || pgCode(err) == codeUndefinedTable {
		return catalog.ErrCollectionNotFound(l.collection) // deleted while the load ran
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != codeUniqueViolation {
		return dbError(err)
	}
	id, ok := conflictID(pe.Detail, l.collection)
	if !ok {
		return &catalog.Error{Code: catalog.ECONFLICT, Message: fmt.Sprintf("an item of the load already exists in collection %q, or comes twice in the load", l.collection), Err: err}
	}
	// The transaction is lost anyway. Ending it first returns its
	// connection to the pool: a lookup on a second connection while
	// holding the first could wait forever for a pool that concurrent
	// loads have drained the same way.
	_ = l.tx.Rollback(context.WithoutCancel(ctx))
	var state string
	serr := l.store.pool.QueryRow(ctx, `SELECT state FROM items WHERE collection = $1 AND id = $2`, l.collection, id).Scan(&state)
	switch {
	case isNoRows(serr):
		return &catalog.Error{Code: catalog.ECONFLICT, Message: fmt.Sprintf("item %q comes more than once in the load", id), Err: err}
	case serr != nil:
		return catalog.ErrItemExists(l.collection, id, false, err)
	}
	return catalog.ErrItemExists(l.collection, id, state == string(catalog.StateDeleted), err)
}

// conflictID reads the item id from the detail of a unique violation on
// items: `Key (collection, id)=(<collection>, <id>) already exists.`
func conflictID(detail, collection string) (string, bool) {
	prefix := "Key (collection, id)=(" + collection + ", "
	const suffix = ") already exists."
	if !strings.HasPrefix(detail, prefix) || !strings.HasSuffix(detail, suffix) || len(detail) < len(prefix)+len(suffix) {
		return "", false
	}
	return detail[len(prefix) : len(detail)-len(suffix)], true
}

// merge moves the staged chunk into the partition and empties the
// staging table. It returns, per id, whether the item was inserted
// (rather than replaced).
func (l *bulkLoad) merge(ctx context.Context) (map[string]bool, error) {
	rows, err := l.tx.Query(ctx, fmt.Sprintf(bulkMergeSQL, l.partition.Sanitize()))
	if err != nil {
		return nil, l.mergeError(err)
	}
	inserted := make(map[string]bool, len(l.chunk))
	var (
		id  string
		ins bool
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &ins}, func() error {
		inserted[id] = ins
		return nil
	})
	if err != nil {
		return nil, l.mergeError(err)
	}
	if len(inserted) < len(l.chunk) {
		return nil, l.skipped(ctx, inserted)
	}
	for _, ins := range inserted {
		if ins {
			l.res.Inserted++
		} else {
			l.res.Updated++
		}
	}
	if _, err := l.tx.Exec(ctx, `TRUNCATE bulk_stage`); err != nil {
		return nil, dbError(err)
	}
	return inserted, nil
}

// mergeError translates a failed merge. "ON CONFLICT DO UPDATE command
// cannot affect row a second time" means an id came twice in the chunk.
func (l *bulkLoad) mergeError(err error) error {
	if pgCode(err) != codeCardinalityViolation {
		return dbError(err)
	}
	seen := make(map[string]bool, len(l.chunk))
	for _, it := range l.chunk {
		if seen[it.id] {
			return &catalog.Error{Code: catalog.ECONFLICT, Message: fmt.Sprintf("item %q comes more than once in the load", it.id), Err: err}
		}
		seen[it.id] = true
	}
	return &catalog.Error{Code: catalog.ECONFLICT, Message: "an item comes more than once in the load", Err: err}
}

// skipped explains why the merge left a staged item out: it exists in a
// state other than draft, or this load wrote it already.
func (l *bulkLoad) skipped(ctx context.Context, written map[string]bool) error {
	for _, it := range l.chunk {
		if _, ok := written[it.id]; ok {
			continue
		}
		var (
			state string
			ours  bool
		)
		err := l.tx.QueryRow(ctx, fmt.Sprintf(`SELECT state, xmin = pg_current_xact_id()::xid FROM %s WHERE id = $1`, l.partition.Sanitize()), it.id).Scan(&state, &ours)
		switch {
		case err != nil:
			return dbError(err)
		case ours:
			return catalog.Errorf(catalog.ECONFLICT, "item %q comes more than once in the load", it.id)
		}
		return catalog.Errorf(catalog.ECONFLICT, "item %q of collection %q is %s; a bulk upsert replaces drafts only", it.id, l.collection, state)
	}
	return catalog.Internal(fmt.Errorf("postgres: bulk merge wrote %d of %d items", len(written), len(l.chunk)))
}

// writeEvents copies the chunk's events into the outbox: item.created for
// an inserted item, item.updated for a replaced one (inserted is nil in
// insert mode, where every item is new).
func (l *bulkLoad) writeEvents(ctx context.Context, inserted map[string]bool) error {
	rows := make([][]any, 0, len(l.chunk))
	for _, c := range l.chunk {
		typ := catalog.EventItemCreated
		if inserted != nil && !inserted[c.id] {
			typ = catalog.EventItemUpdated
		}
		ev := catalog.NewItemEvent(typ, &catalog.Item{Collection: l.collection, ID: c.id, State: c.state, ETag: c.etag}, l.now)
		id, err := uuid.Parse(ev.ID)
		if err != nil {
			return catalog.Internal(err)
		}
		rows = append(rows, []any{[16]byte(id), ev.Type, ev.Subject, ev.Time, []byte(ev.Payload)})
	}
	if _, err := l.tx.CopyFrom(ctx, pgx.Identifier{"outbox"}, eventColumns, pgx.CopyFromRows(rows)); err != nil {
		return dbError(err)
	}
	if inserted == nil {
		l.res.Inserted += len(l.chunk)
	}
	return nil
}
