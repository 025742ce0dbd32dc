package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// JobLimits returns a user's overrides of the job limits (table
// job_quotas of migration 0015), by kind.
func (s *Store) JobLimits(ctx context.Context, user string) (map[access.JobLimitKind]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, job_limit FROM job_quotas WHERE user_id = $1`, user)
	if err != nil {
		return nil, dbError(err)
	}
	out := map[access.JobLimitKind]int64{}
	var (
		kind  string
		limit int64
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &limit}, func() error {
		out[access.JobLimitKind(kind)] = limit
		return nil
	})
	if err != nil {
		return nil, dbError(err)
	}
	return out, nil
}

// setJobQuotaSQL sets an override; setting the value it has updates no
// row, so that SetJobLimits can tell that nothing changed.
const setJobQuotaSQL = `INSERT INTO job_quotas (user_id, kind, job_limit) VALUES ($1, $2, $3)
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
	kinds := make([]access.JobLimitKind, 0, len(limits))
	for k := range limits {
		if !k.Valid() {
			return catalog.Invalid("/"+string(k), "unknown job limit %q", k)
		}
		kinds = append(kinds, k)
	}
	slices.Sort(kinds) // one lock order for every transaction
	return s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		changed := false
		for _, k := range kinds {
			var (
				tag pgconn.CommandTag
				err error
			)
			if limits[k] < 0 {
				tag, err = t.tx.Exec(ctx, `DELETE FROM job_quotas WHERE user_id = $1 AND kind = $2`, user, string(k))
			} else {
				tag, err = t.tx.Exec(ctx, setJobQuotaSQL, user, string(k), limits[k])
			}
			if err != nil {
				return t.fail(err)
			}
			changed = changed || tag.RowsAffected() > 0
		}
		if !changed || audit == nil {
			return nil
		}
		return t.AppendEvents(ctx, audit)
	})
}
