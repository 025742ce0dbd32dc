package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
)

// migrationFiles are the schema changes, applied in the order of their
// number prefix (0001_name.sql). They are forward-only: a released file
// is never edited, a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations, in version order. The
// versions must run 1, 2, 3... without gaps or duplicates.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration %s: the name must start with a positive number and an underscore", name)
		}
		b, err := fs.ReadFile(migrationFiles, path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(name, ".sql"), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("postgres: migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// Advisory lock keys: hashes of names, so that twinstac's locks stay
// apart from any other application's on the same database.
const (
	postgisLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('twinstac.postgis', 0))`
	// The migration lock is per schema, so that the stores of parallel
	// tests, each in its own schema, migrate in parallel.
	migrateLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('twinstac.migrate.' || $1::text, 0))`
)

// Migrate brings the database schema up to date: it installs PostGIS if
// missing, creates the store's schema (Options.Schema) if missing, and
// applies the embedded migrations not applied yet, recording each in
// schema_migrations. It holds an advisory lock while it works, so any
// number of servers may start, and migrate, at the same time.
// Codes: EUNAVAILABLE; anything else is internal (a migration that fails,
// a database whose schema is newer than this binary).
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return catalog.Internal(err)
	}
	if err := s.ensurePostGIS(ctx); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		lockName := s.schema
		if lockName == "" {
			if err := tx.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&lockName); err != nil {
				return dbError(err)
			}
		}
		if _, err := tx.Exec(ctx, migrateLockSQL, lockName); err != nil {
			return dbError(err)
		}
		if s.schema != "" {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{s.schema}.Sanitize()); err != nil {
				return dbError(err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY,
			name    text NOT NULL,
			applied timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return dbError(err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return dbError(err)
		}
		if current > len(ms) {
			return catalog.Internal(fmt.Errorf("postgres: the database schema is at version %d, newer than this binary's %d; run a newer twinstac", current, len(ms)))
		}
		for _, m := range ms[current:] {
			// Exec without arguments uses the simple protocol, which runs
			// a file of several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return catalog.Internal(fmt.Errorf("postgres: migration %s: %w", m.name, err))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return dbError(err)
			}
		}
		return nil
	})
}

// ensurePostGIS installs PostGIS and btree_gist (GiST operators for
// plain types: the geometry index also holds start_dt, migration 0023)
// into schema public unless they are there. Processes that start at once
// would race on CREATE EXTENSION (one of them failing with a unique
// violation on the catalog), so they take an advisory lock first; a loser
// of the race against a process that does not take the lock finds the
// extension installed and carries on.
func (s *Store) ensurePostGIS(ctx context.Context) error {
	for _, ext := range []string{"postgis", "btree_gist"} {
		if err := s.ensureExtension(ctx, ext); err != nil {
			return err
		}
	}
	return nil
}

// ensureExtension installs one extension into schema public unless it is
// there (see ensurePostGIS).
func (s *Store) ensureExtension(ctx context.Context, ext string) error {
	installed := func() (bool, error) {
		var ok bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1)`, ext).Scan(&ok)
		return ok, dbError(err)
	}
	if ok, err := installed(); err != nil || ok {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, postgisLockSQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS `+pgx.Identifier{ext}.Sanitize()+` SCHEMA public`)
		return err
	})
	switch code := pgCode(err); {
	case err == nil:
		return nil
	case code == codeUniqueViolation || code == "42710": // 42710: duplicate_object
		if ok, ierr := installed(); ierr != nil || ok {
			return ierr
		}
	case code == "42501", code == "58P01": // insufficient privilege; no extension files on the server
		return &catalog.Error{Code: catalog.EINTERNAL, Message: "the " + ext + " extension is not installed in the database and cannot be installed by this user; " +
			"install its package (PostGIS; btree_gist comes with PostgreSQL) and run CREATE EXTENSION " + ext + " as a superuser", Err: err}
	}
	return dbError(err)
}

// Migrations holds the migration files, in order of their numbers.
var Migrations fs.FS = migrationFiles
