package postgres

import (
	"context"
	"encoding/json"
	"slices"
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

// ClaimJob implements jobs.Store, as a ClaimJobs of one.
func (s *Store) ClaimJob(ctx context.Context, id string, attempt int, worker string, now time.Time, ev *catalog.Event) (*jobs.Job, error) {
	out, err := s.ClaimJobs(ctx, []jobs.Claim{{ID: id, Attempt: attempt}}, worker, now, func(*jobs.Job) *catalog.Event { return ev })
	if err != nil {
		return nil, err
	}
	return out[0].Job, out[0].Err
}

// claimJobsSQL claims the jobs of one round. The conditional UPDATE is
// the fence: of concurrent claims of one attempt, the first to lock the
// row wins and the others find it no longer claimable. The claims come
// in id order, so that concurrent rounds lock their rows in one order.
var claimJobsSQL = `UPDATE jobs AS j SET status = 'running', attempt = c.attempt, worker = $3, updated = $4, started = COALESCE(j.started, $4)
FROM unnest($1::text[], $2::int[]) AS c(id, attempt)
WHERE j.id = c.id AND c.attempt >= 1 AND NOT j.dismiss_requested AND (j.status = 'accepted' OR (j.status = 'running' AND j.attempt < c.attempt)
	OR (j.status = 'running' AND j.attempt = c.attempt AND j.worker = ''))
RETURNING ` + qualified("j", jobColumns)

// ClaimJobs implements jobs.Store: one UPDATE per round (mostly one),
// and the events of the claimed jobs.
func (s *Store) ClaimJobs(ctx context.Context, claims []jobs.Claim, worker string, now time.Time, event func(*jobs.Job) *catalog.Event) ([]jobs.Changed, error) {
	out := make([]jobs.Changed, len(claims))
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		clear(out)
		var events []*catalog.Event
		for _, round := range jobs.Rounds(len(claims), func(i int) string { return claims[i].ID }) {
			slices.SortFunc(round, func(a, b int) int { return strings.Compare(claims[a].ID, claims[b].ID) })
			ids, attempts := make([]string, len(round)), make([]int32, len(round))
			for k, i := range round {
				ids[k], attempts[k] = claims[i].ID, int32(claims[i].Attempt)
			}
			claimed, err := t.jobsOf(ctx, claimJobsSQL, ids, attempts, worker, now)
			if err != nil {
				return err
			}
			cur, err := t.missingJobs(ctx, ids, claimed)
			if err != nil {
				return err
			}
			for _, i := range round {
				id := claims[i].ID
				switch j, c := claimed[id], cur[id]; {
				case j != nil:
					out[i].Job = j
					if event != nil {
						if ev := event(j); ev != nil {
							events = append(events, ev)
						}
					}
				case c != nil:
					out[i].Err = jobs.ErrNotClaimable(id, c.Status, c.Attempt)
				default:
					out[i].Err = errJobNotFound(id)
				}
			}
		}
		return t.AppendEvents(ctx, events...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// qualified prefixes each of the comma-separated columns with table.
func qualified(table, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = table + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// jobsOf runs a statement that returns job rows, by id.
func (t *Tx) jobsOf(ctx context.Context, sql string, args ...any) (map[string]*jobs.Job, error) {
	rows, err := t.tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, t.fail(err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*jobs.Job, error) { return scanJob(r) })
	if err != nil {
		return nil, t.fail(err)
	}
	out := make(map[string]*jobs.Job, len(list))
	for _, j := range list {
		out[j.ID] = j
	}
	return out, nil
}

// missingJobs reads the jobs of ids that are not in changed, as they
// are: why a change did not apply to them (a job missing from the
// result does not exist).
func (t *Tx) missingJobs(ctx context.Context, ids []string, changed map[string]*jobs.Job) (map[string]*jobs.Job, error) {
	var missing []string
	for _, id := range ids {
		if changed[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return t.jobsOf(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ANY($1::text[])`, missing)
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

// FinishJob implements jobs.Store, as a FinishJobs of one.
func (s *Store) FinishJob(ctx context.Context, id string, attempt int, f jobs.Finish, now time.Time, ev *catalog.Event) (*jobs.Job, error) {
	out, err := s.FinishJobs(ctx, []jobs.End{{ID: id, Attempt: attempt, Finish: f, Event: ev}}, now)
	if err != nil {
		return nil, err
	}
	return out[0].Job, out[0].Err
}

// lockRunningSQL locks the jobs of a round that run at the attempt
// named, in id order, and returns their log's byte count.
const lockRunningSQL = `SELECT j.id, j.log_bytes, j.log_truncated FROM jobs AS j
JOIN unnest($1::text[], $2::int[]) AS c(id, attempt) ON j.id = c.id
WHERE j.id = ANY($1::text[]) AND j.status = 'running' AND j.attempt = c.attempt ORDER BY j.id FOR UPDATE OF j`

// finishJobsSQL ends the locked jobs of a round ($3), each as its
// record in $1 says. The ids in $3 let the planner look the jobs up by
// key: it guesses a hundred records, where a round has a few.
var finishJobsSQL = `UPDATE jobs AS j SET status = c.status, message = c.message, results = c.results, exception = c.exception,
	usage = c.usage, progress = CASE WHEN c.status = 'successful' THEN 100 ELSE j.progress END, finished = $2, updated = $2,
	final_state = c.final_state, log_bytes = c.log_bytes, log_truncated = j.log_truncated OR c.cut
FROM jsonb_to_recordset($1::jsonb) AS c(id text, status text, message text, results text[], exception jsonb, usage jsonb,
	final_state text, log_bytes bigint, cut boolean)
WHERE j.id = ANY($3::text[]) AND j.id = c.id
RETURNING ` + qualified("j", jobColumns)

// endRecord is one job's record in finishJobsSQL.
type endRecord struct {
	ID         string          `json:"id"`
	Status     string          `json:"status"`
	Message    string          `json:"message"`
	Results    []string        `json:"results"`
	Exception  json.RawMessage `json:"exception"`
	Usage      json.RawMessage `json:"usage"`
	FinalState string          `json:"final_state"`
	LogBytes   int64           `json:"log_bytes"`
	Cut        bool            `json:"cut"`
}

// FinishJobs implements jobs.Store. Per round: the jobs running at
// their attempt are locked in id order; the log lines that fit their
// bound go in by one COPY; one UPDATE ends them all; the events follow.
func (s *Store) FinishJobs(ctx context.Context, ends []jobs.End, now time.Time) ([]jobs.Changed, error) {
	out := make([]jobs.Changed, len(ends))
	valid := make([]bool, len(ends))
	for i, e := range ends {
		switch {
		case !e.Finish.Status.Final():
			out[i].Err = catalog.Errorf(catalog.EINVALID, "a job ends successful, failed or dismissed, not %q", e.Finish.Status)
		case len(e.Finish.Exception) > 0 && !json.Valid(e.Finish.Exception):
			out[i].Err = catalog.Invalid("/exception", "the exception of job %q is not JSON", e.ID)
		case len(e.Finish.Usage) > 0 && !json.Valid(e.Finish.Usage):
			out[i].Err = catalog.Invalid("/usage", "the usage of job %q is not JSON", e.ID)
		default:
			valid[i] = true
		}
	}
	err := s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		for i := range out {
			if valid[i] {
				out[i] = jobs.Changed{}
			}
		}
		var (
			todo   []int
			events []*catalog.Event
		)
		for i := range ends {
			if valid[i] {
				todo = append(todo, i)
			}
		}
		for _, round := range jobs.Rounds(len(todo), func(k int) string { return ends[todo[k]].ID }) {
			for k := range round {
				round[k] = todo[round[k]]
			}
			slices.SortFunc(round, func(a, b int) int { return strings.Compare(ends[a].ID, ends[b].ID) })
			evs, err := t.finishRound(ctx, ends, round, now, out)
			if err != nil {
				return err
			}
			events = append(events, evs...)
		}
		return t.AppendEvents(ctx, events...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// finishRound ends the jobs ends[round] (each named once), writing into
// out, and returns the events of those that ended.
func (t *Tx) finishRound(ctx context.Context, ends []jobs.End, round []int, now time.Time, out []jobs.Changed) ([]*catalog.Event, error) {
	ids, attempts := make([]string, len(round)), make([]int32, len(round))
	for k, i := range round {
		ids[k], attempts[k] = ends[i].ID, int32(ends[i].Attempt)
	}
	type logState struct {
		used      int64
		truncated bool
	}
	running := make(map[string]logState, len(round))
	rows, err := t.tx.Query(ctx, lockRunningSQL, ids, attempts)
	if err != nil {
		return nil, t.fail(err)
	}
	for rows.Next() {
		var (
			id string
			st logState
		)
		if err := rows.Scan(&id, &st.used, &st.truncated); err != nil {
			rows.Close()
			return nil, t.fail(err)
		}
		running[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err)
	}
	var (
		records []endRecord
		locked  []string
		lines   [][]any
	)
	for _, i := range round {
		e := &ends[i]
		st, ok := running[e.ID]
		if !ok {
			continue
		}
		f := &e.Finish
		keep, marker, newUsed := jobs.FitLog(st.used, st.truncated, f.Log, f.MaxLogBytes)
		if marker != nil {
			keep = append(keep, *marker)
		}
		for _, l := range keep {
			lines = append(lines, []any{e.ID, l.Attempt, l.Phase, l.Stream, l.Time, l.Text})
		}
		locked = append(locked, e.ID)
		records = append(records, endRecord{ID: e.ID, Status: string(f.Status), Message: f.Message, Results: f.Results,
			Exception: jsonOrNull(f.Exception), Usage: jsonOrNull(f.Usage), FinalState: f.FinalState, LogBytes: newUsed, Cut: marker != nil})
	}
	if len(lines) > 0 {
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"job_logs"}, []string{"job", "attempt", "phase", "stream", "time", "text"}, pgx.CopyFromRows(lines)); err != nil {
			return nil, t.fail(err)
		}
	}
	ended := map[string]*jobs.Job{}
	if len(records) > 0 {
		doc, err := json.Marshal(records)
		if err != nil {
			return nil, catalog.Internal(err)
		}
		if ended, err = t.jobsOf(ctx, finishJobsSQL, doc, now, locked); err != nil {
			return nil, err
		}
	}
	cur, err := t.missingJobs(ctx, ids, ended)
	if err != nil {
		return nil, err
	}
	var events []*catalog.Event
	for _, i := range round {
		e := &ends[i]
		switch j, c := ended[e.ID], cur[e.ID]; {
		case j != nil:
			out[i].Job = j
			if e.Event != nil {
				events = append(events, e.Event)
			}
		case c != nil:
			out[i].Err = notRunningAt(e.Attempt)(c)
		default:
			out[i].Err = errJobNotFound(e.ID)
		}
	}
	return events, nil
}

// jsonOrNull is a JSON value to embed, null for none.
func jsonOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
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
