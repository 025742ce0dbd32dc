package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
)

// DefaultMaxAttempts is how many attempts a job gets by default: its run
// and two retries after a worker is lost.
const DefaultMaxAttempts = 3

// Service submits, lists and dismisses jobs on a Store and a Queue.
type Service struct {
	Store Store
	Queue Queue
	// MaxAttempts is the attempts a new job gets (DefaultMaxAttempts
	// unless set).
	MaxAttempts int
	Now         func() time.Time
	Logger      *slog.Logger
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Submission is an execution request for a process.
type Submission struct {
	Process *Process
	// Owner is who runs the job.
	Owner  string
	Inputs map[string]any
	// Request is the rest of the request the worker needs (JSON), e.g.
	// the snapshot to restore.
	Request json.RawMessage
	// IdempotencyKey, when set, makes a repeated submission of the same
	// request by the same owner return the same job.
	IdempotencyKey string
	// Batch is the batch the job belongs to, if any.
	Batch string
}

// InputsError lists what is wrong with an execution's inputs; its code
// is EINVALID.
type InputsError struct {
	Errors []InputError
	// Base is the pointer of the inputs in the request ("/inputs" when
	// empty); the errors' pointers are relative to it.
	Base string
	// Absolute says the errors' pointers are from the request's root.
	Absolute bool
}

// Pointer is where an error's input is in the request.
func (e *InputsError) Pointer(x InputError) string { return e.base() + x.Pointer }

func (e *InputsError) base() string {
	if e.Absolute {
		return ""
	}
	if e.Base == "" {
		return "/inputs"
	}
	return e.Base
}

func (e *InputsError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, x := range e.Errors {
		msgs[i] = strings.TrimPrefix(x.Pointer+": ", ": ") + x.Message
	}
	return "the inputs do not fit the process: " + strings.Join(msgs, "; ")
}

// Unwrap gives the error its code, pointing at the first wrong input.
func (e *InputsError) Unwrap() error {
	ptr := e.base()
	if len(e.Errors) > 0 {
		ptr += e.Errors[0].Pointer
	}
	return &catalog.Error{Code: catalog.EINVALID, Message: e.Error(), Pointer: ptr}
}

// Submit validates a submission, stores its job (accepted, with its
// event) and queues it. created is false when an Idempotency-Key gave
// back an earlier job. A job stored but not queued (the queue was down)
// is queued by the reconciler: the job is durable once Submit returns.
// Codes: EINVALID (*InputsError for the inputs), ECONFLICT (the
// Idempotency-Key was used for another request).
func (s *Service) Submit(ctx context.Context, sub Submission) (j *Job, created bool, err error) {
	if sub.Inputs == nil {
		sub.Inputs = map[string]any{}
	}
	if errs := sub.Process.ValidateInputs(sub.Inputs); len(errs) > 0 {
		return nil, false, &InputsError{Errors: errs}
	}
	inputs, err := json.Marshal(sub.Inputs)
	if err != nil {
		return nil, false, catalog.Invalid("/inputs", "the inputs are not JSON: %v", err)
	}
	maxAttempts := s.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	now := s.now()
	job := &Job{
		ID: NewID(), Process: sub.Process.ID,
		TwinCollection: sub.Process.Collection, TwinItem: sub.Process.Item, TwinETag: sub.Process.Version,
		Owner: sub.Owner, TwinOwner: sub.Process.Owner, Batch: sub.Batch, Inputs: inputs, Request: sub.Request,
		IdempotencyKey: sub.IdempotencyKey, RequestHash: requestHash(sub.Process.ID, inputs, sub.Request),
		Status: StatusAccepted, Progress: -1, MaxAttempts: maxAttempts, Created: now, Updated: now,
	}
	stored, created, err := s.Store.CreateJob(ctx, job, NewEvent(job, EventJobAccepted, now))
	if err != nil {
		return nil, false, err
	}
	if created {
		if err := s.Queue.Enqueue(ctx, stored); err != nil && s.Logger != nil {
			s.Logger.Warn("a job was stored but not queued; the reconciler will queue it", "job", stored.ID, "err", err)
		}
	}
	return stored, created, nil
}

// NewID makes the id of a job, a batch, an event or an item the server
// makes: a UUID ordered by creation time.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// requestHash identifies a request for the Idempotency-Key check: the
// process, and the inputs and request as canonical JSON.
func requestHash(process string, inputs, request json.RawMessage) string {
	h := sha256.New()
	h.Write([]byte(process))
	for _, raw := range []json.RawMessage{inputs, request} {
		h.Write([]byte{0})
		var v any
		if len(raw) > 0 && json.Unmarshal(raw, &v) == nil {
			b, _ := json.Marshal(v) // maps marshal with sorted keys
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Visible reports whether user may see a job: who ran it, the twin's
// owner (admins see every job; the caller decides that).
func Visible(j *Job, user string) bool {
	return user != "" && (j.Owner == user || j.TwinOwner == user)
}

// Dismiss dismisses a job: an accepted job ends at once; a running job
// is stopped by its worker. Codes: ENOTFOUND.
func (s *Service) Dismiss(ctx context.Context, id string) (*Job, error) {
	now := s.now()
	cur, err := s.Store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	j, err := s.Store.DismissJob(ctx, id, now, NewEvent(cur, EventJobDismissed, now))
	if err == nil && cur.Status == StatusAccepted && j.Status == StatusDismissed {
		if err := s.Queue.Notify(ctx, j, StatusDismissed); err != nil && s.Logger != nil {
			s.Logger.Warn("the callback of a dismissed job could not be queued", "job", j.ID, "err", err)
		}
	}
	if err == nil && cur.Status == StatusAccepted && cur.Batch != "" {
		// A queued job of a batch freed a slot for a held one.
		if err := s.ReleaseBatch(ctx, cur.Batch); err != nil && s.Logger != nil {
			s.Logger.Warn("releasing held jobs of a batch; the reconciler will", "batch", cur.Batch, "err", err)
		}
	}
	return j, err
}

// EventPayload is the payload of job events.
type EventPayload struct {
	ID      string `json:"id"`
	Process string `json:"process"`
	Status  string `json:"status"`
	Attempt int    `json:"attempt,omitempty"`
	Batch   string `json:"batch,omitempty"`
	Owner   string `json:"owner,omitempty"`
}

// Subject names a job in events.
func Subject(id string) string { return "jobs/" + id }

// NewEvent builds the outbox event of a job's change (typ: job.<status>).
func NewEvent(j *Job, typ string, now time.Time) *catalog.Event {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(EventPayload{
		ID: j.ID, Process: j.Process, Status: strings.TrimPrefix(typ, "job."), Attempt: j.Attempt, Batch: j.Batch, Owner: j.Owner,
	})
	return &catalog.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Subject: Subject(j.ID), Time: now,
		Payload: json.RawMessage(bytes.TrimSpace(b.Bytes()))}
}

// String is for logs.
func (j *Job) String() string { return fmt.Sprintf("job %s (%s, %s)", j.ID, j.Process, j.Status) }
