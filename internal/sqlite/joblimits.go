package sqlite

import (
	"context"
	"database/sql"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// JobLimits returns a user's overrides of the job limits (table
// job_quotas of migration 0011), by kind.
func (s *Store) JobLimits(ctx context.Context, user string) (map[access.JobLimitKind]int64, error) {
	type row struct {
		kind  string
		limit int64
	}
	rows, err := queryRows(ctx, s.r, func(r interface{ Scan(...any) error }) (row, error) {
		var x row
		err := r.Scan(&x.kind, &x.limit)
		return x, err
	}, `SELECT kind, job_limit FROM job_quotas WHERE user_id = ?`, user)
	if err != nil {
		return nil, err
	}
	out := make(map[access.JobLimitKind]int64, len(rows))
	for _, r := range rows {
		out[access.JobLimitKind(r.kind)] = r.limit
	}
	return out, nil
}

// setJobQuotaSQL sets an override; setting the value it has updates no
// row, so that SetJobLimits can tell that nothing changed.
const setJobQuotaSQL = `INSERT INTO job_quotas (user_id, kind, job_limit) VALUES (?, ?, ?)
ON CONFLICT (user_id, kind) DO UPDATE SET job_limit = excluded.job_limit
WHERE job_quotas.job_limit <> excluded.job_limit`

// SetJobLimits sets (limit >= 0) or removes (limit < 0) a user's
// overrides of the job limits and writes the audit event (none when
// audit is nil, or when nothing changed), in one transaction.
// Codes: EINVALID (empty user, unknown kind), EUNAVAILABLE.
func (s *Store) SetJobLimits(ctx context.Context, user string, limits map[access.JobLimitKind]int64, audit *catalog.Event) error {
	if user == "" {
		return catalog.Invalid("/user", "a quota override needs a user")
	}
	for k := range limits {
		if !k.Valid() {
			return catalog.Invalid("/"+string(k), "unknown job limit %q", k)
		}
	}
	return s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		changed := false
		for k, limit := range limits {
			var (
				res sql.Result
				err error
			)
			if limit < 0 {
				res, err = t.tx.ExecContext(ctx, `DELETE FROM job_quotas WHERE user_id = ? AND kind = ?`, user, string(k))
			} else {
				res, err = t.tx.ExecContext(ctx, setJobQuotaSQL, user, string(k), limit)
			}
			if err != nil {
				return dbError(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return dbError(err)
			}
			changed = changed || n > 0
		}
		if !changed || audit == nil {
			return nil
		}
		return t.AppendEvents(ctx, audit)
	})
}
