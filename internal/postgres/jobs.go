package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Store keeps the jobs too (migration 0013), so that a job's change
// commits with its event in the outbox.
var _ jobs.Store = (*Store)(nil)

const jobColumns = `id, process, twin_collection, twin_item, twin_etag, owner, twin_owner, batch, inputs, request,
	idempotency_key, request_hash, status, message, progress, attempt, max_attempts, worker, dismiss_requested,
	created, updated, started, finished, results, exception, usage, saves, final_state`

func scanJob(row pgx.Row) (*jobs.Job, error) {
	var (
		j                                 jobs.Job
		status                            string
		inputs, request, exception, usage []byte
		started, finished                 *time.Time
	)
	err := row.Scan(&j.ID, &j.Process, &j.TwinCollection, &j.TwinItem, &j.TwinETag, &j.Owner, &j.TwinOwner, &j.Batch,
		&inputs, &request, &j.IdempotencyKey, &j.RequestHash, &status, &j.Message, &j.Progress, &j.Attempt,
		&j.MaxAttempts, &j.Worker, &j.DismissRequested, &j.Created, &j.Updated, &started, &finished, &j.Results,
		&exception, &usage, &j.Saves, &j.FinalState)
	if err != nil {
		return nil, err
	}
	j.Status = jobs.Status(status)
	j.Inputs, j.Request, j.Exception, j.Usage = rawOrNil(inputs), rawOrNil(request), rawOrNil(exception), rawOrNil(usage)
	j.Created, j.Updated = j.Created.UTC(), j.Updated.UTC()
	if len(j.Saves) == 0 {
		j.Saves = nil
	}
	if started != nil {
		u := started.UTC()
		j.Started = &u
	}
	if finished != nil {
		u := finished.UTC()
		j.Finished = &u
	}
	return &j, nil
}

func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// jsonOrNil is a JSON value to store, NULL for none.
func jsonOrNil(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// checkInputs refuses inputs that are not a JSON object.
func checkInputs(raw json.RawMessage) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return catalog.Invalid("/inputs", "the inputs of a job are a JSON object")
	}
	return nil
}

// CreateJob implements jobs.Store. A new job is stored accepted at
// attempt 0, whatever j's status fields say.
func (s *Store) CreateJob(ctx context.Context, j *jobs.Job, ev *catalog.Event) (*jobs.Job, bool, error) {
	if err := checkInputs(j.Inputs); err != nil {
		return nil, false, err
	}
	var (
		out     *jobs.Job
		created bool
	)
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		out, created = nil, false
		// The key's row is locked by the insert (or the other
		// transaction's, which this one waits for), so a repeated
		// submission sees the first one's job.
		tag, err := t.tx.Exec(ctx, `INSERT INTO jobs (`+jobColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'accepted', $13, $14, 0, $15, '', false, $16, $17, NULL, NULL, NULL, NULL, NULL, '{}', '')
ON CONFLICT (owner, idempotency_key) WHERE idempotency_key <> '' DO NOTHING`,
			j.ID, j.Process, j.TwinCollection, j.TwinItem, j.TwinETag, j.Owner, j.TwinOwner, j.Batch, string(j.Inputs),
			jsonOrNil(j.Request), j.IdempotencyKey, j.RequestHash, j.Message, j.Progress, j.MaxAttempts, j.Created, j.Updated)
		if err != nil {
			if pgCode(err) == codeUniqueViolation {
				return catalog.Errorf(catalog.ECONFLICT, "job %s exists", j.ID)
			}
			return t.fail(err)
		}
		if tag.RowsAffected() == 0 {
			prev, err := scanJob(t.tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE owner = $1 AND idempotency_key = $2`, j.Owner, j.IdempotencyKey))
			if err != nil {
				return t.fail(err)
			}
			if prev.RequestHash != j.RequestHash {
				return catalog.Errorf(catalog.ECONFLICT, "the Idempotency-Key %q was used for another request (job %s)", j.IdempotencyKey, prev.ID)
			}
			out = prev
			return nil
		}
		created = true
		if ev != nil {
			if err := t.AppendEvents(ctx, ev); err != nil {
				return err
			}
		}
		out, err = scanJob(t.tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, j.ID))
		return t.fail(err)
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// GetJob implements jobs.Store.
func (s *Store) GetJob(ctx context.Context, id string) (*jobs.Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if isNoRows(err) {
		return nil, errJobNotFound(id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	return j, nil
}

func errJobNotFound(id string) error {
	return catalog.Errorf(catalog.ENOTFOUND, "job %s not found", id)
}

// ListJobs implements jobs.Store.
func (s *Store) ListJobs(ctx context.Context, q jobs.Query) ([]*jobs.Job, error) {
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
		if len(v.Jobs) > 0 {
			arms = append(arms, "id = ANY("+arg(v.Jobs)+"::text[])")
		}
		if len(v.Batches) > 0 {
			// batch <> '': jobs of no batch are never shared by one, and
			// the partial index on (batch, id) applies.
			arms = append(arms, "(batch <> '' AND batch = ANY("+arg(v.Batches)+"::text[]))")
		}
		where = append(where, "("+strings.Join(arms, " OR ")+")")
	}
	if q.Process != "" {
		where = append(where, "process = "+arg(q.Process))
	}
	if len(q.Statuses) > 0 {
		st := make([]string, len(q.Statuses))
		for i, x := range q.Statuses {
			st[i] = string(x)
		}
		where = append(where, "status = ANY("+arg(st)+"::text[])")
	}
	if q.Batch != "" {
		where = append(where, "batch = "+arg(q.Batch))
	}
	if q.CreatedFrom != nil {
		where = append(where, "created >= "+arg(*q.CreatedFrom))
	}
	if q.CreatedTo != nil {
		where = append(where, "created <= "+arg(*q.CreatedTo))
	}
	if q.After != "" {
		where = append(where, "id < "+arg(q.After))
	}
	sql := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY id DESC LIMIT ` + arg(min(max(q.Limit, 1), catalog.MaxPageSize))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*jobs.Job, error) { return scanJob(r) })
	if err != nil {
		return nil, dbError(err)
	}
	if out == nil {
		out = []*jobs.Job{}
	}
	return out, nil
}

// changeJob runs a conditional update of one job and returns the job
// after it. When the update matches no row, it tells a missing job
// (ENOTFOUND) from one in another state (refused(job)).
func (s *Store) changeJob(ctx context.Context, id, sql string, args []any, ev *catalog.Event, refused func(*jobs.Job) error) (*jobs.Job, error) {
	var out *jobs.Job
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		j, err := scanJob(t.tx.QueryRow(ctx, sql+` RETURNING `+jobColumns, args...))
		if isNoRows(err) {
			cur, err := scanJob(t.tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
			if isNoRows(err) {
				return errJobNotFound(id)
			}
			if err != nil {
				return t.fail(err)
			}
			if refused == nil {
				out = cur
				return nil
			}
			return refused(cur)
		}
		if err != nil {
			return t.fail(err)
		}
		out = j
		if ev != nil {
			return t.AppendEvents(ctx, ev)
		}
		return nil
	})
	return out, err
}

// ClaimJob implements jobs.Store. The conditional UPDATE is the fence:
// of concurrent claims of one attempt, the first to lock the row wins and
// the others find it no longer claimable.
func (s *Store) ClaimJob(ctx context.Context, id string, attempt int, worker string, now time.Time, ev *catalog.Event) (*jobs.Job, error) {
	return s.changeJob(ctx, id, `UPDATE jobs SET status = 'running', attempt = $2, worker = $3, updated = $4, started = COALESCE(started, $4)
WHERE id = $1 AND $2 >= 1 AND NOT dismiss_requested AND (status = 'accepted' OR (status = 'running' AND attempt < $2)
	OR (status = 'running' AND attempt = $2 AND worker = ''))`,
		[]any{id, attempt, worker, now}, ev, func(j *jobs.Job) error { return jobs.ErrNotClaimable(id, j.Status, j.Attempt) })
}

// SetProgress implements jobs.Store.
func (s *Store) SetProgress(ctx context.Context, id string, attempt, progress int, message string, now time.Time) error {
	_, err := s.changeJob(ctx, id, `UPDATE jobs SET progress = $3, message = $4, updated = $5
WHERE id = $1 AND status = 'running' AND attempt = $2`, []any{id, attempt, progress, message, now}, nil, notRunningAt(attempt))
	return err
}

func notRunningAt(attempt int) func(*jobs.Job) error {
	return func(j *jobs.Job) error {
		return catalog.Errorf(catalog.ECONFLICT, "job %s is %s at attempt %d, not running at attempt %d", j.ID, j.Status, j.Attempt, attempt)
	}
}

// FinishJob implements jobs.Store.
func (s *Store) FinishJob(ctx context.Context, id string, attempt int, f jobs.Finish, now time.Time, ev *catalog.Event) (*jobs.Job, error) {
	if !f.Status.Final() {
		return nil, catalog.Errorf(catalog.EINVALID, "a job ends successful, failed or dismissed, not %q", f.Status)
	}
	if len(f.Log) == 0 {
		return s.changeJob(ctx, id, `UPDATE jobs SET status = $3, message = $4, results = $5, exception = $6, usage = $7,
	progress = CASE WHEN $3 = 'successful' THEN 100 ELSE progress END, finished = $8, updated = $8, final_state = $9
WHERE id = $1 AND status = 'running' AND attempt = $2`,
			[]any{id, attempt, string(f.Status), f.Message, f.Results, jsonOrNil(f.Exception), jsonOrNil(f.Usage), now, f.FinalState}, ev, notRunningAt(attempt))
	}
	// With the attempt's last log lines: the row is locked first, so
	// that the lines fit the job's bound and the end is one row update.
	var out *jobs.Job
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		var (
			used      int64
			truncated bool
		)
		err := t.tx.QueryRow(ctx, `SELECT log_bytes, log_truncated FROM jobs WHERE id = $1 AND status = 'running' AND attempt = $2 FOR UPDATE`,
			id, attempt).Scan(&used, &truncated)
		if isNoRows(err) {
			cur, err := scanJob(t.tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
			if isNoRows(err) {
				return errJobNotFound(id)
			}
			if err != nil {
				return t.fail(err)
			}
			return notRunningAt(attempt)(cur)
		}
		if err != nil {
			return t.fail(err)
		}
		keep, marker, newUsed := jobs.FitLog(used, truncated, f.Log, f.MaxLogBytes)
		if marker != nil {
			keep = append(keep, *marker)
		}
		if len(keep) > 0 {
			rows := make([][]any, len(keep))
			for i, e := range keep {
				rows[i] = []any{id, e.Attempt, e.Phase, e.Stream, e.Time, e.Text}
			}
			if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"job_logs"}, []string{"job", "attempt", "phase", "stream", "time", "text"}, pgx.CopyFromRows(rows)); err != nil {
				return t.fail(err)
			}
		}
		out, err = scanJob(t.tx.QueryRow(ctx, `UPDATE jobs SET status = $3, message = $4, results = $5, exception = $6, usage = $7,
	progress = CASE WHEN $3 = 'successful' THEN 100 ELSE progress END, finished = $8, updated = $8, final_state = $9,
	log_bytes = $10, log_truncated = log_truncated OR $11
WHERE id = $1 AND attempt = $2 RETURNING `+jobColumns,
			id, attempt, string(f.Status), f.Message, f.Results, jsonOrNil(f.Exception), jsonOrNil(f.Usage), now, f.FinalState, newUsed, marker != nil))
		if err != nil {
			return t.fail(err)
		}
		if ev != nil {
			return t.AppendEvents(ctx, ev)
		}
		return nil
	})
	return out, err
}

// ReleaseJob implements jobs.Store.
func (s *Store) ReleaseJob(ctx context.Context, id string, attempt int, worker string, now time.Time) error {
	_, err := s.changeJob(ctx, id, `UPDATE jobs SET worker = '', updated = $4
WHERE id = $1 AND status = 'running' AND attempt = $2 AND worker = $3 AND worker <> ''`, []any{id, attempt, worker, now}, nil, nil)
	return err
}

// RequestSave implements jobs.Store.
func (s *Store) RequestSave(ctx context.Context, id, ref string, now time.Time) (*jobs.Job, error) {
	return s.changeJob(ctx, id, `UPDATE jobs SET saves = array_append(saves, $2), updated = $3
WHERE id = $1 AND status = 'running' AND NOT ($2 = ANY(saves))`, []any{id, ref, now}, nil, nil)
}

// SaveDone implements jobs.Store.
func (s *Store) SaveDone(ctx context.Context, id, ref string) error {
	_, err := s.changeJob(ctx, id, `UPDATE jobs SET saves = array_remove(saves, $2) WHERE id = $1 AND $2 = ANY(saves)`, []any{id, ref}, nil, nil)
	return err
}

// DismissJob implements jobs.Store.
func (s *Store) DismissJob(ctx context.Context, id string, now time.Time, ev *catalog.Event) (*jobs.Job, error) {
	var out *jobs.Job
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		j, err := scanJob(t.tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 FOR UPDATE`, id))
		if isNoRows(err) {
			return errJobNotFound(id)
		}
		if err != nil {
			return t.fail(err)
		}
		switch j.Status {
		case jobs.StatusAccepted:
			out, err = scanJob(t.tx.QueryRow(ctx, `UPDATE jobs SET status = 'dismissed', finished = $2, updated = $2
WHERE id = $1 RETURNING `+jobColumns, id, now))
			if err != nil {
				return t.fail(err)
			}
			if ev != nil {
				return t.AppendEvents(ctx, ev)
			}
		case jobs.StatusRunning:
			if j.DismissRequested {
				// Asked before: the reconciler goes by its first time.
				out = j
				return nil
			}
			out, err = scanJob(t.tx.QueryRow(ctx, `UPDATE jobs SET dismiss_requested = true, updated = $2
WHERE id = $1 RETURNING `+jobColumns, id, now))
			return t.fail(err)
		default:
			out = j
		}
		return nil
	})
	return out, err
}

// PendingJobs implements jobs.Store.
func (s *Store) PendingJobs(ctx context.Context, before time.Time, limit int) ([]*jobs.Job, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs
WHERE status IN ('accepted', 'running') AND NOT held AND updated < $1
ORDER BY updated, id LIMIT $2`, before, min(max(limit, 1), catalog.MaxPageSize))
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*jobs.Job, error) { return scanJob(r) })
	if err != nil {
		return nil, dbError(err)
	}
	return out, nil
}

// AppendLog implements jobs.Store.
func (s *Store) AppendLog(ctx context.Context, id string, entries []jobs.LogEntry, maxBytes int64) (int, error) {
	kept := 0
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		var (
			used      int64
			truncated bool
		)
		err := t.tx.QueryRow(ctx, `SELECT log_bytes, log_truncated FROM jobs WHERE id = $1 FOR UPDATE`, id).Scan(&used, &truncated)
		if isNoRows(err) {
			return errJobNotFound(id)
		}
		if err != nil {
			return t.fail(err)
		}
		keep, marker, newUsed := jobs.FitLog(used, truncated, entries, maxBytes)
		kept = len(keep)
		if marker != nil {
			keep = append(keep, *marker)
		}
		if len(keep) == 0 {
			return nil
		}
		rows := make([][]any, len(keep))
		for i, e := range keep {
			rows[i] = []any{id, e.Attempt, e.Phase, e.Stream, e.Time, e.Text}
		}
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"job_logs"}, []string{"job", "attempt", "phase", "stream", "time", "text"}, pgx.CopyFromRows(rows)); err != nil {
			return t.fail(err)
		}
		_, err = t.tx.Exec(ctx, `UPDATE jobs SET log_bytes = $2, log_truncated = log_truncated OR $3 WHERE id = $1`, id, newUsed, marker != nil)
		return t.fail(err)
	})
	return kept, err
}

// ReadLog implements jobs.Store.
func (s *Store) ReadLog(ctx context.Context, id string, after int64, limit int) ([]jobs.LogEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, attempt, phase, stream, time, text FROM job_logs WHERE job = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		id, after, min(max(limit, 1), catalog.MaxPageSize))
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jobs.LogEntry, error) {
		var e jobs.LogEntry
		err := r.Scan(&e.Seq, &e.Attempt, &e.Phase, &e.Stream, &e.Time, &e.Text)
		e.Time = e.Time.UTC()
		return e, err
	})
	if err != nil {
		return nil, dbError(err)
	}
	if len(out) == 0 {
		if _, err := s.GetJob(ctx, id); err != nil {
			return nil, err
		}
		out = []jobs.LogEntry{}
	}
	return out, nil
}
