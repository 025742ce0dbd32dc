package workers

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Reconciler keeps the queue and the job rows in step: a job stored but
// not queued (the process died between the two) is queued, and a job the
// store holds as running whose task is gone (its worker died on the last
// attempt) is ended, so no accepted job is lost and none stays running
// forever.
type Reconciler struct {
	Jobs  jobs.Store
	Queue jobs.Queue
	// Interval is the time between passes (default 30 s); Age is how long
	// a job must be untouched before a pass looks at it (default 30 s).
	Interval, Age time.Duration
	Now           func() time.Time
	Log           *slog.Logger
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Run makes passes until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil && r.Log != nil {
			r.Log.Warn("reconciling jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass makes one pass and returns how many jobs it queued or ended.
func (r *Reconciler) Pass(ctx context.Context) (int, error) {
	age := r.Age
	if age <= 0 {
		age = 30 * time.Second
	}
	list, err := r.Jobs.PendingJobs(ctx, r.now().Add(-age), catalog.MaxPageSize)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range list {
		switch j.Status {
		case jobs.StatusAccepted:
			if err := r.Queue.Enqueue(ctx, j); err != nil {
				return n, err
			}
			n++
		case jobs.StatusRunning:
			lost, err := r.Queue.Lost(ctx, j)
			if err != nil {
				return n, err
			}
			if !lost {
				continue
			}
			// Its worker died with the task (a Redis that lost its data):
			// the attempts it has left run from a new task.
			if !j.DismissRequested && j.Attempt < j.MaxAttempts {
				if err := r.Queue.Requeue(ctx, j); err == nil {
					n++
					continue
				} else if catalog.ErrorCode(err) != catalog.ECONFLICT {
					return n, err
				}
			}
			f := jobs.Finish{Status: jobs.StatusFailed, Message: "the worker running the job was lost and its attempts are spent"}
			if j.DismissRequested {
				f = jobs.Finish{Status: jobs.StatusDismissed, Message: "dismissed"}
			} else {
				f.Exception = exception(f.Message)
			}
			done, err := r.Jobs.FinishJob(ctx, j.ID, j.Attempt, f, r.now(), jobs.NewEvent(j, jobs.EventType(f.Status), r.now()))
			if err != nil && catalog.ErrorCode(err) != catalog.ECONFLICT {
				return n, err
			}
			if err == nil {
				_ = r.Queue.Notify(ctx, done, f.Status)
			}
			n++
		}
	}
	// Batches whose held jobs may start: a worker that ended one of
	// their jobs died before it released the next.
	if bs, ok := r.Jobs.(jobs.BatchStore); ok {
		held, err := bs.HeldBatches(ctx, catalog.MaxPageSize)
		if err != nil {
			return n, err
		}
		for _, id := range held {
			if err := jobs.ReleaseBatch(ctx, r.Jobs, r.Queue, id, r.now()); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// exception is the OGC exception of a failed job.
func exception(detail string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"type": "https://twinstac.org/problems/job-failed", "title": "the job failed", "status": 500, "detail": storableText(detail),
	})
	return b
}
