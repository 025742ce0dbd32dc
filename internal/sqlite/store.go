package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/twinstac/twinstac/catalog"
)

// Store is the catalog.Store of one SQLite database file.
//
// SQLite allows one writer at a time per database. Store therefore keeps
// one dedicated write connection, so that the writers of this process
// queue in database/sql for that connection instead of racing each other
// for the file lock and failing with SQLITE_BUSY, and a separate pool of
// read-only connections, which in WAL mode read a consistent snapshot
// without blocking the writer or each other.
type Store struct {
	w *sql.DB // exactly one connection; every transaction is BEGIN IMMEDIATE
	r *sql.DB // read-only pool

	closeOnce sync.Once
	closeErr  error
}

var _ catalog.Store = (*Store)(nil)

// defaultBusyTimeout is how long a connection waits for a lock held by
// another process (a second server, `twinstac migrate`, a backup) before
// giving up with SQLITE_BUSY, reported as EUNAVAILABLE.
const defaultBusyTimeout = 10 * time.Second

type options struct {
	busyTimeout time.Duration
}

// Open opens (creating it and its directory when missing) the SQLite
// database at path. It does not change the schema: call Migrate.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, options{busyTimeout: defaultBusyTimeout})
}

func open(ctx context.Context, path string, o options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		// Two pools over one in-memory database do not share it, and a
		// URI would bypass the parameters set below.
		return nil, fmt.Errorf("sqlite: open %q: need the path of a database file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create the directory of %q: %w", path, err)
	}
	busy := fmt.Sprintf("_busy_timeout=%d", o.busyTimeout.Milliseconds())

	// The writer turns on WAL (persistent in the file) before any reader
	// connects. synchronous=NORMAL syncs the WAL at checkpoints only, not
	// at every commit: with WAL the database can never be corrupted by a
	// crash, and a power loss can at worst roll back the last commits
	// before a checkpoint, which is the durability SQLite's WAL mode is
	// designed for and what an embedded single-node server needs, while
	// FULL would cost an fsync per transaction. busy_timeout is applied
	// before the other parameters, so switching to WAL waits for locks
	// too. _txlock=immediate makes every write transaction take the write
	// lock at BEGIN, so no transaction fails late with SQLITE_BUSY while
	// upgrading a read lock.
	w, err := sql.Open("sqlite", uri(abs, busy, "_foreign_keys=1", "_journal_mode=WAL",
		"_synchronous=NORMAL", "_txlock=immediate", "_pragma=temp_store(MEMORY)", "_pragma=cache_size(-32768)"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %q: the database stays in journal mode %q; it needs WAL (is it on a network file system?)", path, mode)
	}

	// Readers map the file (mmap_size): a page read is then a memory
	// access instead of a read system call and a copy into each
	// connection's own page cache, which searches that examine thousands
	// of rows spent a third of their time on. The mapping is address space
	// shared through the operating system's page cache, not memory of
	// each connection.
	r, err := sql.Open("sqlite", uri(abs, busy, "_foreign_keys=1", "_query_only=1",
		"_pragma=mmap_size(1073741824)", "_pragma=cache_size(-16384)"))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	return &Store{w: w, r: r}, nil
}

// uri builds a SQLite URI for the file at the absolute path abs. The
// characters that SQLite's URI parser would take for the query or
// fragment are escaped in the path.
func uri(abs string, params ...string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows volume: file:///C:/...
	}
	p = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	return "file://" + p + "?" + strings.Join(params, "&")
}

// DBs returns the write and read connection pools, for metrics
// (database/sql statistics).
func (s *Store) DBs() (write, read *sql.DB) { return s.w, s.r }

// Ping checks that the database answers. Codes: EUNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the database does not answer", Err: err}
	}
	return nil
}

// Close releases the connections. It may be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Let SQLite refresh the planner statistics it finds stale; it is
		// cheap and keeps the choice between the paging index and the
		// R*Tree sensible as collections grow.
		_, _ = s.w.Exec("PRAGMA optimize")
		rerr := s.r.Close()
		werr := s.w.Close()
		if werr != nil {
			s.closeErr = werr
		} else {
			s.closeErr = rerr
		}
	})
	return s.closeErr
}

// Update runs fn in one BEGIN IMMEDIATE transaction on the write
// connection and commits when fn returns nil. Holding the write lock from
// the start means there is no serialization failure to retry: fn runs
// exactly once. Codes: those of fn, EUNAVAILABLE.
func (s *Store) Update(ctx context.Context, fn func(catalog.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbError(err)
	}
	// Roll back on every way out but a commit, a panic in fn included:
	// the write connection is the only one, and a transaction left open
	// on it would stop every writer.
	defer func() { _ = tx.Rollback() }()
	if err := fn(&Tx{tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return dbError(err)
	}
	return nil
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

// micros and fromMicros convert between time.Time and the integer
// microseconds (UTC) of the time columns.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
