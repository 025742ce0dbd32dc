package openapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// runQueue runs each job it is given at once, on a worker of its own.
type runQueue struct {
	recordQueue
	runner *workers.Runner
}

func (q *runQueue) Enqueue(ctx context.Context, j *jobs.Job) error {
	_ = q.recordQueue.Enqueue(ctx, j)
	go func() { _ = q.runner.Run(context.WithoutCancel(ctx), j.ID, 1) }()
	return nil
}

func TestSyncExecution(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		sync := map[string]any{"dt:syncExecute": true}
		publishTwin(t, b, "quick", "ok", map[string]string{"execute": "#!/bin/sh\necho done > \"$TWINSTAC_OUTPUTS/out.txt\"\n"}, sync)
		publishTwin(t, b, "slow", "nap", map[string]string{"execute": "#!/bin/sh\nsleep 3\n"}, sync)
		publishTwin(t, b, "bad", "fails", map[string]string{"execute": "#!/bin/sh\necho no >&2\nexit 3\n"}, sync)
		publishTwin(t, b, "async", "only", map[string]string{"execute": "#!/bin/sh\necho hi\n"})
		b.jobs.Queue = &runQueue{runner: &workers.Runner{Jobs: b.jobs.Store, Catalog: b.catalog, Worker: "w",
			Executor: &workers.Local{Root: t.TempDir(), PhaseTimeout: time.Minute}}}

		desc := b.want(b.do("GET", "/processes/quick:ok", nil), 200).json(t)
		if opts := desc["jobControlOptions"].([]any); len(opts) != 3 || opts[1] != "sync-execute" {
			t.Fatalf("jobControlOptions of a synchronous twin: %v", opts)
		}
		// Run synchronously: 200 with the results.
		r := b.want(b.do("POST", "/processes/quick:ok/execution", map[string]any{}), 200)
		res := r.json(t)
		href, _ := res["result"].(map[string]any)["href"].(string)
		if !strings.HasPrefix(href, b.base+"/collections/quick-ok-results/items/") || r.Header.Get("Location") != "" {
			t.Fatalf("synchronous results: %v", res)
		}
		if out := b.want(b.do("GET", strings.TrimPrefix(href, b.base)+"/assets/out.txt", nil), 200); string(out.body) != "done\n" {
			t.Fatalf("the result's file: %q", out.body)
		}
		// Asked to respond async, it is a job.
		r = b.want(b.do("POST", "/processes/quick:ok/execution", map[string]any{}, "Prefer", "respond-async"), 201)
		if r.Header.Get("Preference-Applied") != "respond-async" || r.json(t)["jobID"] == nil || r.Header.Get("Location") == "" {
			t.Fatalf("respond-async: %v %v", r.Header, string(r.body))
		}
		// Past the wait, a synchronous run answers as a job.
		start := time.Now()
		r = b.want(b.do("POST", "/processes/slow:nap/execution", map[string]any{}, "Prefer", "wait=1"), 201)
		slow := r.json(t)
		if took := time.Since(start); took > 2500*time.Millisecond || slow["status"] != "running" {
			t.Fatalf("a run past its wait took %s: %s", took, r.body)
		}
		// It goes on as a job (and ends before the test's folders go).
		defer testdb.WaitFor(t, time.Minute, "the slow job to end", func() bool {
			return b.want(b.do("GET", "/jobs/"+slow["jobID"].(string), nil), 200).json(t)["status"] == "successful"
		})
		// A synchronous run that fails is its failure.
		fail := b.problem(b.do("POST", "/processes/bad:fails/execution", map[string]any{}), 500, "")
		if !strings.Contains(fail["detail"].(string), "exited with status 3") {
			t.Fatalf("a failed synchronous run: %v", fail)
		}
		// A twin that does not allow it is never run synchronously.
		b.want(b.do("POST", "/processes/async:only/execution", map[string]any{}), 201)

		// The results go where the run says, into a collection the caller
		// may add items to.
		b.problem(b.do("POST", "/processes/quick:ok/execution", map[string]any{"resultsCollection": "my-runs"}), 400, "/resultsCollection")
		b.want(b.do("POST", "/collections", collectionDoc("my-runs")), 201)
		res = b.want(b.do("POST", "/processes/quick:ok/execution", map[string]any{"resultsCollection": "my-runs"}), 200).json(t)
		if href, _ := res["result"].(map[string]any)["href"].(string); !strings.HasPrefix(href, b.base+"/collections/my-runs/items/") {
			t.Fatalf("results into my-runs: %v", res)
		}
	})
}
