package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// JobRuntime is what runs jobs in a server: the queue, the in-process
// worker and the reconciler, and the in-process Redis when there is no
// other.
type JobRuntime struct {
	Service *jobs.Service
	stop    []func()
}

// Close stops what StartJobs started, in reverse order.
func (r *JobRuntime) Close() {
	for i := len(r.stop) - 1; i >= 0; i-- {
		r.stop[i]()
	}
}

// StartJobs sets up job execution on the store: the asynq queue on the
// Redis of --redis-url, or on an in-process Redis (miniredis, its TTLs on
// the real clock) that lives as long as the server; with --workers > 0
// an in-process worker with the local executor, workspaces under the data
// folder; and the reconciler.
func StartJobs(ctx context.Context, cfg config.Server, st catalog.Store, cat *catalog.Service, log *slog.Logger) (*JobRuntime, error) {
	store, ok := st.(jobs.Store)
	if !ok {
		return nil, fmt.Errorf("the store keeps no jobs")
	}
	rt := &JobRuntime{}
	var conn asynq.RedisConnOpt
	if cfg.RedisURL != "" {
		opt, err := asynq.ParseRedisURI(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("--redis-url: %w", err)
		}
		conn = opt
	} else {
		m := miniredis.NewMiniRedis()
		m.ClockTTL(true)
		// A random loopback port: several servers may run side by side.
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("starting the in-process Redis: %w", err)
		}
		rt.stop = append(rt.stop, m.Close)
		conn = asynq.RedisClientOpt{Addr: m.Addr()}
		log.Info("job queue on an in-process Redis; queued jobs do not outlive the server, the reconciler queues them again", "addr", m.Addr())
	}
	allow, err := workers.ParseCallbackAllow(cfg.CallbackAllow)
	if err != nil {
		rt.Close()
		return nil, fmt.Errorf("--callback-allow: %w", err)
	}
	queueName := cfg.JobQueue
	if queueName == "" {
		queueName = workers.DefaultQueue
	}
	queue := workers.NewQueue(conn, queueName)
	rt.stop = append(rt.stop, func() { _ = queue.Close() })
	rt.Service = &jobs.Service{Store: store, Queue: queue, Logger: log}
	if cfg.Workers > 0 {
		runner := &workers.Runner{
			Jobs: store, Catalog: cat, Worker: WorkerName(), Queue: queue,
			Executor: &workers.Local{Root: filepath.Join(cfg.DataDir, "work"), PhaseTimeout: cfg.PhaseTimeout},
		}
		srv := workers.NewServer(conn, runner, workers.ServerConfig{Concurrency: cfg.Workers, Queues: workers.QueuesOf(queueName), Logger: AsynqLogger{Log: log},
			Callbacks: workers.CallbackPolicy{Allow: allow}})
		if err := srv.Start(); err != nil {
			rt.Close()
			return nil, fmt.Errorf("starting the worker: %w", err)
		}
		rt.stop = append(rt.stop, srv.Shutdown)
		log.Info("worker started", "concurrency", cfg.Workers, "worker", runner.Worker)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// The interval is also the age: a job untouched for one interval is
	// looked at on the next pass.
	rec := &workers.Reconciler{Jobs: store, Queue: queue, Log: log, Interval: cfg.ReconcileInterval, Age: cfg.ReconcileInterval}
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(rctx) }()
	rt.stop = append(rt.stop, func() { cancel(); <-done })
	return rt, nil
}

// WorkerName names this process in the jobs it claims.
func WorkerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// AsynqLogger sends asynq's log lines to the server's log.
type AsynqLogger struct{ Log *slog.Logger }

func (l AsynqLogger) Debug(args ...any) { l.Log.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l AsynqLogger) Info(args ...any)  { l.Log.Info(fmt.Sprint(args...), "component", "asynq") }
func (l AsynqLogger) Warn(args ...any)  { l.Log.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l AsynqLogger) Error(args ...any) { l.Log.Error(fmt.Sprint(args...), "component", "asynq") }
func (l AsynqLogger) Fatal(args ...any) { l.Log.Error(fmt.Sprint(args...), "component", "asynq") }
