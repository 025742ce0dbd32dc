package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

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

// collectSearchItem is scanSearchItem for pgx.CollectRows.
func collectSearchItem(row pgx.CollectableRow) (*catalog.Item, error) { return scanSearchItem(row) }

// searchSQL is a search compiled to SQL: the WHERE clause without the
// page cursor, the residual filter the evaluator applies, and the sort.
type searchSQL struct {
	args     *sqlArgs
	where    []string
	residual *cql2.Filter // nil: none
	q        *search.Query
	// spatial is set when the query tests geometries with PostGIS, whose
	// statements are never interrupted (see noCancel).
	spatial bool
	// arms are the access rules as disjoint conditions (nil: no rules,
	// the admin's search; one "false" arm: nothing is readable). Counts
	// count each arm on its own, with its own indexes, and add them up.
	arms []accessArm
	// timeConds are the datetime overlap as B-tree tests of where, which
	// pages walk the order index with; rangeCond is the same overlap as
	// one range test ("" without a datetime), which items_time_idx
	// serves. Statements that read every match test the range instead.
	timeConds []string
	rangeCond string
	// generic is set when the page statement reads the same partitions
	// whatever its values: no condition but the states (and the page
	// cursor) and no residual; every partition without access rules, and
	// under them the partitions the arms name (see armSource), and
	// shared_items where a walk of it finds the caller's shares soon (see
	// sharedWalk). Its plan is then made once per connection (see
	// batchPage).
	generic bool
	// parts are the partitions (collection → table) that the access
	// arms of whole collections read (see armSource); nil otherwise.
	parts map[string]string
	// prepared is set when pages keep their statements prepared (see
	// preparedPages).
	prepared bool
	// probe is the owner whose owned collections the page reads again
	// with its statement (see searchPage); "" for none.
	probe string
	// walk is set on a generic statement whose arm of shared items must
	// walk shared_items in the page order (see sharedWalk, batchPage).
	walk bool
	// winBounds are the bounds of a histogram of start_dt that a spatial
	// page is read in windows of (see timeWindows); nil for none.
	winBounds []time.Time
}

// everyMatch returns the search as statements that read every match
// (counts, aggregations) run it: the datetime overlap as a range test
// instead of the B-tree tests. With both, the planner ANDs the range
// index with a B-tree index of (collection, end_dt) that matches most of
// the partition, and a count of a one-month search took 300 ms instead
// of 15.
func (ss *searchSQL) everyMatch() *searchSQL {
	if ss.rangeCond == "" {
		return ss
	}
	m := *ss
	m.where = nil
	for _, w := range ss.where {
		if !slices.Contains(ss.timeConds, w) {
			m.where = append(m.where, w)
		}
	}
	m.where = append(m.where, ss.rangeCond)
	return &m
}

// allWhere is the WHERE clause of statements that read every match, the
// access arms OR'd, and its arguments.
func (ss *searchSQL) allWhere() (string, []any) {
	m := ss.everyMatch()
	return m.withArm(m.orArms()), ss.args.list
}

// compileSearch compiles everything of a prepared query but its cursors.
// owned are the collections in which the caller owns items of its own
// (ownedCollections).
func compileSearch(q *search.Query, owned []string) (*searchSQL, error) {
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
	lo, hi := "NULL", "NULL"
	if q.End != nil {
		hi = s.args.add(*q.End)
		s.timeConds = append(s.timeConds, "start_dt <= "+hi+"::timestamptz")
	}
	if q.Start != nil {
		start := q.Start.Truncate(time.Microsecond)
		if start.Before(*q.Start) {
			start = start.Add(time.Microsecond)
		}
		lo = s.args.add(start)
		s.timeConds = append(s.timeConds, "end_dt >= "+lo+"::timestamptz")
	}
	if len(s.timeConds) > 0 {
		// Pages test the B-tree form: with the range test the planner
		// would rather fetch every match of the range and sort them than
		// walk the order index. See everyMatch for the others.
		s.where = append(s.where, s.timeConds...)
		s.rangeCond = "tstzrange(start_dt, end_dt, '[]') && tstzrange(" + lo + "::timestamptz, " + hi + "::timestamptz, '[]')"
	}
	if a := q.Access; a != nil {
		s.arms = accessArms(s.args, a, q.Collections, owned)
	}
	if len(q.Q) > 0 {
		s.where = append(s.where, textSQL(s.args, "content->'properties'", q.Q))
	}
	s.spatial = q.BBox != nil || q.Intersects != nil || usesSpatial(q.Filter)
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
	s.generic = s.residual == nil && len(s.where) == 1 && armsByCollection(s.arms)
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

// usesSpatial reports whether a filter calls a spatial predicate.
func usesSpatial(e cql2.Expr) bool {
	found := false
	search.Walk(e, func(x cql2.Expr) bool {
		if op, ok := x.(*cql2.Op); ok && strings.HasPrefix(op.Name, "s_") {
			found = true
		}
		return !found
	})
	return found
}

// accessArms turns a caller's read rules into disjoint conditions, one
// per way an item may be readable: a non-draft of a readable collection;
// a draft where the caller sees drafts; a non-draft shared on its own
// outside those collections; an item the caller owns that none of the
// others covers. Being disjoint, they count and merge without
// duplicates.
//
// Arms of collections the query does not ask for (when it names some)
// are left out, and so is the arm of owned items outside the collections
// where the caller owns items (owned).
func accessArms(args *sqlArgs, a *search.Access, only, owned []string) []accessArm {
	var (
		arms    []accessArm
		covered []string
	)
	within := func(colls []string) []string {
		var out []string
		for _, c := range colls {
			if len(only) == 0 || slices.Contains(only, c) {
				out = append(out, c)
			}
		}
		return out
	}
	readable, drafts := within(a.Collections), within(a.Drafts)
	if len(readable) > 0 {
		c := "(state <> 'draft' AND collection = ANY(" + args.add(readable) + "::text[]))"
		arms, covered = append(arms, accessArm{cond: c, colls: readable}), append(covered, c)
	}
	if len(drafts) > 0 {
		c := "(state = 'draft' AND collection = ANY(" + args.add(drafts) + "::text[]))"
		arms, covered = append(arms, accessArm{cond: c, colls: drafts}), append(covered, c)
	}
	// Shared items carry the policies that share them in readers
	// (migration 0012), and their copies in shared_items (migration 0020)
	// too: the arm reads those of the collections the shares name, the
	// query asks for and no arm above covers (a share lists non-drafts
	// only).
	var shared []string
	for _, sh := range a.Shares {
		last := ""
		for _, r := range sh.Items {
			if r.Collection == last {
				continue
			}
			last = r.Collection
			if !slices.Contains(shared, last) && !slices.Contains(readable, last) &&
				(len(only) == 0 || slices.Contains(only, last)) {
				shared = append(shared, last)
			}
		}
	}
	if len(shared) > 0 {
		slices.Sort(shared)
		n := 0
		for _, sh := range a.Shares {
			for _, r := range sh.Items {
				if slices.Contains(shared, r.Collection) {
					n++
				}
			}
		}
		c := "(readers && " + args.add(a.SharePolicies()) + "::text[] AND state <> 'draft' AND collection = ANY(" +
			args.add(shared) + "::text[]))"
		arms, covered = append(arms, accessArm{cond: c, shared: true, shares: n}), append(covered, c)
	}
	if owned = within(owned); a.Owner != "" && len(owned) > 0 {
		// items_owner_idx serves this arm, over the partitions of owned
		// only.
		c := "(collection = ANY(" + args.add(owned) + "::text[]) AND content #>> ARRAY['properties', 'dt:owner'] = " +
			args.add(a.Owner) + "::text)"
		arms = append(arms, accessArm{cond: notAny(c, covered), owned: true})
	}
	if len(arms) == 0 {
		return []accessArm{{cond: "false"}}
	}
	return arms
}

// accessArm is one way an item may be readable. The shared arm reads the
// copies of the items shared one by one (see armSource).
type accessArm struct {
	cond   string
	shared bool
	// colls are the collections whose non-drafts or drafts the arm
	// reads (nil for the other arms). Generic statements name their
	// partitions (see armSource).
	colls []string
	// owned is set on the arm of the caller's own items.
	owned bool
	// shares is how many items the shares name in the collections the
	// arm of shared items reads (at most: some may be drafts, or gone).
	shares int
}

// armSource returns the FROM source and WHERE clause that read one arm's
// matches (the zero arm: every match). The arm of shared items reads the
// copies in shared_items (migration 0020): a small table whose planning
// and reading cost little, where the partitions of their collections
// would bring every index of theirs to the planner.
//
// With partitions (the tables of the collections' items, see Search), an
// arm of some collections reads their partitions by name: the statement
// then says which partitions it reads, and its generic plan covers those
// only, where one of items would cover every partition of the catalog; a
// plan for its values is made without pruning the partitions of items
// first (0.045 of a reader's 0.40 ms first-page statement, pgbench). The
// arm's condition still names the collections, so a partition named in
// excess adds no rows.
func (ss *searchSQL) armSource(a accessArm, extra ...string) (from, where string) {
	from = "items"
	switch {
	case a.shared:
		from = "shared_items AS items"
	case ss.parts != nil && len(a.colls) > 0:
		tables := make([]string, len(a.colls))
		for i, c := range a.colls {
			tables[i] = pgx.Identifier{ss.parts[c]}.Sanitize()
		}
		if len(tables) == 1 {
			from = tables[0] + " AS items"
		} else {
			from = "(SELECT * FROM " + strings.Join(tables, " UNION ALL SELECT * FROM ") + ") AS items"
		}
	}
	return from, ss.withArm(a.cond, extra...)
}

// notAny is c and none of the covered conditions (NULL-safe: a NULL is
// read as not covered).
func notAny(c string, covered []string) string {
	if len(covered) == 0 {
		return c
	}
	return "(" + c + " AND NOT COALESCE(" + strings.Join(covered, " OR ") + ", false))"
}

// withArm is the WHERE clause of the query's conditions and one access
// arm ("" for none).
func (ss *searchSQL) withArm(arm string, extra ...string) string {
	w := append([]string(nil), ss.where...)
	if arm != "" {
		w = append(w, arm)
	}
	return strings.Join(append(w, extra...), " AND ")
}

// armsOrNone returns the arms to read, or one empty arm without rules.
func (ss *searchSQL) armsOrNone() []accessArm {
	if ss.arms == nil {
		return []accessArm{{}}
	}
	return ss.arms
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
	if !q.Count {
		items, err := s.searchPage(noCancel(ctx), q)
		if err != nil {
			return nil, err
		}
		return search.NewPage(items, q), nil
	}
	ss, err := s.compile(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := s.setWindows(ctx, ss); err != nil {
		return nil, err
	}
	// The page and the count read one snapshot: the page's transaction
	// exports it and the count, on a second connection, imports it, so
	// that both run at once and agree. Neither is cancelled once it runs
	// (see noCancel); a count the budget does not wait for finishes on
	// its own, bounded by CountCap, and is dropped.
	run := noCancel(ctx)
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, dbError(err)
	}
	var snapshot string
	if err := tx.QueryRow(run, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		_ = tx.Rollback(run)
		return nil, dbError(err)
	}
	type counted struct {
		n   *int64
		err error
	}
	done := make(chan counted, 1)
	imported := make(chan struct{})
	go func() {
		n, err := s.countInSnapshot(ctx, q.CountBudget, snapshot, imported, ss)
		done <- counted{n, err}
	}()
	items, err := ss.page(run, tx)
	// The snapshot must live until the count has imported it (or given
	// up); then the page's transaction may end.
	<-imported
	_ = tx.Rollback(run)
	if err != nil {
		return nil, err
	}
	page := search.NewPage(items, q)
	if q.After == nil && q.Before == nil && len(items) <= q.Limit {
		// A first page that holds every match counts them.
		n := int64(len(items))
		page.Matched = &n
		return page, nil
	}
	var wait <-chan time.Time
	if q.CountBudget > 0 {
		t := time.NewTimer(q.CountBudget)
		defer t.Stop()
		wait = t.C
	}
	select {
	case c := <-done:
		if c.err != nil {
			return nil, c.err
		}
		page.Matched = c.n
	case <-wait:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return page, nil
}

// compile compiles a prepared query for this store: the arm of the
// caller's owned items reads the collections where it owns items.
func (s *Store) compile(ctx context.Context, q *search.Query) (*searchSQL, error) {
	owned, err := s.ownedCollections(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.compileOwned(ctx, q, owned)
}

// compileOwned is compile with the caller's owned collections given.
func (s *Store) compileOwned(ctx context.Context, q *search.Query, owned []string) (*searchSQL, error) {
	ss, err := compileSearch(q, owned)
	if err != nil {
		return nil, err
	}
	ss.prepared = s.preparedPages
	if !ss.generic && ss.residual == nil && len(ss.where) == 1 && indexOrder(q.Sort) &&
		slices.ContainsFunc(ss.arms, func(a accessArm) bool { return a.shared }) {
		rows, err := s.sharedRows(ctx)
		if err != nil {
			return nil, err
		}
		ss.generic = sharedWalk(ss.arms, q.Limit+1, rows)
		ss.walk = ss.generic
	}
	return ss, nil
}

// indexOrder reports whether a sort is the order of the order indexes
// (datetime, id, collection, all one way), which pages can walk.
func indexOrder(sort []search.SortKey) bool {
	want := []string{search.PropDatetime, search.PropID, search.PropCollection}
	if len(sort) != len(want) {
		return false
	}
	for i, k := range sort {
		if k.Property != want[i] || k.Desc != sort[0].Desc {
			return false
		}
	}
	return true
}

// timeWindows splits time into the windows a spatial page is read in, in
// the read order (desc: newest first), from the bounds of a histogram of
// start_dt (pg_stats: ascending, about as many rows between neighbouring
// bounds). The first window holds an eighth of the histogram's bucket
// next to the page's start (its newest, or its oldest, or the one where
// edge falls: the cursor's time, or the interval's end; nil for none),
// each next one twice as many rows, the last the rest; the first and the
// last are open (±infinity), so that the windows cover all time whatever
// the histogram's age: they only decide how much is read at a time.
// Times inside a bucket are taken as spread evenly. nil without a
// histogram.
//
// A spatial page without windows either walks the order index, testing
// each row, or fetches every match of the box through the geometry index
// and sorts them: for a box where a collection is sparse (761 matches in
// 475,000 items) that read, tested and sorted them all for ten (2–4 ms);
// windows read the newest matches first (0.13 ms), through the index of
// (geometry, start_dt) of migration 0023, and where matches are dense the
// first windows hold few rows.
func timeWindows(bounds []time.Time, desc bool, edge *time.Time) (lo, hi []pgtype.Timestamptz) {
	k := float64(len(bounds) - 1)
	if k < 1 {
		return nil, nil
	}
	at := func(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }
	inf := pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	ninf := pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	var cuts []time.Time
	if desc {
		top := k
		if edge != nil {
			top = histRank(bounds, *edge)
		}
		for step := 0.125; top-step > 0; step *= 2 {
			cuts = append(cuts, histTime(bounds, top-step))
		}
	} else {
		bottom := 0.0
		if edge != nil {
			bottom = histRank(bounds, *edge)
		}
		for step := 0.125; bottom+step < k; step *= 2 {
			cuts = append(cuts, histTime(bounds, bottom+step))
		}
	}
	cuts = slices.Compact(cuts)
	if len(cuts) == 0 {
		return nil, nil
	}
	if desc {
		upper := inf
		for _, c := range cuts {
			lo, hi = append(lo, at(c)), append(hi, upper)
			upper = at(c)
		}
		return append(lo, ninf), append(hi, upper)
	}
	lower := ninf
	for _, c := range cuts {
		lo, hi = append(lo, lower), append(hi, at(c))
		lower = at(c)
	}
	return append(lo, lower), append(hi, inf)
}

// histRank is a time's place in a histogram's bounds, in buckets: 0 at
// the first bound, one more at each next, in between within a bucket;
// clamped to the bounds.
func histRank(bounds []time.Time, t time.Time) float64 {
	i, _ := slices.BinarySearchFunc(bounds, t, func(b, t time.Time) int { return b.Compare(t) })
	switch {
	case i == 0:
		return 0
	case i == len(bounds):
		return float64(len(bounds) - 1)
	}
	a, b := bounds[i-1], bounds[i]
	if !b.After(a) {
		return float64(i)
	}
	return float64(i-1) + float64(t.Sub(a))/float64(b.Sub(a))
}

// histTime is the time at a place in a histogram's bounds (histRank's
// inverse), to the microsecond.
func histTime(bounds []time.Time, r float64) time.Time {
	i := int(r)
	if i >= len(bounds)-1 {
		return bounds[len(bounds)-1]
	}
	a, b := bounds[i], bounds[i+1]
	return a.Add(time.Duration(float64(b.Sub(a)) * (r - float64(i)))).Truncate(time.Microsecond)
}

// setWindows gives a page statement the histogram its windows are cut
// from (see timeWindows) when windows beat the plans PostgreSQL chooses
// from: searches with a bbox or intersects, in the order of the order
// indexes, without a residual filter, whose box covers a small enough
// share of the data it reads (see windowed). The statistics are those of
// the one collection's partition the search reads, or of every partition
// otherwise.
func (s *Store) setWindows(ctx context.Context, ss *searchSQL) error {
	q := ss.q
	if ss.residual != nil || search.SpatialFilter(q) == nil || !indexOrder(q.Sort) {
		return nil
	}
	boxes, ok := queryBoxes(q)
	if !ok {
		return nil
	}
	colls := q.Collections
	if len(colls) == 0 && ss.arms != nil {
		colls = ss.armCollections()
	}
	table := ""
	if len(colls) == 1 {
		parts, err := s.partitions(ctx, colls)
		if err != nil {
			return err
		}
		table = parts[colls[0]]
	}
	st, err := s.spatialStats(ctx, table)
	if err != nil || !windowed(boxes, st.parts, q.Limit+1) {
		return err
	}
	ss.winBounds = st.bounds
	return nil
}

// windowed reports whether a page is better read in time windows than by
// the plans PostgreSQL chooses from: walking the order index and testing
// each row, or fetching every match of the box and sorting them. A walk
// expects to read page / f rows, f being the share of the data inside
// the box (of the partitions' extents, the data taken as spread evenly);
// the box holds f × rows. Where the walk would read more than the box
// holds, windows read the box's newest rows first: a window's index scan
// visits about the box's entries, few for a small box. For a large box
// (the benchmark's q8: Germany, 5–9 % of the collections' extents) the
// walk stays: each window's scan would visit a large part of the box.
func windowed(boxes [][4]float64, parts []partStats, page int) bool {
	var rows, inBox float64
	for _, p := range parts {
		if !p.extent || p.rows <= 0 {
			continue
		}
		area := (p.box[2] - p.box[0]) * (p.box[3] - p.box[1])
		share := 1.0
		if area > 0 {
			share = 0
			for _, b := range boxes {
				w, h := min(b[2], p.box[2])-max(b[0], p.box[0]), min(b[3], p.box[3])-max(b[1], p.box[1])
				if w > 0 && h > 0 {
					share += w * h / area
				}
			}
		}
		rows += p.rows
		inBox += min(share, 1) * p.rows
	}
	if rows == 0 {
		return false
	}
	f := inBox / rows
	return f*f*rows < float64(page)
}

// queryBoxes returns the bounds of a search's bbox and intersects
// geometry ([w, s, e, n] each; a bbox across the antimeridian is two; the
// smaller of the two when both are given); ok is false without either,
// or for a geometry without positions.
func queryBoxes(q *search.Query) (boxes [][4]float64, ok bool) {
	if q.BBox != nil {
		boxes = search.Rects(q.BBox)
	}
	if q.Intersects != nil {
		g, err := catalog.ParseGeometry("intersects", q.Intersects)
		if err != nil || g.Empty() {
			return nil, false
		}
		w, s, e, n := search.Corners(catalog.GeometryBBox(g))
		if boxes == nil || (e-w)*(n-s) < boxesArea(boxes) {
			boxes = [][4]float64{{w, s, e, n}}
		}
	}
	return boxes, boxes != nil
}

func boxesArea(boxes [][4]float64) float64 {
	a := 0.0
	for _, b := range boxes {
		a += (b[2] - b[0]) * (b[3] - b[1])
	}
	return a
}

// statsTTL is how long the store keeps the statistics of its partitions.
const statsTTL = time.Minute

// spatialStats are the statistics of some partitions that windows are
// chosen and cut by: a histogram of start_dt, and each partition's rows
// and the extent of its geometries.
type spatialStats struct {
	bounds []time.Time
	parts  []partStats
	at     time.Time
}

type partStats struct {
	rows   float64
	box    [4]float64
	extent bool // box is known
}

// spatialStats returns the statistics of a partition ("": of every
// partition of items), from what ANALYZE (or autovacuum) last gathered,
// kept for statsTTL: pg_stats' histogram of start_dt, pg_class's rows,
// PostGIS's estimated extent. Several partitions' histograms are merged,
// each bound weighing its partition's rows. No histogram without
// statistics.
func (s *Store) spatialStats(ctx context.Context, table string) (*spatialStats, error) {
	if h, ok := s.stats.get(table); ok && time.Since(h.at) < statsTTL {
		return h, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT c.reltuples, e.b IS NOT NULL, COALESCE(ST_XMin(e.b), 0), COALESCE(ST_YMin(e.b), 0),
  COALESCE(ST_XMax(e.b), 0), COALESCE(ST_YMax(e.b), 0),
  (SELECT histogram_bounds::text::timestamptz[] FROM pg_stats
    WHERE schemaname = current_schema() AND tablename = c.relname AND attname = 'start_dt' AND NOT inherited)
FROM pg_class c CROSS JOIN LATERAL (SELECT ST_EstimatedExtent(current_schema(), c.relname, 'geometry') AS b) AS e
WHERE c.relnamespace = current_schema()::regnamespace AND CASE WHEN $1 <> '' THEN c.relname = $1
  ELSE c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'items'::regclass) END`, table)
	if err != nil {
		return nil, dbError(err)
	}
	type weighted struct {
		t time.Time
		w float64
	}
	var (
		out    = &spatialStats{at: time.Now()}
		p      partStats
		bounds []time.Time
		all    []weighted
		total  float64
	)
	if _, err := pgx.ForEachRow(rows, []any{&p.rows, &p.extent, &p.box[0], &p.box[1], &p.box[2], &p.box[3], &bounds}, func() error {
		out.parts = append(out.parts, p)
		if len(bounds) > 1 && p.rows > 0 {
			w := p.rows / float64(len(bounds))
			for _, b := range bounds {
				all = append(all, weighted{b, w})
			}
			total += p.rows
		}
		return nil
	}); err != nil {
		return nil, dbError(err)
	}
	if len(all) > 0 {
		slices.SortFunc(all, func(a, b weighted) int { return a.t.Compare(b.t) })
		// A hundred buckets of about as many rows each.
		const buckets = 100
		out.bounds = append(out.bounds, all[0].t)
		cum, next := 0.0, 1
		for _, x := range all {
			cum += x.w
			for next < buckets && cum >= total*float64(next)/buckets {
				out.bounds = append(out.bounds, x.t)
				next++
			}
		}
		out.bounds = append(out.bounds, all[len(all)-1].t)
	}
	s.stats.put(table, out)
	return out, nil
}

// sharedRowsTTL is how long the store keeps its estimate of the rows of
// shared_items.
const sharedRowsTTL = time.Minute

// sharedRows returns an estimate of the rows of shared_items, for
// sharedWalk: the planner's (pg_class.reltuples), or, for a table never
// analysed, its rows counted up to 100,000; kept for sharedRowsTTL.
func (s *Store) sharedRows(ctx context.Context) (float64, error) {
	s.sharedMu.Lock()
	n, at := s.sharedN, s.sharedAt
	s.sharedMu.Unlock()
	if !at.IsZero() && time.Since(at) < sharedRowsTTL {
		return n, nil
	}
	err := s.pool.QueryRow(ctx, `SELECT CASE WHEN reltuples >= 0 THEN reltuples
  ELSE (SELECT count(*) FROM (SELECT FROM shared_items LIMIT 100000) AS s) END
FROM pg_class WHERE oid = 'shared_items'::regclass`).Scan(&n)
	if err != nil {
		return 0, dbError(err)
	}
	s.sharedMu.Lock()
	s.sharedN, s.sharedAt = n, time.Now()
	s.sharedMu.Unlock()
	return n, nil
}

// searchPage reads a page without a count.
//
// The caller's owned collections (ownedCollections) come from what the
// store last read of them, and the page's statement goes with the
// statement that reads them again, in one round trip: where they still
// agree, the page is the one planned for them; where they do not (the
// caller's first item in a collection, or its last one deleted, by any
// server), the page is read again for the new ones. A caller the store
// knows nothing of yet, a page with a residual filter (read in chunks)
// and a page under another plan_cache_mode read them first, as compile
// does.
//
// The arms of whole collections read their partitions by name (see
// armSource): a generic plan then covers those only, and a plan for the
// values is made without pruning the others.
func (s *Store) searchPage(ctx context.Context, q *search.Query) ([]*catalog.Item, error) {
	owned, known := s.knownOwned(q)
	byName := true
	for attempt := 0; ; attempt++ {
		var (
			ss  *searchSQL
			err error
		)
		if known {
			ss, err = s.compileOwned(ctx, q, owned)
		} else {
			ss, err = s.compile(ctx, q)
		}
		if err != nil {
			return nil, err
		}
		if known && ss.prepared && ss.residual == nil {
			ss.probe = q.Access.Owner
		}
		colls := ss.armCollections()
		if byName && len(colls) > 0 {
			if ss.parts, err = s.partitions(ctx, colls); err != nil {
				return nil, err
			}
		}
		ss.generic = ss.generic && (len(colls) == 0 || ss.parts != nil)
		if err := s.setWindows(ctx, ss); err != nil {
			return nil, err
		}
		items, probed, err := s.readPage(ctx, ss)
		switch {
		case pgCode(err) == codeUndefinedTable && ss.parts != nil && attempt < 2:
			// A collection was deleted (by another server) since its
			// partition was looked up: forget them, and plan for the
			// values this once.
			s.parts.reset()
			byName = false
			continue
		case err != nil:
			return nil, err
		case ss.probe != "" && !slices.Equal(probed, owned):
			s.owners.put(ss.probe, probed)
			owned = probed
			if attempt >= 2 {
				// They keep changing: read them first.
				known = false
			}
			continue
		}
		return items, nil
	}
}

// knownOwned returns what the store last read of the collections in
// which the caller of a search owns items (ownedCollections); known is
// false when it has read nothing for this caller, or the search has no
// owner to ask for.
func (s *Store) knownOwned(q *search.Query) (owned []string, known bool) {
	if q.Access == nil || q.Access.Owner == "" {
		return nil, false
	}
	return s.owners.get(q.Access.Owner)
}

// ownedSQL reads the collections in which an owner owns items, in order.
const ownedSQL = `SELECT collection FROM item_owners WHERE owner = $1 ORDER BY collection`

// ownedCollections returns the collections in which the caller of a
// search owns items of its own (item_owners, migration 0019), nil for a
// search without read rules or by an anonymous caller. The arm of owned
// items reads only their partitions.
func (s *Store) ownedCollections(ctx context.Context, q *search.Query) ([]string, error) {
	if q.Access == nil || q.Access.Owner == "" {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, ownedSQL, q.Access.Owner)
	if err != nil {
		return nil, dbError(err)
	}
	owned, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, dbError(err)
	}
	s.owners.put(q.Access.Owner, owned)
	return owned, nil
}

// noCancel keeps a search's statements from being cancelled when the
// request ends early (a client that goes away): they are short, and a
// cancel request that reaches a backend inside GEOS (PostGIS's
// geometry engine, which ST_Intersects calls) has crashed PostgreSQL 15
// with PostGIS 3.3 here, taking every connection with it.
func noCancel(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// CountCap bounds an exact count: a search with more matches gives none
// (reading them all would take longer than a page is worth). It also
// bounds the work of a count that finishes after its page was sent.
const CountCap = 50000

// countInSnapshot counts the matches of a search in the snapshot of the
// page's transaction, within the query's budget and CountCap; nil when
// either runs out.
func (s *Store) countInSnapshot(ctx context.Context, budget time.Duration, snapshot string, imported chan<- struct{}, ss *searchSQL) (*int64, error) {
	once := sync.OnceFunc(func() { close(imported) })
	defer once()
	for _, r := range snapshot {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F' || r == '-') {
			return nil, catalog.Internal(fmt.Errorf("postgres: unexpected snapshot id %q", snapshot))
		}
	}
	// Waiting for a connection is bounded by the budget: under load every
	// connection of the pool may be a page waiting for its count.
	actx, cancel := context.WithCancel(ctx)
	if budget > 0 {
		actx, cancel = context.WithTimeout(ctx, budget)
	}
	conn, err := s.pool.Acquire(actx)
	cancel()
	if err != nil {
		return nil, nil
	}
	defer conn.Release()
	run := noCancel(ctx)
	tx, err := conn.BeginTx(run, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = tx.Rollback(run) }()
	if _, err := tx.Exec(run, `SET TRANSACTION SNAPSHOT '`+snapshot+`'`); err != nil {
		return nil, dbError(err)
	}
	once()
	if budget > 0 {
		// A count the planner expects to take longer than the budget is
		// not started: the page would wait the whole budget for nothing.
		// The plan decides only whether to count, never the number.
		cost, err := ss.countCost(run, tx)
		if err != nil {
			return nil, err
		}
		if cost > s.countCostLimit(budget) {
			return nil, nil
		}
	}
	return ss.count(run, tx)
}

// chunkSize is how many rows a search with a residual filter reads at a
// time.
const chunkSize = 256

// cursorSQL starts a page statement: a copy of the arguments, the ORDER
// BY list in the read order, and the keyset condition of the cursor
// (none from the start).
func (ss *searchSQL) cursorSQL(cur *search.Cursor, backward bool) (args *sqlArgs, order string, keyset []string, err error) {
	args = &sqlArgs{list: append([]any(nil), ss.args.list...)}
	sub := &searchSQL{args: args, where: ss.where, q: ss.q}
	order, k, err := sub.orderAndKeyset(cur, backward)
	if k != "" {
		keyset = []string{k}
	}
	return args, order, keyset, err
}

// pageSQL is the statement that reads n rows from a cursor (nil: from
// the start) in the read order, and its arguments.
func (ss *searchSQL) pageSQL(cur *search.Cursor, backward bool, n int) (string, []any, error) {
	args, order, extra, err := ss.cursorSQL(cur, backward)
	if err != nil {
		return "", nil, err
	}
	limit := args.add(n)
	arms := ss.armsOrNone()
	var lo, hi string
	if ss.winBounds != nil {
		// Windows past the page's first row (the cursor's, or for the
		// newest first the interval's end) would be empty.
		desc := ss.q.Sort[0].Desc != backward
		var edge *time.Time
		if cur != nil {
			if t, ok := cur.Keys[0].(time.Time); ok {
				edge = &t
			}
		}
		if end := ss.q.End; desc && end != nil && (edge == nil || end.Before(*edge)) {
			edge = end
		}
		if winLo, winHi := timeWindows(ss.winBounds, desc, edge); winLo != nil {
			lo, hi = args.add(winLo), args.add(winHi)
		}
	}
	// armSQL reads one arm's rows in the read order, up to the page size.
	// With windows, the arm is read window by window, in the read order,
	// until the page is full: a LATERAL subquery per window, each ordered
	// and limited, which PostgreSQL runs one window after the other and
	// stops running when the outer LIMIT is met (see timeWindows).
	armSQL := func(arm accessArm) string {
		from, where := ss.armSource(arm, extra...)
		if lo == "" || arm.shared || arm.owned {
			return `SELECT ` + searchColumns + ` FROM ` + from + ` WHERE ` + where + ` ORDER BY ` + order + ` LIMIT ` + limit
		}
		return `SELECT w.* FROM unnest(` + lo + `::timestamptz[], ` + hi + `::timestamptz[]) AS win(lo, hi) CROSS JOIN LATERAL (SELECT ` +
			searchColumns + ` FROM ` + from + ` WHERE ` + where + ` AND start_dt >= win.lo AND start_dt < win.hi ORDER BY ` + order +
			` LIMIT ` + limit + `) AS w LIMIT ` + limit
	}
	if len(arms) == 1 {
		if lo == "" {
			return armSQL(arms[0]), args.list, nil
		}
		return `SELECT ` + searchColumns + ` FROM (` + armSQL(arms[0]) + `) AS items ORDER BY ` + order + ` LIMIT ` + limit, args.list, nil
	}
	// Several access arms: each is read on its own, in the read order and
	// up to the page size, and the pages are merged. One OR of the arms
	// would keep PostgreSQL from pruning partitions and from using each
	// arm's own index: a caller who may read one collection and some
	// items of others would walk every partition's order index.
	parts := make([]string, len(arms))
	for i, arm := range arms {
		parts[i] = `(` + armSQL(arm) + `)`
	}
	return `SELECT ` + searchColumns + ` FROM (` + strings.Join(parts, " UNION ALL ") + `) AS arms ORDER BY ` +
		order + ` LIMIT ` + limit, args.list, nil
}

// orArms is the access arms as one condition ("" without rules).
func (ss *searchSQL) orArms() string {
	if ss.arms == nil {
		return ""
	}
	conds := make([]string, len(ss.arms))
	for i, a := range ss.arms {
		conds[i] = a.cond
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// cursor returns the query's page cursor and whether the page is read
// backwards (from a prev link).
func (ss *searchSQL) cursor() (*search.Cursor, bool) {
	if ss.q.Before != nil {
		return ss.q.Before, true
	}
	return ss.q.After, false
}

// readPage reads a page outside a transaction, and with it the
// collections the statement's probe owner owns (ss.probe, ""  for none):
// on a generic plan when the statement allows (see batchPage), else as
// page does.
func (s *Store) readPage(ctx context.Context, ss *searchSQL) (items []*catalog.Item, owned []string, err error) {
	if !ss.generic && ss.probe == "" {
		items, err = ss.page(ctx, s.pool)
		return items, nil, err
	}
	cur, backward := ss.cursor()
	sql, args, err := ss.pageSQL(cur, backward, ss.q.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	return batchPage(ctx, s.pool, ss, sql, args)
}

// page reads up to Limit+1 matching rows in the read order.
func (ss *searchSQL) page(ctx context.Context, q querier) ([]*catalog.Item, error) {
	cur, backward := ss.cursor()
	want := ss.q.Limit + 1
	var out []*catalog.Item
	for {
		n := want - len(out)
		if ss.residual != nil {
			n = max(n, chunkSize)
		}
		sql, args, err := ss.pageSQL(cur, backward, n)
		if err != nil {
			return nil, err
		}
		rows, err := q.Query(ctx, sql, ss.pageArgs(args)...)
		if err != nil {
			return nil, searchError(err)
		}
		items, err := pgx.CollectRows(rows, collectSearchItem)
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

// CountCostPerMs is how many of PostgreSQL's cost units a count gets
// through in a millisecond on the development machine
// (docs/benchmarks.md): counts of the benchmark queries ran at 200–700
// units/ms, those with exact geometry tests at 415–430 (130–140 before
// migration 0022, when the planner expected a third of their matches).
// A count whose plan costs more than its budget allows is not started.
const CountCostPerMs = 400

// countCostLimit is the most a count's plan may cost to be started
// within budget.
func (s *Store) countCostLimit(budget time.Duration) float64 {
	if s.countCostOverride > 0 {
		return s.countCostOverride
	}
	return float64(budget) / float64(time.Millisecond) * CountCostPerMs
}

// countCost returns the planner's total cost of counting a search's
// matches.
func (ss *searchSQL) countCost(ctx context.Context, tx pgx.Tx) (float64, error) {
	var sql string
	var args []any
	if ss.residual == nil {
		sql, args = ss.countSQL()
	} else {
		var where string
		where, args = ss.allWhere()
		sql = `SELECT ` + searchColumns + ` FROM items WHERE ` + where
	}
	var raw []byte
	if err := tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+sql, customPlan(args)...).Scan(&raw); err != nil {
		return 0, searchError(err)
	}
	var plans []struct {
		Plan struct {
			Cost float64 `json:"Total Cost"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		return 0, catalog.Internal(fmt.Errorf("postgres: unexpected EXPLAIN output %.200s: %v", raw, err))
	}
	return plans[0].Plan.Cost, nil
}

// countSQL is the statement that counts the matches of a search without
// a residual filter, and its arguments: one count per access arm (they
// are disjoint), so that each keeps its indexes; with geometry tests, up
// to CountCap matches.
func (ss *searchSQL) countSQL() (string, []any) {
	m := ss.everyMatch()
	var parts []string
	for _, arm := range ss.armsOrNone() {
		from, w := m.armSource(arm)
		if ss.spatial {
			parts = append(parts, `(SELECT count(*) FROM (SELECT 1 FROM `+from+` WHERE `+w+` LIMIT `+strconv.Itoa(CountCap)+`) AS m)`)
		} else {
			parts = append(parts, `(SELECT count(*) FROM `+from+` WHERE `+w+`)`)
		}
	}
	return `SELECT ` + strings.Join(parts, " + "), ss.args.list
}

// count counts the matches within the query's budget; nil when the
// budget runs out. It runs in the page's transaction, which a timeout
// aborts, so it comes last.
func (ss *searchSQL) count(ctx context.Context, tx pgx.Tx) (*int64, error) {
	var n int64
	if ss.residual == nil {
		// Without geometry tests the count runs whole under a statement
		// timeout of the budget. With them it is never interrupted: it
		// stops after CountCap matches instead.
		// One count per access arm (they are disjoint), so that each
		// keeps its indexes.
		sql, args := ss.countSQL()
		if !ss.spatial && ss.q.CountBudget > 0 {
			ms := strconv.FormatInt(max(ss.q.CountBudget.Milliseconds(), 1), 10)
			if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, ms); err != nil {
				return nil, dbError(err)
			}
		}
		err := tx.QueryRow(ctx, sql, customPlan(args)...).Scan(&n)
		if isQueryCanceled(err) || ss.spatial && n >= CountCap {
			return nil, nil
		}
		if err != nil {
			return nil, searchError(err)
		}
		return &n, nil
	}
	deadline := time.Now().Add(ss.q.CountBudget)
	where, args := ss.allWhere()
	rows, err := tx.Query(ctx, `SELECT `+searchColumns+` FROM items WHERE `+where, customPlan(args)...)
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
		if ss.q.CountBudget > 0 && time.Now().After(deadline) || n >= CountCap {
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

// ExplainSearch returns the plan of the page query of a prepared search,
// or of its count when count is set (EXPLAIN, with ANALYZE and BUFFERS
// when analyze is set), for benchmarks and for checking that indexes are
// used.
func (s *Store) ExplainSearch(ctx context.Context, q *search.Query, analyze, count bool) (string, error) {
	ss, err := s.compile(ctx, q)
	if err != nil {
		return "", err
	}
	if err := s.setWindows(ctx, ss); err != nil {
		return "", err
	}
	cur, backward := ss.cursor()
	sql, args, err := ss.pageSQL(cur, backward, q.Limit+1)
	if err != nil {
		return "", err
	}
	if count {
		if ss.residual != nil {
			return "", catalog.Errorf(catalog.EINVALID, "this search is counted by reading its matches: its filter has parts PostgreSQL does not test")
		}
		sql, args = ss.countSQL()
	}
	opts := "(COSTS)"
	if analyze {
		opts = "(ANALYZE, BUFFERS, COSTS)"
	}
	rows, err := s.pool.Query(ctx, "EXPLAIN "+opts+" "+sql, customPlan(args)...)
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

// armsByCollection reports whether every access arm reads whole
// collections (their non-drafts or their drafts). The arms of owned items
// are left to plans for their values: how many items a caller owns
// decides between walking the order index and fetching them through
// their own index, and a generic plan would choose once for every
// caller. So is, at first, the arm of shared items: see sharedWalk.
func armsByCollection(arms []accessArm) bool {
	for _, a := range arms {
		if a.shared || a.owned {
			return false
		}
	}
	return true
}

// sharedWalkRows bounds how many rows of shared_items a generic walk of
// the arm of shared items may expect to read beyond the page: about what
// planning the arm for its values costs (0.15 ms of a reader's first
// page here, against a few microseconds a row).
const sharedWalkRows = 256

// sharedWalk reports whether a page statement with no condition but the
// states and the cursor, whose arms read whole collections and shared
// items, may run on a generic plan that walks shared_items in the page
// order (see batchPage): when the caller's shared items are a large
// enough part of the table's rows (tableRows, an estimate; negative for
// none) that a walk reads at most sharedWalkRows rows beyond the page.
// A caller with few shared items in a large table is planned for its
// values, which fetches them through the readers index and sorts them.
func sharedWalk(arms []accessArm, page int, tableRows float64) bool {
	if tableRows < 0 {
		return false
	}
	for _, a := range arms {
		switch {
		case a.owned:
			return false
		case a.shared:
			// A walk reads about page × rows / shares rows to find a
			// page of the caller's shares.
			if a.shares == 0 || float64(page)*tableRows/float64(a.shares) > float64(page+sharedWalkRows) {
				return false
			}
		}
	}
	return true
}

// armCollections returns the collections the access arms read items of.
func (ss *searchSQL) armCollections() []string {
	var out []string
	for _, a := range ss.arms {
		for _, c := range a.colls {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// partitions returns the partition of each collection (collection →
// table), from a cache the store keeps: a collection's partition is
// named after its key, which is never reused. nil when one of them has
// none (a collection deleted meanwhile).
func (s *Store) partitions(ctx context.Context, colls []string) (map[string]string, error) {
	out := make(map[string]string, len(colls))
	var missing []string
	for _, c := range colls {
		if t, ok := s.parts.get(c); ok {
			out[c] = t
		} else {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, 'items_c' || key FROM collections WHERE id = ANY($1)`, missing)
	if err != nil {
		return nil, dbError(err)
	}
	var id, table string
	if _, err := pgx.ForEachRow(rows, []any{&id, &table}, func() error {
		out[id] = table
		return nil
	}); err != nil {
		return nil, dbError(err)
	}
	if len(out) < len(colls) {
		return nil, nil
	}
	for _, c := range missing {
		s.parts.put(c, out[c])
	}
	return out, nil
}

// batchPage reads a page in one round trip with what goes with it:
//
// A generic statement (searchSQL.generic: it reads the same partitions
// whatever its values) runs on a generic plan, made on a connection's
// first such page and kept with the prepared statement: planning such a
// statement over its partitions and their dozen indexes each cost about
// 0.3 ms of a 1.5 ms first page, and a plan for its values would be the
// same plan. The server's connections plan each execution for its values
// (plan_cache_mode, see Open), so the statement runs in a read-only
// transaction that says otherwise. The plan of a statement with an arm
// of shared items (ss.walk) is made with sorts off, so that it walks
// shared_items in the page order rather than fetching the caller's
// shares whole and sorting them, which a generic plan, not knowing how
// many there are, might prefer (see sharedWalk).
//
// With a probe owner, the statement that reads the owner's collections
// (ownedSQL) goes first, and owned is its answer (see searchPage).
func batchPage(ctx context.Context, pool *pgxpool.Pool, ss *searchSQL, sql string, args []any) (items []*catalog.Item, owned []string, err error) {
	generic, probe := ss.generic, ss.probe
	b := &pgx.Batch{}
	if generic {
		b.Queue("BEGIN READ ONLY")
		b.Queue("SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_sort', $1, true)",
			strconv.FormatBool(!ss.walk))
	}
	if probe != "" {
		b.Queue(ownedSQL, probe)
	}
	b.Queue(sql, args...)
	if generic {
		b.Queue("COMMIT")
	}
	br := pool.SendBatch(ctx, b)
	defer func() { _ = br.Close() }()
	if generic {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return nil, nil, dbError(err)
			}
		}
	}
	if probe != "" {
		rows, err := br.Query()
		if err != nil {
			return nil, nil, dbError(err)
		}
		if owned, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, nil, dbError(err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, searchError(err)
	}
	if items, err = pgx.CollectRows(rows, collectSearchItem); err != nil {
		return nil, nil, searchError(err)
	}
	if generic {
		if _, err := br.Exec(); err != nil {
			return nil, nil, dbError(err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, nil, dbError(err)
	}
	return items, owned, nil
}

// preparedPages reports whether search pages may keep their statements
// prepared on the connections (pgx's statement cache), given the
// connections' plan_cache_mode. Under force_custom_plan (Open's default)
// a prepared statement is still planned for the values bound to it on
// every execution; it is parsed and analysed once per connection rather
// than on every request: 0.08 ms of the 0.48 that the statement of a
// reader's first page took here (pgbench, q1 under ursula's rules of
// docs/benchmarks.md). Under another mode, pages run as customPlan says.
func preparedPages(planCacheMode string) bool { return planCacheMode == "force_custom_plan" }

// pageArgs are the arguments of a page statement, with the mode that
// runs it (see preparedPages).
func (ss *searchSQL) pageArgs(args []any) []any {
	if ss.prepared {
		return append([]any{pgx.QueryExecModeCacheStatement}, args...)
	}
	return customPlan(args)
}

// customPlan makes a search statement's arguments run it with
// pgx.QueryExecModeCacheDescribe: an unnamed statement that PostgreSQL
// plans for the values bound to it on every execution. A named prepared
// statement switches to a generic plan after five executions when its
// estimate is close, and a generic plan of a search knows neither the
// collections (no partition pruning at planning time), nor the ids of
// shared items, nor the geometry: it tripled the latency of searches
// under access rules. The statement's description stays cached, so this
// costs no extra round trip.
func customPlan(args []any) []any {
	return append([]any{pgx.QueryExecModeCacheDescribe}, args...)
}
