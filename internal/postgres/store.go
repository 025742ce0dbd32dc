package postgres

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twinstac/twinstac/catalog"
)

// Options tune Open.
type Options struct {
	// Schema, when set, is the schema the store keeps its tables in:
	// every connection runs with search_path = Schema, public (PostGIS
	// stays in public), and Migrate creates the schema. Tests give each
	// test a schema of its own so that they run in parallel on one
	// database.
	Schema string
}

// Store is the catalog.Store on PostgreSQL with PostGIS.
type Store struct {
	pool    *pgxpool.Pool
	schema  string
	timings *queryTimings
	// countCostOverride, when positive, replaces countCostLimit (tests).
	countCostOverride float64
	// parts caches the partition of each collection (see partitions).
	parts memo[string]
	// preparedPages is set when search pages keep their statements
	// prepared on the connections (see preparedPages).
	preparedPages bool
	// owners are the collections where each owner owns items, as last
	// read (see knownOwned).
	owners memo[[]string]
	// sharedN is the estimate of shared_items' rows read at sharedAt
	// (see sharedRows).
	sharedMu sync.Mutex
	sharedN  float64
	sharedAt time.Time
	// stats are the statistics of partitions read (see spatialStats).
	stats memo[*spatialStats]
}

var _ catalog.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string; pgxpool's pool_* parameters apply) and checks that
// it answers. It does not change the schema: call Migrate.
// Codes: EINVALID (a bad URL), EUNAVAILABLE.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password in parse errors; the message stays
		// generic all the same.
		return nil, &catalog.Error{Code: catalog.EINVALID, Message: "the PostgreSQL connection string cannot be parsed", Err: err}
	}
	params := cfg.ConnConfig.RuntimeParams
	if opts.Schema != "" {
		params["search_path"] = pgx.Identifier{opts.Schema}.Sanitize() + ", public"
	}
	// Queries on items name one collection, and the planner then reads
	// that collection's partition only. A generic plan of a prepared
	// statement (which PostgreSQL may switch to after five executions)
	// prunes partitions only when it runs, and PostgreSQL 15 still locks
	// every partition of the plan first: with many collections, that is
	// thousands of locks per query. Custom plans avoid it for a planning
	// cost of about 0.1 ms per query (measured on the listing query).
	if _, ok := params["plan_cache_mode"]; !ok {
		params["plan_cache_mode"] = "force_custom_plan"
	}
	// No parallel workers for the server's queries: a worker is a fresh
	// backend that loads its caches and compiles the plpgsql search
	// functions before its first row, which made a 100-item search page
	// take 40 ms instead of 4 (the planner counts none of that), and on
	// a busy server the workers take cores from other requests. Bulk work
	// that gains from them (an operator's VACUUM, index builds) runs
	// outside the pool. The URL's options still decide when given.
	if _, ok := params["max_parallel_workers_per_gather"]; !ok {
		params["max_parallel_workers_per_gather"] = "0"
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "twinstac"
	}
	// pgxpool's default of max(4, CPUs) connections queues a server's
	// requests early, and a search that counts holds two at once (page
	// and count); the URL's pool_max_conns still decides when given.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = int32(max(16, 4*runtime.NumCPU()))
	}
	timings := newQueryTimings()
	cfg.ConnConfig.Tracer = timings
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, dbError(err)
	}
	s := &Store{pool: pool, schema: opts.Schema, timings: timings, preparedPages: preparedPages(params["plan_cache_mode"])}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Pool returns the connection pool, for metrics (pool.Stat()).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers. Codes: EUNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the database does not answer", Err: err}
	}
	return nil
}

// Close closes the pool, waiting for the connections in use to be
// returned. It may be called more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// updateAttempts is how often Update runs fn when it keeps failing with
// a serialization failure or a deadlock.
const updateAttempts = 5

// Update runs fn in one READ COMMITTED transaction and commits when fn
// returns nil. Tx's locked reads (SELECT ... FOR UPDATE) and
// compare-and-swap updates give the isolation the catalog needs. A
// deadlock or serialization failure met by any statement in fn, or at
// commit, rolls back and runs fn again, up to five times, even if fn
// swallowed the error.
// Codes: those of fn, EUNAVAILABLE.
func (s *Store) Update(ctx context.Context, fn func(catalog.Tx) error) error {
	for attempt := 1; ; attempt++ {
		again, err := s.update(ctx, fn)
		if !again || attempt == updateAttempts {
			return err
		}
		if err := backoff(ctx, attempt); err != nil {
			return dbError(err)
		}
	}
}

// update runs fn once; again reports a failure worth another attempt.
func (s *Store) update(ctx context.Context, fn func(catalog.Tx) error) (again bool, err error) {
	ptx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, dbError(err)
	}
	// Roll back on every way out but a commit, a panic in fn included.
	// After a commit, Rollback does nothing.
	defer func() { _ = ptx.Rollback(context.WithoutCancel(ctx)) }()
	t := &Tx{tx: ptx}
	if err := fn(t); err != nil {
		return t.retry, err
	}
	if err := ptx.Commit(ctx); err != nil {
		return retryable(err), dbError(err)
	}
	return false, nil
}

// backoff waits a little, more after each attempt, with jitter so that
// the transactions that collided do not collide again.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(1<<attempt) * time.Millisecond
	d += rand.N(d)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// querier is what the pool and a transaction share, so that the store's
// reads and the transaction's reads run the same SQL.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// clampLimit applies the page size rules of catalog.Store listings.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return catalog.DefaultPageSize
	case n > catalog.MaxPageSize:
		return catalog.MaxPageSize
	}
	return n
}

const selectCollectionSQL = `SELECT id, etag, created, updated, doc FROM collections`

func scanCollection(row pgx.Row) (*catalog.Collection, error) {
	var (
		id, etag         string
		created, updated time.Time
		doc              []byte
	)
	if err := row.Scan(&id, &etag, &created, &updated, &doc); err != nil {
		return nil, err
	}
	return catalog.LoadCollection(id, etag, created.UTC(), updated.UTC(), doc)
}

func getCollection(ctx context.Context, q querier, id string, lock bool) (*catalog.Collection, error) {
	query := selectCollectionSQL + ` WHERE id = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	c, err := scanCollection(q.QueryRow(ctx, query, id))
	if isNoRows(err) {
		return nil, catalog.ErrCollectionNotFound(id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	return c, nil
}

// GetCollection returns a collection. Codes: ENOTFOUND.
func (s *Store) GetCollection(ctx context.Context, id string) (*catalog.Collection, error) {
	return getCollection(ctx, s.pool, id, false)
}

// ListCollections returns a page of collections ordered by id (byte
// order). A page before a cursor is read in descending order and
// reversed; one row more than the page tells whether more follow.
// q.Readable is part of the keyset query, so that a filtered page is as
// full as an unfiltered one and its cursors point at readable rows.
// Codes: EINVALID (both cursors set).
func (s *Store) ListCollections(ctx context.Context, q catalog.CollectionQuery) (*catalog.CollectionPage, error) {
	if q.After != "" && q.Before != "" {
		return nil, catalog.Errorf(catalog.EINVALID, "a page has either an after or a before cursor, not both")
	}
	limit := clampLimit(q.Limit)
	backward := q.Before != ""
	var (
		where []string
		args  []any
	)
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Readable != nil {
		if cond := readableSQL(q.Readable, param); cond != "" {
			where = append(where, cond)
		}
	}
	order := "id"
	switch {
	case backward:
		where = append(where, "id < "+param(q.Before))
		order = "id DESC"
	case q.After != "":
		where = append(where, "id > "+param(q.After))
	}
	query := selectCollectionSQL
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + order + " LIMIT " + param(limit+1)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, dbError(err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*catalog.Collection, error) { return scanCollection(r) })
	if err != nil {
		return nil, dbError(err)
	}
	page := &catalog.CollectionPage{Collections: []*catalog.Collection{}}
	if len(cs) == 0 {
		return page, nil
	}
	more := len(cs) > limit
	if more {
		cs = cs[:limit]
	}
	if backward {
		slices.Reverse(cs)
	}
	page.Collections = cs
	first, last := cs[0].ID, cs[len(cs)-1].ID
	if backward {
		page.Next = last
		if more {
			page.Prev = first
		}
	} else {
		if more {
			page.Next = last
		}
		if q.After != "" {
			page.Prev = first
		}
	}
	return page, nil
}

// readableSQL returns the condition that keeps the collections f lets
// its caller read, "" when f grants every collection (an empty prefix).
// param binds a value and returns its placeholder: no value is ever
// spliced into the SQL. Only the arms that can match are written (an
// anonymous caller gets no owner or node arm), and each arm can use an
// index (collections_shared_idx, collections_owner_idx, the id index;
// starts_with on the "C"-collated id is a range of that index), so the
// planner may gather the few readable rows of a large catalog instead of
// walking every id.
func readableSQL(f *catalog.ReadFilter, param func(any) string) string {
	if slices.Contains(f.Prefixes, "") {
		return ""
	}
	arms := []string{`visibility = 'public'`}
	if f.User != "" {
		arms = append(arms, `visibility = 'node'`, `owner = `+param(f.User))
	}
	if len(f.IDs) > 0 {
		arms = append(arms, `id = ANY(`+param(f.IDs)+`::text[])`)
	}
	for _, p := range f.Prefixes {
		arms = append(arms, `starts_with(id, `+param(p)+`)`)
	}
	return "(" + strings.Join(arms, " OR ") + ")"
}

// ListEvents returns up to limit outbox events with Seq > after, in Seq
// order; a limit of zero or less means catalog.DefaultPageSize.
//
// Seq is assigned when an event is inserted, not when its transaction
// commits, so an event may become visible after events with a higher Seq
// (two transactions committing in the other order). A reader that
// follows the feed by Seq must allow for such late arrivals (for
// instance by not moving its cursor past a gap until the gap is older
// than the longest transaction).
func (s *Store) ListEvents(ctx context.Context, after int64, limit int) ([]*catalog.Event, error) {
	if limit <= 0 {
		limit = catalog.DefaultPageSize
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, id::text, type, subject, time, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, dbError(err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*catalog.Event, error) {
		var (
			ev      catalog.Event
			payload []byte
		)
		if err := r.Scan(&ev.Seq, &ev.ID, &ev.Type, &ev.Subject, &ev.Time, &payload); err != nil {
			return nil, err
		}
		ev.Time = ev.Time.UTC()
		ev.Payload = json.RawMessage(payload)
		return &ev, nil
	})
	if err != nil {
		return nil, dbError(err)
	}
	if events == nil {
		events = []*catalog.Event{}
	}
	return events, nil
}
