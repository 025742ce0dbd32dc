package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// batchStore is the store under test as a jobs.BatchStore.
func batchStore(t *testing.T, s JobStore) jobs.BatchStore {
	t.Helper()
	bs, ok := s.(jobs.BatchStore)
	if !ok {
		t.Fatalf("the store %T keeps no batches", s)
	}
	return bs
}

// newBatch makes a batch of n jobs of ana's (ids from first), at most
// maxParallel at once.
func newBatch(id string, first, n, maxParallel int) (*jobs.Batch, []*jobs.Job, []*catalog.Event) {
	b := &jobs.Batch{ID: id, Process: "twins:tank", Owner: "ana", TwinOwner: "olga", Total: n, MaxParallel: maxParallel,
		Request: json.RawMessage(`{"process":"twins:tank","sweep":{"inflow":[1,2]}}`), ResultsCollection: "twins-tank-results",
		Created: t0, Updated: t0}
	list := make([]*jobs.Job, n)
	events := []*catalog.Event{{ID: uuid.NewString(), Type: jobs.EventBatchCreated, Subject: jobs.BatchSubject(id), Time: t0, Payload: json.RawMessage(`{}`)}}
	for i := range n {
		j := newJob(first+i, "ana")
		j.Batch = id
		j.Inputs = json.RawMessage(fmt.Sprintf(`{"inflow":%d}`, i))
		list[i] = j
		events = append(events, jobEvent(jobs.EventJobAccepted, j.ID))
	}
	return b, list, events
}

func testBatchRoundTrip(t *testing.T, s JobStore) {
	bs := batchStore(t, s)
	b, list, events := newBatch("b1", 1, 5, 0)
	if err := bs.CreateBatch(ctx(t), b, list, events); err != nil {
		t.Fatal(err)
	}
	got, err := bs.GetBatch(ctx(t), "b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "b1" || got.Process != b.Process || got.Owner != "ana" || got.TwinOwner != "olga" || got.Total != 5 ||
		got.MaxParallel != 0 || got.ResultsCollection != b.ResultsCollection || !got.Created.Equal(t0) || !jsonEqual(got.Request, b.Request) {
		t.Fatalf("stored %+v\nwant %+v", got, b)
	}
	if got.Counts[jobs.StatusAccepted] != 5 || got.Counts[jobs.StatusRunning] != 0 || got.Status() != jobs.StatusAccepted {
		t.Fatalf("counts %v, status %s", got.Counts, got.Status())
	}
	for i, j := range list {
		g := getJob(t, s, j.ID)
		if g.Batch != "b1" || g.Status != jobs.StatusAccepted || !jsonEqual(g.Inputs, j.Inputs) || g.Owner != "ana" || g.MaxAttempts != 3 {
			t.Fatalf("job %d stored as %+v", i, g)
		}
	}
	evs, err := s.ListEvents(ctx(t), 0, 100)
	if err != nil || len(evs) != 6 || evs[0].Type != jobs.EventBatchCreated {
		t.Fatalf("events %d (%v), want the batch's and five jobs'", len(evs), err)
	}
	// Jobs of the batch are listed by it, and the batch by its owner and
	// its twin's owner only.
	page, err := s.ListJobs(ctx(t), jobs.Query{Batch: "b1", Limit: 100})
	if err != nil || len(page) != 5 {
		t.Fatalf("ListJobs(batch) = %d, %v", len(page), err)
	}
	for user, want := range map[string]int{"ana": 1, "olga": 1, "bob": 0} {
		got, err := bs.ListBatches(ctx(t), jobs.BatchQuery{Visible: &jobs.Visibility{User: user}, Limit: 10})
		if err != nil || len(got) != want {
			t.Fatalf("ListBatches(%s) = %d, %v; want %d", user, len(got), err, want)
		}
		if want == 1 && got[0].Counts[jobs.StatusAccepted] != 5 {
			t.Fatalf("listed counts %v", got[0].Counts)
		}
	}
	// A batch shared with a user is listed to the user too.
	for _, tc := range []struct {
		shared []string
		want   int
	}{{[]string{"b1"}, 1}, {[]string{"b9", "b1"}, 1}, {[]string{"b9"}, 0}, {nil, 0}} {
		got, err := bs.ListBatches(ctx(t), jobs.BatchQuery{Visible: &jobs.Visibility{User: "bob", Batches: tc.shared}, Limit: 10})
		if err != nil || len(got) != tc.want {
			t.Fatalf("ListBatches(bob, shared %v) = %d, %v; want %d", tc.shared, len(got), err, tc.want)
		}
	}
	// Sharing a job of the batch does not share the batch.
	if got, err := bs.ListBatches(ctx(t), jobs.BatchQuery{Visible: &jobs.Visibility{User: "bob", Jobs: []string{list[0].ID}}, Limit: 10}); err != nil || len(got) != 0 {
		t.Fatalf("ListBatches(bob, a shared job) = %d, %v; want 0", len(got), err)
	}
	if err := bs.CreateBatch(ctx(t), b, nil, nil); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("a batch made twice: %v, want ECONFLICT", err)
	}
	_, err = bs.GetBatch(ctx(t), "b9")
	wantJobCode(t, err, catalog.ENOTFOUND, "GetBatch of a missing batch")
	// A batch with a job whose inputs are not an object is not stored
	// at all.
	b2, list2, ev2 := newBatch("b2", 20, 2, 0)
	list2[1].Inputs = json.RawMessage(`[1]`)
	wantJobCode(t, bs.CreateBatch(ctx(t), b2, list2, ev2), catalog.EINVALID, "CreateBatch with bad inputs")
	if _, err := bs.GetBatch(ctx(t), "b2"); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("a refused batch was stored: %v", err)
	}
}

func testBatchRelease(t *testing.T, s JobStore) {
	bs := batchStore(t, s)
	b, list, events := newBatch("b1", 1, 5, 2)
	if err := bs.CreateBatch(ctx(t), b, list, events); err != nil {
		t.Fatal(err)
	}
	// Two slots, both taken: nothing to release, and the held jobs are
	// not the reconciler's.
	if got, err := bs.ReleaseBatch(ctx(t), "b1", t0); err != nil || len(got) != 0 {
		t.Fatalf("ReleaseBatch with no free slot = %d, %v", len(got), err)
	}
	pending, err := s.PendingJobs(ctx(t), t0.Add(time.Hour), 100)
	if err != nil || len(pending) != 2 || pending[0].ID != list[0].ID || pending[1].ID != list[1].ID {
		t.Fatalf("pending = %v, %v; want the two unheld jobs", jobIDs(pending), err)
	}
	if held, err := bs.HeldBatches(ctx(t), 10); err != nil || !slices.Equal(held, []string{"b1"}) {
		t.Fatalf("HeldBatches = %v, %v", held, err)
	}
	// The first job runs and ends: one slot frees, the next held job is
	// released.
	if _, err := s.ClaimJob(ctx(t), list[0].ID, 1, "w", t0, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := bs.ReleaseBatch(ctx(t), "b1", t0); err != nil || len(got) != 0 {
		t.Fatalf("ReleaseBatch with a running job = %d, %v", len(got), err)
	}
	if _, err := s.FinishJob(ctx(t), list[0].ID, 1, jobs.Finish{Status: jobs.StatusSuccessful}, t0, nil); err != nil {
		t.Fatal(err)
	}
	got, err := bs.ReleaseBatch(ctx(t), "b1", t0.Add(time.Minute))
	if err != nil || len(got) != 1 || got[0].ID != list[2].ID || got[0].Status != jobs.StatusAccepted {
		t.Fatalf("ReleaseBatch after one ended = %v, %v; want %s", jobIDs(got), err, list[2].ID)
	}
	if again, err := bs.ReleaseBatch(ctx(t), "b1", t0); err != nil || len(again) != 0 {
		t.Fatalf("ReleaseBatch again = %v, %v", jobIDs(again), err)
	}
	// Dismissing a queued job frees its slot too.
	if _, err := s.DismissJob(ctx(t), list[1].ID, t0, nil); err != nil {
		t.Fatal(err)
	}
	got, err = bs.ReleaseBatch(ctx(t), "b1", t0)
	if err != nil || len(got) != 1 || got[0].ID != list[3].ID {
		t.Fatalf("ReleaseBatch after a dismissal = %v, %v; want %s", jobIDs(got), err, list[3].ID)
	}
	_, err = bs.ReleaseBatch(ctx(t), "b9", t0)
	wantJobCode(t, err, catalog.ENOTFOUND, "ReleaseBatch of a missing batch")
	// A batch without a limit holds nothing.
	b2, list2, ev2 := newBatch("b2", 20, 3, 0)
	if err := bs.CreateBatch(ctx(t), b2, list2, ev2); err != nil {
		t.Fatal(err)
	}
	if got, err := bs.ReleaseBatch(ctx(t), "b2", t0); err != nil || len(got) != 0 {
		t.Fatalf("ReleaseBatch of an unlimited batch = %v, %v", jobIDs(got), err)
	}
	if held, err := bs.HeldBatches(ctx(t), 10); err != nil || !slices.Equal(held, []string{"b1"}) {
		t.Fatalf("HeldBatches = %v, %v", held, err)
	}
}

// testBatchReleaseRace: jobs ending at once release no more jobs than
// the slots they free.
func testBatchReleaseRace(t *testing.T, s JobStore) {
	bs := batchStore(t, s)
	b, list, events := newBatch("b1", 1, 20, 4)
	if err := bs.CreateBatch(ctx(t), b, list, events); err != nil {
		t.Fatal(err)
	}
	for _, j := range list[:4] {
		if _, err := s.ClaimJob(ctx(t), j.ID, 1, "w", t0, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishJob(ctx(t), j.ID, 1, jobs.Finish{Status: jobs.StatusFailed}, t0, nil); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		released []string
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := bs.ReleaseBatch(ctx(t), "b1", t0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			released = append(released, jobIDs(got)...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(released)
	if want := jobIDs(list[4:8]); !slices.Equal(released, want) {
		t.Fatalf("released %v, want %v", released, want)
	}
}

func testBatchDismiss(t *testing.T, s JobStore) {
	bs := batchStore(t, s)
	b, list, events := newBatch("b1", 1, 4, 2)
	if err := bs.CreateBatch(ctx(t), b, list, events); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimJob(ctx(t), list[0].ID, 1, "w", t0, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := s.ListEvents(ctx(t), 0, 100)
	got, err := bs.DismissBatch(ctx(t), "b1", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// One running (asked to stop), three accepted (one queued, two held)
	// dismissed at once.
	if got.Counts[jobs.StatusDismissed] != 3 || got.Counts[jobs.StatusRunning] != 1 || got.Counts[jobs.StatusAccepted] != 0 {
		t.Fatalf("counts after dismissal %v", got.Counts)
	}
	if j := getJob(t, s, list[0].ID); j.Status != jobs.StatusRunning || !j.DismissRequested {
		t.Fatalf("running job after the batch's dismissal: %s, dismiss requested %v", j.Status, j.DismissRequested)
	}
	for _, j := range list[1:] {
		if g := getJob(t, s, j.ID); g.Status != jobs.StatusDismissed || g.Finished == nil {
			t.Fatalf("job %s after the batch's dismissal: %s", j.ID, g.Status)
		}
	}
	after, _ := s.ListEvents(ctx(t), 0, 100)
	if n := len(after) - len(before); n != 3 {
		t.Fatalf("%d events written by the dismissal, want 3", n)
	}
	for _, ev := range after[len(before):] {
		if ev.Type != jobs.EventJobDismissed {
			t.Fatalf("event %s, want %s", ev.Type, jobs.EventJobDismissed)
		}
	}
	if held, err := bs.HeldBatches(ctx(t), 10); err != nil || len(held) != 0 {
		t.Fatalf("HeldBatches after the dismissal = %v, %v", held, err)
	}
	_, err = bs.DismissBatch(ctx(t), "b9", t0)
	wantJobCode(t, err, catalog.ENOTFOUND, "DismissBatch of a missing batch")
}

func jobIDs(list []*jobs.Job) []string {
	out := make([]string, len(list))
	for i, j := range list {
		out[i] = j.ID
	}
	return out
}
