package jobs

import (
	"context"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// Store keeps jobs. Every change commits with its outbox event (none
// when the event is nil) in one transaction.
type Store interface {
	// CreateJob stores a new job in status accepted. When the job has an
	// idempotency key and its owner already made a job with that key,
	// nothing is stored: CreateJob returns that job and created false if
	// its RequestHash is the same, ECONFLICT otherwise.
	// Codes: ECONFLICT, EINVALID.
	CreateJob(ctx context.Context, j *Job, ev *catalog.Event) (stored *Job, created bool, err error)
	// GetJob returns a job. Codes: ENOTFOUND.
	GetJob(ctx context.Context, id string) (*Job, error)
	// ListJobs returns a page of jobs, newest first (by id, which orders
	// by creation time).
	ListJobs(ctx context.Context, q Query) ([]*Job, error)
	// ClaimJob starts an attempt: a job that is accepted, running at an
	// attempt below attempt (the previous one was abandoned: its worker
	// died), or running at attempt but released by its worker, becomes
	// running at attempt, run by worker. A job whose dismissal was
	// requested is not claimed. Codes: ENOTFOUND, ECONFLICT (not
	// claimable: ErrNotClaimable).
	ClaimJob(ctx context.Context, id string, attempt int, worker string, now time.Time, ev *catalog.Event) (*Job, error)
	// ClaimJobs makes many claims in one transaction, for worker at now:
	// each is what ClaimJob would make of it, in order (a job named twice
	// is claimed as two ClaimJob calls one after the other would). event
	// builds the event of a job as claimed, written with the claims
	// (nil: none). It returns one Changed per claim, in order; err is
	// for the whole: nothing was claimed.
	ClaimJobs(ctx context.Context, claims []Claim, worker string, now time.Time, event func(*Job) *catalog.Event) ([]Changed, error)
	// ReleaseJob gives back the attempt worker runs, as a stopping worker
	// does: its task goes back to the queue with the same attempt, which
	// another worker may claim again. Nothing changes unless worker runs
	// the job at attempt. Codes: ENOTFOUND.
	ReleaseJob(ctx context.Context, id string, attempt int, worker string, now time.Time) error
	// SetProgress records the progress and message of a running job's
	// current attempt. Codes: ENOTFOUND, ECONFLICT (not running at
	// attempt).
	SetProgress(ctx context.Context, id string, attempt, progress int, message string, now time.Time) error
	// FinishJob ends a job running at attempt. Codes: ENOTFOUND,
	// ECONFLICT (not running at attempt), EINVALID (f.Status not final).
	FinishJob(ctx context.Context, id string, attempt int, f Finish, now time.Time, ev *catalog.Event) (*Job, error)
	// FinishJobs ends many jobs in one transaction at now: each is what
	// FinishJob would make of it, in order. It returns one Changed per
	// end, in order; err is for the whole: nothing changed.
	FinishJobs(ctx context.Context, ends []End, now time.Time) ([]Changed, error)
	// RequestSave asks the worker running a job for a save into the
	// snapshot item ref (<collection>/<item>): ref joins the job's Saves
	// if the job is running. It returns the job after; a job that is not
	// running is returned unchanged (its save is made from its final
	// state). Codes: ENOTFOUND.
	RequestSave(ctx context.Context, id, ref string, now time.Time) (*Job, error)
	// SaveDone takes ref off a job's Saves. Codes: ENOTFOUND.
	SaveDone(ctx context.Context, id, ref string) error
	// DismissJob dismisses a job: an accepted job becomes dismissed at
	// once (ev is written); a running one gets DismissRequested and
	// its worker ends it; a finished job is returned as it is.
	// Codes: ENOTFOUND.
	DismissJob(ctx context.Context, id string, now time.Time, ev *catalog.Event) (*Job, error)
	// PendingJobs returns up to limit jobs that are not final (accepted
	// or running) and were last updated before before, oldest first:
	// those the reconciler checks are queued, or still held by a worker.
	PendingJobs(ctx context.Context, before time.Time, limit int) ([]*Job, error)
	// AppendLog adds lines a job's phases wrote, up to maxBytes of text
	// per job: the lines past it are dropped, and one line of stream
	// StreamSystem says the log was cut. It returns how many of entries
	// were kept. Codes: ENOTFOUND.
	AppendLog(ctx context.Context, id string, entries []LogEntry, maxBytes int64) (kept int, err error)
	// ReadLog returns up to limit lines of a job's log with Seq > after,
	// in order. Codes: ENOTFOUND.
	ReadLog(ctx context.Context, id string, after int64, limit int) ([]LogEntry, error)
	// CountActiveJobs counts an owner's jobs that are accepted (queued,
	// held ones too) and running: what the per-user job limits count.
	CountActiveJobs(ctx context.Context, owner string) (accepted, running int, err error)
	// Usage adds up the usage records of finished jobs as q says, a page
	// of rows ordered by their key. Codes: EINVALID (CheckUsageQuery).
	Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error)
}

// LogEntry is one line of a job's log.
type LogEntry struct {
	// Seq orders the lines (it grows, with gaps); a reader resumes after
	// the last one it saw.
	Seq     int64
	Attempt int
	Phase   string
	// Stream is stdout, stderr, or StreamSystem for the server's own
	// lines.
	Stream string
	Time   time.Time
	Text   string
}

// StreamSystem is the stream of the lines the server adds to a log.
const StreamSystem = "twinstac"

// Claim is one claim of ClaimJobs: the attempt of a job.
type Claim struct {
	ID      string
	Attempt int
}

// End is one end of FinishJobs: the job's attempt ends as Finish says,
// with Event (none when nil).
type End struct {
	ID      string
	Attempt int
	Finish  Finish
	Event   *catalog.Event
}

// Changed is what became of one job of a many-job change: the job after
// it, or the error the one-job change would have returned.
type Changed struct {
	Job *Job
	Err error
}

// Rounds splits n changes of the jobs id(0) … id(n-1) into rounds in
// which no job comes twice, keeping their order: a store applies them
// round after round, so that a job named twice changes twice, in order.
// Mostly there is one round.
func Rounds(n int, id func(int) string) [][]int {
	var (
		rounds [][]int
		seen   = make(map[string]int, n) // id -> rounds it is in
	)
	for i := range n {
		r := seen[id(i)]
		seen[id(i)] = r + 1
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	return rounds
}
