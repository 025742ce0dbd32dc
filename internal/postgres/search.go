package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
)

var _ search.Searcher = (*Store)(nil)

// searchColumns is what a search selects, in scanSearchItem's order.
const searchColumns = `collection, ` + itemColumnList

func scanSearchItem(row pgx.Row) (*catalog.Item, error) {
	var (
		coll, id, state, etag        string
		created, updated, start, end time.Time
		content                      []byte
	)
	if err := row.Scan(&coll, &id, &state, &etag, &created, &updated, &start, &end, &content); err != nil {
		return nil, err
	}
	it, err := catalog.LoadItem(coll, id, catalog.State(state), etag, created.UTC(), updated.UTC(), content)
	if err != nil {
		return nil, err
	}
	it.Start, it.End = start.UTC(), end.UTC()
	return it, nil
}

// searchSQL is a search compiled to SQL: the WHERE clause without the
// page cursor, the residual filter the evaluator applies, and the sort.
type searchSQL struct {
	args     *sqlArgs
	where    []string
	residual *cql2.Filter // nil: none
	q        *search.Query
}

// compileSearch compiles everything of a prepared query but its cursors.
func compileSearch(q *search.Query) (*searchSQL, error) {
	s := &searchSQL{args: &sqlArgs{}, q: q}
	c := compiler{args: s.args}
	states := make([]string, len(q.States))
	for i, st := range q.States {
		states[i] = string(st)
	}
	s.where = append(s.where, "state = ANY("+s.args.add(states)+"::text[])")
	if len(q.Collections) > 0 {
		s.where = append(s.where, "collection = ANY("+s.args.add(q.Collections)+"::text[])")
	}
	if len(q.IDs) > 0 {
		s.where = append(s.where, "id = ANY("+s.args.add(q.IDs)+"::text[])")
	}
	// Interval overlap. The columns hold whole microseconds; a start with
	// a fraction of a microsecond is rounded up to keep it exact.
	if q.End != nil {
		s.where = append(s.where, "start_dt <= "+s.args.add(*q.End)+"::timestamptz")
	}
	if q.Start != nil {
		start := q.Start.Truncate(time.Microsecond)
		if start.Before(*q.Start) {
			start = start.Add(time.Microsecond)
		}
		s.where = append(s.where, "end_dt >= "+s.args.add(start)+"::timestamptz")
	}
	if a := q.Access; a != nil {
		s.where = append(s.where, accessSQL(s.args, a))
	}
	if len(q.Q) > 0 {
		s.where = append(s.where, textSQL(s.args, "content->'properties'", q.Q))
	}
	if sp := search.SpatialFilter(q); sp != nil {
		sql, err := c.cond(sp)
		if err != nil {
			return nil, catalog.Invalid("intersects", "the geometry cannot be searched: %v", err)
		}
		s.where = append(s.where, sql)
	}
	pushed, residual := search.Split(q.Filter, pushable)
	var err error
	if pushed != nil {
		var sql string
		sql, err = c.cond(pushed)
		if err != nil {
			return nil, err
		}
		s.where = append(s.where, sql)
	}
	if residual != nil {
		if s.residual, err = cql2.NewFilter(residual); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// textSQL is the free-text condition on a document column: any term's
// words in a row, as search.MatchText.
func textSQL(args *sqlArgs, doc string, terms []string) string {
	qs := make([]string, len(terms))
	for i, t := range terms {
		qs[i] = "phraseto_tsquery('simple', " + args.add(t) + "::text)"
	}
	return "(to_tsvector('simple', cql_fts_text(" + doc + ")) @@ (" + strings.Join(qs, " || ") + "))"
}

// accessSQL is the read filter of a caller.
func accessSQL(args *sqlArgs, a *search.Access) string {
	var arms []string
	if len(a.Collections) > 0 {
		arms = append(arms, "(state <> 'draft' AND collection = ANY("+args.add(a.Collections)+"::text[]))")
	}
	if len(a.Drafts) > 0 {
		arms = append(arms, "(state = 'draft' AND collection = ANY("+args.add(a.Drafts)+"::text[]))")
	}
	if len(a.Items) > 0 {
		colls, ids := make([]string, len(a.Items)), make([]string, len(a.Items))
		for i, r := range a.Items {
			colls[i], ids[i] = r.Collection, r.ID
		}
		arms = append(arms, "(state <> 'draft' AND (collection, id) IN (SELECT * FROM unnest("+
			args.add(colls)+"::text[], "+args.add(ids)+"::text[])))")
	}
	if a.Owner != "" {
		arms = append(arms, "(content #>> ARRAY['properties', 'dt:owner'] = "+args.add(a.Owner)+"::text)")
	}
	if len(arms) == 0 {
		return "false"
	}
	return "(" + strings.Join(arms, " OR ") + ")"
}

// sortExprs returns the SQL expressions a sort key orders by. A property
// orders by kind, then value: numbers, strings by code point, booleans,
// then the rest, null last (search.Compare).
func sortExprs(k search.SortKey) ([]string, error) {
	switch k.Property {
	case search.PropDatetime:
		return []string{"start_dt"}, nil
	case search.PropID:
		return []string{"id"}, nil
	case search.PropCollection:
		return []string{"collection"}, nil
	}
	// Every other key, dt:state included, orders by the document's
	// value, as search.Compare does.
	lit, err := quoteName(k.Property)
	if err != nil {
		return nil, err
	}
	p := sqlValue{propertyPath(lit), kJSON}
	return []string{
		"cql_rank" + p.sql,
		"COALESCE(cql_num" + p.sql + ", 0)",
		`COALESCE(cql_text` + p.sql + `, '') COLLATE "C"`,
		"COALESCE(cql_bool" + p.sql + ", false)",
	}, nil
}

// sortValues returns a cursor key's values, one per sort expression.
func sortValues(k search.SortKey, v any) []any {
	switch k.Property {
	case search.PropDatetime, search.PropID, search.PropCollection:
		return []any{v}
	}
	r, d := search.Rank(v)
	num, text, b := 0.0, "", false
	switch x := d.(type) {
	case float64:
		num = x
	case string:
		text = x
	case bool:
		b = x
	}
	return []any{r, num, text, b}
}

// orderAndKeyset returns the ORDER BY list and the condition that keeps
// the rows after the cursor (or before it, backward), in the direction
// the rows are read.
func (s *searchSQL) orderAndKeyset(cur *search.Cursor, backward bool) (order string, keyset string, err error) {
	type col struct {
		expr string
		desc bool
		val  any
	}
	var cols []col
	for i, k := range s.q.Sort {
		exprs, err := sortExprs(k)
		if err != nil {
			return "", "", err
		}
		var vals []any
		if cur != nil {
			vals = sortValues(k, cur.Keys[i])
		}
		desc := k.Desc != backward
		for j, e := range exprs {
			c := col{expr: e, desc: desc}
			if cur != nil {
				c.val = vals[j]
			}
			cols = append(cols, c)
		}
	}
	parts := make([]string, len(cols))
	uniform := true
	for i, c := range cols {
		dir := " ASC"
		if c.desc {
			dir = " DESC"
		}
		parts[i] = c.expr + dir
		if c.desc != cols[0].desc {
			uniform = false
		}
	}
	order = strings.Join(parts, ", ")
	if cur == nil {
		return order, "", nil
	}
	param := func(c col) string {
		switch v := c.val.(type) {
		case time.Time:
			return s.args.add(v) + "::timestamptz"
		case string:
			return s.args.add(v) + "::text"
		case int:
			return s.args.add(v) + "::integer"
		case float64:
			return s.args.add(v) + "::float8"
		case bool:
			return s.args.add(v) + "::boolean"
		}
		return s.args.add(c.val)
	}
	cmp := func(c col) string {
		if c.desc {
			return " < "
		}
		return " > "
	}
	if uniform {
		exprs, vals := make([]string, len(cols)), make([]string, len(cols))
		for i, c := range cols {
			exprs[i], vals[i] = c.expr, param(c)
		}
		return order, "(" + strings.Join(exprs, ", ") + ")" + cmp(cols[0]) + "(" + strings.Join(vals, ", ") + ")", nil
	}
	// Mixed directions: (a > x) OR (a = x AND b < y) OR ...
	var ors []string
	vals := make([]string, len(cols))
	for i, c := range cols {
		vals[i] = param(c)
	}
	for i, c := range cols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, cols[j].expr+" = "+vals[j])
		}
		ands = append(ands, c.expr+cmp(c)+vals[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return order, "(" + strings.Join(ors, " OR ") + ")", nil
}

// Search returns one page of the items that match a prepared query. The
// filter is compiled to SQL; a part the compiler cannot express is
// applied to the rows as they are read, in chunks, until the page is
// full. With Count the page and the count are read in one snapshot; a
// count that takes longer than the budget is left out.
// Codes: EINVALID, EUNAVAILABLE.
func (s *Store) Search(ctx context.Context, q *search.Query) (*search.Page, error) {
	if q.After != nil && q.Before != nil {
		return nil, catalog.Errorf(catalog.EINVALID, "a page has either an after or a before cursor, not both")
	}
	ss, err := compileSearch(q)
	if err != nil {
		return nil, err
	}
	if !q.Count {
		items, err := ss.page(ctx, s.pool)
		if err != nil {
			return nil, err
		}
		return search.NewPage(items, q), nil
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	items, err := ss.page(ctx, tx)
	if err != nil {
		return nil, err
	}
	page := search.NewPage(items, q)
	n, err := ss.count(ctx, tx)
	if err != nil {
		return nil, err
	}
	page.Matched = n
	return page, nil
}

// chunkSize is how many rows a search with a residual filter reads at a
// time.
const chunkSize = 256

// page reads up to Limit+1 matching rows in the read order.
func (ss *searchSQL) page(ctx context.Context, q querier) ([]*catalog.Item, error) {
	cur, backward := ss.q.After, false
	if ss.q.Before != nil {
		cur, backward = ss.q.Before, true
	}
	want := ss.q.Limit + 1
	var out []*catalog.Item
	for {
		args := &sqlArgs{list: append([]any(nil), ss.args.list...)}
		sub := &searchSQL{args: args, where: ss.where, q: ss.q}
		order, keyset, err := sub.orderAndKeyset(cur, backward)
		if err != nil {
			return nil, err
		}
		where := ss.where
		if keyset != "" {
			where = append(append([]string(nil), where...), keyset)
		}
		n := want - len(out)
		if ss.residual != nil {
			n = max(n, chunkSize)
		}
		sql := `SELECT ` + searchColumns + ` FROM items WHERE ` + strings.Join(where, " AND ") +
			` ORDER BY ` + order + ` LIMIT ` + args.add(n)
		rows, err := q.Query(ctx, sql, args.list...)
		if err != nil {
			return nil, searchError(err)
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*catalog.Item, error) { return scanSearchItem(r) })
		if err != nil {
			return nil, searchError(err)
		}
		if ss.residual == nil {
			return items, nil
		}
		for _, it := range items {
			if ss.residual.Match(search.Feature(it)) {
				out = append(out, it)
				if len(out) == want {
					return out, nil
				}
			}
		}
		if len(items) < n {
			return out, nil
		}
		cur = search.CursorOf(ss.q.Sort, items[len(items)-1])
	}
}

// count counts the matches within the query's budget; nil when the
// budget runs out. It runs in the page's transaction, which a timeout
// aborts, so it comes last.
func (ss *searchSQL) count(ctx context.Context, tx pgx.Tx) (*int64, error) {
	if ss.q.CountBudget > 0 {
		ms := strconv.FormatInt(max(ss.q.CountBudget.Milliseconds(), 1), 10)
		if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, ms); err != nil {
			return nil, dbError(err)
		}
	}
	where := strings.Join(ss.where, " AND ")
	var n int64
	if ss.residual == nil {
		err := tx.QueryRow(ctx, `SELECT count(*) FROM items WHERE `+where, ss.args.list...).Scan(&n)
		if isQueryCanceled(err) {
			return nil, nil
		}
		if err != nil {
			return nil, searchError(err)
		}
		return &n, nil
	}
	deadline := time.Now().Add(ss.q.CountBudget)
	rows, err := tx.Query(ctx, `SELECT `+searchColumns+` FROM items WHERE `+where, ss.args.list...)
	if err != nil {
		return nil, searchError(err)
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanSearchItem(rows)
		if err != nil {
			return nil, searchError(err)
		}
		if ss.residual.Match(search.Feature(it)) {
			n++
		}
		if ss.q.CountBudget > 0 && time.Now().After(deadline) {
			return nil, nil
		}
	}
	if err := rows.Err(); err != nil {
		if isQueryCanceled(err) {
			return nil, nil
		}
		return nil, searchError(err)
	}
	return &n, nil
}

// searchError maps a database error of a search: a geometry PostGIS
// cannot read is the client's mistake.
func searchError(err error) error {
	var ce *catalog.Error
	if errors.As(err, &ce) {
		return err
	}
	if msg, ok := postgisInputError(err); ok {
		return catalog.Invalid("filter", "a geometry in the query is not valid: %s", msg)
	}
	return dbError(err)
}

// ExplainSearch returns the plan of the page query of a prepared search
// (EXPLAIN, with ANALYZE and BUFFERS when analyze is set), for
// benchmarks and for checking that indexes are used.
func (s *Store) ExplainSearch(ctx context.Context, q *search.Query, analyze bool) (string, error) {
	ss, err := compileSearch(q)
	if err != nil {
		return "", err
	}
	cur, backward := q.After, false
	if q.Before != nil {
		cur, backward = q.Before, true
	}
	order, keyset, err := ss.orderAndKeyset(cur, backward)
	if err != nil {
		return "", err
	}
	where := ss.where
	if keyset != "" {
		where = append(where, keyset)
	}
	opts := "(COSTS)"
	if analyze {
		opts = "(ANALYZE, BUFFERS, COSTS)"
	}
	sql := fmt.Sprintf(`EXPLAIN %s SELECT %s FROM items WHERE %s ORDER BY %s LIMIT %d`, opts, searchColumns, strings.Join(where, " AND "), order, q.Limit+1)
	rows, err := s.pool.Query(ctx, sql, ss.args.list...)
	if err != nil {
		return "", searchError(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", searchError(err)
	}
	return strings.Join(lines, "\n"), nil
}

// isQueryCanceled reports a statement cut off by statement_timeout.
func isQueryCanceled(err error) bool { return pgCode(err) == codeQueryCanceled }

// postgisInputError returns the message of an error PostGIS raises on a
// geometry it cannot parse or use (SQLSTATE XX000 with a GeoJSON or
// geometry message, or invalid parameter values).
func postgisInputError(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", false
	}
	m := pe.Message
	switch {
	case pe.Code == "22023", pe.Code == "22P02" && strings.Contains(m, "geometry"),
		strings.Contains(m, "GeoJSON"), strings.Contains(m, "TopologyException"),
		strings.Contains(m, "geometry requires more points"), strings.Contains(m, "IllegalArgumentException"):
		return m, true
	}
	return "", false
}
