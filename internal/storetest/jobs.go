package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// JobStore is what RunJobs tests: a jobs.Store that is also the
// catalog.Store whose outbox receives the jobs' events.
type JobStore interface {
	jobs.Store
	catalog.Store
}

// RunJobs runs the contract suite of jobs.Store. open must return a new
// empty, migrated store for each call; it is closed by the suite.
func RunJobs(t *testing.T, open func(t *testing.T) JobStore) {
	t.Helper()
	runSuite(t, open, []suiteCase[JobStore]{
		{"JobRoundTrip", testJobRoundTrip},
		{"JobIdempotency", testJobIdempotency},
		{"JobClaim", testJobClaim},
		{"JobClaimRace", testJobClaimRace},
		{"JobProgressAndFinish", testJobProgressAndFinish},
		{"JobDismiss", testJobDismiss},
		{"JobList", testJobList},
		{"JobPending", testJobPending},
		{"JobLog", testJobLog},
		{"JobCountActive", testJobCountActive},
		{"JobUsage", testJobUsage},
		{"JobSaves", testJobSaves},
		{"JobFinishWithLog", testJobFinishWithLog},
		{"JobRelease", testJobRelease},
		{"JobClaimMany", testJobClaimMany},
		{"JobFinishMany", testJobFinishMany},
		{"JobManyRace", testJobManyRace},
		{"BatchRoundTrip", testBatchRoundTrip},
		{"BatchRelease", testBatchRelease},
		{"BatchReleaseRace", testBatchReleaseRace},
		{"BatchDismiss", testBatchDismiss},
	})
}

// jobID returns the i-th job id of a test: ids order as they are made.
func jobID(i int) string { return fmt.Sprintf("0190a000-0000-7000-8000-%012d", i) }

func newJob(i int, owner string) *jobs.Job {
	return &jobs.Job{
		ID: jobID(i), Process: "twins:tank", TwinCollection: "twins", TwinItem: "tank", TwinETag: `"e1"`,
		Owner: owner, TwinOwner: "olga", Inputs: json.RawMessage(`{"inflow":0.5,"steps":10}`),
		Request: json.RawMessage(`{"restore":"snapshots/s1"}`), Status: jobs.StatusAccepted, Progress: -1,
		MaxAttempts: 3, Created: t0.Add(time.Duration(i) * time.Minute), Updated: t0.Add(time.Duration(i) * time.Minute),
	}
}

func jobEvent(typ, id string) *catalog.Event {
	return &catalog.Event{ID: uuid.NewString(), Type: typ, Subject: "jobs/" + id, Time: t0, Payload: json.RawMessage(`{"id":"` + id + `"}`)}
}

func createJob(t *testing.T, s JobStore, j *jobs.Job) *jobs.Job {
	t.Helper()
	got, created, err := s.CreateJob(ctx(t), j, jobEvent(jobs.EventJobAccepted, j.ID))
	if err != nil || !created {
		t.Fatalf("CreateJob %s: created %v, %v", j.ID, created, err)
	}
	return got
}

func getJob(t *testing.T, s JobStore, id string) *jobs.Job {
	t.Helper()
	j, err := s.GetJob(ctx(t), id)
	if err != nil {
		t.Fatalf("GetJob %s: %v", id, err)
	}
	return j
}

func wantJobCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if got := catalog.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want %q", what, err, got, code)
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func testJobRoundTrip(t *testing.T, s JobStore) {
	want := newJob(1, "ana")
	want.Batch, want.IdempotencyKey, want.RequestHash = "b1", "k1", "h1"
	createJob(t, s, want)
	got := getJob(t, s, want.ID)
	if got.ID != want.ID || got.Process != want.Process || got.TwinCollection != "twins" || got.TwinItem != "tank" ||
		got.TwinETag != want.TwinETag || got.Owner != "ana" || got.TwinOwner != "olga" || got.Batch != "b1" ||
		got.IdempotencyKey != "k1" || got.RequestHash != "h1" || got.Status != jobs.StatusAccepted ||
		got.Progress != -1 || got.Attempt != 0 || got.MaxAttempts != 3 || got.Started != nil || got.Finished != nil ||
		!got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) || got.DismissRequested || got.Worker != "" {
		t.Fatalf("stored %+v\nwant %+v", got, want)
	}
	if !jsonEqual(got.Inputs, want.Inputs) || !jsonEqual(got.Request, want.Request) || got.Exception != nil || got.Usage != nil || got.Results != nil {
		t.Fatalf("stored JSON: inputs %s, request %s, exception %s, usage %s, results %v", got.Inputs, got.Request, got.Exception, got.Usage, got.Results)
	}
	_, err := s.GetJob(ctx(t), jobID(99))
	wantJobCode(t, err, catalog.ENOTFOUND, "GetJob of an unknown job")
	_, _, err = s.CreateJob(ctx(t), newJob(1, "ana"), nil)
	wantJobCode(t, err, catalog.ECONFLICT, "CreateJob with a taken id")
	bad := newJob(2, "ana")
	bad.Inputs = json.RawMessage(`[1,2]`)
	_, _, err = s.CreateJob(ctx(t), bad, nil)
	wantJobCode(t, err, catalog.EINVALID, "CreateJob with inputs that are not an object")
	bad.Inputs = nil
	_, _, err = s.CreateJob(ctx(t), bad, nil)
	wantJobCode(t, err, catalog.EINVALID, "CreateJob without inputs")
	evs, err := s.ListEvents(ctx(t), 0, catalog.MaxPageSize)
	if err != nil || len(evs) != 1 || evs[0].Type != jobs.EventJobAccepted || evs[0].Subject != "jobs/"+want.ID {
		t.Fatalf("outbox after one job: %+v, %v", evs, err)
	}
}

func testJobIdempotency(t *testing.T, s JobStore) {
	first := newJob(1, "ana")
	first.IdempotencyKey, first.RequestHash = "key", "h1"
	createJob(t, s, first)
	again := newJob(2, "ana")
	again.IdempotencyKey, again.RequestHash = "key", "h1"
	got, created, err := s.CreateJob(ctx(t), again, jobEvent(jobs.EventJobAccepted, again.ID))
	if err != nil || created || got.ID != first.ID {
		t.Fatalf("the same key and request: job %v, created %v, %v; want job %s again", got, created, err, first.ID)
	}
	other := newJob(3, "ana")
	other.IdempotencyKey, other.RequestHash = "key", "h2"
	_, _, err = s.CreateJob(ctx(t), other, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "the same key with another request")
	bob := newJob(4, "bob")
	bob.IdempotencyKey, bob.RequestHash = "key", "h1"
	createJob(t, s, bob)
	if _, err := s.GetJob(ctx(t), jobID(2)); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("a repeated submission was stored: %v", err)
	}
	if evs, _ := s.ListEvents(ctx(t), 0, catalog.MaxPageSize); len(evs) != 2 {
		t.Fatalf("%d events, want 2 (one per job made)", len(evs))
	}
}

func testJobClaim(t *testing.T, s JobStore) {
	createJob(t, s, newJob(1, "ana"))
	now := t0.Add(time.Hour)
	j, err := s.ClaimJob(ctx(t), jobID(1), 1, "w1", now, jobEvent(jobs.EventJobRunning, jobID(1)))
	if err != nil || j.Status != jobs.StatusRunning || j.Attempt != 1 || j.Worker != "w1" || j.Started == nil || !j.Started.Equal(now) || !j.Updated.Equal(now) {
		t.Fatalf("first claim: %+v, %v", j, err)
	}
	_, err = s.ClaimJob(ctx(t), jobID(1), 1, "w2", now, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "a second claim of attempt 1")
	// w1 died; the task's retry claims attempt 2.
	later := now.Add(time.Minute)
	j, err = s.ClaimJob(ctx(t), jobID(1), 2, "w2", later, nil)
	if err != nil || j.Attempt != 2 || j.Worker != "w2" || !j.Started.Equal(now) {
		t.Fatalf("retry claim: %+v, %v (the job keeps its first start)", j, err)
	}
	_, err = s.ClaimJob(ctx(t), jobID(1), 2, "w3", later, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "a second claim of attempt 2")
	_, err = s.ClaimJob(ctx(t), jobID(1), 1, "w3", later, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "a claim of an older attempt")
	if _, err := s.FinishJob(ctx(t), jobID(1), 2, jobs.Finish{Status: jobs.StatusSuccessful}, later, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.ClaimJob(ctx(t), jobID(1), 3, "w3", later, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "a claim of a finished job")
	_, err = s.ClaimJob(ctx(t), jobID(9), 1, "w3", later, nil)
	wantJobCode(t, err, catalog.ENOTFOUND, "a claim of an unknown job")

	// A job whose dismissal is requested is not claimed again.
	createJob(t, s, newJob(2, "ana"))
	if _, err := s.ClaimJob(ctx(t), jobID(2), 1, "w1", now, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DismissJob(ctx(t), jobID(2), now, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.ClaimJob(ctx(t), jobID(2), 2, "w2", now, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "a claim of a job being dismissed")
}

func testJobClaimRace(t *testing.T, s JobStore) {
	createJob(t, s, newJob(1, "ana"))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []string
		errs []error
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", w)
			_, err := s.ClaimJob(ctx(t), jobID(1), 1, worker, t0.Add(time.Hour), nil)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, worker)
			} else if catalog.ErrorCode(err) != catalog.ECONFLICT {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || len(errs) > 0 {
		t.Fatalf("%d claims of one attempt won (%v); errors %v", len(won), won, errs)
	}
	if j := getJob(t, s, jobID(1)); j.Worker != won[0] || j.Attempt != 1 {
		t.Fatalf("job %+v, won by %s", j, won[0])
	}
}

func testJobProgressAndFinish(t *testing.T, s JobStore) {
	createJob(t, s, newJob(1, "ana"))
	now := t0.Add(time.Hour)
	err := s.SetProgress(ctx(t), jobID(1), 1, 10, "starting", now)
	wantJobCode(t, err, catalog.ECONFLICT, "progress of a job not running")
	if _, err := s.ClaimJob(ctx(t), jobID(1), 1, "w1", now, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgress(ctx(t), jobID(1), 1, 40, "step 4 of 10", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if j := getJob(t, s, jobID(1)); j.Progress != 40 || j.Message != "step 4 of 10" || !j.Updated.Equal(now.Add(time.Second)) {
		t.Fatalf("after SetProgress: %+v", j)
	}
	err = s.SetProgress(ctx(t), jobID(1), 2, 50, "", now)
	wantJobCode(t, err, catalog.ECONFLICT, "progress of another attempt")
	err = s.SetProgress(ctx(t), jobID(9), 1, 50, "", now)
	wantJobCode(t, err, catalog.ENOTFOUND, "progress of an unknown job")

	_, err = s.FinishJob(ctx(t), jobID(1), 1, jobs.Finish{Status: jobs.StatusRunning}, now, nil)
	wantJobCode(t, err, catalog.EINVALID, "finishing as running")
	_, err = s.FinishJob(ctx(t), jobID(1), 2, jobs.Finish{Status: jobs.StatusSuccessful}, now, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "finishing another attempt")
	end := now.Add(time.Minute)
	f := jobs.Finish{Status: jobs.StatusSuccessful, Message: "done", Results: []string{"twins-results/r1", "twins-results/r2"},
		Usage: json.RawMessage(`{"wallSeconds":1.5,"maxRssBytes":1024}`)}
	j, err := s.FinishJob(ctx(t), jobID(1), 1, f, end, jobEvent(jobs.EventJobSuccessful, jobID(1)))
	if err != nil || j.Status != jobs.StatusSuccessful || j.Finished == nil || !j.Finished.Equal(end) || j.Progress != 100 ||
		!slices.Equal(j.Results, f.Results) || !jsonEqual(j.Usage, f.Usage) || j.Message != "done" {
		t.Fatalf("finished: %+v, %v", j, err)
	}
	if got := getJob(t, s, jobID(1)); !slices.Equal(got.Results, f.Results) || !jsonEqual(got.Usage, f.Usage) {
		t.Fatalf("stored: %+v", got)
	}
	_, err = s.FinishJob(ctx(t), jobID(1), 1, jobs.Finish{Status: jobs.StatusFailed}, end, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "finishing a finished job")

	createJob(t, s, newJob(2, "ana"))
	if _, err := s.ClaimJob(ctx(t), jobID(2), 1, "w1", now, nil); err != nil {
		t.Fatal(err)
	}
	exc := json.RawMessage(`{"type":"https://twinstac.org/problems/phase-failed","title":"execute failed","status":500}`)
	j, err = s.FinishJob(ctx(t), jobID(2), 1, jobs.Finish{Status: jobs.StatusFailed, Message: "execute exited with status 1", Exception: exc}, end, nil)
	if err != nil || j.Status != jobs.StatusFailed || !jsonEqual(j.Exception, exc) || j.Progress == 100 {
		t.Fatalf("failed: %+v, %v", j, err)
	}
	evs, _ := s.ListEvents(ctx(t), 0, catalog.MaxPageSize)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if want := []string{"job.accepted", "job.successful", "job.accepted"}; !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v (none for the changes without one)", types, want)
	}
}

func testJobDismiss(t *testing.T, s JobStore) {
	now := t0.Add(time.Hour)
	createJob(t, s, newJob(1, "ana"))
	j, err := s.DismissJob(ctx(t), jobID(1), now, jobEvent(jobs.EventJobDismissed, jobID(1)))
	if err != nil || j.Status != jobs.StatusDismissed || j.Finished == nil || !j.Finished.Equal(now) {
		t.Fatalf("dismissing an accepted job: %+v, %v", j, err)
	}
	_, err = s.ClaimJob(ctx(t), jobID(1), 1, "w1", now, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "claiming a dismissed job")

	createJob(t, s, newJob(2, "ana"))
	if _, err := s.ClaimJob(ctx(t), jobID(2), 1, "w1", now, nil); err != nil {
		t.Fatal(err)
	}
	j, err = s.DismissJob(ctx(t), jobID(2), now, jobEvent(jobs.EventJobDismissed, jobID(2)))
	if err != nil || j.Status != jobs.StatusRunning || !j.DismissRequested || j.Finished != nil {
		t.Fatalf("dismissing a running job: %+v, %v", j, err)
	}
	j, err = s.FinishJob(ctx(t), jobID(2), 1, jobs.Finish{Status: jobs.StatusDismissed, Message: "dismissed"}, now, nil)
	if err != nil || j.Status != jobs.StatusDismissed {
		t.Fatalf("the worker ends it: %+v, %v", j, err)
	}
	j, err = s.DismissJob(ctx(t), jobID(2), now.Add(time.Hour), nil)
	if err != nil || j.Status != jobs.StatusDismissed || !j.Finished.Equal(now) {
		t.Fatalf("dismissing a finished job changes nothing: %+v, %v", j, err)
	}
	_, err = s.DismissJob(ctx(t), jobID(9), now, nil)
	wantJobCode(t, err, catalog.ENOTFOUND, "dismissing an unknown job")
	evs, _ := s.ListEvents(ctx(t), 0, catalog.MaxPageSize)
	n := 0
	for _, e := range evs {
		if e.Type == jobs.EventJobDismissed {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d dismissal events, want 1 (the accepted job's; the running one's event is the worker's)", n)
	}
}

func testJobList(t *testing.T, s JobStore) {
	// ana's and bob's runs of olga's twin, and bob's run of his own.
	for i := 1; i <= 12; i++ {
		owner := []string{"ana", "bob"}[i%2]
		j := newJob(i, owner)
		if i == 12 {
			j.Process, j.TwinItem, j.TwinOwner = "twins:pump", "pump", "bob"
		}
		if i%3 == 0 {
			j.Batch = "b1"
		}
		createJob(t, s, j)
	}
	if _, err := s.ClaimJob(ctx(t), jobID(5), 1, "w", t0, nil); err != nil {
		t.Fatal(err)
	}
	list := func(q jobs.Query) []string {
		t.Helper()
		var ids []string
		q.Limit = 5
		for {
			page, err := s.ListJobs(ctx(t), q)
			if err != nil {
				t.Fatalf("ListJobs %+v: %v", q, err)
			}
			for _, j := range page {
				ids = append(ids, j.ID[len(j.ID)-2:])
			}
			if len(page) < q.Limit {
				return ids
			}
			q.After = page[len(page)-1].ID
		}
	}
	from, to := t0.Add(3*time.Minute), t0.Add(6*time.Minute)
	for _, tc := range []struct {
		name string
		q    jobs.Query
		want []string
	}{
		{"all, newest first", jobs.Query{}, []string{"12", "11", "10", "09", "08", "07", "06", "05", "04", "03", "02", "01"}},
		{"ana sees her runs", jobs.Query{Visible: &jobs.Visibility{User: "ana"}}, []string{"12", "10", "08", "06", "04", "02"}},
		{"olga sees the runs of her twin", jobs.Query{Visible: &jobs.Visibility{User: "olga"}}, []string{"11", "10", "09", "08", "07", "06", "05", "04", "03", "02", "01"}},
		{"by process", jobs.Query{Process: "twins:pump"}, []string{"12"}},
		{"by status", jobs.Query{Statuses: []jobs.Status{jobs.StatusRunning}}, []string{"05"}},
		{"bob sees his runs and those of his twin, by batch", jobs.Query{Batch: "b1", Visible: &jobs.Visibility{User: "bob"}}, []string{"12", "09", "03"}},
		{"by creation time", jobs.Query{CreatedFrom: &from, CreatedTo: &to}, []string{"06", "05", "04", "03"}},
		{"nobody", jobs.Query{Visible: &jobs.Visibility{User: "eve"}}, nil},
		{"eve sees the jobs shared with her, one by one and by batch",
			jobs.Query{Visible: &jobs.Visibility{User: "eve", Jobs: []string{jobID(1), jobID(2)}, Batches: []string{"b1", "b9"}}},
			[]string{"12", "09", "06", "03", "02", "01"}},
		{"ana sees her runs and one shared with her", jobs.Query{Visible: &jobs.Visibility{User: "ana", Jobs: []string{jobID(1)}}},
			[]string{"12", "10", "08", "06", "04", "02", "01"}},
		{"shared jobs with the other filters", jobs.Query{Statuses: []jobs.Status{jobs.StatusAccepted}, Process: "twins:tank",
			Visible: &jobs.Visibility{User: "eve", Jobs: []string{jobID(5), jobID(7)}, Batches: []string{"b1"}}}, []string{"09", "07", "06", "03"}},
		{"jobs of no batch are not a shared batch", jobs.Query{Visible: &jobs.Visibility{User: "eve", Batches: []string{""}}}, nil},
	} {
		if got := list(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testJobPending(t *testing.T, s JobStore) {
	for i := 1; i <= 5; i++ {
		createJob(t, s, newJob(i, "ana"))
	}
	now := t0.Add(time.Hour)
	if _, err := s.ClaimJob(ctx(t), jobID(2), 1, "w", now, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimJob(ctx(t), jobID(3), 1, "w", now, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DismissJob(ctx(t), jobID(3), now, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DismissJob(ctx(t), jobID(4), now, nil); err != nil {
		t.Fatal(err)
	}
	ids := func(js []*jobs.Job) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.ID[len(j.ID)-2:])
		}
		return out
	}
	// Jobs not final and not touched since before, oldest first.
	got, err := s.PendingJobs(ctx(t), now.Add(time.Minute), 10)
	if err != nil || !slices.Equal(ids(got), []string{"01", "05", "02", "03"}) {
		t.Fatalf("PendingJobs: %v, %v; want 01 05 02 03", ids(got), err)
	}
	got, err = s.PendingJobs(ctx(t), t0.Add(3*time.Minute), 10)
	if err != nil || !slices.Equal(ids(got), []string{"01"}) {
		t.Fatalf("PendingJobs before 10:03: %v, %v; want 01", ids(got), err)
	}
	got, err = s.PendingJobs(ctx(t), now.Add(time.Minute), 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("PendingJobs with limit 1: %v, %v", ids(got), err)
	}
}

func testJobLog(t *testing.T, s JobStore) {
	createJob(t, s, newJob(1, "ana"))
	createJob(t, s, newJob(2, "ana"))
	line := func(phase, stream, text string) jobs.LogEntry {
		return jobs.LogEntry{Attempt: 1, Phase: phase, Stream: stream, Time: t0, Text: text}
	}
	texts := func(es []jobs.LogEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Phase+"/"+e.Stream+":"+e.Text)
		}
		return out
	}
	if n, err := s.AppendLog(ctx(t), jobID(1), []jobs.LogEntry{line("create", "stdout", "0123456789"), line("create", "stderr", "warn")}, 30); err != nil || n != 2 {
		t.Fatalf("AppendLog: %d, %v", n, err)
	}
	if _, err := s.AppendLog(ctx(t), jobID(2), []jobs.LogEntry{line("execute", "stdout", "other job")}, 30); err != nil {
		t.Fatal(err)
	}
	// 14 bytes held; "execute" fits (7), the next (10) does not: the log
	// is cut there, once.
	n, err := s.AppendLog(ctx(t), jobID(1), []jobs.LogEntry{line("execute", "stdout", "execute"), line("execute", "stdout", "0123456789"), line("execute", "stdout", "x")}, 30)
	if err != nil || n != 1 {
		t.Fatalf("AppendLog past the limit: kept %d, %v; want 1", n, err)
	}
	if n, err := s.AppendLog(ctx(t), jobID(1), []jobs.LogEntry{line("clean", "stdout", "y")}, 30); err != nil || n != 0 {
		t.Fatalf("AppendLog after the cut: kept %d, %v; want 0", n, err)
	}
	all, err := s.ReadLog(ctx(t), jobID(1), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := texts(all)
	if len(got) != 4 || got[0] != "create/stdout:0123456789" || got[1] != "create/stderr:warn" || got[2] != "execute/stdout:execute" ||
		all[3].Stream != jobs.StreamSystem {
		t.Fatalf("log %v", got)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("seq not growing: %v", all)
		}
	}
	if !all[0].Time.Equal(t0) || all[0].Attempt != 1 {
		t.Fatalf("entry %+v", all[0])
	}
	rest, err := s.ReadLog(ctx(t), jobID(1), all[1].Seq, 1)
	if err != nil || len(rest) != 1 || rest[0].Seq != all[2].Seq {
		t.Fatalf("ReadLog after %d, limit 1: %v, %v", all[1].Seq, texts(rest), err)
	}
	if none, err := s.ReadLog(ctx(t), jobID(1), all[3].Seq, 10); err != nil || len(none) != 0 {
		t.Fatalf("ReadLog past the end: %v, %v", none, err)
	}
	_, err = s.ReadLog(ctx(t), jobID(9), 0, 10)
	wantJobCode(t, err, catalog.ENOTFOUND, "ReadLog of an unknown job")
	_, err = s.AppendLog(ctx(t), jobID(9), []jobs.LogEntry{line("x", "stdout", "x")}, 30)
	wantJobCode(t, err, catalog.ENOTFOUND, "AppendLog of an unknown job")
}

// testJobSaves: saves asked of a running job wait in its Saves until
// taken; a job that is not running takes none; the final state is kept
// with the job's end.
func testJobSaves(t *testing.T, s JobStore) {
	createJob(t, s, newJob(1, "ana"))
	j, err := s.RequestSave(ctx(t), jobID(1), "snaps/s1", t0)
	if err != nil || len(j.Saves) != 0 {
		t.Fatalf("RequestSave of an accepted job = %v, %v; want no save", j.Saves, err)
	}
	if _, err := s.ClaimJob(ctx(t), jobID(1), 1, "w", t0, nil); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"snaps/s1", "snaps/s2", "snaps/s1"} {
		if j, err = s.RequestSave(ctx(t), jobID(1), ref, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(j.Saves, []string{"snaps/s1", "snaps/s2"}) || !j.Updated.Equal(t0.Add(time.Minute)) {
		t.Fatalf("saves %v (updated %v), want s1 and s2 once each", j.Saves, j.Updated)
	}
	if err := s.SaveDone(ctx(t), jobID(1), "snaps/s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDone(ctx(t), jobID(1), "snaps/nope"); err != nil {
		t.Fatal(err)
	}
	if got := getJob(t, s, jobID(1)).Saves; !slices.Equal(got, []string{"snaps/s2"}) {
		t.Fatalf("saves after one was made: %v", got)
	}
	done, err := s.FinishJob(ctx(t), jobID(1), 1, jobs.Finish{Status: jobs.StatusSuccessful, FinalState: "jobs/" + jobID(1) + "/state.tar.gz"}, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.FinalState != "jobs/"+jobID(1)+"/state.tar.gz" || !slices.Equal(done.Saves, []string{"snaps/s2"}) {
		t.Fatalf("finished job: final state %q, saves %v", done.FinalState, done.Saves)
	}
	if j, err = s.RequestSave(ctx(t), jobID(1), "snaps/s3", t0); err != nil || len(j.Saves) != 1 {
		t.Fatalf("RequestSave of a finished job = %v, %v; want it unchanged", j.Saves, err)
	}
	_, err = s.RequestSave(ctx(t), jobID(9), "snaps/s1", t0)
	wantJobCode(t, err, catalog.ENOTFOUND, "RequestSave of a missing job")
	wantJobCode(t, s.SaveDone(ctx(t), jobID(9), "snaps/s1"), catalog.ENOTFOUND, "SaveDone of a missing job")
}

// testJobFinishWithLog: an attempt's last log lines are written with its
// end, within the job's bound; an end that is refused writes none.
func testJobFinishWithLog(t *testing.T, s JobStore) {
	createJob(t, s, newJob(1, "ana"))
	if _, err := s.ClaimJob(ctx(t), jobID(1), 1, "w", t0, nil); err != nil {
		t.Fatal(err)
	}
	line := func(text string) jobs.LogEntry {
		return jobs.LogEntry{Attempt: 1, Phase: "execute", Stream: "stdout", Time: t0, Text: text}
	}
	if _, err := s.AppendLog(ctx(t), jobID(1), []jobs.LogEntry{line("first")}, 12); err != nil {
		t.Fatal(err)
	}
	// A newer attempt's end is refused: no line of this one is written.
	_, err := s.FinishJob(ctx(t), jobID(1), 2, jobs.Finish{Status: jobs.StatusSuccessful, Log: []jobs.LogEntry{line("stale")}, MaxLogBytes: 100}, t0, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "FinishJob of another attempt")
	_, err = s.FinishJob(ctx(t), jobID(9), 1, jobs.Finish{Status: jobs.StatusSuccessful, Log: []jobs.LogEntry{line("x")}, MaxLogBytes: 100}, t0, nil)
	wantJobCode(t, err, catalog.ENOTFOUND, "FinishJob of a missing job")
	// 5 bytes used of 12: "second" (6) fits, "third" (5) does not, and
	// the log says it was cut.
	ev := jobEvent(jobs.EventJobSuccessful, jobID(1))
	j, err := s.FinishJob(ctx(t), jobID(1), 1, jobs.Finish{Status: jobs.StatusSuccessful, Message: "done",
		Log: []jobs.LogEntry{line("second"), line("third")}, MaxLogBytes: 12}, t0.Add(time.Minute), ev)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.StatusSuccessful || j.Message != "done" || j.Finished == nil {
		t.Fatalf("finished job %+v", j)
	}
	got, err := s.ReadLog(ctx(t), jobID(1), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range got {
		texts = append(texts, e.Stream+":"+e.Text)
	}
	if len(texts) != 3 || texts[0] != "stdout:first" || texts[1] != "stdout:second" || !strings.HasPrefix(texts[2], jobs.StreamSystem+":") {
		t.Fatalf("log after the end: %v", texts)
	}
	evs, _ := s.ListEvents(ctx(t), 0, 100)
	if last := evs[len(evs)-1]; last.ID != ev.ID {
		t.Fatalf("the end's event was not written: last %s", last.Type)
	}
}

// testJobRelease: an attempt its worker gives back is claimed again at
// the same attempt, once; one it does not hold is not given back.
func testJobRelease(t *testing.T, s JobStore) {
	createJob(t, s, newJob(1, "ana"))
	if _, err := s.ClaimJob(ctx(t), jobID(1), 1, "w1", t0, nil); err != nil {
		t.Fatal(err)
	}
	// Not held at this attempt by w2: nothing changes.
	if err := s.ReleaseJob(ctx(t), jobID(1), 1, "w2", t0); err != nil {
		t.Fatal(err)
	}
	_, err := s.ClaimJob(ctx(t), jobID(1), 1, "w2", t0, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "claiming an attempt its worker holds")
	if err := s.ReleaseJob(ctx(t), jobID(1), 1, "w1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if j := getJob(t, s, jobID(1)); j.Status != jobs.StatusRunning || j.Worker != "" || j.Attempt != 1 {
		t.Fatalf("released job %+v", j)
	}
	j, err := s.ClaimJob(ctx(t), jobID(1), 1, "w2", t0.Add(2*time.Minute), nil)
	if err != nil || j.Worker != "w2" || j.Attempt != 1 || !j.Started.Equal(t0) {
		t.Fatalf("claiming a released attempt: %+v, %v", j, err)
	}
	_, err = s.ClaimJob(ctx(t), jobID(1), 1, "w3", t0, nil)
	wantJobCode(t, err, catalog.ECONFLICT, "claiming a released attempt twice")
	wantJobCode(t, s.ReleaseJob(ctx(t), jobID(9), 1, "w1", t0), catalog.ENOTFOUND, "ReleaseJob of a missing job")
}

// testJobClaimMany: ClaimJobs makes each claim as ClaimJob would, in
// order, and writes the events of those it made only.
func testJobClaimMany(t *testing.T, s JobStore) {
	for i := 1; i <= 4; i++ {
		createJob(t, s, newJob(i, "ana"))
	}
	now := t0.Add(time.Hour)
	if _, err := s.FinishJob(ctx(t), jobID(4), 0, jobs.Finish{Status: jobs.StatusSuccessful}, now, nil); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("FinishJob of an accepted job: %v", err)
	}
	if _, err := s.DismissJob(ctx(t), jobID(4), now, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := s.ListEvents(ctx(t), 0, 1000)
	claims := []jobs.Claim{
		{ID: jobID(3), Attempt: 1},
		{ID: jobID(1), Attempt: 1},
		{ID: jobID(9), Attempt: 1}, // missing
		{ID: jobID(1), Attempt: 1}, // the same attempt again: refused
		{ID: jobID(4), Attempt: 1}, // dismissed
		{ID: jobID(1), Attempt: 2}, // a newer attempt after it: claimed
		{ID: jobID(2), Attempt: 0}, // no attempt 0
	}
	out, err := s.ClaimJobs(ctx(t), claims, "w1", now, func(j *jobs.Job) *catalog.Event {
		return jobEvent(jobs.EventJobRunning, fmt.Sprintf("%s@%d", j.ID, j.Attempt))
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(claims) {
		t.Fatalf("%d results for %d claims", len(out), len(claims))
	}
	for i, want := range []string{"", "", catalog.ENOTFOUND, catalog.ECONFLICT, catalog.ECONFLICT, "", catalog.ECONFLICT} {
		c := claims[i]
		if got := catalog.ErrorCode(out[i].Err); got != want || (want == "") != (out[i].Job != nil) {
			t.Fatalf("claim %d (%s at %d): job %v, error %v; want code %q", i, c.ID, c.Attempt, out[i].Job, out[i].Err, want)
		}
		if j := out[i].Job; j != nil && (j.ID != c.ID || j.Attempt != c.Attempt || j.Status != jobs.StatusRunning || j.Worker != "w1" || !j.Started.Equal(now)) {
			t.Fatalf("claim %d: %+v", i, j)
		}
	}
	if j := getJob(t, s, jobID(1)); j.Attempt != 2 || j.Status != jobs.StatusRunning {
		t.Fatalf("job 1 after its two claims: %+v", j)
	}
	if j := getJob(t, s, jobID(2)); j.Status != jobs.StatusAccepted {
		t.Fatalf("job 2 claimed at attempt 0: %+v", j)
	}
	subjects := jobSubjectsSince(t, s, len(before))
	want := []string{jobID(1) + "@1", jobID(1) + "@2", jobID(3) + "@1"}
	if !slices.Equal(subjects, want) {
		t.Fatalf("events of the claims: %v, want %v", subjects, want)
	}
	if out, err := s.ClaimJobs(ctx(t), nil, "w1", now, nil); err != nil || len(out) != 0 {
		t.Fatalf("no claims: %v, %v", out, err)
	}
}

// testJobFinishMany: FinishJobs ends each job as FinishJob would, each
// log within its own bound, and writes the events of those it ended.
func testJobFinishMany(t *testing.T, s JobStore) {
	for i := 1; i <= 4; i++ {
		createJob(t, s, newJob(i, "ana"))
		if i < 4 {
			if _, err := s.ClaimJob(ctx(t), jobID(i), 1, "w", t0, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	line := func(text string) jobs.LogEntry {
		return jobs.LogEntry{Attempt: 1, Phase: "execute", Stream: "stdout", Time: t0, Text: text}
	}
	if _, err := s.AppendLog(ctx(t), jobID(2), []jobs.LogEntry{line("first")}, 12); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	ev := func(id string) *catalog.Event { return jobEvent(jobs.EventJobSuccessful, id) }
	ends := []jobs.End{
		{ID: jobID(1), Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusSuccessful, Message: "done", Results: []string{"res/1", "res/1b"},
			Usage: json.RawMessage(`{"wallSeconds":1.5}`), FinalState: "state/1", Log: []jobs.LogEntry{line("one")}, MaxLogBytes: 100}, Event: ev("a")},
		{ID: jobID(2), Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusFailed, Message: "boom", Exception: json.RawMessage(`{"type":"x","title":"boom"}`),
			Log: []jobs.LogEntry{line("second"), line("third")}, MaxLogBytes: 12}, Event: ev("b")},
		{ID: jobID(3), Attempt: 2, Finish: jobs.Finish{Status: jobs.StatusSuccessful}, Event: ev("c")}, // another attempt
		{ID: jobID(4), Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusSuccessful}, Event: ev("d")}, // accepted
		{ID: jobID(9), Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusSuccessful}, Event: ev("e")}, // missing
		{ID: jobID(3), Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusRunning}, Event: ev("f")},    // not final
		{ID: jobID(3), Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusDismissed, Message: "dismissed"}, Event: ev("g")},
		{ID: jobID(3), Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusFailed}, Event: ev("h")},                              // ended just before
		{ID: jobID(1), Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusFailed, Usage: json.RawMessage(`{`)}, Event: ev("i")}, // usage not JSON
	}
	before, _ := s.ListEvents(ctx(t), 0, 1000)
	out, err := s.FinishJobs(ctx(t), ends, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", "", catalog.ECONFLICT, catalog.ECONFLICT, catalog.ENOTFOUND, catalog.EINVALID, "", catalog.ECONFLICT, catalog.EINVALID} {
		if got := catalog.ErrorCode(out[i].Err); got != want || (want == "") != (out[i].Job != nil) {
			t.Fatalf("end %d (%s at %d): job %v, error %v; want code %q", i, ends[i].ID, ends[i].Attempt, out[i].Job, out[i].Err, want)
		}
	}
	j1 := out[0].Job
	if j1.Status != jobs.StatusSuccessful || j1.Message != "done" || j1.Progress != 100 || !slices.Equal(j1.Results, []string{"res/1", "res/1b"}) ||
		j1.FinalState != "state/1" || j1.Finished == nil || !j1.Finished.Equal(now) || !jsonEqual(j1.Usage, json.RawMessage(`{"wallSeconds":1.5}`)) || j1.Exception != nil {
		t.Fatalf("job 1 ended: %+v", j1)
	}
	j2 := out[1].Job
	if j2.Status != jobs.StatusFailed || j2.Message != "boom" || j2.Progress != -1 || !jsonEqual(j2.Exception, json.RawMessage(`{"type":"x","title":"boom"}`)) || j2.Usage != nil {
		t.Fatalf("job 2 ended: %+v", j2)
	}
	if j := out[6].Job; j.Status != jobs.StatusDismissed || j.Message != "dismissed" {
		t.Fatalf("job 3 ended: %+v", j)
	}
	if j := getJob(t, s, jobID(4)); j.Status != jobs.StatusAccepted {
		t.Fatalf("job 4: %+v", j)
	}
	texts := func(id string) []string {
		got, err := s.ReadLog(ctx(t), id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got {
			out = append(out, e.Stream+":"+e.Text)
		}
		return out
	}
	if got := texts(jobID(1)); !slices.Equal(got, []string{"stdout:one"}) {
		t.Fatalf("log of job 1: %v", got)
	}
	if got := texts(jobID(2)); len(got) != 3 || got[1] != "stdout:second" || !strings.HasPrefix(got[2], jobs.StreamSystem+":") {
		t.Fatalf("log of job 2 (bound 12): %v", got)
	}
	if subjects := jobSubjectsSince(t, s, len(before)); !slices.Equal(subjects, []string{"a", "b", "g"}) {
		t.Fatalf("events of the ends: %v", subjects)
	}
}

// testJobManyRace: workers that claim and end overlapping jobs at once,
// in different orders, each get every job at most once, and no change
// is lost or made twice (a deadlock between them would be retried, not
// returned).
func testJobManyRace(t *testing.T, s JobStore) {
	const n = 24
	for i := 1; i <= n; i++ {
		createJob(t, s, newJob(i, "ana"))
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		winner = map[string]string{}
		ended  = map[string]int{}
		errs   []error
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", w)
			var claims []jobs.Claim
			for i := 1; i <= n; i++ {
				k := i
				if w%2 == 1 {
					k = n + 1 - i
				}
				claims = append(claims, jobs.Claim{ID: jobID(k), Attempt: 1})
			}
			out, err := s.ClaimJobs(ctx(t), claims, worker, t0, nil)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			var ends []jobs.End
			mu.Lock()
			for i, c := range out {
				switch {
				case c.Job != nil:
					if prev, ok := winner[c.Job.ID]; ok {
						errs = append(errs, fmt.Errorf("%s claimed by %s and %s", c.Job.ID, prev, worker))
					}
					winner[c.Job.ID] = worker
					ends = append(ends, jobs.End{ID: c.Job.ID, Attempt: 1, Finish: jobs.Finish{Status: jobs.StatusSuccessful}})
				case catalog.ErrorCode(c.Err) != catalog.ECONFLICT:
					errs = append(errs, fmt.Errorf("claim of %s: %v", claims[i].ID, c.Err))
				}
			}
			mu.Unlock()
			// Ends of an attempt no one runs too, which are refused.
			for i := 1; i <= n; i++ {
				ends = append(ends, jobs.End{ID: jobID(i), Attempt: 2, Finish: jobs.Finish{Status: jobs.StatusFailed}})
			}
			done, err := s.FinishJobs(ctx(t), ends, t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for i, d := range done {
				if d.Job != nil {
					ended[d.Job.ID]++
					if ends[i].Finish.Status == jobs.StatusFailed {
						errs = append(errs, fmt.Errorf("%s of %s ended by %s, not its claimant", d.Job.ID, winner[d.Job.ID], worker))
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	for i := 1; i <= n; i++ {
		if ended[jobID(i)] != 1 {
			t.Errorf("job %d ended %d times", i, ended[jobID(i)])
		}
		if j := getJob(t, s, jobID(i)); j.Status != jobs.StatusSuccessful || j.Worker != winner[j.ID] {
			t.Errorf("job %d: %+v, claimed by %s", i, j, winner[j.ID])
		}
	}
}

// jobSubjectsSince returns the job ids the events after the first n name,
// sorted.
func jobSubjectsSince(t *testing.T, s JobStore, n int) []string {
	t.Helper()
	evs, err := s.ListEvents(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs[n:] {
		out = append(out, strings.TrimPrefix(ev.Subject, "jobs/"))
	}
	slices.Sort(out)
	return out
}
