package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Runner runs the attempts of jobs: it claims the job, lays out its twin
// from the catalog, runs the phases with an Executor, publishes what the
// twin wrote as a result item, and ends the job. The queue's task
// handler calls Run; Run is safe to call for a job that is not claimable
// (finished, dismissed, taken by a newer attempt): it does nothing.
type Runner struct {
	Jobs jobs.Store
	// Queue queues the held jobs of a batch as its jobs end; nil: the
	// reconciler does it, later.
	Queue    jobs.Queue
	Catalog  *catalog.Service
	Executor Executor
	// Worker names this worker in the jobs it claims.
	Worker string
	// Logs returns where a job's phase output goes; nil: the job's log
	// in the store (JobLog), up to MaxLogBytes per job.
	Logs        func(jobID string) LogSink
	MaxLogBytes int64
	// DismissPoll is how often a running job is checked for a dismissal
	// (default 1 s).
	DismissPoll time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Group is the most jobs whose claims, result items (of one
	// collection) or ends are written in one transaction: those that come
	// while the previous group is written go together (default
	// DefaultGroup; 1: each job on its own).
	Group int

	// open holds the logs of the attempts running here, by job id, so
	// that a job's log is complete before the job ends: who sees it end
	// may read the whole log.
	open sync.Map
	// collections holds the results and snapshots collections known to
	// exist; twins the twins' published versions (immutable), by
	// <collection>/<item>@<etag>.
	collections, twins sync.Map

	groupOnce sync.Once
	claims    *group[jobs.Claim, jobs.Changed]
	ends      *group[jobs.End, jobs.Changed]
	results   *groups[[]byte, struct{}]
}

// DefaultGroup is the default of Runner.Group.
const DefaultGroup = 64

// grouped makes the groups the jobs' writes go through.
func (r *Runner) grouped() {
	r.groupOnce.Do(func() {
		n := r.Group
		if n <= 0 {
			n = DefaultGroup
		}
		r.claims = newGroup(n, func(ctx context.Context, in []jobs.Claim) ([]jobs.Changed, error) {
			now := r.now()
			return r.Jobs.ClaimJobs(ctx, in, r.Worker, now, func(j *jobs.Job) *catalog.Event {
				return jobs.NewEvent(j, jobs.EventJobRunning, now)
			})
		})
		r.ends = newGroup(n, func(ctx context.Context, in []jobs.End) ([]jobs.Changed, error) {
			return r.Jobs.FinishJobs(ctx, in, r.now())
		})
		// An end the store refused as a whole (a message it cannot hold)
		// is that job's fault only; an unavailable store is everyone's.
		r.ends.alone = func(err error) bool { return catalog.ErrorCode(err) != catalog.EUNAVAILABLE }
		// One result item's fault (a taken id) fails CreateItems for all.
		r.results = &groups[[]byte, struct{}]{max: n, do: r.createResults, alone: func(error) bool { return true }}
	})
}

// claim claims an attempt of a job, with the claims of the other jobs
// starting now.
func (r *Runner) claim(ctx context.Context, id string, attempt int) (*jobs.Job, error) {
	r.grouped()
	c, err := r.claims.call(ctx, jobs.Claim{ID: id, Attempt: attempt})
	if err != nil {
		return nil, err
	}
	return c.Job, c.Err
}

// createResults creates result items in one collection at once.
func (r *Runner) createResults(ctx context.Context, coll string, raws [][]byte) ([]struct{}, error) {
	_, err := r.Catalog.CreateItems(ctx, coll, raws, catalog.CreateOptions{MaySetOwner: true, MayPublish: true})
	if err != nil {
		return nil, err
	}
	return make([]struct{}, len(raws)), nil
}

// createResult creates a result item, with the others of its
// collection being created now.
func (r *Runner) createResult(ctx context.Context, coll string, raw []byte) error {
	r.grouped()
	_, err := r.results.call(ctx, coll, raw)
	return err
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Request is what an execution request adds to the inputs (stored in
// Job.Request).
type Request struct {
	// Restore names a snapshot item (<collection>/<item>) to start from.
	Restore string `json:"restore,omitempty"`
	// ResultsCollection is where the result item goes.
	ResultsCollection string `json:"resultsCollection,omitempty"`
	// BatchMaxParallel is the parallelism limit of the job's batch: when
	// set, the job's end frees a slot for a held job of the batch.
	BatchMaxParallel int `json:"batchMaxParallel,omitempty"`
	// Subscriber are the callback URIs of the execution, and BaseURL the
	// API's URL the callbacks' links start with.
	Subscriber *Subscriber `json:"subscriber,omitempty"`
	BaseURL    string      `json:"baseUrl,omitempty"`
	// Sync marks a run its caller waits for: it goes before others.
	Sync bool `json:"sync,omitempty"`
}

// ResultsCollection is the default collection of a twin's results: one
// per twin.
func ResultsCollection(twinCollection, twinItem string) string {
	return twinCollection + "-" + twinItem + "-results"
}

// Run runs attempt of a job. It returns an error only when the attempt
// should be tried again (the store or the catalog was unavailable); a
// twin that fails ends its job failed and Run returns nil.
func (r *Runner) Run(ctx context.Context, jobID string, attempt int) error {
	// The running event commits with the claim.
	j, err := r.claim(ctx, jobID, attempt)
	if err != nil {
		if code := catalog.ErrorCode(err); code == catalog.ECONFLICT || code == catalog.ENOTFOUND {
			// A task a stopping worker gave back may come before that
			// worker released the attempt: it runs again as the next
			// attempt. Otherwise the job is not ours to run.
			if cur, gerr := r.Jobs.GetJob(ctx, jobID); gerr == nil && cur.Status == jobs.StatusRunning && cur.Attempt == attempt && !cur.DismissRequested {
				return fmt.Errorf("attempt %d of job %s is still held by worker %q; it runs again as the next attempt", attempt, jobID, cur.Worker)
			}
			return nil
		}
		return err
	}
	if ctx.Err() != nil {
		// The worker began stopping while the claim was being written
		// (it is written whatever the task's context): the attempt goes
		// back to the queue rather than failing on the stopped context.
		return r.abandon(ctx, j, nil)
	}
	r.notify(ctx, j, jobs.StatusRunning)
	var req Request
	if len(j.Request) > 0 {
		if err := json.Unmarshal(j.Request, &req); err != nil {
			return r.fail(ctx, j, "the job's request cannot be read: "+err.Error(), nil)
		}
	}
	var jl *JobLog
	if r.Logs == nil {
		jl = NewJobLog(r.Jobs, j.ID, j.Attempt, r.MaxLogBytes, 0)
		r.open.Store(j.ID, jl)
		defer func() {
			r.open.Delete(j.ID)
			_ = jl.Close()
		}()
		jl.System("", fmt.Sprintf("attempt %d of %d started on worker %s", j.Attempt, j.MaxAttempts, r.Worker))
	}
	run, twin, err := r.prepare(ctx, j, req)
	if err == nil {
		if jl != nil {
			run.Logs = jl
		} else {
			run.Logs = r.Logs(j.ID)
		}
	}
	if err != nil {
		if catalog.ErrorCode(err) == catalog.EUNAVAILABLE {
			return err
		}
		return r.fail(ctx, j, err.Error(), nil)
	}
	// A dismissal stops the run, and saves are made in its workspace:
	// the store is polled for them.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	live := &liveRun{}
	run.Live = live.set
	dismissed := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.watch(rctx, j.ID, cancel, dismissed, live, jl)
	}()
	started := r.now()
	out, err := r.Executor.Run(rctx, run)
	cancel()
	<-watched
	if err != nil {
		if ctx.Err() != nil {
			return r.abandon(ctx, j, jl) // the worker is stopping: try again
		}
		return r.fail(ctx, j, "the workspace could not be laid out: "+err.Error(), nil)
	}
	defer func() { _ = r.Executor.Cleanup(out) }()
	if jl != nil {
		for _, p := range out.Phases {
			jl.System(p.Phase, phaseLine(&p))
		}
	}
	// Saves asked until the job ended are made once it has, in its
	// workspace, before Cleanup.
	end := func(f jobs.Finish) error {
		done, err := r.finishJob(ctx, j, f)
		if done != nil && len(done.Saves) > 0 {
			r.afterFinish(ctx, done, live)
		}
		return err
	}
	usage := usageOf(out)
	if ctx.Err() != nil {
		// The worker is shutting down: the attempt is abandoned and the
		// queue retries it.
		select {
		case <-dismissed:
		default:
			return r.abandon(ctx, j, jl)
		}
	}
	final := r.keepFinalState(ctx, j, out)
	select {
	case <-dismissed:
		return end(jobs.Finish{Status: jobs.StatusDismissed, Message: "dismissed", Usage: usage, FinalState: final})
	default:
	}
	if f := out.Failed(); f != nil || !out.Succeeded {
		msg := describeFailure(f)
		return end(jobs.Finish{Status: jobs.StatusFailed, Message: msg, Exception: exception(msg), Usage: usage, FinalState: final})
	}
	ref, err := r.publish(ctx, j, req, twin, out, started)
	if err != nil {
		if catalog.ErrorCode(err) == catalog.EUNAVAILABLE {
			return err
		}
		msg := "the results could not be published: " + err.Error()
		return end(jobs.Finish{Status: jobs.StatusFailed, Message: msg, Exception: exception(msg), Usage: usage, FinalState: final})
	}
	return end(jobs.Finish{Status: jobs.StatusSuccessful, Message: "done", Results: []string{ref}, Usage: usage, FinalState: final})
}

// abandon gives the attempt back when the worker stops while it runs:
// the queue runs its task again, with the same attempt, which the job's
// release lets another worker claim.
func (r *Runner) abandon(ctx context.Context, j *jobs.Job, jl *JobLog) error {
	if jl != nil {
		jl.System("", "the worker "+r.Worker+" stopped; the attempt goes back to the queue")
	}
	_ = r.Jobs.ReleaseJob(context.WithoutCancel(ctx), j.ID, j.Attempt, r.Worker, r.now())
	return ctx.Err()
}

// watch polls the store for what is asked of a running job: a
// dismissal cancels the run; a save is made in its live workspace.
func (r *Runner) watch(ctx context.Context, id string, cancel context.CancelFunc, dismissed chan<- struct{}, live *liveRun, jl *JobLog) {
	poll := r.DismissPoll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		j, err := r.Jobs.GetJob(ctx, id)
		if err != nil {
			continue
		}
		if j.DismissRequested {
			close(dismissed)
			cancel()
			return
		}
		if len(j.Saves) > 0 {
			// A save runs to its end even if the run ends meanwhile.
			r.serveSaves(context.WithoutCancel(ctx), j, live, jl)
		}
	}
}

// phaseLine says how a phase ended, for the log.
func phaseLine(p *PhaseResult) string {
	took := p.Ended.Sub(p.Started).Round(time.Millisecond)
	if p.OK() {
		return fmt.Sprintf("phase %s succeeded in %s", p.Phase, took)
	}
	return describeFailure(p) + fmt.Sprintf(" after %s", took)
}

func describeFailure(f *PhaseResult) string {
	switch {
	case f == nil:
		return "the run was stopped"
	case f.Error != "":
		return fmt.Sprintf("phase %s could not start: %s", f.Phase, f.Error)
	case f.TimedOut:
		return fmt.Sprintf("phase %s ran past its time limit and was stopped", f.Phase)
	case f.Signal != "":
		return fmt.Sprintf("phase %s was ended by signal %s", f.Phase, f.Signal)
	default:
		return fmt.Sprintf("phase %s exited with status %d", f.Phase, f.ExitCode)
	}
}

func usageOf(o *Outcome) json.RawMessage {
	u := jobs.Usage{
		WallSeconds: o.Usage.Wall.Seconds(), UserCPU: o.Usage.UserCPU.Seconds(), SystemCPU: o.Usage.SysCPU.Seconds(),
		MaxRSSBytes: o.Usage.MaxRSSBytes, BytesWritten: o.Usage.BytesWritten,
	}
	b, _ := json.Marshal(u)
	return b
}

// fail ends the job failed with an OGC exception.
func (r *Runner) fail(ctx context.Context, j *jobs.Job, msg string, usage json.RawMessage) error {
	return r.finish(ctx, j, jobs.Finish{Status: jobs.StatusFailed, Message: msg, Exception: exception(msg), Usage: usage})
}

// GiveUp ends a job failed after its last attempt could not run (the
// store or the catalog stayed unavailable), so that it does not stay
// running. A job that attempt does not hold is left to the reconciler.
func (r *Runner) GiveUp(ctx context.Context, jobID string, attempt int, cause error) error {
	j, err := r.Jobs.GetJob(ctx, jobID)
	if err != nil {
		return err
	}
	if j.Status != jobs.StatusRunning || j.Attempt != attempt {
		return nil
	}
	return r.fail(ctx, j, "the last attempt could not run: "+cause.Error(), nil)
}

func (r *Runner) finish(ctx context.Context, j *jobs.Job, f jobs.Finish) error {
	_, err := r.finishJob(ctx, j, f)
	return err
}

// finishJob ends a job and returns it as ended (nil when a newer
// attempt took it over).
func (r *Runner) finishJob(ctx context.Context, j *jobs.Job, f jobs.Finish) (*jobs.Job, error) {
	// A message may quote what the twin printed or named.
	f.Message = storableText(f.Message)
	// The log's last lines are written with the end, so that who sees
	// the job end may read its whole log.
	var jl *JobLog
	if x, ok := r.open.Load(j.ID); ok {
		jl = x.(*JobLog)
		f.Log, f.MaxLogBytes = jl.Drain(), jl.MaxBytes()
	}
	// The job ends even when the worker is being stopped.
	ctx = context.WithoutCancel(ctx)
	now := r.now()
	r.grouped()
	c, err := r.ends.call(ctx, jobs.End{ID: j.ID, Attempt: j.Attempt, Finish: f, Event: jobs.NewEvent(j, jobs.EventType(f.Status), now)})
	done := c.Job
	if err == nil {
		err = c.Err
	}
	if err != nil && jl != nil && len(f.Log) > 0 {
		// Not ended by this attempt: its lines are kept all the same.
		_, _ = r.Jobs.AppendLog(ctx, j.ID, f.Log, f.MaxLogBytes)
	}
	if catalog.ErrorCode(err) == catalog.ECONFLICT {
		return nil, nil // a newer attempt took the job over
	}
	if err != nil {
		return nil, err
	}
	r.notify(ctx, done, f.Status)
	r.release(ctx, j)
	return done, nil
}

// notify queues the callbacks of a job's change; one that cannot be
// queued is lost (and logged in the job's log when it is open).
func (r *Runner) notify(ctx context.Context, j *jobs.Job, st jobs.Status) {
	if r.Queue == nil {
		return
	}
	if err := r.Queue.Notify(ctx, j, st); err != nil {
		if jl, ok := r.open.Load(j.ID); ok {
			jl.(*JobLog).System("", "the callback could not be queued: "+err.Error())
		}
	}
}

// release queues the next held jobs of a limited batch whose job ended.
// A failure is left to the reconciler, which releases held batches on
// every pass.
func (r *Runner) release(ctx context.Context, j *jobs.Job) {
	if j.Batch == "" || r.Queue == nil {
		return
	}
	var req Request
	if json.Unmarshal(j.Request, &req) != nil || req.BatchMaxParallel == 0 {
		return
	}
	_ = jobs.ReleaseBatch(ctx, r.Jobs, r.Queue, j.Batch, r.now())
}

// prepare resolves the job's twin, the items it uses and the snapshot to
// restore into a Run.
func (r *Runner) prepare(ctx context.Context, j *jobs.Job, req Request) (*Run, *catalog.Item, error) {
	twin, err := r.twin(ctx, j)
	if err != nil {
		return nil, nil, fmt.Errorf("twin %s/%s: %w", j.TwinCollection, j.TwinItem, err)
	}
	var inputs map[string]any
	dec := json.NewDecoder(bytes.NewReader(j.Inputs))
	dec.UseNumber()
	if err := dec.Decode(&inputs); err != nil {
		return nil, nil, fmt.Errorf("inputs: %w", err)
	}
	run := &Run{
		JobID: j.ID, Attempt: j.Attempt, Inputs: inputs,
		Phases: []string{PhaseCreate, PhaseExecute}, Always: []string{PhaseTerminate, PhaseClean},
	}
	if run.Twin, err = r.component(twin, KindDigitalTwin); err != nil {
		return nil, nil, err
	}
	for _, l := range twin.Links() {
		if rel, _, _ := l.String("", "rel"); rel != catalog.RelUses {
			continue
		}
		href, _, _ := l.String("", "href")
		coll, id, ok := itemOfHref(href)
		if !ok {
			return nil, nil, fmt.Errorf("the twin's dt:uses link %q does not name an item of this catalog", href)
		}
		used, err := r.Catalog.GetItem(ctx, coll, id)
		if err != nil {
			return nil, nil, fmt.Errorf("dt:uses %s/%s: %w", coll, id, err)
		}
		kind, _, _ := used.Props.String("", catalog.PropKind)
		c, err := r.component(used, folderOfKind(kind))
		if err != nil {
			return nil, nil, err
		}
		run.Uses = append(run.Uses, c)
	}
	if req.Restore != "" {
		coll, id, ok := jobs.ParseRef(req.Restore)
		if !ok {
			return nil, nil, fmt.Errorf("restore %q is not <collection>/<item>", req.Restore)
		}
		cat := r.Catalog
		run.Restore = func(ctx context.Context) (io.ReadCloser, error) {
			b, _, err := cat.OpenAsset(ctx, coll, id, SnapshotAsset)
			return b, err
		}
	}
	return run, twin, nil
}

// twin returns the twin a job runs. A published version never changes,
// so the version the job names is read once per worker.
func (r *Runner) twin(ctx context.Context, j *jobs.Job) (*catalog.Item, error) {
	key := jobs.Ref(j.TwinCollection, j.TwinItem) + "@" + j.TwinETag
	if it, ok := r.twins.Load(key); ok {
		return it.(*catalog.Item), nil
	}
	it, err := r.Catalog.GetItem(ctx, j.TwinCollection, j.TwinItem)
	if err != nil {
		return nil, err
	}
	if it.ETag == j.TwinETag && it.State == catalog.StatePublished {
		r.twins.Store(key, it)
	}
	return it, nil
}

// SnapshotAsset is the asset key of a snapshot item's state archive.
const SnapshotAsset = "state"

// folderOfKind is the library folder of an item kind.
func folderOfKind(kind string) string {
	switch kind {
	case catalog.KindModel:
		return KindModel
	case catalog.KindTool:
		return KindTool
	case catalog.KindFunction:
		return KindFunction
	case catalog.KindDigitalTwin:
		return KindDigitalTwin
	default:
		return KindData
	}
}

// itemOfHref returns the collection and item an item link names (an
// absolute or root-relative URL ending in /collections/{c}/items/{i}).
func itemOfHref(href string) (coll, id string, ok bool) {
	u, err := url.Parse(href)
	if err != nil {
		return "", "", false
	}
	parts := strings.Split(strings.TrimSuffix(u.EscapedPath(), "/"), "/")
	if len(parts) < 4 || parts[len(parts)-4] != "collections" || parts[len(parts)-2] != "items" {
		return "", "", false
	}
	c, err1 := url.PathUnescape(parts[len(parts)-3])
	i, err2 := url.PathUnescape(parts[len(parts)-1])
	if err1 != nil || err2 != nil || c == "" || i == "" {
		return "", "", false
	}
	return c, i, true
}

// component lays out an item's uploaded assets: lifecycle scripts under
// lifecycle/<key>, other files as <key>, or where dt:path says. Assets
// that link elsewhere (no uploaded file) are not fetched.
func (r *Runner) component(it *catalog.Item, kind string) (Component, error) {
	c := Component{Kind: kind, Name: it.ID}
	keys := make([]string, 0, len(it.Assets()))
	for k := range it.Assets() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	cat := r.Catalog
	for _, key := range keys {
		a := it.Assets()[key]
		href, _, _ := a.String("", "href")
		if href != catalog.AssetPath(it.Collection, it.ID, key) {
			continue
		}
		p := key
		var roles []string
		_ = json.Unmarshal(a["roles"], &roles)
		lifecycle := slices.Contains(roles, catalog.RoleLifecycle)
		if lifecycle {
			p = LifecycleDir + "/" + key
		}
		if dp, ok, _ := a.String("", catalog.PropAssetPath); ok && dp != "" {
			p = dp
		}
		c.Files = append(c.Files, File{Path: p, Executable: lifecycle, Open: func(ctx context.Context) (io.ReadCloser, error) {
			b, _, err := cat.OpenItemAsset(ctx, it, key)
			return b, err
		}})
	}
	return c, nil
}

// publish stores the twin's outputs as a result item, published, owned
// by who ran the job, with its provenance, and returns <collection>/<id>.
func (r *Runner) publish(ctx context.Context, j *jobs.Job, req Request, twin *catalog.Item, out *Outcome, started time.Time) (string, error) {
	coll := req.ResultsCollection
	if coll == "" {
		coll = ResultsCollection(j.TwinCollection, j.TwinItem)
	}
	if err := r.ensureResults(ctx, coll, j, twin); err != nil {
		return "", err
	}
	id := j.ID
	ref := jobs.Ref(coll, id)
	// A retried attempt may find the result of one that died after
	// publishing it.
	if j.Attempt > 1 {
		if it, err := r.Catalog.GetItem(ctx, coll, id); err == nil {
			if it.State == catalog.StatePublished {
				return ref, nil
			}
			if err := r.Catalog.DeleteItem(ctx, coll, id, nil); err != nil {
				return "", err
			}
		}
	}
	ended := r.now()
	var inputs any
	_ = json.Unmarshal(j.Inputs, &inputs)
	links := []map[string]any{
		{"rel": "derived_from", "href": catalog.ItemPath(twin.Collection, twin.ID), "type": "application/geo+json", "title": "the twin"},
		{"rel": "related", "href": "/jobs/" + url.PathEscape(j.ID), "type": "application/json", "title": "the job"},
	}
	for _, l := range twin.Links() {
		if rel, _, _ := l.String("", "rel"); rel == catalog.RelUses {
			href, _, _ := l.String("", "href")
			links = append(links, map[string]any{"rel": "derived_from", "href": href, "type": "application/geo+json"})
		}
	}
	doc := map[string]any{
		"type": "Feature", "stac_version": "1.1.0", "id": id, "geometry": nil,
		"properties": map[string]any{
			"datetime": nil, "start_datetime": started.Format(time.RFC3339Nano), "end_datetime": ended.Format(time.RFC3339Nano),
			"title":           "Result of job " + j.ID,
			catalog.PropKind:  catalog.KindResult,
			catalog.PropOwner: j.Owner,
			"dt:job":          j.ID,
			"dt:process":      j.Process,
			"dt:inputs":       inputs,
			"dt:twin":         jobs.Ref(twin.Collection, twin.ID),
			"dt:twin_version": twin.ETag,
			"dt:batch":        nilIfEmpty(j.Batch),
		},
		"links": links, "assets": map[string]any{},
	}
	// Each scalar input is a property of its own too, so that runs are
	// compared by a filter on it (CQL2 names no nested member).
	if m, ok := inputs.(map[string]any); ok {
		props := doc["properties"].(map[string]any)
		for k, v := range m {
			switch v.(type) {
			case string, float64, bool:
				props[InputProperty(k)] = v
			}
		}
	}
	// Without files the item is made published at once; with files, as a
	// draft that is published once they are all there.
	if len(out.Outputs) == 0 {
		doc["properties"].(map[string]any)[catalog.PropState] = catalog.StatePublished
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	err = r.createResult(ctx, coll, raw)
	if catalog.ErrorCode(err) == catalog.ENOTFOUND {
		// The collection was deleted since this worker made sure of it.
		r.collections.Delete(coll)
		if err = r.ensureResults(ctx, coll, j, twin); err == nil {
			err = r.createResult(ctx, coll, raw)
		}
	}
	if err != nil {
		return "", err
	}
	if len(out.Outputs) == 0 {
		return ref, nil
	}
	for _, f := range out.Outputs {
		if err := r.putOutput(ctx, coll, id, out, f); err != nil {
			return "", err
		}
	}
	if _, err := r.Catalog.MoveItem(ctx, coll, id, catalog.StatePublished, "the job succeeded", nil); err != nil {
		return "", err
	}
	return ref, nil
}

// InputProperty is the property of a result item that holds the scalar
// input name of its run: dt:input:<name>.
func InputProperty(name string) string { return "dt:input:" + name }

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// assetKeyOf turns an output's path into an asset key.
func assetKeyOf(p string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(p)
}

func (r *Runner) putOutput(ctx context.Context, coll, id string, out *Outcome, f OutputFile) error {
	fh, err := os.Open(filepath.Join(out.Dir, OutputsDir, filepath.FromSlash(f.Path)))
	if err != nil {
		return err
	}
	defer func() { _ = fh.Close() }()
	typ := mime.TypeByExtension(path.Ext(f.Path))
	if typ == "" {
		typ = "application/octet-stream"
	}
	_, err = r.Catalog.PutAsset(ctx, coll, id, assetKeyOf(f.Path), typ, io.LimitReader(fh, f.Size), nil, catalog.Quota{})
	return err
}

// ensureResults creates the results collection when it is missing,
// owned by the twin's owner and private, as the twin's collection.
func (r *Runner) ensureResults(ctx context.Context, coll string, j *jobs.Job, twin *catalog.Item) error {
	if _, ok := r.collections.Load(coll); ok {
		return nil
	}
	// The twin's own results collection is its owner's; another one,
	// named by the run (and gone since), is made again as who ran it.
	owner := j.TwinOwner
	if coll != ResultsCollection(j.TwinCollection, j.TwinItem) {
		owner = j.Owner
	}
	if err := ensureCollection(ctx, r.Catalog, coll, owner, "Results of runs of the twin "+jobs.Ref(twin.Collection, twin.ID)+"."); err != nil {
		return err
	}
	r.collections.Store(coll, true)
	return nil
}
