package sqlite

import (
	"bytes"
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

// Store keeps the jobs too, in the table of migration 0009, so that a
// job's change commits with its outbox event in one transaction, and a
// worker's claim is a conditional update under the write lock that one
// worker wins.
var _ jobs.Store = (*Store)(nil)

const jobColumnList = `id, process, twin_collection, twin_item, twin_etag, owner, twin_owner, batch, inputs, request,
idempotency_key, request_hash, status, message, progress, attempt, max_attempts, worker, dismiss_requested,
created, updated, started, finished, results, exception, usage, saves, final_state`

const selectJobSQL = "SELECT " + jobColumnList + " FROM jobs"

// insertJobSQL stores a new job: accepted, at attempt 0, not started;
// the columns it leaves out take their defaults.
const insertJobSQL = `INSERT INTO jobs (id, process, twin_collection, twin_item, twin_etag, owner, twin_owner, batch,
inputs, request, idempotency_key, request_hash, status, message, progress, max_attempts, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted', ?, ?, ?, ?, ?)`

// idempotentJobSQL finds the job an owner made with an idempotency key.
// The literal condition on the key lets SQLite use the partial unique
// index jobs_idempotency_idx.
const idempotentJobSQL = selectJobSQL + " WHERE owner = ? AND idempotency_key = ? AND idempotency_key <> ''"

// claimJobSQL starts an attempt: an accepted job, or one running at an
// older attempt (whose worker is gone), becomes running at the attempt.
// The first start is kept. Attempts count from 1.
const claimJobSQL = `UPDATE jobs SET status = 'running', attempt = ?, worker = ?, updated = ?, started = coalesce(started, ?)
WHERE id = ? AND ? >= 1 AND dismiss_requested = 0 AND (status = 'accepted' OR (status = 'running' AND attempt < ?)
	OR (status = 'running' AND attempt = ? AND worker = ''))`

const progressJobSQL = `UPDATE jobs SET progress = ?, message = ?, updated = ?
WHERE id = ? AND status = 'running' AND attempt = ?`

// finishJobSQL ends the current attempt of a running job; a successful
// job is complete, so its progress becomes 100.
const finishJobSQL = `UPDATE jobs SET status = ?, message = ?, results = ?, exception = ?, usage = ?, finished = ?, updated = ?,
final_state = ?, progress = CASE WHEN ? = 'successful' THEN 100 ELSE progress END
WHERE id = ? AND status = 'running' AND attempt = ?`

// pendingJobsSQL selects the jobs the reconciler checks: those not
// final, but for the jobs held back by their batch's parallelism limit.
const pendingJobsSQL = selectJobSQL + ` WHERE (status = 'accepted' AND held = 0 AND updated < ?)
OR (status = 'running' AND updated < ?)
ORDER BY updated, id LIMIT ?`

func scanJob(row interface{ Scan(...any) error }) (*jobs.Job, error) {
	var (
		j                                 jobs.Job
		status, results, saves            string
		inputs, request, exception, usage []byte
		created, updated                  int64
		started, finished                 sql.NullInt64
		dismissRequested                  int64
	)
	err := row.Scan(&j.ID, &j.Process, &j.TwinCollection, &j.TwinItem, &j.TwinETag, &j.Owner, &j.TwinOwner, &j.Batch,
		&inputs, &request, &j.IdempotencyKey, &j.RequestHash, &status, &j.Message, &j.Progress, &j.Attempt, &j.MaxAttempts,
		&j.Worker, &dismissRequested, &created, &updated, &started, &finished, &results, &exception, &usage, &saves, &j.FinalState)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(results), &j.Results); err != nil {
		return nil, catalog.Internal(fmt.Errorf("sqlite: job %q: results: %w", j.ID, err))
	}
	if len(j.Results) == 0 {
		j.Results = nil
	}
	if err := json.Unmarshal([]byte(saves), &j.Saves); err != nil {
		return nil, catalog.Internal(fmt.Errorf("sqlite: job %q: saves: %w", j.ID, err))
	}
	if len(j.Saves) == 0 {
		j.Saves = nil
	}
	j.Status = jobs.Status(status)
	j.DismissRequested = dismissRequested != 0
	j.Inputs, j.Request, j.Exception, j.Usage = policyJSON(inputs), policyJSON(request), policyJSON(exception), policyJSON(usage)
	j.Created, j.Updated = fromMicros(created), fromMicros(updated)
	j.Started, j.Finished = nullTime(started), nullTime(finished)
	return &j, nil
}

// nullTime is the time of a nullable time column: nil for NULL.
func nullTime(us sql.NullInt64) *time.Time {
	if !us.Valid {
		return nil
	}
	t := fromMicros(us.Int64)
	return &t
}

func getJob(ctx context.Context, q querier, id string) (*jobs.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, selectJobSQL+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errJobNotFound(id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	return j, nil
}

func errJobNotFound(id string) error {
	return catalog.Errorf(catalog.ENOTFOUND, "job %q not found", id)
}

// queryJobs runs a query of jobs on the read pool. The result is empty,
// not nil, when nothing matches.
func (s *Store) queryJobs(ctx context.Context, query string, args ...any) ([]*jobs.Job, error) {
	return queryRows(ctx, s.r, scanJob, query, args...)
}

// queryRows runs a query and scans every row with scan. The result is
// empty, not nil, when nothing matches.
func queryRows[T any](ctx context.Context, db *sql.DB, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = rows.Close() }()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, dbError(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	return out, nil
}

// checkNewJob rejects a job the table would store wrongly: without an
// id, or with inputs that are not a JSON object (even absent ones)
// or a request that is not JSON.
func checkNewJob(j *jobs.Job) error {
	if j.ID == "" {
		return catalog.Invalid("/id", "a job needs an id")
	}
	if in := policyJSON(j.Inputs); in == nil || !isJSONObject(in) {
		return catalog.Invalid("/inputs", "the inputs of a job are a JSON object")
	}
	if r := policyJSON(j.Request); r != nil && !json.Valid(r) {
		return catalog.Invalid("/request", "the request of job %q is not JSON", j.ID)
	}
	return nil
}

// isJSONObject reports whether b is one valid JSON object.
func isJSONObject(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// CreateJob stores a new job, accepted at attempt 0 whatever j's status
// fields say, and writes ev (none when ev is nil) in the same
// transaction. A job whose owner already used its idempotency key is not
// stored: the first job comes back, with created false, when the request
// hashes match, and ECONFLICT otherwise; no event is written. The key is
// looked up under the write lock, so two submissions with one key make
// one job. Times are kept to the microsecond. Codes: ECONFLICT (the id
// exists, or the key was used for another request), EINVALID (no id,
// inputs that are not a JSON object, a request that is not JSON),
// EUNAVAILABLE.
func (s *Store) CreateJob(ctx context.Context, j *jobs.Job, ev *catalog.Event) (*jobs.Job, bool, error) {
	if err := checkNewJob(j); err != nil {
		return nil, false, err
	}
	var (
		stored  *jobs.Job
		created bool
	)
	err := s.updateJobs(ctx, func(t *Tx) error {
		if j.IdempotencyKey != "" {
			prev, err := scanJob(t.tx.QueryRowContext(ctx, idempotentJobSQL, j.Owner, j.IdempotencyKey))
			switch {
			case err == nil && prev.RequestHash == j.RequestHash:
				stored = prev
				return nil
			case err == nil:
				return catalog.Errorf(catalog.ECONFLICT, "idempotency key %q was already used for another request", j.IdempotencyKey)
			case !errors.Is(err, sql.ErrNoRows):
				return dbError(err)
			}
		}
		_, err := t.tx.ExecContext(ctx, insertJobSQL, j.ID, j.Process, j.TwinCollection, j.TwinItem, j.TwinETag, j.Owner,
			j.TwinOwner, j.Batch, jsonText(j.Inputs), jsonText(j.Request), j.IdempotencyKey, j.RequestHash, j.Message,
			j.Progress, j.MaxAttempts, micros(j.Created), micros(j.Updated))
		if isUnique(err) {
			return &catalog.Error{Code: catalog.ECONFLICT, Message: fmt.Sprintf("job %q already exists", j.ID), Err: err}
		}
		if err != nil {
			return dbError(err)
		}
		if err := t.jobEvent(ctx, ev); err != nil {
			return err
		}
		created = true
		stored, err = getJob(ctx, t.tx, j.ID)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

// GetJob returns a job. Codes: ENOTFOUND.
func (s *Store) GetJob(ctx context.Context, id string) (*jobs.Job, error) {
	return getJob(ctx, s.r, id)
}

// ListJobs returns a page of jobs with id < q.After, newest first: in
// descending id order, byte-wise (SQLite's default BINARY collation),
// which job ids make the order of creation. Visibility is part of the
// query, so a filtered page is as full as an unfiltered one. The limit
// is clamped to [1, catalog.MaxPageSize]. The result is empty, not nil,
// past the end.
func (s *Store) ListJobs(ctx context.Context, q jobs.Query) ([]*jobs.Job, error) {
	limit := min(max(q.Limit, 1), catalog.MaxPageSize)
	var (
		where []string
		args  []any
	)
	if v := q.Visible; v != nil {
		arms := []string{"owner = ?", "twin_owner = ?"}
		args = append(args, v.User, v.User)
		// Shared ids go in as one JSON array, so that no number of
		// shares runs into SQLite's limit on parameters.
		if len(v.Jobs) > 0 {
			ids, _ := json.Marshal(v.Jobs) // a []string always marshals
			arms, args = append(arms, "id IN (SELECT value FROM json_each(?))"), append(args, string(ids))
		}
		if len(v.Batches) > 0 {
			ids, _ := json.Marshal(v.Batches)
			arms, args = append(arms, "(batch <> '' AND batch IN (SELECT value FROM json_each(?)))"), append(args, string(ids))
		}
		where = append(where, "("+strings.Join(arms, " OR ")+")")
	}
	if q.Process != "" {
		where, args = append(where, "process = ?"), append(args, q.Process)
	}
	if len(q.Statuses) > 0 {
		where = append(where, "status IN ("+strings.Repeat("?, ", len(q.Statuses)-1)+"?)")
		for _, st := range q.Statuses {
			args = append(args, string(st))
		}
	}
	if q.Batch != "" {
		where, args = append(where, "batch = ?"), append(args, q.Batch)
	}
	if q.CreatedFrom != nil {
		where, args = append(where, "created >= ?"), append(args, micros(*q.CreatedFrom))
	}
	if q.CreatedTo != nil {
		where, args = append(where, "created <= ?"), append(args, micros(*q.CreatedTo))
	}
	if q.After != "" {
		where, args = append(where, "id < ?"), append(args, q.After)
	}
	query := selectJobSQL
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	return s.queryJobs(ctx, query+" ORDER BY id DESC LIMIT ?", append(args, limit)...)
}

// ClaimJob starts attempt (from 1) of a job for worker: an accepted job,
// or one running at an older attempt, becomes running at attempt; the
// time of its first start is kept. The update is conditional and runs
// under the write lock, so of the workers claiming one attempt exactly
// one wins. ev is written with the claim (none when ev is nil).
// Codes: ENOTFOUND, ECONFLICT (jobs.ErrNotClaimable: the job is
// finished, being dismissed, or at this attempt or a newer one),
// EUNAVAILABLE.
func (s *Store) ClaimJob(ctx context.Context, id string, attempt int, worker string, now time.Time, ev *catalog.Event) (*jobs.Job, error) {
	out, err := s.ClaimJobs(ctx, []jobs.Claim{{ID: id, Attempt: attempt}}, worker, now, func(*jobs.Job) *catalog.Event { return ev })
	if err != nil {
		return nil, err
	}
	return out[0].Job, out[0].Err
}

// ClaimJobs implements jobs.Store: the claims one after the other in one
// write transaction.
func (s *Store) ClaimJobs(ctx context.Context, claims []jobs.Claim, worker string, now time.Time, event func(*jobs.Job) *catalog.Event) ([]jobs.Changed, error) {
	out := make([]jobs.Changed, len(claims))
	err := s.updateJobs(ctx, func(t *Tx) error {
		clear(out)
		us := micros(now)
		for i, c := range claims {
			res, err := t.tx.ExecContext(ctx, claimJobSQL, c.Attempt, worker, us, us, c.ID, c.Attempt, c.Attempt, c.Attempt)
			if err != nil {
				return dbError(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return dbError(err)
			}
			j, err := getJob(ctx, t.tx, c.ID)
			if ownError(err) {
				out[i].Err = err
				continue
			}
			if err != nil {
				return err
			}
			if n == 0 {
				out[i].Err = jobs.ErrNotClaimable(c.ID, j.Status, j.Attempt)
				continue
			}
			out[i].Job = j
			if event != nil {
				if err := t.jobEvent(ctx, event(j)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ownError tells the error of one job of a many-job change (the job is
// missing or not in the state the change needs), which leaves the others
// to go on, from a failure of the whole.
func ownError(err error) bool {
	code := catalog.ErrorCode(err)
	return err != nil && (code == catalog.ENOTFOUND || code == catalog.ECONFLICT || code == catalog.EINVALID)
}

// SetProgress records the progress and message of the attempt a job is
// running; a worker whose attempt was taken over gets ECONFLICT and
// stops. Codes: ENOTFOUND, ECONFLICT (not running at attempt),
// EUNAVAILABLE.
func (s *Store) SetProgress(ctx context.Context, id string, attempt, progress int, message string, now time.Time) error {
	return s.updateJobs(ctx, func(t *Tx) error {
		res, err := t.tx.ExecContext(ctx, progressJobSQL, progress, message, micros(now), id, attempt)
		if err != nil {
			return dbError(err)
		}
		return t.ranAttempt(ctx, res, id, attempt)
	})
}

// FinishJob ends the attempt a job is running: it becomes f.Status with
// f's message, results, exception and usage, finished now, and ev is
// written (none when ev is nil). A successful job's progress becomes
// 100; a failed or dismissed one keeps its last. Codes: ENOTFOUND,
// ECONFLICT (not running at attempt), EINVALID (f.Status not final, an
// exception or usage that is not JSON), EUNAVAILABLE.
func (s *Store) FinishJob(ctx context.Context, id string, attempt int, f jobs.Finish, now time.Time, ev *catalog.Event) (*jobs.Job, error) {
	out, err := s.FinishJobs(ctx, []jobs.End{{ID: id, Attempt: attempt, Finish: f, Event: ev}}, now)
	if err != nil {
		return nil, err
	}
	return out[0].Job, out[0].Err
}

// FinishJobs implements jobs.Store: the ends one after the other in one
// write transaction.
func (s *Store) FinishJobs(ctx context.Context, ends []jobs.End, now time.Time) ([]jobs.Changed, error) {
	out := make([]jobs.Changed, len(ends))
	results := make([]string, len(ends))
	for i, e := range ends {
		out[i].Err = checkEnd(&e)
		if out[i].Err != nil {
			continue
		}
		rs := e.Finish.Results
		if rs == nil {
			rs = []string{}
		}
		b, err := json.Marshal(rs)
		if err != nil {
			return nil, catalog.Internal(err)
		}
		results[i] = string(b)
	}
	err := s.updateJobs(ctx, func(t *Tx) error {
		us := micros(now)
		for i, e := range ends {
			if results[i] == "" {
				continue
			}
			out[i] = jobs.Changed{}
			f := &e.Finish
			res, err := t.tx.ExecContext(ctx, finishJobSQL, string(f.Status), f.Message, results[i], jsonText(f.Exception),
				jsonText(f.Usage), us, us, f.FinalState, string(f.Status), e.ID, e.Attempt)
			if err != nil {
				return dbError(err)
			}
			if err := t.ranAttempt(ctx, res, e.ID, e.Attempt); err != nil {
				if ownError(err) {
					out[i].Err = err
					continue
				}
				return err
			}
			if len(f.Log) > 0 {
				if _, err := t.appendLog(ctx, e.ID, f.Log, f.MaxLogBytes); err != nil {
					return err
				}
			}
			if err := t.jobEvent(ctx, e.Event); err != nil {
				return err
			}
			if out[i].Job, err = getJob(ctx, t.tx, e.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkEnd refuses an end that is not final, or whose exception or usage
// is not JSON.
func checkEnd(e *jobs.End) error {
	f := &e.Finish
	if !f.Status.Final() {
		return catalog.Invalid("/status", "a job ends successful, failed or dismissed, not %q", f.Status)
	}
	for _, x := range []struct {
		name string
		raw  json.RawMessage
	}{{"exception", f.Exception}, {"usage", f.Usage}} {
		if b := policyJSON(x.raw); b != nil && !json.Valid(b) {
			return catalog.Invalid("/"+x.name, "the %s of job %q is not JSON", x.name, e.ID)
		}
	}
	return nil
}

// DismissJob dismisses a job. An accepted job, which no worker runs yet,
// becomes dismissed at once, finished now, and ev is written (none when
// ev is nil). A running job only gets DismissRequested: its worker stops
// it and ends it dismissed, with the event of that change, so ev is not
// written; asking again changes nothing. A finished job is returned as
// it is. Codes: ENOTFOUND, EUNAVAILABLE.
func (s *Store) DismissJob(ctx context.Context, id string, now time.Time, ev *catalog.Event) (*jobs.Job, error) {
	var j *jobs.Job
	err := s.updateJobs(ctx, func(t *Tx) error {
		cur, err := getJob(ctx, t.tx, id)
		if err != nil {
			return err
		}
		us := micros(now)
		switch {
		case cur.Status == jobs.StatusAccepted:
			if _, err := t.tx.ExecContext(ctx, "UPDATE jobs SET status = 'dismissed', finished = ?, updated = ? WHERE id = ?", us, us, id); err != nil {
				return dbError(err)
			}
			if err := t.jobEvent(ctx, ev); err != nil {
				return err
			}
		case cur.Status == jobs.StatusRunning && !cur.DismissRequested:
			if _, err := t.tx.ExecContext(ctx, "UPDATE jobs SET dismiss_requested = 1, updated = ? WHERE id = ?", us, id); err != nil {
				return dbError(err)
			}
		default:
			j = cur
			return nil
		}
		j, err = getJob(ctx, t.tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// PendingJobs returns up to limit jobs last updated before before that
// are not final (accepted or running), oldest update first (then by id):
// the jobs whose task may have been lost, which the reconciler queues
// again or ends. The limit is clamped to [1, catalog.MaxPageSize].
func (s *Store) PendingJobs(ctx context.Context, before time.Time, limit int) ([]*jobs.Job, error) {
	limit = min(max(limit, 1), catalog.MaxPageSize)
	us := micros(before)
	return s.queryJobs(ctx, pendingJobsSQL, us, us, limit)
}

// ReleaseJob implements jobs.Store.
func (s *Store) ReleaseJob(ctx context.Context, id string, attempt int, worker string, now time.Time) error {
	return s.updateJobs(ctx, func(t *Tx) error {
		if _, err := getJob(ctx, t.tx, id); err != nil {
			return err
		}
		_, err := t.tx.ExecContext(ctx, `UPDATE jobs SET worker = '', updated = ? WHERE id = ? AND status = 'running' AND attempt = ? AND worker = ? AND worker <> ''`,
			micros(now), id, attempt, worker)
		return dbError(err)
	})
}

// RequestSave implements jobs.Store.
func (s *Store) RequestSave(ctx context.Context, id, ref string, now time.Time) (*jobs.Job, error) {
	var j *jobs.Job
	err := s.updateJobs(ctx, func(t *Tx) error {
		_, err := t.tx.ExecContext(ctx, `UPDATE jobs SET saves = json_insert(saves, '$[#]', ?), updated = ?
WHERE id = ? AND status = 'running' AND NOT EXISTS (SELECT 1 FROM json_each(jobs.saves) WHERE value = ?)`, ref, micros(now), id, ref)
		if err != nil {
			return dbError(err)
		}
		j, err = getJob(ctx, t.tx, id)
		return err
	})
	return j, err
}

// SaveDone implements jobs.Store.
func (s *Store) SaveDone(ctx context.Context, id, ref string) error {
	return s.updateJobs(ctx, func(t *Tx) error {
		j, err := getJob(ctx, t.tx, id)
		if err != nil {
			return err
		}
		rest := []string{}
		for _, x := range j.Saves {
			if x != ref {
				rest = append(rest, x)
			}
		}
		b, _ := json.Marshal(rest)
		_, err = t.tx.ExecContext(ctx, `UPDATE jobs SET saves = ? WHERE id = ?`, string(b), id)
		return dbError(err)
	})
}

// updateJobs runs fn in a transaction of Update.
func (s *Store) updateJobs(ctx context.Context, fn func(t *Tx) error) error {
	return s.Update(ctx, func(tx catalog.Tx) error { return fn(tx.(*Tx)) })
}

// ranAttempt finishes an update of a job's running attempt: when it
// touched no row, the job is missing (ENOTFOUND) or not running at
// attempt (ECONFLICT).
func (t *Tx) ranAttempt(ctx context.Context, res sql.Result, id string, attempt int) error {
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(err)
	}
	if n > 0 {
		return nil
	}
	cur, err := getJob(ctx, t.tx, id)
	if err != nil {
		return err
	}
	return catalog.Errorf(catalog.ECONFLICT, "job %s is %s at attempt %d, not running at attempt %d", id, cur.Status, cur.Attempt, attempt)
}

// jobEvent writes the outbox event of a job's change, if there is one.
func (t *Tx) jobEvent(ctx context.Context, ev *catalog.Event) error {
	if ev == nil {
		return nil
	}
	return t.AppendEvents(ctx, ev)
}

// AppendLog implements jobs.Store. The write transaction (BEGIN
// IMMEDIATE) holds the database, so the byte count cannot change under
// it.
func (s *Store) AppendLog(ctx context.Context, id string, entries []jobs.LogEntry, maxBytes int64) (int, error) {
	kept := 0
	err := s.updateJobs(ctx, func(t *Tx) error {
		var err error
		kept, err = t.appendLog(ctx, id, entries, maxBytes)
		return err
	})
	return kept, err
}

// appendLog appends log lines of a job in a write transaction.
func (t *Tx) appendLog(ctx context.Context, id string, entries []jobs.LogEntry, maxBytes int64) (int, error) {
	kept := 0
	err := func() error {
		var (
			used      int64
			truncated bool
		)
		err := t.tx.QueryRowContext(ctx, `SELECT log_bytes, log_truncated FROM jobs WHERE id = ?`, id).Scan(&used, &truncated)
		if errors.Is(err, sql.ErrNoRows) {
			return errJobNotFound(id)
		}
		if err != nil {
			return dbError(err)
		}
		keep, marker, newUsed := jobs.FitLog(used, truncated, entries, maxBytes)
		kept = len(keep)
		if marker != nil {
			keep = append(keep, *marker)
		}
		if len(keep) == 0 {
			return nil
		}
		stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO job_logs (job, attempt, phase, stream, time, text) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return dbError(err)
		}
		defer func() { _ = stmt.Close() }()
		for _, e := range keep {
			if _, err := stmt.ExecContext(ctx, id, e.Attempt, e.Phase, e.Stream, micros(e.Time), e.Text); err != nil {
				return dbError(err)
			}
		}
		_, err = t.tx.ExecContext(ctx, `UPDATE jobs SET log_bytes = ?, log_truncated = (log_truncated OR ?) WHERE id = ?`, newUsed, marker != nil, id)
		if err != nil {
			return dbError(err)
		}
		return nil
	}()
	return kept, err
}

// ReadLog implements jobs.Store.
func (s *Store) ReadLog(ctx context.Context, id string, after int64, limit int) ([]jobs.LogEntry, error) {
	out, err := queryRows(ctx, s.r, func(row interface{ Scan(...any) error }) (jobs.LogEntry, error) {
		var (
			e jobs.LogEntry
			t int64
		)
		err := row.Scan(&e.Seq, &e.Attempt, &e.Phase, &e.Stream, &t, &e.Text)
		e.Time = fromMicros(t)
		return e, err
	}, `SELECT seq, attempt, phase, stream, time, text FROM job_logs WHERE job = ? AND seq > ? ORDER BY seq LIMIT ?`,
		id, after, min(max(limit, 1), catalog.MaxPageSize))
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		if _, err := s.GetJob(ctx, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}
