package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// BulkLoad writes the items next yields into one collection in one write
// transaction, through prepared statements, and commits whole or not at
// all. Each item gets its outbox event in the same transaction.
//
// The load streams: a producer goroutine calls next and encodes each
// item's document while the writer inserts the ones before it, with at
// most bulkAhead items in between, so JSON encoding and SQLite work run
// on two cores and the load is never held in memory. next is called from
// that goroutine, one call at a time, and never after BulkLoad returns.
//
// In BulkUpsert mode a replaced draft keeps its created time, in the
// column and in the "created" property of its document; the item is
// sealed again, so its ETag is that of the document as stored.
//
// The load holds the write connection until next returns io.EOF, so
// other writers of this store wait for it; loads never deadlock with
// each other because there is only one writer.
// Codes: ENOTFOUND (no collection), ECONFLICT, EINVALID (unknown mode),
// those of next, EUNAVAILABLE.
func (s *Store) BulkLoad(ctx context.Context, collection string, mode catalog.BulkMode, next func() (*catalog.Item, error)) (catalog.BulkResult, error) {
	if mode != catalog.BulkInsert && mode != catalog.BulkUpsert {
		return catalog.BulkResult{}, catalog.Errorf(catalog.EINVALID, "unknown bulk mode %q; use %q or %q", mode, catalog.BulkInsert, catalog.BulkUpsert)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return catalog.BulkResult{}, dbError(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := getCollection(ctx, tx, collection); err != nil {
		return catalog.BulkResult{}, err
	}
	l := &bulkLoad{tx: &Tx{tx: tx}, collection: collection, now: time.Now().UTC()}
	defer l.close()
	if err := l.prepare(ctx, mode); err != nil {
		return catalog.BulkResult{}, err
	}

	items, stop := make(chan encodedItem, bulkAhead), make(chan struct{})
	go l.produce(next, items, stop)
	defer func() {
		// Stop the producer and wait until it has left next.
		close(stop)
		for range items {
		}
	}()
	for e := range items {
		if e.panic != nil {
			panic(e.panic)
		}
		if e.err != nil {
			return catalog.BulkResult{}, e.err
		}
		if err := l.write(ctx, e); err != nil {
			return catalog.BulkResult{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return catalog.BulkResult{}, dbError(err)
	}
	return l.res, nil
}

// bulkAhead is how many items the producer of a bulk load may encode
// ahead of the writer.
const bulkAhead = 256

// encodedItem is an item of a bulk load with its columns and its
// item.created event, made ready by the producer; or the error (or panic)
// that ends the load.
type encodedItem struct {
	it    *catalog.Item
	cols  itemColumns
	event *catalog.Event
	err   error
	panic any
}

// produce calls next until io.EOF, an error or stop, and sends each item
// encoded. It closes out when it returns.
func (l *bulkLoad) produce(next func() (*catalog.Item, error), out chan<- encodedItem, stop <-chan struct{}) {
	defer close(out)
	send := func(e encodedItem) bool {
		select {
		case out <- e:
			return e.err == nil && e.panic == nil
		case <-stop:
			return false
		}
	}
	defer func() {
		// Hand a panic of next to the caller's goroutine.
		if v := recover(); v != nil {
			send(encodedItem{panic: v})
		}
	}()
	for {
		it, err := next()
		if errors.Is(err, io.EOF) {
			return
		}
		var e encodedItem
		switch {
		case err != nil:
			e.err = err
		case it == nil || it.Collection != l.collection:
			e.err = catalog.Internal(fmt.Errorf("sqlite: bulk load into %q got an item of another collection", l.collection))
		default:
			e.it = it
			e.cols, e.err = columnsOf(it)
			e.event = catalog.NewItemEvent(catalog.EventItemCreated, it, l.eventTime(it))
		}
		if !send(e) {
			return
		}
	}
}

// bulkLoad is the state of one BulkLoad: its transaction and prepared
// statements, and the counts so far.
type bulkLoad struct {
	tx         *Tx
	collection string
	now        time.Time
	res        catalog.BulkResult

	insert, text, event *sql.Stmt
	find, replace       *sql.Stmt // upsert mode only
}

func (l *bulkLoad) prepare(ctx context.Context, mode catalog.BulkMode) error {
	var err error
	prep := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = l.tx.tx.PrepareContext(ctx, query)
		return st
	}
	l.insert = prep(insertItemSQL)
	l.text = prep(insertTextSQL)
	l.event = prep(insertEventSQL)
	if mode == catalog.BulkUpsert {
		l.find = prep("SELECT rowid, state, created FROM items WHERE collection = ? AND id = ?")
		l.replace = prep(`UPDATE items SET state = ?, start_us = ?, end_us = ?, minx = ?, miny = ?, maxx = ?, maxy = ?,
			updated = ?, etag = ?, content = ? WHERE rowid = ?`)
	}
	return dbError(err)
}

// eventTime is the time of an item's event: when the item was stamped
// as changed, as for the events the catalog service writes, or the start
// of the load for an item without that stamp.
func (l *bulkLoad) eventTime(it *catalog.Item) time.Time {
	if it.Updated.IsZero() {
		return l.now
	}
	return it.Updated
}

func (l *bulkLoad) close() {
	for _, st := range []*sql.Stmt{l.insert, l.text, l.event, l.find, l.replace} {
		if st != nil {
			_ = st.Close()
		}
	}
}

func (l *bulkLoad) write(ctx context.Context, e encodedItem) error {
	it, ev := e.it, e.event
	if l.find != nil {
		var (
			rowid   int64
			state   string
			created int64
		)
		err := l.find.QueryRowContext(ctx, l.collection, it.ID).Scan(&rowid, &state, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return dbError(err)
		case state != string(catalog.StateDraft):
			return catalog.Errorf(catalog.ECONFLICT, "item %q of collection %q is %s; a bulk upsert replaces drafts only", it.ID, l.collection, state)
		default:
			if it, err = keepCreated(it, fromMicros(created)); err != nil {
				return err
			}
			c, err := columnsOf(it)
			if err != nil {
				return err
			}
			if _, err := l.replace.ExecContext(ctx, c.state, c.startUS, c.endUS, c.minx, c.miny, c.maxx, c.maxy,
				c.updated, c.etag, c.content, rowid); err != nil {
				return dbError(err)
			}
			ev := catalog.NewItemEvent(catalog.EventItemUpdated, it, l.eventTime(it))
			if _, err := l.event.ExecContext(ctx, eventArgs(ev)...); err != nil {
				return dbError(err)
			}
			l.res.Updated++
			return nil
		}
	}
	res, err := l.insert.ExecContext(ctx, insertArgs(it, &e.cols)...)
	if err != nil {
		return l.tx.insertItemError(ctx, it, err)
	}
	if err := indexText(ctx, l.text.ExecContext, res, &e.cols); err != nil {
		return err
	}
	if _, err := l.event.ExecContext(ctx, eventArgs(ev)...); err != nil {
		return dbError(err)
	}
	l.res.Inserted++
	return nil
}

// keepCreated returns a copy of it that carries the created time of the
// draft it replaces, in Created and in the "created" property, sealed
// again. The caller's item is left as it was.
func keepCreated(it *catalog.Item, created time.Time) (*catalog.Item, error) {
	c := *it
	c.Created = created
	if it.Props != nil {
		c.Props = it.Props.Clone()
		c.Props.Set(catalog.PropCreated, catalog.FormatTime(created))
	}
	if _, err := c.Seal(); err != nil {
		return nil, err
	}
	return &c, nil
}
