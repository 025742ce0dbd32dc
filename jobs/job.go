package jobs

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// Status is where a job is (OGC API – Processes statusInfo.status).
type Status string

// Job statuses. accepted → running → successful | failed; accepted or
// running → dismissed. A running job goes back to no other status: a
// retried attempt stays running.
const (
	StatusAccepted   Status = "accepted"
	StatusRunning    Status = "running"
	StatusSuccessful Status = "successful"
	StatusFailed     Status = "failed"
	StatusDismissed  Status = "dismissed"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{StatusAccepted, StatusRunning, StatusSuccessful, StatusFailed, StatusDismissed}

// Valid reports whether s is a status.
func (s Status) Valid() bool {
	for _, x := range Statuses {
		if s == x {
			return true
		}
	}
	return false
}

// Final reports whether a job in s is over.
func (s Status) Final() bool {
	return s == StatusSuccessful || s == StatusFailed || s == StatusDismissed
}

// Job is one execution of a process (a published twin).
type Job struct {
	// ID is the job id (a UUID, ordered by creation time).
	ID string
	// Process is the process id, <collection>:<item> of the twin.
	Process string
	// TwinCollection and TwinItem name the twin; TwinETag is the version
	// of it that the job runs.
	TwinCollection, TwinItem, TwinETag string
	// Owner is who ran the job; TwinOwner the twin's owner, who sees its
	// runs too.
	Owner, TwinOwner string
	// Batch is the id of the batch the job belongs to, or "".
	Batch string
	// Inputs are the execution's inputs, a JSON object.
	Inputs json.RawMessage
	// Request holds the rest of the execution request the worker needs
	// (subscriber callbacks, the snapshot to restore), as JSON.
	Request json.RawMessage
	// IdempotencyKey and RequestHash make a repeated submission return
	// the job it made the first time (per owner).
	IdempotencyKey, RequestHash string

	Status Status
	// Message says what the job is doing or why it ended.
	Message string
	// Progress is a percentage, or -1 when unknown.
	Progress int
	// Attempt counts the attempts started (0 until the first);
	// MaxAttempts is the most it may have.
	Attempt, MaxAttempts int
	// Worker names who runs the current attempt.
	Worker string
	// DismissRequested is set when a running job is to be stopped; the
	// worker running it ends it dismissed.
	DismissRequested bool

	Created, Updated  time.Time
	Started, Finished *time.Time

	// Results are the result items of a successful job, as
	// <collection>/<item>.
	Results []string
	// Exception is the failure of a failed job, an OGC exception object
	// (JSON).
	Exception json.RawMessage
	// Usage is what the job consumed (JSON of Usage).
	Usage json.RawMessage
	// Saves are the saves asked of the running job that its worker has
	// yet to make: the snapshot items to fill, as <collection>/<item>.
	Saves []string
	// FinalState is the blob key of the state the job's last attempt
	// left ("" for none): a save asked after the job ended is made from
	// it.
	FinalState string
}

// Usage is the accounting record of a job.
type Usage struct {
	WallSeconds  float64 `json:"wallSeconds"`
	UserCPU      float64 `json:"userCpuSeconds"`
	SystemCPU    float64 `json:"systemCpuSeconds"`
	MaxRSSBytes  int64   `json:"maxRssBytes"`
	BytesWritten int64   `json:"bytesWritten"`
}

// Finish is how an attempt ends a job.
type Finish struct {
	Status    Status
	Message   string
	Results   []string
	Exception json.RawMessage
	Usage     json.RawMessage
	// FinalState is the blob key of the state the attempt left, if any.
	FinalState string
	// Log are the attempt's last log lines, appended with the end (as
	// AppendLog does, within MaxLogBytes per job): the log is complete
	// when the job is seen to end, at no extra transaction.
	Log         []LogEntry
	MaxLogBytes int64
}

// Query selects jobs for a listing, newest first.
type Query struct {
	// Visible restricts the jobs to those a user ran, whose twin the user
	// owns or that are shared with the user; nil: every job (admins).
	Visible *Visibility
	// Process, Status and Batch filter when set.
	Process  string
	Statuses []Status
	Batch    string
	// CreatedFrom and CreatedTo bound the creation time (inclusive) when
	// set.
	CreatedFrom, CreatedTo *time.Time
	// After is the cursor of the next page: the id of the last job of the
	// previous page.
	After string
	// Limit is the page size, 1 to catalog.MaxPageSize.
	Limit int
}

// Visibility is whose jobs a caller sees: the user's own, those of the
// twins the user owns, and those shared with the user, one by one or by
// their batch.
type Visibility struct {
	User string
	// Jobs and Batches are the ids of the jobs and batches shared with
	// the user; a shared batch's jobs are shared with it.
	Jobs, Batches []string
}

// Sees reports whether the visibility covers a job.
func (v *Visibility) Sees(j *Job) bool {
	return Visible(j, v.User) || slices.Contains(v.Jobs, j.ID) || (j.Batch != "" && slices.Contains(v.Batches, j.Batch))
}

// SeesBatch reports whether the visibility covers a batch.
func (v *Visibility) SeesBatch(b *Batch) bool {
	return BatchVisible(b, v.User) || slices.Contains(v.Batches, b.ID)
}

// Event types of jobs in the outbox (catalog.Event.Type).
const (
	EventJobAccepted   = "job.accepted"
	EventJobRunning    = "job.running"
	EventJobSuccessful = "job.successful"
	EventJobFailed     = "job.failed"
	EventJobDismissed  = "job.dismissed"
)

// EventType returns the outbox event type of a change to status s.
func EventType(s Status) string { return "job." + string(s) }

// Ref names a catalog item as <collection>/<item>.
func Ref(collection, item string) string { return collection + "/" + item }

// ParseRef splits a Ref; ok is false unless both parts are there.
func ParseRef(ref string) (collection, item string, ok bool) {
	collection, item, ok = strings.Cut(ref, "/")
	return collection, item, ok && collection != "" && item != ""
}

// ErrNotClaimable is the ECONFLICT a claim gets for a job it may not
// take.
func ErrNotClaimable(id string, st Status, attempt int) error {
	return catalog.Errorf(catalog.ECONFLICT, "job %s is %s at attempt %d and cannot be claimed", id, st, attempt)
}
