package openapi_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/jobs"
)

// listedJobIDs returns the ids of the jobs (or batches) of a listing.
func listedJobIDs(t *testing.T, page map[string]any, key, id string) []string {
	t.Helper()
	var ids []string
	for _, j := range page[key].([]any) {
		ids = append(ids, j.(map[string]any)[id].(string))
	}
	slices.Sort(ids)
	return ids
}

func TestJobShares(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		mint := b.minter(t)
		owen, vic, tess, olga := mint("owen"), mint("vic"), mint("tess", "team"), mint("olga")

		// The admin's twin; owen runs two jobs of it and a batch of two.
		publishWaterTank(t, b)
		twin, err := b.store.GetItem(ctx, "twins", "water-tank")
		if err != nil {
			t.Fatal(err)
		}
		proc, err := jobs.ProcessOf(twin)
		if err != nil {
			t.Fatal(err)
		}
		inputs := map[string]any{"inflow": 0.5, "outflow": 0.2}
		submit := func() string {
			t.Helper()
			j, _, err := b.jobs.Submit(ctx, jobs.Submission{Process: proc, Owner: "owen", Inputs: inputs})
			if err != nil {
				t.Fatal(err)
			}
			return j.ID
		}
		job, other := submit(), submit()
		batch, err := b.jobs.SubmitBatch(ctx, jobs.BatchSubmission{Process: proc, Owner: "owen",
			InputSets: []map[string]any{inputs, inputs}, ResultsCollection: "twins-water-tank-results"})
		if err != nil {
			t.Fatal(err)
		}
		batchJobs := listedJobIDs(t, b.want(b.do("GET", "/batches/"+batch.ID+"/jobs", nil), 200).json(t), "jobs", "jobID")
		if len(batchJobs) != 2 {
			t.Fatalf("the batch's jobs: %v", batchJobs)
		}

		// Not shared yet: vic sees nothing, and may not share what he
		// does not see.
		b.problem(b.do("GET", "/jobs/"+job, nil, vic...), 404, "")
		b.problem(b.do("POST", "/jobs/"+job+"/shares", map[string]any{"subject": "user:vic", "actions": []string{"read"}}, vic...), 404, "")
		if ids := listedJobIDs(t, b.want(b.do("GET", "/jobs", nil, vic...), 200).json(t), "jobs", "jobID"); len(ids) != 0 {
			t.Fatalf("vic lists %v before any share", ids)
		}

		// Bad shares, each pointing at what is wrong.
		for _, tc := range []struct {
			name    string
			body    map[string]any
			pointer string
		}{
			{"anonymous", map[string]any{"subject": "anonymous", "actions": []string{"read"}}, "/subject"},
			{"no kind", map[string]any{"subject": "vic", "actions": []string{"read"}}, "/subject"},
			{"no action", map[string]any{"subject": "user:vic"}, "/actions"},
			{"dismiss", map[string]any{"subject": "user:vic", "actions": []string{"dismiss"}}, "body.actions[0]"},
			{"editor", map[string]any{"subject": "user:vic", "role": "editor"}, "body.role"},
			{"role and actions", map[string]any{"subject": "user:vic", "role": "viewer", "actions": []string{"read"}}, "/role"},
			{"expired", map[string]any{"subject": "user:vic", "role": "viewer", "expires": time.Now().Add(-time.Hour)}, "/expires"},
		} {
			b.problem(b.do("POST", "/jobs/"+job+"/shares", tc.body, owen...), 400, tc.pointer)
		}
		b.problem(b.do("POST", "/jobs/0190a000-0000-7000-8000-000000000000/shares", map[string]any{"subject": "user:vic", "role": "viewer"}, owen...), 404, "")

		// Owen shares one job with vic.
		sh := b.want(b.do("POST", "/jobs/"+job+"/shares", map[string]any{"subject": "user:vic", "role": "viewer"}, owen...), 201).json(t)
		shareID, _ := sh["id"].(string)
		if sh["subject"] != "user:vic" || !slices.Equal(sh["actions"].([]any), []any{"read"}) {
			t.Fatalf("share: %v", sh)
		}
		list := b.want(b.do("GET", "/jobs/"+job+"/shares", nil, owen...), 200).json(t)
		if s := list["shares"].([]any); len(s) != 1 || s[0].(map[string]any)["id"] != shareID {
			t.Fatalf("the job's shares: %v", list)
		}
		if s := b.want(b.do("GET", "/batches/"+batch.ID+"/shares", nil, owen...), 200).json(t)["shares"].([]any); len(s) != 0 {
			t.Fatalf("the batch's shares hold the job's: %v", s)
		}
		if st := b.want(b.do("GET", "/jobs/"+job, nil, vic...), 200).json(t); st["jobID"] != job {
			t.Fatalf("vic's view of the job: %v", st)
		}
		if p := b.problem(b.do("GET", "/jobs/"+job+"/results", nil, vic...), 404, ""); p["code"] != "result_not_ready" {
			t.Fatalf("results of the shared accepted job: %v", p)
		}
		b.want(b.do("GET", "/jobs/"+job+"/logs", nil, vic...), 200)
		if ids := listedJobIDs(t, b.want(b.do("GET", "/jobs", nil, vic...), 200).json(t), "jobs", "jobID"); !slices.Equal(ids, []string{job}) {
			t.Fatalf("vic lists %v, want the shared job %s", ids, job)
		}
		b.problem(b.do("GET", "/jobs/"+other, nil, vic...), 404, "")
		// Seeing is not running: no dismissing, saving or sharing on.
		b.problem(b.do("DELETE", "/jobs/"+job, nil, vic...), 403, "")
		b.problem(b.do("POST", "/jobs/"+job+"/save", nil, vic...), 403, "")
		b.problem(b.do("POST", "/jobs/"+job+"/shares", map[string]any{"subject": "user:olga", "role": "viewer"}, vic...), 403, "")
		b.problem(b.do("GET", "/jobs/"+job+"/shares", nil, vic...), 403, "")
		b.problem(b.do("GET", "/jobs/"+job+"/shares", nil, olga...), 404, "")
		// The job's events, not those of owen's other jobs.
		evs := b.want(b.do("GET", "/events?type=job.*&limit=1000", nil, vic...), 200).json(t)["events"].([]any)
		if len(evs) == 0 {
			t.Fatal("vic sees no event of the shared job")
		}
		for _, e := range evs {
			if s := e.(map[string]any)["subject"]; s != jobs.Subject(job) {
				t.Fatalf("vic sees the event of %v", s)
			}
		}

		// A batch shared with a group: its members see it and its jobs,
		// not the job shared with vic.
		b.want(b.do("POST", "/batches/"+batch.ID+"/shares", map[string]any{"subject": "group:team", "actions": []string{"read"}}, owen...), 201)
		b.want(b.do("GET", "/batches/"+batch.ID, nil, tess...), 200)
		if ids := listedJobIDs(t, b.want(b.do("GET", "/batches", nil, tess...), 200).json(t), "batches", "id"); !slices.Equal(ids, []string{batch.ID}) {
			t.Fatalf("tess lists batches %v", ids)
		}
		if ids := listedJobIDs(t, b.want(b.do("GET", "/batches/"+batch.ID+"/jobs", nil, tess...), 200).json(t), "jobs", "jobID"); !slices.Equal(ids, batchJobs) {
			t.Fatalf("tess lists the batch's jobs %v, want %v", ids, batchJobs)
		}
		if ids := listedJobIDs(t, b.want(b.do("GET", "/jobs", nil, tess...), 200).json(t), "jobs", "jobID"); !slices.Equal(ids, batchJobs) {
			t.Fatalf("tess lists jobs %v, want the batch's %v", ids, batchJobs)
		}
		b.want(b.do("GET", "/jobs/"+batchJobs[0]+"/logs", nil, tess...), 200)
		b.problem(b.do("GET", "/jobs/"+job, nil, tess...), 404, "")
		b.problem(b.do("DELETE", "/batches/"+batch.ID, nil, tess...), 403, "")
		b.problem(b.do("DELETE", "/jobs/"+batchJobs[1], nil, tess...), 403, "")
		if ids := listedJobIDs(t, b.want(b.do("GET", "/batches", nil, vic...), 200).json(t), "batches", "id"); len(ids) != 0 {
			t.Fatalf("vic lists batches %v", ids)
		}

		// The followed log ends once owen dismisses the job.
		b.want(b.do("DELETE", "/jobs/"+job, nil, owen...), 200)
		r := b.want(b.do("GET", "/jobs/"+job+"/logs", nil, append([]string{"Accept", "text/event-stream"}, vic...)...), 200)
		if !strings.Contains(string(r.body), "event: end") {
			t.Fatalf("vic's followed log: %s", r.body)
		}

		// Ending the share hides the job again, at once.
		b.problem(b.do("DELETE", "/batches/"+batch.ID+"/shares/"+shareID, nil, owen...), 404, "")
		b.want(b.do("DELETE", "/jobs/"+job+"/shares/"+shareID, nil, owen...), 204)
		b.problem(b.do("GET", "/jobs/"+job, nil, vic...), 404, "")
		b.problem(b.do("GET", "/jobs/"+job+"/logs", nil, vic...), 404, "")
		if ids := listedJobIDs(t, b.want(b.do("GET", "/jobs", nil, vic...), 200).json(t), "jobs", "jobID"); len(ids) != 0 {
			t.Fatalf("vic lists %v after the share ended", ids)
		}
		if evs := b.want(b.do("GET", "/events?type=job.*&limit=1000", nil, vic...), 200).json(t)["events"].([]any); len(evs) != 0 {
			t.Fatalf("vic sees %d job events after the share ended", len(evs))
		}
		b.problem(b.do("DELETE", "/jobs/"+job+"/shares/"+shareID, nil, owen...), 404, "")
	})
}
