package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/server"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

type benchJobs struct {
	databaseURL, redisURL string
	jobs, concurrency     int
	submitters, runs      int
	latency               int
	keep                  bool
	cpuProfile            string
}

func newBenchJobs(stdout, stderr io.Writer) *cobra.Command {
	b := benchJobs{jobs: 10000, concurrency: 200, submitters: 8, runs: 3, latency: 200}
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Measure the job pipeline: throughput, and latency to running",
		Long: `Measure the job pipeline, each run on a new, empty database:

- throughput: --jobs jobs of a no-op twin (an executor that starts no
  process, for this benchmark only) submitted as one batch through the
  job service and run by a worker of --concurrency (a no-op job holds
  nothing while it runs, so what fills the pipeline is how many are in
  flight; the worker writes the claims, result items and ends of the jobs
  in flight together), from the submission
  until no job is left unfinished: jobs/s. Every job is
  stored, queued, claimed, published as a result item and finished, as a
  real one is. Then asynq alone on the same Redis, same concurrency,
  tasks enqueued by --submitters goroutines, with a handler that does nothing: tasks/s, and our figure
  as a share of it.
- latency: --latency single jobs of a one-line shell twin, one at a time
  on an idle system with the local executor: submit → running (the job's
  start less its creation) and the executor's overhead (from the start to
  the first line of the execute phase), p50 and p95.

Without --database-url the runs use SQLite in a temporary folder; without
--redis-url an in-process Redis.`,
		Example: `  twinstac bench jobs --database-url 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' --redis-url redis://127.0.0.1:6379/0`,
		RunE:    func(cmd *cobra.Command, _ []string) error { return b.run(cmd.Context(), stdout, stderr) },
	}
	f := cmd.Flags()
	f.StringVar(&b.databaseURL, "database-url", "", "PostgreSQL URL of a database to create the run databases from; empty: SQLite")
	f.StringVar(&b.redisURL, "redis-url", "", "Redis URL; empty: an in-process Redis")
	f.IntVar(&b.jobs, "jobs", b.jobs, "jobs per throughput run")
	f.IntVar(&b.concurrency, "concurrency", b.concurrency, "jobs the worker runs at once")
	f.IntVar(&b.submitters, "submitters", b.submitters, "goroutines that submit")
	f.IntVar(&b.runs, "runs", b.runs, "number of runs")
	f.IntVar(&b.latency, "latency", b.latency, "single jobs timed per run for the latency figures (0: none)")
	f.BoolVar(&b.keep, "keep", false, "keep the run databases")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the throughput runs to the file")
	return cmd
}

// noopExecutor succeeds at once without starting a process.
type noopExecutor struct{ dir string }

func (e noopExecutor) Run(context.Context, *workers.Run) (*workers.Outcome, error) {
	now := time.Now()
	return &workers.Outcome{Dir: e.dir, Succeeded: true,
		Phases: []workers.PhaseResult{{Phase: workers.PhaseExecute, Started: now, Ended: now}}}, nil
}

func (noopExecutor) Cleanup(*workers.Outcome) error { return nil }

// jobsStore is a store that keeps the catalog and the jobs.
type jobsStore interface {
	catalog.Store
	jobs.Store
}

type benchJobsEnv struct {
	store   jobsStore
	cat     *catalog.Service
	conn    asynq.RedisConnOpt
	work    string
	cleanup []func()
}

func (e *benchJobsEnv) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
}

func (b *benchJobs) env(ctx context.Context, run int) (*benchJobsEnv, error) {
	t, err := (&benchIngest{databaseURL: b.databaseURL, keep: b.keep}).newTarget(ctx, run)
	if err != nil {
		return nil, err
	}
	e := &benchJobsEnv{cleanup: []func(){t.cleanup}, work: filepath.Join(t.dataDir, "work")}
	cfg := config.Defaults()
	cfg.DatabaseURL, cfg.DataDir = t.databaseURL, t.dataDir
	st, err := server.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		e.close()
		return nil, err
	}
	e.cleanup = append(e.cleanup, func() { _ = st.Close() })
	js, ok := st.(jobsStore)
	if !ok {
		e.close()
		return nil, fmt.Errorf("the store keeps no jobs")
	}
	e.store = js
	blobs, err := blob.NewDir(filepath.Join(t.dataDir, "blobs"))
	if err != nil {
		e.close()
		return nil, err
	}
	e.cat = &catalog.Service{Store: e.store, Blobs: blobs, CollectionCacheTTL: time.Minute}
	if b.redisURL != "" {
		opt, err := asynq.ParseRedisURI(b.redisURL)
		if err != nil {
			e.close()
			return nil, err
		}
		e.conn = opt
	} else {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			e.close()
			return nil, err
		}
		e.cleanup = append(e.cleanup, m.Close)
		e.conn = asynq.RedisClientOpt{Addr: m.Addr()}
	}
	return e, nil
}

// twin publishes a twin whose execute script is script.
func (e *benchJobsEnv) twin(ctx context.Context, id, script string) (*jobs.Process, error) {
	if _, err := e.cat.GetCollection(ctx, "bench"); err != nil {
		raw := `{"type":"Collection","stac_version":"1.1.0","id":"bench","description":"benchmark twins","license":"other",
			"extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}},"links":[]}`
		if _, err := e.cat.CreateCollection(ctx, []byte(raw), "bench"); err != nil {
			return nil, err
		}
	}
	doc := fmt.Sprintf(`{"type":"Feature","stac_version":"1.1.0","id":%q,"geometry":null,"links":[],
		"properties":{"datetime":"2026-01-01T00:00:00Z","dt:kind":"digital-twin","dt:parameters":{"type":"object","properties":{"n":{"type":"integer"}}}},
		"assets":{}}`, id)
	if _, err := e.cat.CreateItem(ctx, "bench", []byte(doc)); err != nil {
		return nil, err
	}
	if _, err := e.cat.PutAsset(ctx, "bench", id, workers.PhaseExecute, "text/x-shellscript", strings.NewReader(script), nil, catalog.Quota{}); err != nil {
		return nil, err
	}
	if _, err := e.cat.PatchItem(ctx, "bench", id, []byte(`{"assets":{"execute":{"roles":["lifecycle"]}}}`), nil); err != nil {
		return nil, err
	}
	it, err := e.cat.MoveItem(ctx, "bench", id, catalog.StatePublished, "", nil)
	if err != nil {
		return nil, err
	}
	return jobs.ProcessOf(it)
}

func (b *benchJobs) run(ctx context.Context, stdout, stderr io.Writer) error {
	var ours, alone []float64
	var toRunning, overhead []float64
	quiet := server.AsynqLogger{Log: slog.New(slog.DiscardHandler)}
	for run := 1; run <= b.runs; run++ {
		e, err := b.env(ctx, run)
		if err != nil {
			return err
		}
		if b.cpuProfile != "" && run == 1 {
			pf, err := os.Create(b.cpuProfile)
			if err != nil {
				return err
			}
			defer pf.Close()
			if err := pprof.StartCPUProfile(pf); err != nil {
				return err
			}
		}
		rate, err := b.throughput(ctx, e, run, quiet)
		if b.cpuProfile != "" && run == 1 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			e.close()
			return err
		}
		ours = append(ours, rate)
		base, err := b.asynqAlone(ctx, e, run, quiet)
		if err != nil {
			e.close()
			return err
		}
		alone = append(alone, base)
		fmt.Fprintf(stderr, "run %d: %d jobs at %.0f jobs/s; asynq alone %.0f tasks/s (%.1f %%)\n", run, b.jobs, rate, base, 100*rate/base)
		if b.latency > 0 {
			r, o, err := b.latencies(ctx, e, run, quiet)
			if err != nil {
				e.close()
				return err
			}
			toRunning, overhead = append(toRunning, r...), append(overhead, o...)
			slices.Sort(r)
			slices.Sort(o)
			fmt.Fprintf(stderr, "run %d: submit → running p50 %.2f ms p95 %.2f ms; executor overhead p50 %.2f ms p95 %.2f ms\n",
				run, pct(r, 50), pct(r, 95), pct(o, 50), pct(o, 95))
		}
		e.close()
	}
	slices.Sort(ours)
	slices.Sort(alone)
	fmt.Fprintf(stdout, "throughput, %d runs of %d jobs, concurrency %d: median %.0f jobs/s (min %.0f, max %.0f); asynq alone median %.0f tasks/s (min %.0f, max %.0f); ours %.1f %% of it\n",
		b.runs, b.jobs, b.concurrency, median(ours), ours[0], ours[len(ours)-1], median(alone), alone[0], alone[len(alone)-1], 100*median(ours)/median(alone))
	if len(toRunning) > 0 {
		slices.Sort(toRunning)
		slices.Sort(overhead)
		fmt.Fprintf(stdout, "latency, %d single jobs: submit → running p50 %.2f ms p95 %.2f ms; executor overhead (start → first line of execute) p50 %.2f ms p95 %.2f ms\n",
			len(toRunning), pct(toRunning, 50), pct(toRunning, 95), pct(overhead, 50), pct(overhead, 95))
	}
	return nil
}

// waitFinal waits until no job is accepted or running.
func waitFinal(ctx context.Context, st jobs.Store, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		left, err := st.ListJobs(ctx, jobs.Query{Statuses: []jobs.Status{jobs.StatusAccepted, jobs.StatusRunning}, Limit: 1})
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jobs are still unfinished after %s (%s)", limit, left[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *benchJobs) throughput(ctx context.Context, e *benchJobsEnv, run int, logger asynq.Logger) (float64, error) {
	p, err := e.twin(ctx, "noop", "#!/bin/sh\n")
	if err != nil {
		return 0, err
	}
	queue := fmt.Sprintf("bench-%d-%d", os.Getpid(), run)
	q := workers.NewQueue(e.conn, queue)
	defer q.Close()
	svc := &jobs.Service{Store: e.store, Queue: q}
	runner := &workers.Runner{Jobs: e.store, Catalog: e.cat, Executor: noopExecutor{dir: e.work}, Worker: "bench"}
	srv := workers.NewServer(e.conn, runner, workers.ServerConfig{Concurrency: b.concurrency, Queues: workers.QueuesOf(queue), Logger: logger})
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	// One batch, as a what-if sweep is submitted.
	sets := make([]map[string]any, b.jobs)
	for i := range sets {
		sets[i] = map[string]any{"n": i}
	}
	start := time.Now()
	if _, err := svc.SubmitBatch(ctx, jobs.BatchSubmission{Process: p, Owner: "bench", InputSets: sets,
		ResultsCollection: workers.ResultsCollection(p.Collection, p.Item)}); err != nil {
		return 0, err
	}
	if err := waitFinal(ctx, e.store, 10*time.Minute); err != nil {
		return 0, err
	}
	took := time.Since(start)
	failed, err := e.store.ListJobs(ctx, jobs.Query{Statuses: []jobs.Status{jobs.StatusFailed, jobs.StatusDismissed}, Limit: 1})
	if err != nil {
		return 0, err
	}
	if len(failed) > 0 {
		return 0, fmt.Errorf("a benchmark job did not succeed: %s: %s", failed[0], failed[0].Message)
	}
	return float64(b.jobs) / took.Seconds(), nil
}

// submitAll calls submit b.jobs times from b.submitters goroutines.
func (b *benchJobs) submitAll(submit func() error) error {
	var (
		next int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	for range b.submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) <= int64(b.jobs) {
				if err := submit(); err != nil {
					mu.Lock()
					ferr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return ferr
}

func (b *benchJobs) asynqAlone(ctx context.Context, e *benchJobsEnv, run int, logger asynq.Logger) (float64, error) {
	queue := fmt.Sprintf("bench-alone-%d-%d", os.Getpid(), run)
	client := asynq.NewClient(e.conn)
	defer client.Close()
	var done atomic.Int64
	all := make(chan struct{})
	srv := asynq.NewServer(e.conn, asynq.Config{Concurrency: b.concurrency, Queues: map[string]int{queue: 1},
		TaskCheckInterval: 100 * time.Millisecond, Logger: logger})
	mux := asynq.NewServeMux()
	mux.HandleFunc("noop", func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(b.jobs) {
			close(all)
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	start := time.Now()
	var n atomic.Int64
	if err := b.submitAll(func() error {
		id := fmt.Sprintf("%s-%d", queue, n.Add(1))
		_, err := client.EnqueueContext(ctx, asynq.NewTask("noop", []byte(`{"job":"`+id+`"}`), asynq.TaskID(id), asynq.Queue(queue)))
		return err
	}); err != nil {
		return 0, err
	}
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		return 0, fmt.Errorf("asynq ran %d of %d tasks in 10 minutes", done.Load(), b.jobs)
	}
	return float64(b.jobs) / time.Since(start).Seconds(), nil
}

func (b *benchJobs) latencies(ctx context.Context, e *benchJobsEnv, run int, logger asynq.Logger) (toRunning, overhead []float64, err error) {
	p, err := e.twin(ctx, "echo", "#!/bin/sh\necho first line\n")
	if err != nil {
		return nil, nil, err
	}
	queue := fmt.Sprintf("bench-latency-%d-%d", os.Getpid(), run)
	q := workers.NewQueue(e.conn, queue)
	defer q.Close()
	svc := &jobs.Service{Store: e.store, Queue: q}
	runner := &workers.Runner{Jobs: e.store, Catalog: e.cat, Worker: "bench", Executor: &workers.Local{Root: e.work, PhaseTimeout: time.Minute}}
	srv := workers.NewServer(e.conn, runner, workers.ServerConfig{Concurrency: 1, Queues: workers.QueuesOf(queue), Logger: logger})
	if err := srv.Start(); err != nil {
		return nil, nil, err
	}
	defer srv.Shutdown()
	for range b.latency {
		j, _, err := svc.Submit(ctx, jobs.Submission{Process: p, Owner: "bench", Inputs: map[string]any{}})
		if err != nil {
			return nil, nil, err
		}
		if err := waitFinal(ctx, e.store, time.Minute); err != nil {
			return nil, nil, err
		}
		j, err = e.store.GetJob(ctx, j.ID)
		if err != nil {
			return nil, nil, err
		}
		if j.Status != jobs.StatusSuccessful || j.Started == nil {
			return nil, nil, fmt.Errorf("%s: %s", j, j.Message)
		}
		toRunning = append(toRunning, float64(j.Started.Sub(j.Created).Microseconds())/1000)
		lines, err := e.store.ReadLog(ctx, j.ID, 0, 100)
		if err != nil {
			return nil, nil, err
		}
		for _, l := range lines {
			if l.Phase == workers.PhaseExecute && l.Stream == "stdout" {
				overhead = append(overhead, float64(l.Time.Sub(*j.Started).Microseconds())/1000)
				break
			}
		}
	}
	if len(overhead) != len(toRunning) {
		return nil, nil, fmt.Errorf("%d of %d jobs logged their execute line", len(overhead), len(toRunning))
	}
	return toRunning, overhead, nil
}
