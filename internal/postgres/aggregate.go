package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
)

var _ search.Aggregator = (*Store)(nil)

// Aggregate computes aggregations in SQL over the rows the query's WHERE
// clause keeps, each with one statement, all in one snapshot. A query
// with a residual filter (a part the compiler cannot express) reads its
// matches instead and aggregates them in Go.
// Codes: EINVALID, EUNAVAILABLE.
func (s *Store) Aggregate(ctx context.Context, q *search.Query, specs []search.AggSpec) ([]search.AggResult, error) {
	ss, err := s.compile(ctx, q)
	if err != nil {
		return nil, err
	}
	ctx = noCancel(ctx)
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	where, args := ss.allWhere()
	if ss.residual != nil {
		rows, err := tx.Query(ctx, `SELECT `+searchColumns+` FROM items WHERE `+where, customPlan(args)...)
		if err != nil {
			return nil, searchError(err)
		}
		var items []*catalog.Item
		for rows.Next() {
			it, err := scanSearchItem(rows)
			if err != nil {
				rows.Close()
				return nil, searchError(err)
			}
			if ss.residual.Match(search.Feature(it)) {
				items = append(items, it)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, searchError(err)
		}
		return search.AggregateItems(specs, items), nil
	}
	out := make([]search.AggResult, 0, len(specs))
	for _, spec := range specs {
		r, err := aggregateOne(ctx, tx, where, args, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func aggregateOne(ctx context.Context, tx pgx.Tx, where string, args []any, spec search.AggSpec) (search.AggResult, error) {
	r := search.AggregateItems([]search.AggSpec{spec}, nil)[0]
	one := func(sql string, dest ...any) error {
		if err := tx.QueryRow(ctx, sql, customPlan(args)...).Scan(dest...); err != nil {
			return searchError(err)
		}
		return nil
	}
	switch spec.Kind {
	case search.AggCount:
		var n int64
		if err := one(`SELECT count(*) FROM items WHERE `+where, &n); err != nil {
			return r, err
		}
		r.Value = n
	case search.AggMinTime, search.AggMaxTime:
		sql := `SELECT min(start_dt) FROM items WHERE `
		if spec.Kind == search.AggMaxTime {
			sql = `SELECT max(end_dt) FROM items WHERE `
		}
		var t *time.Time
		if err := one(sql+where, &t); err != nil {
			return r, err
		}
		if t != nil {
			r.Value = catalog.FormatTime(*t)
		}
	case search.AggTimeFreq:
		interval := spec.Interval
		if interval == "" {
			var first, last *time.Time
			if err := one(`SELECT min(start_dt), max(start_dt) FROM items WHERE `+where, &first, &last); err != nil {
				return r, err
			}
			if first == nil {
				return r, nil
			}
			interval = search.AutoInterval(*first, *last)
		}
		r.DataType = "interval_" + interval
		// interval is one of search.Intervals, a keyword of date_trunc.
		rows, err := tx.Query(ctx, `SELECT date_trunc('`+interval+`', start_dt, 'UTC') AS k, count(*) FROM items WHERE `+where+
			` GROUP BY k ORDER BY k`, customPlan(args)...)
		if err != nil {
			return r, searchError(err)
		}
		for rows.Next() {
			var k time.Time
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return r, searchError(err)
			}
			r.Buckets = append(r.Buckets, search.Bucket{Key: catalog.FormatTime(k), DataType: "datetime", Frequency: n})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, searchError(err)
		}
	case search.AggTerms:
		var sql string
		switch spec.Property {
		case search.PropCollection, search.PropState:
			col := map[string]string{search.PropCollection: "collection", search.PropState: "state"}[spec.Property]
			sql = `SELECT to_jsonb(` + col + `), count(*) FROM items WHERE ` + where + ` GROUP BY 1`
		default:
			lit, err := quoteName(spec.Property)
			if err != nil {
				return r, err
			}
			j := propertyPath(lit)
			// An array counts each of its elements.
			sql = `SELECT e.v, count(*) FROM items, LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof` + j +
				` = 'array' THEN ` + j + ` ELSE jsonb_build_array` + j + ` END) AS e(v) WHERE ` + where +
				` AND jsonb_typeof(e.v) IN ('string', 'number', 'boolean') GROUP BY 1`
		}
		rows, err := tx.Query(ctx, sql, customPlan(args)...)
		if err != nil {
			return r, searchError(err)
		}
		counts := map[string]int64{}
		for rows.Next() {
			var v json.RawMessage
			var n int64
			if err := rows.Scan(&v, &n); err != nil {
				rows.Close()
				return r, searchError(err)
			}
			if k, ok := search.TermKey(v); ok {
				counts[k] += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, searchError(err)
		}
		r.Buckets, r.Overflow = search.TopTerms(counts)
	case search.AggRanges:
		lit, err := quoteName(spec.Property)
		if err != nil {
			return r, err
		}
		v := "cql_num" + propertyPath(lit)
		rows, err := tx.Query(ctx, `SELECT `+v+`, count(*) FROM items WHERE `+where+` AND `+v+` IS NOT NULL GROUP BY 1`, customPlan(args)...)
		if err != nil {
			return r, searchError(err)
		}
		counts := make([]int64, len(spec.Edges)-1)
		var over int64
		for rows.Next() {
			var x float64
			var n int64
			if err := rows.Scan(&x, &n); err != nil {
				rows.Close()
				return r, searchError(err)
			}
			if i := search.RangeBucket(spec.Edges, x); i >= 0 {
				counts[i] += n
			} else {
				over += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, searchError(err)
		}
		r.Buckets, r.Overflow = search.RangeBuckets(spec.Edges, counts), &over
	case search.AggExtent:
		var w, so, e, n *float64
		if err := one(`SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT ST_Extent(geometry) AS b FROM items WHERE `+
			where+`) x`, &w, &so, &e, &n); err != nil {
			return r, err
		}
		if w != nil {
			r.Value = []float64{*w, *so, *e, *n}
		}
	}
	return r, nil
}
