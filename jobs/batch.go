package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// A batch is many jobs of one process from one request: a list of input
// sets, or a sweep over parameter values (what-if). Its jobs carry its id
// and write their results to one collection; its counts are theirs.

// MaxBatchJobs is the most jobs one batch may make.
const MaxBatchJobs = 10000

// maxBatchErrors bounds the input errors a refused batch lists.
const maxBatchErrors = 100

// Sweep modes: every combination of the swept values, or the i-th value
// of each.
const (
	SweepProduct = "product"
	SweepZip     = "zip"
)

// Batch is a batch as stored.
type Batch struct {
	ID, Process string
	// Owner submitted the batch; TwinOwner owns the twin, and sees its
	// runs.
	Owner, TwinOwner string
	// Total is the number of jobs.
	Total int
	// MaxParallel bounds the batch's jobs queued or running at once (0:
	// no bound); the others wait, held, until one ends.
	MaxParallel int
	// Request is the batch request as submitted (JSON).
	Request json.RawMessage
	// ResultsCollection is where the jobs' result items go.
	ResultsCollection string
	Created, Updated  time.Time
	// Counts are the jobs by status, filled by GetBatch and ListBatches.
	Counts map[Status]int
}

// NoCounts are the counts of a batch without jobs: every status, 0.
func NoCounts() map[Status]int {
	c := make(map[Status]int, len(Statuses))
	for _, st := range Statuses {
		c[st] = 0
	}
	return c
}

// Done is the number of the batch's jobs that are over.
func (b *Batch) Done() int {
	return b.Counts[StatusSuccessful] + b.Counts[StatusFailed] + b.Counts[StatusDismissed]
}

// Progress is the percentage of the batch's jobs that are over.
func (b *Batch) Progress() int {
	if b.Total == 0 {
		return 100
	}
	return b.Done() * 100 / b.Total
}

// Status sums the batch up: accepted until a job runs, running until
// every job is over, then successful when every job succeeded,
// dismissed when any was dismissed, failed otherwise.
func (b *Batch) Status() Status {
	switch {
	case b.Done() < b.Total && b.Counts[StatusRunning] == 0 && b.Done() == 0:
		return StatusAccepted
	case b.Done() < b.Total:
		return StatusRunning
	case b.Counts[StatusSuccessful] == b.Total:
		return StatusSuccessful
	case b.Counts[StatusDismissed] > 0:
		return StatusDismissed
	default:
		return StatusFailed
	}
}

// BatchQuery selects batches for a listing, newest first.
type BatchQuery struct {
	// Visible restricts the batches to those a user submitted, whose twin
	// the user owns or that are shared with the user (Batches; Jobs do
	// not make their batch visible); nil: every batch (admins).
	Visible *Visibility
	// After is the id of the last batch of the previous page.
	After string
	Limit int
}

// BatchStore keeps batches. The stores that keep jobs keep batches.
type BatchStore interface {
	// CreateBatch stores a batch and its jobs (accepted; the first
	// b.MaxParallel of them queued-to-be, the others held when
	// b.MaxParallel > 0) with their events, in one transaction.
	// Codes: EINVALID, ECONFLICT.
	CreateBatch(ctx context.Context, b *Batch, jobs []*Job, events []*catalog.Event) error
	// GetBatch returns a batch with its counts. Codes: ENOTFOUND.
	GetBatch(ctx context.Context, id string) (*Batch, error)
	// ListBatches returns a page of batches with their counts, newest
	// first.
	ListBatches(ctx context.Context, q BatchQuery) ([]*Batch, error)
	// ReleaseBatch takes held jobs of a batch off hold while fewer than
	// its MaxParallel jobs are queued or running, and returns them (to
	// be queued). Codes: ENOTFOUND.
	ReleaseBatch(ctx context.Context, id string, now time.Time) ([]*Job, error)
	// HeldBatches returns up to limit ids of batches that have held jobs.
	HeldBatches(ctx context.Context, limit int) ([]string, error)
	// DismissBatch dismisses the batch's jobs: the accepted ones (held
	// or not) end dismissed at once, each with its event; the running
	// ones are asked to stop. It returns the batch after. Codes:
	// ENOTFOUND.
	DismissBatch(ctx context.Context, id string, now time.Time) (*Batch, error)
}

// BatchSubmission is a batch request: one process, its jobs' inputs.
type BatchSubmission struct {
	Process *Process
	Owner   string
	// InputSets are the inputs of the jobs, one per job.
	InputSets []map[string]any
	// Requests is the request of each job (see Submission.Request), or
	// one request for all of them (len 1), or none.
	Request json.RawMessage
	// MaxParallel bounds the jobs queued or running at once (0: none).
	MaxParallel int
	// Locate maps the pointer of an error in the i-th input set to where
	// the request says it ("/inputSets/<i>" + pointer when nil).
	Locate func(i int, pointer string) string
	// Raw is the batch request as submitted, kept with the batch.
	Raw json.RawMessage
	// ResultsCollection is where the results go.
	ResultsCollection string
}

// Event types of batches.
const EventBatchCreated = "batch.created"

// BatchSubject names a batch in events.
func BatchSubject(id string) string { return "batches/" + id }

// SweepSet is the inputs of one job of a sweep, and which value of each
// swept parameter it took (its index in the sweep's list).
type SweepSet struct {
	Inputs map[string]any
	Picks  map[string]int
}

// ExpandSweep makes the input sets of a sweep: base with each swept
// parameter set to one of its values, for every combination (product)
// or for the i-th value of every parameter (zip, all lists of one
// length). Parameters are combined in name order; the last varies
// fastest. Codes: EINVALID (pointing into /sweep).
func ExpandSweep(base map[string]any, sweep map[string][]any, mode string) ([]SweepSet, error) {
	names := make([]string, 0, len(sweep))
	for n := range sweep {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, catalog.Invalid("/sweep", "a sweep names at least one parameter and its values")
	}
	for _, n := range names {
		if len(sweep[n]) == 0 {
			return nil, catalog.Invalid("/sweep/"+pointerToken(n), "parameter %q has no values to sweep over", n)
		}
		if _, ok := base[n]; ok {
			return nil, catalog.Invalid("/sweep/"+pointerToken(n), "parameter %q is both in the base inputs and swept", n)
		}
	}
	with := func(pick func(name string) int) SweepSet {
		set := SweepSet{Inputs: make(map[string]any, len(base)+len(names)), Picks: make(map[string]int, len(names))}
		for k, v := range base {
			set.Inputs[k] = v
		}
		for _, n := range names {
			k := pick(n)
			set.Inputs[n], set.Picks[n] = sweep[n][k], k
		}
		return set
	}
	switch mode {
	case "", SweepProduct:
		total := 1
		for _, n := range names {
			total *= len(sweep[n])
			if total > MaxBatchJobs {
				return nil, catalog.Invalid("/sweep", "the sweep makes more than %d jobs", MaxBatchJobs)
			}
		}
		out := make([]SweepSet, 0, total)
		idx := make([]int, len(names))
		for range total {
			out = append(out, with(func(n string) int { return idx[slices.Index(names, n)] }))
			for k := len(idx) - 1; k >= 0; k-- {
				idx[k]++
				if idx[k] < len(sweep[names[k]]) {
					break
				}
				idx[k] = 0
			}
		}
		return out, nil
	case SweepZip:
		n0 := len(sweep[names[0]])
		for _, n := range names[1:] {
			if len(sweep[n]) != n0 {
				return nil, catalog.Invalid("/sweep/"+pointerToken(n), "a zip sweep needs lists of one length: %q has %d values, %q has %d", names[0], n0, n, len(sweep[n]))
			}
		}
		if n0 > MaxBatchJobs {
			return nil, catalog.Invalid("/sweep", "the sweep makes more than %d jobs", MaxBatchJobs)
		}
		out := make([]SweepSet, 0, n0)
		for i := range n0 {
			out = append(out, with(func(string) int { return i }))
		}
		return out, nil
	default:
		return nil, catalog.Invalid("/mode", "mode is %q or %q, not %q", SweepProduct, SweepZip, mode)
	}
}

// pointerToken escapes a name for a JSON pointer (RFC 6901).
func pointerToken(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '~':
			out = append(out, '~', '0')
		case '/':
			out = append(out, '~', '1')
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

// SubmitBatch validates every input set, stores the batch and its jobs
// in one transaction and queues the jobs that may start (all of them,
// or the first MaxParallel). A job stored but not queued is queued by
// the reconciler. Codes: EINVALID (*InputsError, pointers of the form
// /inputSets/<i>/<input>), EUNAVAILABLE.
func (s *Service) SubmitBatch(ctx context.Context, sub BatchSubmission) (*Batch, error) {
	bs, ok := s.Store.(BatchStore)
	if !ok {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server keeps no batches")
	}
	n := len(sub.InputSets)
	switch {
	case n == 0:
		return nil, catalog.Invalid("/inputSets", "a batch has at least one job")
	case n > MaxBatchJobs:
		return nil, catalog.Invalid("/inputSets", "a batch has at most %d jobs, not %d", MaxBatchJobs, n)
	case sub.MaxParallel < 0:
		return nil, catalog.Invalid("/maxParallel", "maxParallel is 0 (no limit) or more")
	}
	locate := sub.Locate
	if locate == nil {
		locate = func(i int, p string) string { return "/inputSets/" + strconv.Itoa(i) + p }
	}
	var errs []InputError
	seen := map[InputError]bool{}
	for i, in := range sub.InputSets {
		if in == nil {
			in = map[string]any{}
			sub.InputSets[i] = in
		}
		for _, e := range sub.Process.ValidateInputs(in) {
			e.Pointer = locate(i, e.Pointer)
			if !seen[e] && len(errs) < maxBatchErrors {
				seen[e] = true
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return nil, &InputsError{Errors: errs, Absolute: true}
	}
	maxAttempts := s.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	now := s.now()
	b := &Batch{ID: NewID(), Process: sub.Process.ID, Owner: sub.Owner, TwinOwner: sub.Process.Owner, Total: n,
		MaxParallel: sub.MaxParallel, Request: sub.Raw, ResultsCollection: sub.ResultsCollection, Created: now, Updated: now}
	if len(b.Request) == 0 {
		b.Request = json.RawMessage("{}")
	}
	list := make([]*Job, n)
	events := make([]*catalog.Event, 0, n+1)
	events = append(events, batchEvent(b, now))
	for i, in := range sub.InputSets {
		inputs, err := json.Marshal(in)
		if err != nil {
			return nil, catalog.Invalid(fmt.Sprintf("/inputSets/%d", i), "the inputs are not JSON: %v", err)
		}
		j := &Job{
			ID: NewID(), Process: sub.Process.ID,
			TwinCollection: sub.Process.Collection, TwinItem: sub.Process.Item, TwinETag: sub.Process.Version,
			Owner: sub.Owner, TwinOwner: sub.Process.Owner, Batch: b.ID, Inputs: inputs, Request: sub.Request,
			Status: StatusAccepted, Progress: -1, MaxAttempts: maxAttempts, Created: now, Updated: now,
		}
		list[i] = j
		events = append(events, NewEvent(j, EventJobAccepted, now))
	}
	if err := bs.CreateBatch(ctx, b, list, events); err != nil {
		return nil, err
	}
	start := list
	if b.MaxParallel > 0 && b.MaxParallel < n {
		start = list[:b.MaxParallel]
	}
	s.enqueueAll(ctx, start)
	b.Counts = map[Status]int{StatusAccepted: n}
	return b, nil
}

// enqueueAll queues jobs, a few at a time; a job that could not be
// queued is left to the reconciler.
func (s *Service) enqueueAll(ctx context.Context, list []*Job) {
	const workers = 8
	ch := make(chan *Job)
	done := make(chan struct{})
	errs := make(chan error, workers)
	for range min(workers, len(list)) {
		go func() {
			var first error
			for j := range ch {
				if err := s.Queue.Enqueue(ctx, j); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	go func() {
		defer close(done)
		for range min(workers, len(list)) {
			if err := <-errs; err != nil {
				if s.Logger != nil {
					s.Logger.Warn("jobs were stored but not queued; the reconciler will queue them", "err", err)
				}
			}
		}
	}()
	for _, j := range list {
		ch <- j
	}
	close(ch)
	<-done
}

// ReleaseBatch queues the held jobs of a batch that may start now that
// some of its jobs ended. Codes: EUNAVAILABLE.
func (s *Service) ReleaseBatch(ctx context.Context, id string) error {
	return ReleaseBatch(ctx, s.Store, s.Queue, id, s.now())
}

// ReleaseBatch takes held jobs of a batch off hold as its slots free up
// and queues them. A job released but not queued (the queue was down) is
// queued by the reconciler.
func ReleaseBatch(ctx context.Context, st Store, q Queue, id string, now time.Time) error {
	bs, ok := st.(BatchStore)
	if !ok || id == "" {
		return nil
	}
	released, err := bs.ReleaseBatch(ctx, id, now)
	if err != nil {
		return err
	}
	for _, j := range released {
		if err := q.Enqueue(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

// DismissBatch dismisses every job of a batch. Codes: ENOTFOUND,
// EUNAVAILABLE.
func (s *Service) DismissBatch(ctx context.Context, id string) (*Batch, error) {
	bs, ok := s.Store.(BatchStore)
	if !ok {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server keeps no batches")
	}
	return bs.DismissBatch(ctx, id, s.now())
}

// BatchVisible reports whether user may see a batch: who submitted it
// and the twin's owner (admins see every batch; the caller decides).
func BatchVisible(b *Batch, user string) bool {
	return user != "" && (b.Owner == user || b.TwinOwner == user)
}

func batchEvent(b *Batch, now time.Time) *catalog.Event {
	payload, _ := json.Marshal(map[string]any{"id": b.ID, "process": b.Process, "total": b.Total, "owner": b.Owner})
	return &catalog.Event{ID: NewID(), Type: EventBatchCreated, Subject: BatchSubject(b.ID), Time: now, Payload: payload}
}
