package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
)

var _ search.Searcher = (*Store)(nil)

// searchColumns is what a search selects, in scanSearchItem's order.
const searchColumns = "collection, id, state, etag, created, updated, start_us, end_us, content"

func scanSearchItem(row interface{ Scan(...any) error }) (*catalog.Item, error) {
	var (
		coll, id, state, etag            string
		created, updated, startUS, endUS int64
		content                          []byte
	)
	if err := row.Scan(&coll, &id, &state, &etag, &created, &updated, &startUS, &endUS, &content); err != nil {
		return nil, err
	}
	return loadItem(coll, id, state, etag, created, updated, startUS, endUS, content)
}

// searchPlan is a search compiled to SQL: the WHERE clause without the
// page cursor, and the residual filter the evaluator applies to the rows
// it keeps.
type searchPlan struct {
	q        *search.Query
	args     *sqlArgs
	where    []string
	residual cql2.Expr
	// match is residual checked once, for the rows.
	match *cql2.Filter
	// sort holds the SQL of the sort keys, in q.Sort's order.
	sort []sortKey
}

// planSearch compiles everything of a prepared query but its cursors.
// The bbox and intersects parameters, and the spatial predicates of the
// filter, select candidates through the R*Tree and are then decided by
// the evaluator: SQLite has no geometry engine.
func planSearch(q *search.Query) (*searchPlan, error) {
	p := &searchPlan{q: q, args: &sqlArgs{}}
	c := newCompiler(p.args)

	// Tombstones (state deleted, no document) are found when the states
	// name them.
	states := make([]string, len(q.States))
	for i, st := range q.States {
		states[i] = string(st)
	}
	if len(states) == 0 {
		p.where = append(p.where, "0")
	} else {
		p.where = append(p.where, p.inStrings("state", states))
	}
	if len(q.Collections) > 0 {
		p.where = append(p.where, p.inStrings("collection", q.Collections))
	}
	if len(q.IDs) > 0 {
		p.where = append(p.where, p.inStrings("id", q.IDs))
	}
	// Interval overlap, in the whole microseconds of the columns: the item
	// starts no later than the query ends, and ends no earlier than the
	// query starts, that start rounded up to the microsecond.
	if q.End != nil {
		p.where = append(p.where, "start_us <= "+p.args.add(micros(*q.End)))
	}
	if q.Start != nil {
		us := micros(*q.Start)
		if fromMicros(us).Before(*q.Start) {
			us++
		}
		p.where = append(p.where, "end_us >= "+p.args.add(us))
	}
	if q.Access != nil {
		p.where = append(p.where, p.access(q.Access))
	}
	if len(q.Q) > 0 {
		// Each term a phrase of its words (letters and digits only, so
		// nothing needs quoting inside the double quotes), OR'd.
		phrases := make([]string, len(q.Q))
		for i, t := range q.Q {
			phrases[i] = `"` + t + `"`
		}
		p.where = append(p.where, "rowid IN (SELECT rowid FROM items_fts WHERE items_fts MATCH "+p.args.add(strings.Join(phrases, " OR "))+")")
	}

	spatial := search.SpatialFilter(q)
	if spatial != nil {
		if err := cql2.Check(spatial); err != nil {
			msg := err.Error()
			var ce *catalog.Error
			if errors.As(err, &ce) {
				msg = ce.Message
			}
			return nil, catalog.Invalid("intersects", "the geometry cannot be searched: %s", msg)
		}
	}
	pushed, residual := search.Split(q.Filter, pushable)
	if pushed != nil {
		s, err := c.cond(pushed)
		if err != nil {
			return nil, err
		}
		p.where = append(p.where, s)
	}
	p.residual = andExprs(spatial, residual)
	if p.residual != nil {
		m, err := cql2.NewFilter(p.residual)
		if err != nil {
			return nil, err
		}
		p.match = m
	}
	for _, e := range conjuncts(p.residual) {
		if boxes, ok := candidateBoxes(e); ok {
			p.where = append(p.where, p.rtree(boxes))
		}
	}

	for _, k := range q.Sort {
		p.sort = append(p.sort, sortSQL(c, k))
	}
	return p, nil
}

// inStrings is column IN a list of strings, bound as one JSON array.
func (p *searchPlan) inStrings(column string, vals []string) string {
	if len(vals) == 1 {
		return column + " = " + p.args.add(vals[0])
	}
	b, _ := json.Marshal(vals)
	return column + " IN (SELECT value FROM json_each(" + p.args.add(string(b)) + "))"
}

// access is the read filter of a caller (search.Access.Readable).
func (p *searchPlan) access(a *search.Access) string {
	var arms []string
	if len(a.Collections) > 0 {
		arms = append(arms, "(state <> 'draft' AND "+p.inStrings("collection", a.Collections)+")")
	}
	if len(a.Drafts) > 0 {
		arms = append(arms, "(state = 'draft' AND "+p.inStrings("collection", a.Drafts)+")")
	}
	if shared := a.SharedItems(); len(shared) > 0 {
		refs := make([][2]string, len(shared))
		for i, r := range shared {
			refs[i] = [2]string{r.Collection, r.ID}
		}
		b, _ := json.Marshal(refs)
		arms = append(arms, "(state <> 'draft' AND (collection, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each("+
			p.args.add(string(b))+")))")
	}
	if a.Owner != "" {
		path := p.args.add(`$.properties."` + catalog.PropOwner + `"`)
		arms = append(arms, "(json_type(content, "+path+") = 'text' AND json_extract(content, "+path+") = "+p.args.add(a.Owner)+")")
	}
	if len(arms) == 0 {
		return "0"
	}
	return "(" + strings.Join(arms, " OR ") + ")"
}

// andExprs joins the expressions that are not nil with AND.
func andExprs(es ...cql2.Expr) cql2.Expr {
	var args []cql2.Expr
	for _, e := range es {
		if e != nil {
			args = append(args, e)
		}
	}
	switch len(args) {
	case 0:
		return nil
	case 1:
		return args[0]
	}
	return &cql2.Op{Name: "and", Args: args}
}

// conjuncts returns the arguments of nested top-level ANDs.
func conjuncts(e cql2.Expr) []cql2.Expr {
	if e == nil {
		return nil
	}
	op, ok := e.(*cql2.Op)
	if !ok || op.Name != "and" {
		return []cql2.Expr{e}
	}
	var out []cql2.Expr
	for _, a := range op.Args {
		out = append(out, conjuncts(a)...)
	}
	return out
}

// box is a rectangle in the plane: west, south, east, north.
type box [4]float64

// boxMargin widens the rectangles looked up in the R*Tree: an item's bbox,
// which the R*Tree holds, may fall short of its geometry by the rounding
// a client's bbox is allowed (catalog's bbox tolerance).
const boxMargin = 1e-5

// rtree keeps the rows whose bbox, as the R*Tree holds it (rounded
// outwards), meets one of boxes.
func (p *searchPlan) rtree(boxes []box) string {
	parts := make([]string, len(boxes))
	for i, b := range boxes {
		parts[i] = "SELECT id FROM items_rtree WHERE minx <= " + p.args.add(b[2]+boxMargin) +
			" AND maxx >= " + p.args.add(b[0]-boxMargin) +
			" AND miny <= " + p.args.add(b[3]+boxMargin) +
			" AND maxy >= " + p.args.add(b[1]-boxMargin)
	}
	return "rowid IN (" + strings.Join(parts, " UNION ALL ") + ")"
}

// spatialNeedsContact are the predicates that hold only when the two
// geometries share a point, so only when their envelopes meet.
var spatialNeedsContact = map[string]bool{
	"s_intersects": true, "s_contains": true, "s_within": true, "s_touches": true,
	"s_crosses": true, "s_overlaps": true, "s_equals": true,
}

// candidateBoxes returns rectangles an item's geometry must meet to match
// e: those of a spatial predicate of the geometry and a literal that
// needs contact, of one argument of an AND, or of every argument of an
// OR together. ok is false when e says nothing of the sort.
func candidateBoxes(e cql2.Expr) ([]box, bool) {
	op, ok := e.(*cql2.Op)
	if !ok {
		return nil, false
	}
	switch op.Name {
	case "and":
		for _, a := range op.Args {
			if boxes, ok := candidateBoxes(a); ok {
				return boxes, true
			}
		}
		return nil, false
	case "or":
		var all []box
		for _, a := range op.Args {
			boxes, ok := candidateBoxes(a)
			if !ok {
				return nil, false
			}
			all = append(all, boxes...)
		}
		return all, len(all) > 0
	}
	if !spatialNeedsContact[op.Name] || len(op.Args) != 2 {
		return nil, false
	}
	isGeometry := func(x cql2.Expr) bool {
		p, ok := x.(*cql2.Property)
		return ok && (p.Name == search.PropGeometry || p.Name == search.PropGeom)
	}
	lit := op.Args[1]
	switch {
	case isGeometry(op.Args[0]):
	case isGeometry(op.Args[1]):
		lit = op.Args[0]
	default:
		return nil, false
	}
	switch x := lit.(type) {
	case *cql2.BBox:
		return bboxBoxes(x)
	case *cql2.Geometry:
		b, ok := geoJSONEnvelope(x.GeoJSON)
		if !ok {
			return nil, false
		}
		return []box{b}, true
	}
	return nil, false
}

// bboxBoxes returns the rectangles of a BBOX literal: one whose west edge
// lies east of its east edge crosses the antimeridian and is two.
func bboxBoxes(b *cql2.BBox) ([]box, bool) {
	if len(b.Coords) != 4 && len(b.Coords) != 6 {
		return nil, false
	}
	nums := make([]float64, len(b.Coords))
	for i, n := range b.Coords {
		f, ok := number(n.Text)
		if !ok {
			return nil, false
		}
		nums[i] = f
	}
	var out []box
	for _, r := range search.Rects(nums) {
		out = append(out, box(r))
	}
	return out, true
}

// geoJSONEnvelope returns the bounds of a GeoJSON geometry's positions in
// the plane; ok is false when it has none or is not one.
func geoJSONEnvelope(raw json.RawMessage) (box, bool) {
	b := box{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	var walk func(raw json.RawMessage, depth int) bool
	walk = func(raw json.RawMessage, depth int) bool {
		var g struct {
			Coordinates any               `json:"coordinates"`
			Geometries  []json.RawMessage `json:"geometries"`
		}
		if depth > 32 || json.Unmarshal(raw, &g) != nil {
			return false
		}
		for _, m := range g.Geometries {
			if !walk(m, depth+1) {
				return false
			}
		}
		return positions(g.Coordinates, 0, func(x, y float64) {
			b[0], b[1], b[2], b[3] = min(b[0], x), min(b[1], y), max(b[2], x), max(b[3], y)
		})
	}
	if !walk(raw, 0) || b[0] > b[2] || b[1] > b[3] {
		return box{}, false
	}
	for _, v := range b {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return box{}, false
		}
	}
	return b, true
}

// positions calls fn with the x and y of every position in nested
// GeoJSON coordinates; false when they are not made of positions.
func positions(v any, depth int, fn func(x, y float64)) bool {
	switch c := v.(type) {
	case nil:
		return true
	case []any:
		if len(c) > 0 {
			if x, ok := c[0].(float64); ok {
				if len(c) < 2 {
					return false
				}
				y, ok := c[1].(float64)
				if !ok {
					return false
				}
				fn(x, y)
				return true
			}
		}
		if depth > 8 {
			return false
		}
		for _, el := range c {
			if !positions(el, depth+1, fn) {
				return false
			}
		}
		return true
	}
	return false
}

// sortKey is the SQL of one sort key: the expressions it orders by,
// which become columns of the search's derived table.
type sortKey struct {
	k     search.SortKey
	exprs []string
}

// sortSQL returns the SQL a sort key orders by. A property orders by kind,
// then value (search.Compare): numbers, strings by code point, booleans,
// arrays and objects, and null or absent last. A number JSON holds but a
// float64 cannot (1e400) is of the fourth kind, as search.Rank has it.
func sortSQL(c *compiler, k search.SortKey) sortKey {
	switch k.Property {
	case search.PropDatetime:
		return sortKey{k: k, exprs: []string{"start_us"}}
	case search.PropID:
		return sortKey{k: k, exprs: []string{"id"}}
	case search.PropCollection:
		return sortKey{k: k, exprs: []string{"collection"}}
	}
	// dt:state orders as the document has it, like any property.
	j := c.property(k.Property)
	return sortKey{k: k, exprs: []string{rankSQL(j), rankValueSQL(j)}}
}

// rankSQL is the kind of a property value, as search.Rank numbers them.
func rankSQL(j jsonValue) string {
	return "(CASE WHEN " + j.typ + " IN ('integer', 'real') THEN (CASE WHEN abs(CAST(" + j.val + " AS REAL)) < 9e999 THEN " +
		strconv.Itoa(search.RankNumber) + " ELSE " + strconv.Itoa(search.RankOther) + " END)" +
		" WHEN " + j.typ + " = 'text' THEN " + strconv.Itoa(search.RankString) +
		" WHEN " + j.typ + " IN ('true', 'false') THEN " + strconv.Itoa(search.RankBool) +
		" WHEN " + j.typ + " IN ('array', 'object') THEN " + strconv.Itoa(search.RankOther) +
		" ELSE " + strconv.Itoa(search.RankNull) + " END)"
}

// rankValueSQL is the value that orders a property within its kind: a
// REAL, a TEXT, 0 or 1, and 0 for the kinds whose members are equal.
func rankValueSQL(j jsonValue) string {
	return "(CASE WHEN " + j.typ + " IN ('integer', 'real') THEN (CASE WHEN abs(CAST(" + j.val + " AS REAL)) < 9e999 THEN CAST(" +
		j.val + " AS REAL) ELSE 0 END)" +
		" WHEN " + j.typ + " = 'text' THEN " + j.val +
		" WHEN " + j.typ + " = 'true' THEN 1 ELSE 0 END)"
}

// keysetCol is one column of the order: its name in the derived table
// (or a constant), its direction in the read, and the cursor's value.
type keysetCol struct {
	name    string
	desc    bool
	val     string
	ordered bool // part of ORDER BY (not a constant)
}

// order returns the ORDER BY list and the condition that keeps the rows
// after the cursor (or before it, backward), in the direction the rows
// are read. args receives the cursor's values.
func (p *searchPlan) order(args *sqlArgs, cur *search.Cursor, backward bool) (order, keyset string, err error) {
	var cols []keysetCol
	n := 0
	for i, sk := range p.sort {
		desc := sk.k.Desc != backward
		var vals []string
		if cur != nil {
			if vals, err = cursorSQL(args, sk, cur.Keys[i]); err != nil {
				return "", "", err
			}
		}
		for j := range sk.exprs {
			col := keysetCol{name: "s" + strconv.Itoa(n), desc: desc, ordered: true}
			n++
			if cur != nil {
				col.val = vals[j]
			}
			cols = append(cols, col)
		}
		if cur != nil && len(vals) > len(sk.exprs) {
			// A cursor time between two microseconds: its remainder
			// of nanoseconds against the rows' none.
			cols = append(cols, keysetCol{name: "0", desc: desc, val: vals[len(vals)-1]})
		}
	}
	var parts []string
	uniform := true
	for _, c := range cols {
		if c.desc != cols[0].desc {
			uniform = false
		}
		if !c.ordered {
			continue
		}
		dir := " ASC"
		if c.desc {
			dir = " DESC"
		}
		parts = append(parts, c.name+dir)
	}
	order = strings.Join(parts, ", ")
	if cur == nil {
		return order, "", nil
	}
	cmp := func(c keysetCol) string {
		if c.desc {
			return " < "
		}
		return " > "
	}
	if uniform {
		names, vals := make([]string, len(cols)), make([]string, len(cols))
		for i, c := range cols {
			names[i], vals[i] = c.name, c.val
		}
		return order, "(" + strings.Join(names, ", ") + ")" + cmp(cols[0]) + "(" + strings.Join(vals, ", ") + ")", nil
	}
	// Mixed directions: (a > x) OR (a = x AND b < y) OR ...
	ors := make([]string, len(cols))
	for i, c := range cols {
		var ands []string
		for _, d := range cols[:i] {
			ands = append(ands, d.name+" = "+d.val)
		}
		ands = append(ands, c.name+cmp(c)+c.val)
		ors[i] = "(" + strings.Join(ands, " AND ") + ")"
	}
	return order, "(" + strings.Join(ors, " OR ") + ")", nil
}

// cursorSQL binds a cursor's value of a sort key, one SQL value per sort
// expression, and for a time with a fraction of a microsecond one more:
// that fraction in nanoseconds. A property value is bound as the JSON it
// is and ranked by the SQL that ranks the rows, so that SQLite reads its
// number as it reads the rows' (it may differ from Go in the last bit
// for a number with more than 17 digits).
func cursorSQL(args *sqlArgs, sk sortKey, v any) ([]string, error) {
	bad := catalog.Invalid("token", "the page token does not fit this search's sort order")
	switch sk.k.Property {
	case search.PropDatetime:
		t, ok := v.(time.Time)
		if !ok {
			return nil, bad
		}
		vals := []string{args.add(micros(t))}
		if ns := t.Nanosecond() % 1000; ns != 0 {
			vals = append(vals, args.add(int64(ns)))
		}
		return vals, nil
	case search.PropID, search.PropCollection:
		s, ok := v.(string)
		if !ok {
			return nil, bad
		}
		return []string{args.add(s)}, nil
	}
	var raw []byte
	switch x := v.(type) {
	case nil:
		raw = []byte("null")
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	case string:
		raw = []byte(x)
	default:
		return nil, bad
	}
	if !json.Valid(raw) {
		return nil, bad
	}
	r := args.add(string(raw))
	j := jsonValue{typ: "json_type(" + r + ")", val: "json_extract(" + r + ", '$')"}
	return []string{rankSQL(j), rankValueSQL(j)}, nil
}

// selectSQL is the query of one read: the rows of the plan, after the
// cursor, in the read order, at most limit.
func (p *searchPlan) selectSQL(cur *search.Cursor, backward bool, limit int) (string, []any, error) {
	args := p.args.clone()
	order, keyset, err := p.order(args, cur, backward)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString("SELECT " + searchColumns + " FROM (SELECT " + searchColumns)
	n := 0
	for _, sk := range p.sort {
		for _, e := range sk.exprs {
			b.WriteString(", " + e + " AS s" + strconv.Itoa(n))
			n++
		}
	}
	b.WriteString(" FROM items WHERE " + strings.Join(p.where, " AND ") + ")")
	if keyset != "" {
		b.WriteString(" WHERE " + keyset)
	}
	b.WriteString(" ORDER BY " + order + " LIMIT " + args.add(int64(limit)))
	return b.String(), args.list, nil
}

// Search returns one page of the items that match a prepared query, with
// the semantics of search.Run. The filter is split: what compiles to SQL
// is pushed into the query; the rest, and the spatial predicates, which
// SQLite cannot compute, are applied by the evaluator to the rows as they
// are read in the page's order, in chunks, until the page is full. The
// page and the count are read in one read transaction, so they agree; a
// count that does not finish within the budget is left out.
// Codes: EINVALID, EUNAVAILABLE.
func (s *Store) Search(ctx context.Context, q *search.Query) (*search.Page, error) {
	if q.After != nil && q.Before != nil {
		return nil, catalog.Errorf(catalog.EINVALID, "a page has either an after or a before cursor, not both")
	}
	if len(q.Sort) == 0 {
		return nil, catalog.Errorf(catalog.EINVALID, "the search has no sort order (it was not prepared)")
	}
	for _, c := range []*search.Cursor{q.After, q.Before} {
		if c != nil && len(c.Keys) != len(q.Sort) {
			return nil, catalog.Invalid("token", "the page token belongs to a search with another sort order")
		}
	}
	p, err := planSearch(q)
	if err != nil {
		return nil, err
	}
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = tx.Rollback() }()
	items, err := p.page(ctx, tx)
	if err != nil {
		return nil, err
	}
	page := search.NewPage(items, q)
	if q.Count {
		if q.After == nil && q.Before == nil && len(items) <= q.Limit {
			// The first page holds every match.
			n := int64(len(items))
			page.Matched = &n
		} else if page.Matched, err = p.count(ctx, tx); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// chunkSize is how many rows a search with a residual filter reads at a
// time.
const chunkSize = 256

// page reads up to Limit+1 matching rows in the read order.
func (p *searchPlan) page(ctx context.Context, tx *sql.Tx) ([]*catalog.Item, error) {
	cur, backward := p.q.After, false
	if p.q.Before != nil {
		cur, backward = p.q.Before, true
	}
	want := p.q.Limit + 1
	var out []*catalog.Item
	for {
		n := want - len(out)
		if p.residual != nil {
			n = max(n, chunkSize)
		}
		query, args, err := p.selectSQL(cur, backward, n)
		if err != nil {
			return nil, err
		}
		items, err := readItems(ctx, tx, query, args)
		if err != nil {
			return nil, err
		}
		if p.residual == nil {
			return items, nil
		}
		for _, it := range items {
			if p.match.Match(search.Feature(it)) {
				out = append(out, it)
				if len(out) == want {
					return out, nil
				}
			}
		}
		if len(items) < n {
			return out, nil
		}
		cur = search.CursorOf(p.q.Sort, items[len(items)-1])
	}
}

func readItems(ctx context.Context, tx *sql.Tx, query string, args []any) ([]*catalog.Item, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = rows.Close() }()
	var items []*catalog.Item
	for rows.Next() {
		it, err := scanSearchItem(rows)
		if err != nil {
			return nil, dbError(err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	return items, nil
}

// count counts the matches within the query's budget (none: no limit);
// nil when the budget runs out. Without a residual SQLite counts; with
// one the evaluator judges every candidate row.
func (p *searchPlan) count(ctx context.Context, tx *sql.Tx) (*int64, error) {
	cctx := ctx
	var deadline time.Time
	if p.q.CountBudget > 0 {
		deadline = time.Now().Add(p.q.CountBudget)
		var cancel context.CancelFunc
		cctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	// overBudget reports an error that is the budget running out rather
	// than a failure.
	overBudget := func(err error) bool {
		return err != nil && ctx.Err() == nil && cctx.Err() != nil
	}
	where := strings.Join(p.where, " AND ")
	var n int64
	if p.residual == nil {
		err := tx.QueryRowContext(cctx, "SELECT count(*) FROM items WHERE "+where, p.args.list...).Scan(&n)
		if overBudget(err) {
			return nil, nil
		}
		if err != nil {
			return nil, dbError(err)
		}
		return &n, nil
	}
	rows, err := tx.QueryContext(cctx, "SELECT "+searchColumns+" FROM items WHERE "+where, p.args.list...)
	if overBudget(err) {
		return nil, nil
	}
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		it, err := scanSearchItem(rows)
		if err != nil {
			return nil, dbError(err)
		}
		if p.match.Match(search.Feature(it)) {
			n++
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return nil, nil
		}
	}
	if err := rows.Err(); err != nil {
		if overBudget(err) {
			return nil, nil
		}
		return nil, dbError(err)
	}
	return &n, nil
}

// describeSearch returns the SQL and arguments of a query's first read,
// for EXPLAIN in tests.
func describeSearch(q *search.Query) (string, []any, error) {
	p, err := planSearch(q)
	if err != nil {
		return "", nil, err
	}
	cur, backward := q.After, false
	if q.Before != nil {
		cur, backward = q.Before, true
	}
	return p.selectSQL(cur, backward, q.Limit+1)
}
