package jobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
)

// fakeQueue records what is queued, or fails.
type fakeQueue struct {
	mu     sync.Mutex
	queued []string
	down   bool
}

func (q *fakeQueue) Enqueue(_ context.Context, j *jobs.Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.down {
		return catalog.Errorf(catalog.EUNAVAILABLE, "the queue is down")
	}
	q.queued = append(q.queued, j.ID)
	return nil
}

func (q *fakeQueue) EnqueueSave(context.Context, string, string) error { return nil }

func (q *fakeQueue) Notify(context.Context, *jobs.Job, jobs.Status) error { return nil }

func (q *fakeQueue) Requeue(context.Context, *jobs.Job) error { return nil }

func (q *fakeQueue) Lost(context.Context, *jobs.Job) (bool, error) { return false, nil }

func TestSubmit(t *testing.T) {
	t.Parallel()
	st := testdb.SQLite(t)
	q := &fakeQueue{}
	svc := &jobs.Service{Store: st, Queue: q}
	p, err := jobs.ProcessOf(waterTank(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	sub := jobs.Submission{Process: p, Owner: "ana", Inputs: map[string]any{"inflow": 0.5, "outflow": 0.2}, IdempotencyKey: "k1"}
	j, created, err := svc.Submit(t.Context(), sub)
	if err != nil || !created || j.Status != jobs.StatusAccepted || j.MaxAttempts != jobs.DefaultMaxAttempts || j.TwinETag != p.Version {
		t.Fatalf("Submit: %+v, %v, %v", j, created, err)
	}
	if len(q.queued) != 1 || q.queued[0] != j.ID {
		t.Fatalf("queued %v", q.queued)
	}
	// The same request with the same key: the same job, not queued again.
	again, created, err := svc.Submit(t.Context(), sub)
	if err != nil || created || again.ID != j.ID || len(q.queued) != 1 {
		t.Fatalf("repeated Submit: %+v, %v, %v; queued %v", again, created, err, q.queued)
	}
	sub.Inputs = map[string]any{"inflow": 0.7, "outflow": 0.2}
	if _, _, err := svc.Submit(t.Context(), sub); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("the key with another request: %v", err)
	}

	// Wrong inputs: every error listed, nothing stored.
	_, _, err = svc.Submit(t.Context(), jobs.Submission{Process: p, Owner: "ana", Inputs: map[string]any{"inflow": "x"}})
	var ie *jobs.InputsError
	if !errors.As(err, &ie) || catalog.ErrorCode(err) != catalog.EINVALID || len(ie.Errors) != 2 {
		t.Fatalf("invalid inputs: %v", err)
	}
	if list, _ := st.ListJobs(t.Context(), jobs.Query{Limit: 10}); len(list) != 1 {
		t.Fatalf("%d jobs stored, want 1", len(list))
	}

	// The queue is down: the job is stored all the same, for the
	// reconciler to queue.
	q.down = true
	lost, created, err := svc.Submit(t.Context(), jobs.Submission{Process: p, Owner: "bob", Inputs: map[string]any{"inflow": 0.5, "outflow": 0.2}})
	if err != nil || !created {
		t.Fatalf("Submit with the queue down: %v", err)
	}
	pending, err := st.PendingJobs(t.Context(), lost.Created.Add(time.Millisecond), 10)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending %d, %v", len(pending), err)
	}

	d, err := svc.Dismiss(t.Context(), lost.ID)
	if err != nil || d.Status != jobs.StatusDismissed {
		t.Fatalf("Dismiss: %+v, %v", d, err)
	}
	evs, _ := st.ListEvents(t.Context(), 0, 100)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if len(types) != 3 || types[0] != jobs.EventJobAccepted || types[2] != jobs.EventJobDismissed {
		t.Fatalf("events %v", types)
	}
	if !jobs.Visible(j, "ana") || !jobs.Visible(j, p.Owner) || jobs.Visible(j, "eve") {
		t.Fatal("Visible")
	}
}
