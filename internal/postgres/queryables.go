package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
)

var _ search.QueryableStore = (*Store)(nil)

// Queryables returns a collection's refined queryables document, nil
// when none was set. Codes: ENOTFOUND.
func (s *Store) Queryables(ctx context.Context, collection string) (json.RawMessage, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT q.doc FROM collections c LEFT JOIN queryables q ON q.collection = c.id WHERE c.id = $1`, collection).Scan(&doc)
	if isNoRows(err) {
		return nil, catalog.ErrCollectionNotFound(collection)
	}
	if err != nil {
		return nil, dbError(err)
	}
	return doc, nil
}

// IndexesProperties reports that this store builds property indexes.
func (s *Store) IndexesProperties() bool { return true }

// propertyIndex is one index SetQueryables keeps on a partition.
type propertyIndex struct {
	name string
	ddl  string // CREATE INDEX CONCURRENTLY ... without the name
}

// propertyIndexes returns the indexes of an indexed property on
// partition part: one for filters (see filterIndex) and, but for arrays,
// one for sorting (the sort expressions of sortExprs, then the
// tie-breakers).
func propertyIndexes(key int, part string, p search.IndexedProperty) ([]propertyIndex, error) {
	filter, err := filterIndex(part, p)
	if err != nil {
		return nil, err
	}
	name := func(kind string) string { return fmt.Sprintf("items_c%d_q%s", key, propertyIndexHash(kind, p)) }
	out := []propertyIndex{{name("filter"), filter}}
	if p.Type == "array" {
		return out, nil
	}
	sortCols, err := sortExprs(search.SortKey{Property: p.Name})
	if err != nil {
		return nil, err
	}
	sortList := ""
	for _, c := range sortCols {
		sortList += "(" + c + "), "
	}
	return append(out, propertyIndex{name("sort"), "ON " + pgx.Identifier{part}.Sanitize() + " (" + sortList + "id, collection)"}), nil
}

// filterIndex is the DDL (without the name) of a property's filter index
// on table. A number, string or boolean: a B-tree of the typed value the
// compiler reads, then the default order, so that an equality on the
// property pages in that order from the index. An array: a GIN index
// (jsonb_path_ops) of the array the compiler reads, which serves
// A_CONTAINS (@>) and gives the planner the statistics of the arrays,
// without which it expects A_* tests to keep one row in a hundred.
func filterIndex(table string, p search.IndexedProperty) (string, error) {
	lit, err := quoteName(p.Name)
	if err != nil {
		return "", err
	}
	j := propertyPath(lit)
	var typed string
	switch p.Type {
	case "number":
		typed = "(cql_num" + j + ")"
	case "string":
		typed = `(cql_text` + j + ` COLLATE "C")`
	case "boolean":
		typed = "(cql_bool" + j + ")"
	case "array":
		return "ON " + pgx.Identifier{table}.Sanitize() + " USING gin (" + arrayValue(j) + " jsonb_path_ops)", nil
	default:
		return "", catalog.Invalid("", "cannot index a property of type %q", p.Type)
	}
	return "ON " + pgx.Identifier{table}.Sanitize() + " (" + typed + ", start_dt DESC, id DESC, collection DESC)", nil
}

// propertyIndexHash names an index of a property. The version names the
// expression form: indexes of an older form are not wanted any more, and
// are dropped and rebuilt.
func propertyIndexHash(kind string, p search.IndexedProperty) string {
	h := sha256.Sum256([]byte("v2\x00" + kind + "\x00" + p.Type + "\x00" + p.Name))
	return hex.EncodeToString(h[:6])
}

// SetQueryables stores a collection's refined queryables and builds the
// indexes of its indexed properties on the collection's partition, with
// CREATE INDEX CONCURRENTLY (reads and writes go on meanwhile), then
// drops the property indexes no longer asked for. An index a failed
// build left invalid is dropped and built again.
// Codes: ENOTFOUND, EINVALID (a property name that cannot be indexed).
func (s *Store) SetQueryables(ctx context.Context, collection string, doc json.RawMessage, indexes []search.IndexedProperty) error {
	var key int
	err := s.pool.QueryRow(ctx, `SELECT key FROM collections WHERE id = $1`, collection).Scan(&key)
	if isNoRows(err) {
		return catalog.ErrCollectionNotFound(collection)
	}
	if err != nil {
		return dbError(err)
	}
	part := fmt.Sprintf("items_c%d", key)
	want := map[string]string{}
	for _, p := range indexes {
		ixs, err := propertyIndexes(key, part, p)
		if err != nil {
			return err
		}
		for _, ix := range ixs {
			want[ix.name] = ix.ddl
		}
	}
	existing, err := syncIndexes(ctx, s.pool, part, want)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO queryables (collection, doc, updated) VALUES ($1, $2, $3)
		ON CONFLICT (collection) DO UPDATE SET doc = EXCLUDED.doc, updated = EXCLUDED.updated`,
		collection, []byte(doc), time.Now().UTC()); err != nil {
		if pgCode(err) == codeForeignKeyViolation {
			return catalog.ErrCollectionNotFound(collection)
		}
		return dbError(err)
	}
	if err := dropIndexes(ctx, s.pool, existing, want); err != nil {
		return err
	}
	return s.syncSharedIndexes(ctx)
}

// syncIndexes builds the wanted property indexes (name → DDL) of table
// that are missing or invalid, and returns the property indexes the
// table had before (name → valid).
func syncIndexes(ctx context.Context, q querier, table string, want map[string]string) (map[string]bool, error) {
	existing := map[string]bool{}
	rows, err := q.Query(ctx, `SELECT c.relname, i.indisvalid FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
		WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace AND c.relname LIKE $2`,
		table, table+"_q%")
	if err != nil {
		return nil, dbError(err)
	}
	for rows.Next() {
		var name string
		var valid bool
		if err := rows.Scan(&name, &valid); err != nil {
			return nil, dbError(err)
		}
		existing[name] = valid
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	for name, ddl := range want {
		valid, ok := existing[name]
		if ok && valid {
			continue
		}
		if ok {
			if _, err := q.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
				return nil, dbError(err)
			}
		}
		if _, err := q.Exec(ctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS `+pgx.Identifier{name}.Sanitize()+" "+ddl); err != nil {
			return nil, dbError(err)
		}
	}
	return existing, nil
}

// dropIndexes drops the existing property indexes that are not wanted.
func dropIndexes(ctx context.Context, q querier, existing map[string]bool, want map[string]string) error {
	for name := range existing {
		if _, ok := want[name]; ok {
			continue
		}
		if _, err := q.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			return dbError(err)
		}
	}
	return nil
}

// syncSharedIndexes keeps on shared_items (migration 0020) the filter
// index of every property some collection marks indexed, and drops the
// others: the copies of shared items of every collection are tested
// there, and a filter on an indexed property then reads only the
// matching copies instead of testing each document. The updates of all
// collections take turns (a session lock), so that each sees the
// queryables the others stored.
func (s *Store) syncSharedIndexes(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return dbError(err)
	}
	defer conn.Release()
	const lock = `hashtextextended('twinstac.shared_indexes.' || current_schema(), 0)`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+lock+`)`); err != nil {
		return dbError(err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+lock+`)`) }()
	rows, err := conn.Query(ctx, `SELECT doc FROM queryables`)
	if err != nil {
		return dbError(err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return dbError(err)
	}
	want := map[string]string{}
	for _, doc := range docs {
		_, idx, err := search.ParseRefined(doc)
		if err != nil {
			continue // a document stored before its rules changed; it indexes nothing here
		}
		for _, p := range idx {
			ddl, err := filterIndex("shared_items", p)
			if err != nil {
				continue
			}
			want["shared_items_q"+propertyIndexHash("filter", p)] = ddl
		}
	}
	existing, err := syncIndexes(ctx, conn, "shared_items", want)
	if err != nil {
		return err
	}
	return dropIndexes(ctx, conn, existing, want)
}
