package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Store keeps batches (migration 0010) with their jobs.
var _ jobs.BatchStore = (*Store)(nil)

const batchColumnList = `id, process, owner, twin_owner, total, max_parallel, request, results_collection, created, updated`

const selectBatchSQL = "SELECT " + batchColumnList + " FROM batches"

func scanBatch(row interface{ Scan(...any) error }) (*jobs.Batch, error) {
	var (
		b                jobs.Batch
		request          []byte
		created, updated int64
	)
	if err := row.Scan(&b.ID, &b.Process, &b.Owner, &b.TwinOwner, &b.Total, &b.MaxParallel, &request,
		&b.ResultsCollection, &created, &updated); err != nil {
		return nil, err
	}
	b.Request = policyJSON(request)
	b.Created, b.Updated = fromMicros(created), fromMicros(updated)
	return &b, nil
}

func errBatchNotFound(id string) error {
	return catalog.Errorf(catalog.ENOTFOUND, "batch %q not found", id)
}

// CreateBatch implements jobs.BatchStore: the batch, its jobs and their
// events in one write transaction, the jobs by one prepared statement.
func (s *Store) CreateBatch(ctx context.Context, b *jobs.Batch, list []*jobs.Job, events []*catalog.Event) error {
	for _, j := range list {
		if err := checkNewJob(j); err != nil {
			return err
		}
	}
	return s.updateJobs(ctx, func(t *Tx) error {
		_, err := t.tx.ExecContext(ctx, `INSERT INTO batches (`+batchColumnList+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			b.ID, b.Process, b.Owner, b.TwinOwner, b.Total, b.MaxParallel, string(b.Request), b.ResultsCollection,
			micros(b.Created), micros(b.Updated))
		if isUnique(err) {
			return catalog.Errorf(catalog.ECONFLICT, "batch %q already exists", b.ID)
		}
		if err != nil {
			return dbError(err)
		}
		stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO jobs (id, process, twin_collection, twin_item, twin_etag, owner, twin_owner,
batch, inputs, request, status, message, progress, max_attempts, created, updated, held)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted', ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return dbError(err)
		}
		defer func() { _ = stmt.Close() }()
		for i, j := range list {
			held := 0
			if b.MaxParallel > 0 && i >= b.MaxParallel {
				held = 1
			}
			_, err := stmt.ExecContext(ctx, j.ID, j.Process, j.TwinCollection, j.TwinItem, j.TwinETag, j.Owner, j.TwinOwner,
				b.ID, jsonText(j.Inputs), jsonText(j.Request), j.Message, j.Progress, j.MaxAttempts,
				micros(j.Created), micros(j.Updated), held)
			if isUnique(err) {
				return catalog.Errorf(catalog.ECONFLICT, "job %q already exists", j.ID)
			}
			if err != nil {
				return dbError(err)
			}
		}
		return t.AppendEvents(ctx, events...)
	})
}

// batchCounts fills the counts of batches' jobs by status, in one query
// for them all.
func batchCounts(ctx context.Context, q querier, list ...*jobs.Batch) error {
	if len(list) == 0 {
		return nil
	}
	byID := make(map[string]*jobs.Batch, len(list))
	ids := make([]string, len(list))
	for i, b := range list {
		b.Counts = jobs.NoCounts()
		byID[b.ID], ids[i] = b, b.ID
	}
	idsJSON, _ := json.Marshal(ids)
	rows, err := q.QueryContext(ctx, `SELECT batch, status, count(*) FROM jobs
WHERE batch IN (SELECT value FROM json_each(?)) GROUP BY batch, status`, string(idsJSON))
	if err != nil {
		return dbError(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id, st string
			n      int
		)
		if err := rows.Scan(&id, &st, &n); err != nil {
			return dbError(err)
		}
		byID[id].Counts[jobs.Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return dbError(err)
	}
	return nil
}

func getBatch(ctx context.Context, q querier, id string) (*jobs.Batch, error) {
	b, err := scanBatch(q.QueryRowContext(ctx, selectBatchSQL+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBatchNotFound(id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	if err := batchCounts(ctx, q, b); err != nil {
		return nil, err
	}
	return b, nil
}

// GetBatch implements jobs.BatchStore.
func (s *Store) GetBatch(ctx context.Context, id string) (*jobs.Batch, error) {
	return getBatch(ctx, s.r, id)
}

// ListBatches implements jobs.BatchStore.
func (s *Store) ListBatches(ctx context.Context, q jobs.BatchQuery) ([]*jobs.Batch, error) {
	var (
		where []string
		args  []any
	)
	if v := q.Visible; v != nil {
		arms := []string{"owner = ?", "twin_owner = ?"}
		args = append(args, v.User, v.User)
		if len(v.Batches) > 0 {
			ids, _ := json.Marshal(v.Batches) // a []string always marshals
			arms, args = append(arms, "id IN (SELECT value FROM json_each(?))"), append(args, string(ids))
		}
		where = append(where, "("+strings.Join(arms, " OR ")+")")
	}
	if q.After != "" {
		where, args = append(where, "id < ?"), append(args, q.After)
	}
	query := selectBatchSQL
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := queryRows(ctx, s.r, scanBatch, query+" ORDER BY id DESC LIMIT ?", append(args, min(max(q.Limit, 1), catalog.MaxPageSize))...)
	if err != nil {
		return nil, err
	}
	if err := batchCounts(ctx, s.r, out...); err != nil {
		return nil, err
	}
	return out, nil
}

// ReleaseBatch implements jobs.BatchStore, under the write lock: jobs
// ending at once release no more than the free slots.
func (s *Store) ReleaseBatch(ctx context.Context, id string, now time.Time) ([]*jobs.Job, error) {
	var out []*jobs.Job
	err := s.updateJobs(ctx, func(t *Tx) error {
		out = nil
		var maxParallel int
		err := t.tx.QueryRowContext(ctx, `SELECT max_parallel FROM batches WHERE id = ?`, id).Scan(&maxParallel)
		if errors.Is(err, sql.ErrNoRows) {
			return errBatchNotFound(id)
		}
		if err != nil {
			return dbError(err)
		}
		if maxParallel == 0 {
			return nil
		}
		var active int
		if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE batch = ? AND status IN ('accepted', 'running') AND held = 0`, id).Scan(&active); err != nil {
			return dbError(err)
		}
		if active >= maxParallel {
			return nil
		}
		rows, err := t.tx.QueryContext(ctx, `SELECT id FROM jobs WHERE batch = ? AND status = 'accepted' AND held = 1 ORDER BY id LIMIT ?`, id, maxParallel-active)
		if err != nil {
			return dbError(err)
		}
		var pick []string
		for rows.Next() {
			var x string
			if err := rows.Scan(&x); err != nil {
				_ = rows.Close()
				return dbError(err)
			}
			pick = append(pick, x)
		}
		_ = rows.Close()
		for _, x := range pick {
			if _, err := t.tx.ExecContext(ctx, `UPDATE jobs SET held = 0, updated = ? WHERE id = ?`, micros(now), x); err != nil {
				return dbError(err)
			}
			j, err := getJob(ctx, t.tx, x)
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	return out, err
}

// HeldBatches implements jobs.BatchStore.
func (s *Store) HeldBatches(ctx context.Context, limit int) ([]string, error) {
	return queryRows(ctx, s.r, func(r interface{ Scan(...any) error }) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	}, `SELECT DISTINCT batch FROM jobs WHERE batch <> '' AND status = 'accepted' AND held = 1 LIMIT ?`, min(max(limit, 1), catalog.MaxPageSize))
}

// DismissBatch implements jobs.BatchStore.
func (s *Store) DismissBatch(ctx context.Context, id string, now time.Time) (*jobs.Batch, error) {
	var out *jobs.Batch
	err := s.updateJobs(ctx, func(t *Tx) error {
		if _, err := getBatch(ctx, t.tx, id); err != nil {
			return err
		}
		accepted, err := queryTx(ctx, t, selectJobSQL+` WHERE batch = ? AND status = 'accepted'`, id)
		if err != nil {
			return err
		}
		us := micros(now)
		if _, err := t.tx.ExecContext(ctx, `UPDATE jobs SET status = 'dismissed', held = 0, finished = ?, updated = ? WHERE batch = ? AND status = 'accepted'`, us, us, id); err != nil {
			return dbError(err)
		}
		events := make([]*catalog.Event, len(accepted))
		for i, j := range accepted {
			j.Status = jobs.StatusDismissed
			events[i] = jobs.NewEvent(j, jobs.EventJobDismissed, now)
		}
		if err := t.AppendEvents(ctx, events...); err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(ctx, `UPDATE jobs SET dismiss_requested = 1, updated = ? WHERE batch = ? AND status = 'running' AND dismiss_requested = 0`, us, id); err != nil {
			return dbError(err)
		}
		if _, err := t.tx.ExecContext(ctx, `UPDATE batches SET updated = ? WHERE id = ?`, us, id); err != nil {
			return dbError(err)
		}
		out, err = getBatch(ctx, t.tx, id)
		return err
	})
	return out, err
}

// queryTx runs a query of jobs in a write transaction.
func queryTx(ctx context.Context, t *Tx, query string, args ...any) ([]*jobs.Job, error) {
	rows, err := t.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = rows.Close() }()
	var out []*jobs.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, dbError(err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(fmt.Errorf("sqlite: %w", err))
	}
	return out, nil
}
