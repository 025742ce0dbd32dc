package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// CountActiveJobs implements jobs.Store, by the partial index
// jobs_active_idx (migration 0015): only the owner's jobs that are not
// final are read.
func (s *Store) CountActiveJobs(ctx context.Context, owner string) (accepted, running int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'accepted'), count(*) FILTER (WHERE status = 'running')
FROM jobs WHERE owner = $1 AND status IN ('accepted', 'running')`, owner).Scan(&accepted, &running)
	if err != nil {
		return 0, 0, dbError(err)
	}
	return accepted, running, nil
}

// usageNumber reads a member of a usage record as a number, NULL when it
// is missing or not a number, so that one odd record cannot fail a
// report.
func usageNumber(member, typ string) string {
	return `CASE WHEN jsonb_typeof(usage -> '` + member + `') = 'number' THEN (usage ->> '` + member + `')::` + typ + ` END`
}

// Usage implements jobs.Store. The grouped rows are made in a subquery,
// so that the page cursor compares their keys; keys compare byte-wise
// (COLLATE "C"), as in the SQLite store.
func (s *Store) Usage(ctx context.Context, q jobs.UsageQuery) ([]jobs.UsageRow, error) {
	if err := jobs.CheckUsageQuery(q); err != nil {
		return nil, err
	}
	var (
		where = []string{"finished IS NOT NULL", "usage IS NOT NULL"}
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.User != "" {
		where = append(where, "owner = "+arg(q.User))
	}
	if q.Process != "" {
		where = append(where, "process = "+arg(q.Process))
	}
	if q.From != nil {
		where = append(where, "finished >= "+arg(*q.From))
	}
	if q.To != nil {
		where = append(where, "finished < "+arg(*q.To))
	}
	user, process, day := `''`, `''`, `''`
	var group []string
	if q.ByUser {
		user = `owner COLLATE "C"`
		group = append(group, "1")
	}
	if q.ByProcess {
		process = `process COLLATE "C"`
		group = append(group, "2")
	}
	if q.ByDay {
		day = `to_char(finished AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
		group = append(group, "3")
	}
	inner := `SELECT ` + user + ` AS u, ` + process + ` AS p, ` + day + ` AS d, count(*) AS n,
	coalesce(sum(` + usageNumber("wallSeconds", "float8") + `), 0) AS wall,
	coalesce(sum(` + usageNumber("userCpuSeconds", "float8") + `), 0) AS ucpu,
	coalesce(sum(` + usageNumber("systemCpuSeconds", "float8") + `), 0) AS scpu,
	coalesce(max(` + usageNumber("maxRssBytes", "numeric") + `), 0)::bigint AS rss,
	coalesce(sum(` + usageNumber("bytesWritten", "numeric") + `), 0)::bigint AS written
FROM jobs WHERE ` + strings.Join(where, " AND ")
	if len(group) > 0 {
		inner += ` GROUP BY ` + strings.Join(group, ", ")
	}
	// The total of no jobs is no row.
	inner += ` HAVING count(*) > 0`
	sql := `SELECT u, p, d, n, wall, ucpu, scpu, rss, written FROM (` + inner + `) g`
	if q.After != nil {
		k := q.Key(*q.After)
		sql += ` WHERE (u, p, d) > (` + arg(k.User) + `::text COLLATE "C", ` + arg(k.Process) + `::text COLLATE "C", ` + arg(k.Day) + `::text COLLATE "C")`
	}
	sql += ` ORDER BY u, p, d LIMIT ` + arg(min(max(q.Limit, 1), catalog.MaxPageSize))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jobs.UsageRow, error) {
		var u jobs.UsageRow
		err := r.Scan(&u.User, &u.Process, &u.Day, &u.Jobs, &u.WallSeconds, &u.UserCPUSeconds, &u.SystemCPUSeconds, &u.MaxRSSBytes, &u.BytesWritten)
		return u, err
	})
	if err != nil {
		return nil, dbError(err)
	}
	if out == nil {
		out = []jobs.UsageRow{}
	}
	return out, nil
}
