package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Store keeps batches (migration 0014) with their jobs.
var _ jobs.BatchStore = (*Store)(nil)

const batchColumns = `id, process, owner, twin_owner, total, max_parallel, request, results_collection, created, updated`

func scanBatch(row pgx.Row) (*jobs.Batch, error) {
	var (
		b       jobs.Batch
		request []byte
	)
	if err := row.Scan(&b.ID, &b.Process, &b.Owner, &b.TwinOwner, &b.Total, &b.MaxParallel, &request,
		&b.ResultsCollection, &b.Created, &b.Updated); err != nil {
		return nil, err
	}
	b.Request = rawOrNil(request)
	b.Created, b.Updated = b.Created.UTC(), b.Updated.UTC()
	return &b, nil
}

func errBatchNotFound(id string) error {
	return catalog.Errorf(catalog.ENOTFOUND, "batch %s not found", id)
}

// CreateBatch implements jobs.BatchStore. The jobs go in by COPY: a
// batch of thousands commits in one round trip per table.
func (s *Store) CreateBatch(ctx context.Context, b *jobs.Batch, list []*jobs.Job, events []*catalog.Event) error {
	for _, j := range list {
		if err := checkInputs(j.Inputs); err != nil {
			return err
		}
	}
	return s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		_, err := t.tx.Exec(ctx, `INSERT INTO batches (`+batchColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			b.ID, b.Process, b.Owner, b.TwinOwner, b.Total, b.MaxParallel, string(b.Request), b.ResultsCollection, b.Created, b.Updated)
		if err != nil {
			if pgCode(err) == codeUniqueViolation {
				return catalog.Errorf(catalog.ECONFLICT, "batch %s exists", b.ID)
			}
			return t.fail(err)
		}
		rows := make([][]any, len(list))
		for i, j := range list {
			held := b.MaxParallel > 0 && i >= b.MaxParallel
			rows[i] = []any{j.ID, j.Process, j.TwinCollection, j.TwinItem, j.TwinETag, j.Owner, j.TwinOwner, b.ID,
				string(j.Inputs), jsonOrNil(j.Request), string(jobs.StatusAccepted), j.Message, j.Progress, j.MaxAttempts,
				j.Created, j.Updated, held}
		}
		_, err = t.tx.CopyFrom(ctx, pgx.Identifier{"jobs"}, []string{"id", "process", "twin_collection", "twin_item", "twin_etag",
			"owner", "twin_owner", "batch", "inputs", "request", "status", "message", "progress", "max_attempts", "created", "updated", "held"},
			pgx.CopyFromRows(rows))
		if err != nil {
			if pgCode(err) == codeUniqueViolation {
				return catalog.Errorf(catalog.ECONFLICT, "a job of batch %s exists", b.ID)
			}
			return t.fail(err)
		}
		return t.AppendEvents(ctx, events...)
	})
}

// batchCountsSQL counts the jobs of batches by batch and status.
const batchCountsSQL = `SELECT batch, status, count(*) FROM jobs WHERE batch = ANY($1::text[]) GROUP BY batch, status`

// batchCounts fills the counts of batches' jobs by status, in one query
// for them all.
func batchCounts(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, list ...*jobs.Batch) error {
	if len(list) == 0 {
		return nil
	}
	byID := make(map[string]*jobs.Batch, len(list))
	ids := make([]string, len(list))
	for i, b := range list {
		b.Counts = jobs.NoCounts()
		byID[b.ID], ids[i] = b, b.ID
	}
	rows, err := q.Query(ctx, batchCountsSQL, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, st string
			n      int
		)
		if err := rows.Scan(&id, &st, &n); err != nil {
			return err
		}
		byID[id].Counts[jobs.Status(st)] = n
	}
	return rows.Err()
}

// GetBatch implements jobs.BatchStore.
func (s *Store) GetBatch(ctx context.Context, id string) (*jobs.Batch, error) {
	b, err := scanBatch(s.pool.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1`, id))
	if isNoRows(err) {
		return nil, errBatchNotFound(id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	if err := batchCounts(ctx, s.pool, b); err != nil {
		return nil, dbError(err)
	}
	return b, nil
}

// ListBatches implements jobs.BatchStore.
func (s *Store) ListBatches(ctx context.Context, q jobs.BatchQuery) ([]*jobs.Batch, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if v := q.Visible; v != nil {
		u := arg(v.User)
		arms := []string{"owner = " + u, "twin_owner = " + u}
		if len(v.Batches) > 0 {
			arms = append(arms, "id = ANY("+arg(v.Batches)+"::text[])")
		}
		where = append(where, "("+strings.Join(arms, " OR ")+")")
	}
	if q.After != "" {
		where = append(where, "id < "+arg(q.After))
	}
	sql := `SELECT ` + batchColumns + ` FROM batches`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY id DESC LIMIT ` + arg(min(max(q.Limit, 1), catalog.MaxPageSize))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*jobs.Batch, error) { return scanBatch(r) })
	if err != nil {
		return nil, dbError(err)
	}
	if err := batchCounts(ctx, s.pool, out...); err != nil {
		return nil, dbError(err)
	}
	if out == nil {
		out = []*jobs.Batch{}
	}
	return out, nil
}

// ReleaseBatch implements jobs.BatchStore. The batch's row is locked, so
// that jobs ending at once release no more than the free slots.
func (s *Store) ReleaseBatch(ctx context.Context, id string, now time.Time) ([]*jobs.Job, error) {
	var out []*jobs.Job
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		out = nil
		var maxParallel int
		err := t.tx.QueryRow(ctx, `SELECT max_parallel FROM batches WHERE id = $1 FOR UPDATE`, id).Scan(&maxParallel)
		if isNoRows(err) {
			return errBatchNotFound(id)
		}
		if err != nil {
			return t.fail(err)
		}
		if maxParallel == 0 {
			return nil
		}
		var active int
		if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE batch = $1 AND status IN ('accepted', 'running') AND NOT held`, id).Scan(&active); err != nil {
			return t.fail(err)
		}
		if active >= maxParallel {
			return nil
		}
		rows, err := t.tx.Query(ctx, `UPDATE jobs SET held = false, updated = $3 WHERE id IN (
	SELECT id FROM jobs WHERE batch = $1 AND status = 'accepted' AND held ORDER BY id LIMIT $2)
RETURNING `+jobColumns, id, maxParallel-active, now)
		if err != nil {
			return t.fail(err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*jobs.Job, error) { return scanJob(r) })
		return t.fail(err)
	})
	return out, err
}

// HeldBatches implements jobs.BatchStore.
func (s *Store) HeldBatches(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT batch FROM jobs WHERE batch <> '' AND status = 'accepted' AND held LIMIT $1`,
		min(max(limit, 1), catalog.MaxPageSize))
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, dbError(err)
	}
	return out, nil
}

// DismissBatch implements jobs.BatchStore.
func (s *Store) DismissBatch(ctx context.Context, id string, now time.Time) (*jobs.Batch, error) {
	var out *jobs.Batch
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		b, err := scanBatch(t.tx.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1 FOR UPDATE`, id))
		if isNoRows(err) {
			return errBatchNotFound(id)
		}
		if err != nil {
			return t.fail(err)
		}
		rows, err := t.tx.Query(ctx, `UPDATE jobs SET status = 'dismissed', held = false, finished = $2, updated = $2
WHERE batch = $1 AND status = 'accepted' RETURNING `+jobColumns, id, now)
		if err != nil {
			return t.fail(err)
		}
		dismissed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*jobs.Job, error) { return scanJob(r) })
		if err != nil {
			return t.fail(err)
		}
		events := make([]*catalog.Event, len(dismissed))
		for i, j := range dismissed {
			events[i] = jobs.NewEvent(j, jobs.EventJobDismissed, now)
		}
		if err := t.AppendEvents(ctx, events...); err != nil {
			return err
		}
		if _, err := t.tx.Exec(ctx, `UPDATE jobs SET dismiss_requested = true, updated = $2
WHERE batch = $1 AND status = 'running' AND NOT dismiss_requested`, id, now); err != nil {
			return t.fail(err)
		}
		if _, err := t.tx.Exec(ctx, `UPDATE batches SET updated = $2 WHERE id = $1`, id, now); err != nil {
			return t.fail(err)
		}
		b.Updated = now
		if err := batchCounts(ctx, t.tx, b); err != nil {
			return t.fail(err)
		}
		out = b
		return nil
	})
	return out, err
}
