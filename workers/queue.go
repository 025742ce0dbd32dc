package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// TaskSaveJob is the type of the asynq task that saves the state a
// finished job left into a snapshot item; its task id is the item's.
const TaskSaveJob = "twinstac:job:save"

type runPayload struct {
	Job string `json:"job"`
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
	payload, _ := json.Marshal(runPayload{Job: j.ID})
	t := asynq.NewTask(TaskRunJob, payload,
		asynq.TaskID(j.ID), asynq.Queue(q.queue), asynq.MaxRetry(max(j.MaxAttempts-1, 0)),
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
	t := asynq.NewTask(TaskSaveJob, payload, asynq.TaskID("save:"+ref), asynq.Queue(q.queue), asynq.MaxRetry(5),
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
	info, err := q.inspector.GetTaskInfo(q.queue, j.ID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		return true, nil
	case err != nil:
		return false, catalog.Errorf(catalog.EUNAVAILABLE, "the job queue is unavailable: %v", err)
	}
	return info.State == asynq.TaskStateArchived || info.State == asynq.TaskStateCompleted, nil
}

// Server is a worker: an asynq server whose handler runs jobs with a
// Runner.
type Server struct {
	srv    *asynq.Server
	runner *Runner
}

// ServerConfig tunes a worker.
type ServerConfig struct {
	// Concurrency is how many jobs run at once (default 2).
	Concurrency int
	// Queues are the asynq queues served, with their priorities
	// (default: DefaultQueue only).
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
}

// NewServer returns a worker that runs jobs with runner.
func NewServer(conn asynq.RedisConnOpt, runner *Runner, c ServerConfig) *Server {
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if len(c.Queues) == 0 {
		c.Queues = map[string]int{DefaultQueue: 1}
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
	return &Server{srv: srv, runner: runner}
}

// Start starts the worker; Shutdown stops it.
func (s *Server) Start() error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TaskRunJob, s.handle)
	mux.HandleFunc(TaskSaveJob, s.handleSave)
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
	err := s.runner.Run(ctx, p.Job, retried+1)
	if err != nil && retried >= maxRetry {
		// The last attempt could not run: the job ends failed rather
		// than stay running with its task archived.
		return s.runner.GiveUp(context.WithoutCancel(ctx), p.Job, retried+1, err)
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
