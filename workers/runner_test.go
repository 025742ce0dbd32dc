package workers_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/sqlite"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// runnerSetup is a catalog on SQLite and a directory, with the examples'
// twins published in collection "twins", and a runner over them.
type runnerSetup struct {
	store  *sqlite.Store
	cat    *catalog.Service
	runner *workers.Runner
	logs   *logs
}

func setupRunner(t *testing.T) *runnerSetup {
	t.Helper()
	st := testdb.SQLite(t)
	blobs, err := blob.NewDir(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cat := &catalog.Service{Store: st, Blobs: blobs}
	raw := `{"type":"Collection","stac_version":"1.1.0","id":"twins","description":"twins","license":"other",
		"extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}},"links":[]}`
	if _, err := cat.CreateCollection(t.Context(), []byte(raw), "olga"); err != nil {
		t.Fatal(err)
	}
	l := &logs{}
	s := &runnerSetup{store: st, cat: cat, logs: l, runner: &workers.Runner{
		Jobs: st, Catalog: cat, Executor: newLocal(t), Worker: "w1", DismissPoll: 20 * time.Millisecond,
		Logs: func(string) workers.LogSink { return l },
	}}
	s.publishTwin(t, "water-tank", "../examples/water-tank")
	s.publishTwin(t, "heartbeat", "../examples/heartbeat")
	return s
}

// publishTwin makes a twin item of an example folder: its lifecycle
// scripts and other files as uploaded assets.
func (s *runnerSetup) publishTwin(t *testing.T, id, dir string) {
	t.Helper()
	doc := map[string]any{"type": "Feature", "stac_version": "1.1.0", "id": id, "geometry": nil,
		"properties": map[string]any{"datetime": "2026-01-01T00:00:00Z", catalog.PropKind: catalog.KindDigitalTwin}, "links": []any{}, "assets": map[string]any{}}
	raw, _ := json.Marshal(doc)
	if _, err := s.cat.CreateItem(t.Context(), "twins", raw); err != nil {
		t.Fatal(err)
	}
	put := func(key, file string) {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		if _, err := s.cat.PutAsset(t.Context(), "twins", id, key, "text/plain", f, nil, catalog.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	scripts, _ := os.ReadDir(filepath.Join(dir, "lifecycle"))
	patch := map[string]any{}
	for _, e := range scripts {
		put(e.Name(), filepath.Join(dir, "lifecycle", e.Name()))
		patch[e.Name()] = map[string]any{"roles": []string{catalog.RoleLifecycle}}
	}
	put("description.md", filepath.Join(dir, "description.md"))
	body, _ := json.Marshal(map[string]any{"assets": patch})
	if _, err := s.cat.PatchItem(t.Context(), "twins", id, body, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cat.MoveItem(t.Context(), "twins", id, catalog.StatePublished, "", nil); err != nil {
		t.Fatal(err)
	}
}

func (s *runnerSetup) submit(t *testing.T, twin string, inputs map[string]any) *jobs.Job {
	t.Helper()
	return s.submitRequest(t, twin, inputs, nil)
}

// submitRequest stores an accepted job of a twin with its request.
func (s *runnerSetup) submitRequest(t *testing.T, twin string, inputs map[string]any, request json.RawMessage) *jobs.Job {
	t.Helper()
	in, _ := json.Marshal(inputs)
	now := time.Now().UTC()
	j := &jobs.Job{ID: uuid.Must(uuid.NewV7()).String(), Process: "twins:" + twin, TwinCollection: "twins", TwinItem: twin,
		TwinETag: "x", Owner: "ana", TwinOwner: "olga", Inputs: in, Request: request, Status: jobs.StatusAccepted, Progress: -1,
		MaxAttempts: 3, Created: now, Updated: now}
	got, _, err := s.store.CreateJob(t.Context(), j, nil)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (s *runnerSetup) job(t *testing.T, id string) *jobs.Job {
	t.Helper()
	j, err := s.store.GetJob(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestRunnerPublishesResults(t *testing.T) {
	t.Parallel()
	s := setupRunner(t)
	j := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 12})
	if err := s.runner.Run(t.Context(), j.ID, 1); err != nil {
		t.Fatal(err)
	}
	j = s.job(t, j.ID)
	if j.Status != jobs.StatusSuccessful || len(j.Results) != 1 || j.Progress != 100 || j.Usage == nil {
		t.Fatalf("job %+v\nlogs %q", j, s.logs.text("create/stderr")+s.logs.text("execute/stderr"))
	}
	coll, id, _ := strings.Cut(j.Results[0], "/")
	if coll != workers.ResultsCollection("twins", "water-tank") || id != j.ID {
		t.Fatalf("result %s", j.Results[0])
	}
	res, err := s.cat.GetItem(t.Context(), coll, id)
	if err != nil {
		t.Fatal(err)
	}
	kind, _, _ := res.Props.String("", catalog.PropKind)
	job, _, _ := res.Props.String("", "dt:job")
	if res.State != catalog.StatePublished || res.Owner() != "ana" || kind != catalog.KindResult || job != j.ID {
		t.Fatalf("result item: state %s, owner %s, kind %s, job %s", res.State, res.Owner(), kind, job)
	}
	var inputs map[string]any
	_ = json.Unmarshal(res.Props["dt:inputs"], &inputs)
	if inputs["steps"] != 12.0 {
		t.Fatalf("the result's dt:inputs: %s", res.Props["dt:inputs"])
	}
	derived := false
	for _, l := range res.Links() {
		rel, _, _ := l.String("", "rel")
		href, _, _ := l.String("", "href")
		derived = derived || (rel == "derived_from" && href == catalog.ItemPath("twins", "water-tank"))
	}
	if !derived {
		t.Fatalf("the result does not derive from the twin: %v", res.Links())
	}
	b, _, err := s.cat.OpenAsset(t.Context(), coll, id, "level.csv")
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(b)
	_ = b.Close()
	if rows := strings.Split(strings.TrimSpace(string(csv)), "\n"); len(rows) != 13 || rows[0] != "t,level" {
		t.Fatalf("the result's level.csv: %q", csv)
	}
	// The results collection belongs to the twin's owner.
	c, err := s.cat.GetCollection(t.Context(), coll)
	if err != nil || c.Owner != "olga" {
		t.Fatalf("results collection %v, %v", c, err)
	}
	// A second task for the finished job does nothing.
	if err := s.runner.Run(t.Context(), j.ID, 2); err != nil {
		t.Fatal(err)
	}
	if again := s.job(t, j.ID); again.Attempt != 1 || again.Status != jobs.StatusSuccessful {
		t.Fatalf("a task for a finished job changed it: %+v", again)
	}
}

func TestRunnerFailsAndDismisses(t *testing.T) {
	t.Parallel()
	s := setupRunner(t)
	j := s.submit(t, "water-tank", map[string]any{"steps": "lots"})
	if err := s.runner.Run(t.Context(), j.ID, 1); err != nil {
		t.Fatal(err)
	}
	j = s.job(t, j.ID)
	if j.Status != jobs.StatusFailed || !strings.Contains(j.Message, "phase create exited with status 2") || !strings.Contains(string(j.Exception), "phase create") {
		t.Fatalf("failed job %+v", j)
	}

	hb := s.submit(t, "heartbeat", map[string]any{"interval": 0.05})
	done := make(chan error, 1)
	go func() { done <- s.runner.Run(context.WithoutCancel(t.Context()), hb.ID, 1) }()
	testdb.WaitFor(t, 10*time.Second, "the heartbeat did not start", func() bool {
		return strings.Contains(s.logs.text("execute/stdout"), "beat 2")
	})
	if _, err := s.store.DismissJob(t.Context(), hb.ID, time.Now().UTC(), nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := s.job(t, hb.ID); got.Status != jobs.StatusDismissed || got.Finished == nil {
		t.Fatalf("dismissed job %+v", got)
	}
	if !strings.Contains(s.logs.text("clean/stdout"), "cleaned up") {
		t.Fatal("clean did not run after the dismissal")
	}
}

func TestRunnerKeepsTheJobsLog(t *testing.T) {
	t.Parallel()
	s := setupRunner(t)
	s.runner.Logs = nil
	s.runner.MaxLogBytes = 4096
	j := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 3})
	if err := s.runner.Run(t.Context(), j.ID, 1); err != nil {
		t.Fatal(err)
	}
	log, err := s.store.ReadLog(t.Context(), j.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range log {
		lines = append(lines, e.Phase+"/"+e.Stream+": "+e.Text)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"/twinstac: attempt 1 of 3 started on worker w1",
		"create/stdout: water tank: inflow=0.5 outflow=0.2 steps=3",
		"execute/stdout: after 3 steps (t=3) the level is",
		"execute/twinstac: phase execute succeeded in",
		"terminate/stdout: 3 steps written",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the log lacks %q:\n%s", want, all)
		}
	}
}

func TestJobLogLines(t *testing.T) {
	t.Parallel()
	s := setupRunner(t)
	j := s.submit(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2})
	l := workers.NewJobLog(s.store, j.ID, 1, 1<<20, time.Hour)
	w := l.Writer("execute", "stdout")
	_, _ = w.Write([]byte("one\r\ntw"))
	_, _ = w.Write([]byte("o\nnul\x00here\nlast without newline"))
	_, _ = w.Write([]byte(strings.Repeat("é", 10000)))
	w.(interface{ Flush() }).Flush()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	log, err := s.store.ReadLog(t.Context(), j.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range log {
		texts = append(texts, e.Text)
	}
	if len(texts) < 5 || texts[0] != "one" || texts[1] != "two" || texts[2] != "nul\uFFFDhere" || !strings.HasPrefix(texts[3], "last without newline") {
		t.Fatalf("lines %q", texts)
	}
	for _, x := range texts {
		if len(x) > 16<<10 || !utf8.ValidString(x) {
			t.Fatalf("a line of %d bytes, valid %v", len(x), utf8.ValidString(x))
		}
	}
}
