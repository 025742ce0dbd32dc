package sqlite

import (
	"context"
	"strings"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// CountActiveJobs implements jobs.Store, by the partial index
// jobs_active_idx (migration 0011): only the owner's jobs that are not
// final are read.
func (s *Store) CountActiveJobs(ctx context.Context, owner string) (accepted, running int, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT coalesce(sum(status = 'accepted'), 0), coalesce(sum(status = 'running'), 0)
FROM jobs WHERE owner = ? AND status IN ('accepted', 'running')`, owner).Scan(&accepted, &running)
	if err != nil {
		return 0, 0, dbError(err)
	}
	return accepted, running, nil
}

// usageNumber reads a member of a usage record as a number, NULL when it
// is missing or not a number, so that one odd record cannot fail a
// report.
func usageNumber(member string) string {
	path := `'$.` + member + `'`
	return `CASE WHEN json_type(usage, ` + path + `) IN ('integer', 'real') THEN json_extract(usage, ` + path + `) END`
}

// Usage implements jobs.Store. The grouped rows are made in a subquery,
// so that the page cursor compares their keys (BINARY: byte-wise, as in
// the PostgreSQL store). A finish time is integer microseconds, so its
// UTC day is date(finished / 1000000, 'unixepoch').
func (s *Store) Usage(ctx context.Context, q jobs.UsageQuery) ([]jobs.UsageRow, error) {
	if err := jobs.CheckUsageQuery(q); err != nil {
		return nil, err
	}
	var (
		where = []string{"finished IS NOT NULL", "usage IS NOT NULL"}
		args  []any
	)
	if q.User != "" {
		where, args = append(where, "owner = ?"), append(args, q.User)
	}
	if q.Process != "" {
		where, args = append(where, "process = ?"), append(args, q.Process)
	}
	if q.From != nil {
		where, args = append(where, "finished >= ?"), append(args, micros(*q.From))
	}
	if q.To != nil {
		where, args = append(where, "finished < ?"), append(args, micros(*q.To))
	}
	user, process, day := `''`, `''`, `''`
	var group []string
	if q.ByUser {
		user, group = "owner", append(group, "1")
	}
	if q.ByProcess {
		process, group = "process", append(group, "2")
	}
	if q.ByDay {
		day, group = "date(finished / 1000000, 'unixepoch')", append(group, "3")
	}
	inner := `SELECT ` + user + ` AS u, ` + process + ` AS p, ` + day + ` AS d, count(*) AS n,
	coalesce(sum(` + usageNumber("wallSeconds") + `), 0.0) AS wall,
	coalesce(sum(` + usageNumber("userCpuSeconds") + `), 0.0) AS ucpu,
	coalesce(sum(` + usageNumber("systemCpuSeconds") + `), 0.0) AS scpu,
	CAST(coalesce(max(` + usageNumber("maxRssBytes") + `), 0) AS INTEGER) AS rss,
	CAST(coalesce(sum(` + usageNumber("bytesWritten") + `), 0) AS INTEGER) AS written
FROM jobs WHERE ` + strings.Join(where, " AND ")
	if len(group) > 0 {
		inner += ` GROUP BY ` + strings.Join(group, ", ")
	}
	// The total of no jobs is no row.
	inner += ` HAVING count(*) > 0`
	query := `SELECT u, p, d, n, wall, ucpu, scpu, rss, written FROM (` + inner + `)`
	if q.After != nil {
		k := q.Key(*q.After)
		query += ` WHERE (u, p, d) > (?, ?, ?)`
		args = append(args, k.User, k.Process, k.Day)
	}
	query += ` ORDER BY u, p, d LIMIT ?`
	args = append(args, min(max(q.Limit, 1), catalog.MaxPageSize))
	return queryRows(ctx, s.r, func(row interface{ Scan(...any) error }) (jobs.UsageRow, error) {
		var u jobs.UsageRow
		err := row.Scan(&u.User, &u.Process, &u.Day, &u.Jobs, &u.WallSeconds, &u.UserCPUSeconds, &u.SystemCPUSeconds, &u.MaxRSSBytes, &u.BytesWritten)
		return u, err
	}, query, args...)
}
