package workers_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// redisConns returns the Redis servers the queue tests run on: an
// in-process one (miniredis, as the embedded default uses) and the real
// one of TWINSTAC_TEST_REDIS_URL.
func redisConns(t *testing.T) map[string]asynq.RedisConnOpt {
	t.Helper()
	mr := miniredis.RunT(t)
	conns := map[string]asynq.RedisConnOpt{"miniredis": asynq.RedisClientOpt{Addr: mr.Addr()}}
	url := os.Getenv("TWINSTAC_TEST_REDIS_URL")
	if url == "" && os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatal("TWINSTAC_TEST_REDIS_URL is not set, and TWINSTAC_TEST_REQUIRE_SERVICES=1 requires it")
	}
	if url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		conns["redis"] = asynq.RedisClientOpt{Addr: opt.Addr, DB: opt.DB, Password: opt.Password}
	}
	return conns
}

// waitJob waits until a job is final and returns it.
func waitJob(t *testing.T, s *runnerSetup, id string) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	testdb.WaitFor(t, 30*time.Second, "job "+id+" did not end", func() bool {
		j = s.job(t, id)
		return j.Status.Final()
	})
	return j
}

// setupQueue is setupRunner with a queue of the test's own.
func setupQueue(t *testing.T, conn asynq.RedisConnOpt) (*runnerSetup, *workers.Queue, string) {
	t.Helper()
	s := setupRunner(t)
	queue := "jobs-" + t.Name()
	q := workers.NewQueue(conn, queue)
	t.Cleanup(func() { _ = q.Close() })
	return s, q, queue
}

// startWorker starts a worker on a queue, stopped when the test ends.
func startWorker(t *testing.T, conn asynq.RedisConnOpt, s *runnerSetup, queue string) {
	t.Helper()
	srv := workers.NewServer(conn, s.runner, workers.ServerConfig{Concurrency: 2, Queues: workers.QueuesOf(queue)})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

func TestQueueRunsJobs(t *testing.T) {
	t.Parallel()
	for name, conn := range redisConns(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, q, queue := setupQueue(t, conn)
			startWorker(t, conn, s, queue)
			var ids []string
			for i := range 3 {
				j := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 5 + i})
				if err := q.Enqueue(t.Context(), j); err != nil {
					t.Fatal(err)
				}
				// Queueing a job again does nothing.
				if err := q.Enqueue(t.Context(), j); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, j.ID)
			}
			for _, id := range ids {
				if j := waitJob(t, s, id); j.Status != jobs.StatusSuccessful || j.Attempt != 1 {
					t.Fatalf("job %+v", j)
				}
			}
			// The job events are in the outbox: accepted jobs are the
			// submitter's to record; running and successful the worker's.
			evs, err := s.store.ListEvents(t.Context(), 0, catalog.MaxPageSize)
			if err != nil {
				t.Fatal(err)
			}
			n := map[string]int{}
			for _, e := range evs {
				n[e.Type]++
			}
			if n[jobs.EventJobRunning] != 3 || n[jobs.EventJobSuccessful] != 3 {
				t.Fatalf("job events %v", n)
			}
		})
	}
}

func TestReconciler(t *testing.T) {
	t.Parallel()
	for name, conn := range redisConns(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, q, queue := setupQueue(t, conn)
			rec := &workers.Reconciler{Jobs: s.store, Queue: q, Age: time.Nanosecond}

			// Stored but never queued (the server died in between): a
			// pass queues it and a worker runs it.
			orphan := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 3})
			// Claimed by a worker that died on its last attempt, with no
			// task left; and one whose dismissal was asked meanwhile.
			lost := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2})
			gone := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2})
			for _, j := range []*jobs.Job{lost, gone} {
				if _, err := s.store.ClaimJob(t.Context(), j.ID, 3, "dead", time.Now().UTC(), nil); err != nil {
					t.Fatal(err)
				}
			}
			// Claimed on its first attempt by a worker that died with its
			// task (the Redis lost its data): it runs again as attempt 2.
			retried := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 2})
			if _, err := s.store.ClaimJob(t.Context(), retried.ID, 1, "dead", time.Now().UTC(), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.store.DismissJob(t.Context(), gone.ID, time.Now().UTC(), nil); err != nil {
				t.Fatal(err)
			}
			n, err := rec.Pass(t.Context())
			if err != nil || n != 4 {
				t.Fatalf("Pass: %d, %v; want 4 jobs queued or ended", n, err)
			}
			if j := s.job(t, lost.ID); j.Status != jobs.StatusFailed || j.Exception == nil {
				t.Fatalf("lost job %+v", j)
			}
			if j := s.job(t, gone.ID); j.Status != jobs.StatusDismissed {
				t.Fatalf("lost job being dismissed %+v", j)
			}
			startWorker(t, conn, s, queue)
			if j := waitJob(t, s, orphan.ID); j.Status != jobs.StatusSuccessful {
				t.Fatalf("orphan job %+v", j)
			}
			if j := waitJob(t, s, retried.ID); j.Status != jobs.StatusSuccessful || j.Attempt != 2 {
				t.Fatalf("job whose task was lost: %s at attempt %d (%s)", j.Status, j.Attempt, j.Message)
			}
			// A running job whose task is alive is left alone.
			if n, err := rec.Pass(t.Context()); err != nil || n != 0 {
				t.Fatalf("second pass: %d, %v", n, err)
			}
		})
	}
}

// TestQueuePriorities: a synchronous run goes to the critical queue, a
// batch's job to the low one, others to the job queue; a worker serves
// all three, weighted.
func TestQueuePriorities(t *testing.T) {
	t.Parallel()
	conn := redisConns(t)["miniredis"]
	s, q, queue := setupQueue(t, conn)
	sync, _ := json.Marshal(workers.Request{Sync: true})
	plain := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 2})
	fast := s.submitRequest(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 2}, sync)
	swept := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 2})
	swept.Batch = "b1" // as a batch's job is stored
	insp := asynq.NewInspector(conn)
	defer func() { _ = insp.Close() }()
	for want, j := range map[string]*jobs.Job{queue: plain, queue + "-critical": fast, queue + "-low": swept} {
		if err := q.Enqueue(t.Context(), j); err != nil {
			t.Fatal(err)
		}
		if _, err := insp.GetTaskInfo(want, j.ID); err != nil {
			t.Fatalf("job %s is not in queue %s: %v", j.ID, want, err)
		}
		if lost, err := q.Lost(t.Context(), j); err != nil || lost {
			t.Fatalf("a queued job is lost: %v, %v", lost, err)
		}
	}
	if got := workers.QueuesOf(queue); got[queue+"-critical"] <= got[queue] || got[queue] <= got[queue+"-low"] || got[queue+"-low"] < 1 {
		t.Fatalf("priorities %v", got)
	}
	startWorker(t, conn, s, queue)
	for _, j := range []*jobs.Job{plain, fast} {
		if got := waitJob(t, s, j.ID); got.Status != jobs.StatusSuccessful {
			t.Fatalf("job %s: %s", j.ID, got.Status)
		}
	}
}

// TestShutdownGivesJobsBack: a worker stopped while a job runs gives
// the job back to the queue; another worker runs it to its end.
func TestShutdownGivesJobsBack(t *testing.T) {
	t.Parallel()
	for name, conn := range redisConns(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, q, queue := setupQueue(t, conn)
			s.publishTwin(t, "slow", writeTwin(t, "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.2; done\n"))
			first := &workers.Runner{Jobs: s.runner.Jobs, Catalog: s.runner.Catalog, Executor: s.runner.Executor, Queue: q, Worker: "first"}
			srv := workers.NewServer(conn, first, workers.ServerConfig{Concurrency: 1, Queues: workers.QueuesOf(queue),
				ShutdownTimeout: 200 * time.Millisecond, RetryDelay: func(int) time.Duration { return 100 * time.Millisecond }})
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			j := s.submit(t, "slow", map[string]any{})
			if err := q.Enqueue(t.Context(), j); err != nil {
				t.Fatal(err)
			}
			testdb.WaitFor(t, 30*time.Second, "the job to run on the first worker", func() bool {
				cur := s.job(t, j.ID)
				return cur.Status == jobs.StatusRunning && cur.Worker == "first"
			})
			srv.Shutdown()
			second := &workers.Runner{Jobs: s.runner.Jobs, Catalog: s.runner.Catalog, Executor: s.runner.Executor, Queue: q, Worker: "second"}
			srv2 := workers.NewServer(conn, second, workers.ServerConfig{Concurrency: 1, Queues: workers.QueuesOf(queue),
				RetryDelay: func(int) time.Duration { return 100 * time.Millisecond }})
			if err := srv2.Start(); err != nil {
				t.Fatal(err)
			}
			defer srv2.Shutdown()
			got := waitJob(t, s, j.ID)
			if got.Status != jobs.StatusSuccessful || got.Worker != "second" {
				t.Fatalf("the job given back: %s on %q at attempt %d (%s)", got.Status, got.Worker, got.Attempt, got.Message)
			}
		})
	}
}

// writeTwin writes a twin folder whose execute script is script.
func writeTwin(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "lifecycle"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lifecycle", "execute"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "description.md"), []byte("# A twin of the tests\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
