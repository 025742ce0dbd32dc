package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// TaskRunJob is the type of the asynq task that runs a job; its payload
// is the job id only, and the job id is its task id.
const TaskRunJob = "twinstac:job:run"

// DefaultQueue is the asynq queue jobs go to.
const DefaultQueue = "jobs"

// A job queue is three asynq queues, served by weighted priority: name
// +"-critical" for what a caller waits on (synchronous runs, saves,
// callbacks), name for single runs, and name+"-low" for the jobs of
// batches, so that a large sweep does not hold up interactive runs.
const (
	criticalSuffix = "-critical"
	lowSuffix      = "-low"
)

// Priorities are the weights of the three queues of a job queue: of ten
// tasks a busy worker takes, about six critical, three single runs and
// one batch job, as long as each queue has work.
var Priorities = map[string]int{criticalSuffix: 6, "": 3, lowSuffix: 1}

// QueuesOf returns the asynq queues of the job queue name with their
// priorities, as a worker serves them.
func QueuesOf(name string) map[string]int {
	out := make(map[string]int, len(Priorities))
	for suffix, w := range Priorities {
		out[name+suffix] = w
	}
	return out
}

// queueOf is the asynq queue of a job: critical for a synchronous run,
// low for a batch's job.
func (q *Queue) queueOf(j *jobs.Job) string {
	if j.Batch != "" {
		return q.queue + lowSuffix
	}
	var req Request
	if len(j.Request) > 0 && json.Unmarshal(j.Request, &req) == nil && req.Sync {
		return q.queue + criticalSuffix
	}
	return q.queue
}

// TaskSaveJob is the type of the asynq task that saves the state a
// finished job left into a snapshot item; its task id is the item's.
const TaskSaveJob = "twinstac:job:save"

type runPayload struct {
	Job string `json:"job"`
	// Done is the attempts the job had before this task (a task queued
	// again for a job whose task was lost): the task's n-th try is
	// attempt Done+n.
	Done int `json:"done,omitempty"`
}

type savePayload struct {
	Job      string `json:"job"`
	Snapshot string `json:"snapshot"`
}

// Queue is the jobs.Queue on asynq.
type Queue struct {
	client    *asynq.Client
	inspector *asynq.Inspector
	queue     string
	// MaxRun bounds the run of a job's task, all phases of an attempt
	// together (DefaultMaxRun unless set).
	MaxRun time.Duration
}

// DefaultMaxRun is how long a job's attempt may run at most by default.
const DefaultMaxRun = 24 * time.Hour

var _ jobs.Queue = (*Queue)(nil)

// NewQueue returns a queue on the Redis that conn names, for the asynq
// queue name (DefaultQueue for "").
func NewQueue(conn asynq.RedisConnOpt, name string) *Queue {
	if name == "" {
		name = DefaultQueue
	}
	return &Queue{client: asynq.NewClient(conn), inspector: asynq.NewInspector(conn), queue: name, MaxRun: DefaultMaxRun}
}

// Close closes the queue's connections.
func (q *Queue) Close() error {
	return errors.Join(q.client.Close(), q.inspector.Close())
}

// Enqueue implements jobs.Queue. The task keeps the job's attempts: the
// job's first run and its retries (MaxAttempts in all).
func (q *Queue) Enqueue(ctx context.Context, j *jobs.Job) error {
	return q.enqueue(ctx, j, 0)
}

// Requeue implements jobs.Queue: a new task for the attempts a running
// job has left, in place of its lost one.
func (q *Queue) Requeue(ctx context.Context, j *jobs.Job) error {
	if j.Attempt >= j.MaxAttempts {
		return catalog.Errorf(catalog.ECONFLICT, "job %s has no attempt left", j.ID)
	}
	// An ended task of the job keeps its id until it expires: it goes.
	if err := q.inspector.DeleteTask(q.queueOf(j), j.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return catalog.Errorf(catalog.EUNAVAILABLE, "the job queue is unavailable: %v", err)
	}
	return q.enqueue(ctx, j, j.Attempt)
}

func (q *Queue) enqueue(ctx context.Context, j *jobs.Job, done int) error {
	payload, _ := json.Marshal(runPayload{Job: j.ID, Done: done})
	t := asynq.NewTask(TaskRunJob, payload,
		asynq.TaskID(j.ID), asynq.Queue(q.queueOf(j)), asynq.MaxRetry(max(j.MaxAttempts-done-1, 0)),
		// The phases have timeouts of their own; this bounds the whole
		// task (asynq's default would stop a run at 30 minutes). A dead
		// worker is told by the task's lease, not by this.
		asynq.Timeout(q.MaxRun))
	_, err := q.client.EnqueueContext(ctx, t)
	if err == nil || errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return catalog.Errorf(catalog.EUNAVAILABLE, "the job queue is unavailable: %v", err)
}

// EnqueueSave implements jobs.Queue.
func (q *Queue) EnqueueSave(ctx context.Context, jobID, ref string) error {
	payload, _ := json.Marshal(savePayload{Job: jobID, Snapshot: ref})
	t := asynq.NewTask(TaskSaveJob, payload, asynq.TaskID("save:"+ref), asynq.Queue(q.queue+criticalSuffix), asynq.MaxRetry(5),
		asynq.Timeout(q.MaxRun))
	_, err := q.client.EnqueueContext(ctx, t)
	if err == nil || errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return catalog.Errorf(catalog.EUNAVAILABLE, "the job queue is unavailable: %v", err)
}

// Lost implements jobs.Queue: a running job is lost when its task is
// gone or archived (its retries spent).
func (q *Queue) Lost(ctx context.Context, j *jobs.Job) (bool, error) {
	info, err := q.inspector.GetTaskInfo(q.queueOf(j), j.ID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		// A Redis that lost its data (an in-process one after a
		// restart) has no queue at all.
		return true, nil
	case err != nil:
		return false, catalog.Errorf(catalog.EUNAVAILABLE, "the job queue is unavailable: %v", err)
	}
	return info.State == asynq.TaskStateArchived || info.State == asynq.TaskStateCompleted, nil
}

// Server is a worker: an asynq server whose handler runs jobs with a
// Runner.
type Server struct {
	srv       *asynq.Server
	runner    *Runner
	callbacks *http.Client
}

// ServerConfig tunes a worker.
type ServerConfig struct {
	// Concurrency is how many jobs run at once (default 2).
	Concurrency int
	// Queues are the asynq queues served, with their priorities
	// (default: QueuesOf(DefaultQueue)).
	Queues map[string]int
	// ShutdownTimeout is how long a stopping worker waits for running
	// jobs before it gives their tasks back to the queue (default 10 s).
	ShutdownTimeout time.Duration
	// TaskCheckInterval is how often an idle worker looks for due tasks
	// (default 10 ms: asynq's 1 s, or 100 ms, adds up to that much to a
	// job's start on an idle worker; an idle poll is one small Redis
	// script).
	TaskCheckInterval time.Duration
	// RetryDelay is the delay before the n-th retry of an attempt that
	// could not run (default: 1 s doubling, at most 1 minute).
	RetryDelay func(n int) time.Duration
	// Logger receives asynq's own log lines (default: asynq's).
	Logger asynq.Logger
	// Callbacks says which addresses subscriber callbacks may reach.
	Callbacks CallbackPolicy
}

// NewServer returns a worker that runs jobs with runner.
func NewServer(conn asynq.RedisConnOpt, runner *Runner, c ServerConfig) *Server {
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if len(c.Queues) == 0 {
		c.Queues = QueuesOf(DefaultQueue)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.TaskCheckInterval <= 0 {
		c.TaskCheckInterval = 10 * time.Millisecond
	}
	delay := c.RetryDelay
	if delay == nil {
		delay = func(n int) time.Duration { return min(time.Second<<min(n, 6), time.Minute) }
	}
	srv := asynq.NewServer(conn, asynq.Config{
		Concurrency:       c.Concurrency,
		Queues:            c.Queues,
		ShutdownTimeout:   c.ShutdownTimeout,
		TaskCheckInterval: c.TaskCheckInterval,
		RetryDelayFunc:    func(n int, _ error, _ *asynq.Task) time.Duration { return delay(n) },
		Logger:            c.Logger,
	})
	return &Server{srv: srv, runner: runner, callbacks: c.Callbacks.Client(10 * time.Second)}
}

// Start starts the worker; Shutdown stops it.
func (s *Server) Start() error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TaskRunJob, s.handle)
	mux.HandleFunc(TaskSaveJob, s.handleSave)
	mux.HandleFunc(TaskCallback, s.handleCallback)
	return s.srv.Start(mux)
}

// Shutdown stops taking tasks and waits up to the shutdown timeout for
// the running ones; those still running are stopped and their tasks go
// back to the queue, to run again as a new attempt.
func (s *Server) Shutdown() { s.srv.Shutdown() }

func (s *Server) handle(ctx context.Context, t *asynq.Task) error {
	var p runPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.Job == "" {
		return fmt.Errorf("%w: payload %q is not a job", asynq.SkipRetry, t.Payload())
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	attempt := p.Done + retried + 1
	err := s.runner.Run(ctx, p.Job, attempt)
	if err != nil && retried >= maxRetry {
		// The last attempt could not run: the job ends failed rather
		// than stay running with its task archived.
		return s.runner.GiveUp(context.WithoutCancel(ctx), p.Job, attempt, err)
	}
	return err
}

func (s *Server) handleSave(ctx context.Context, t *asynq.Task) error {
	var p savePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.Job == "" || p.Snapshot == "" {
		return fmt.Errorf("%w: payload %q is not a save", asynq.SkipRetry, t.Payload())
	}
	err := s.runner.Save(ctx, p.Job, p.Snapshot)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if err != nil && retried >= maxRetry {
		// The last try: the snapshot says why it was not made.
		if c, i, ok := jobs.ParseRef(p.Snapshot); ok {
			_ = s.runner.failSave(context.WithoutCancel(ctx), c, i, "the save could not be made: "+err.Error())
		}
		return nil
	}
	return err
}

func (s *Server) handleCallback(ctx context.Context, t *asynq.Task) error {
	var p callbackPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.URL == "" {
		return fmt.Errorf("%w: payload %q is not a callback", asynq.SkipRetry, t.Payload())
	}
	return deliver(ctx, s.callbacks, p)
}
