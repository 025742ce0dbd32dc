package jobs

import "context"

// Queue hands jobs to workers. Enqueueing is idempotent: a job already
// queued (or running) is not queued twice.
type Queue interface {
	// Enqueue queues a job's run. Codes: EUNAVAILABLE.
	Enqueue(ctx context.Context, j *Job) error
	// EnqueueSave queues the save of a job that is not running into the
	// snapshot item ref (<collection>/<item>). Codes: EUNAVAILABLE.
	EnqueueSave(ctx context.Context, jobID, ref string) error
	// Notify queues the callbacks of a job's change to status st, to
	// the subscriber URIs of its request, if it has any.
	// Codes: EUNAVAILABLE.
	Notify(ctx context.Context, j *Job, st Status) error
	// Requeue queues a new task for a running job whose task was lost,
	// for the attempts it has left. Codes: ECONFLICT (none left),
	// EUNAVAILABLE.
	Requeue(ctx context.Context, j *Job) error
	// Lost reports whether a job the store holds as running has no task
	// left that could still run it (its worker died on its last attempt,
	// or the task is gone). Codes: EUNAVAILABLE.
	Lost(ctx context.Context, j *Job) (bool, error)
}
