package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Saves: a save of a job fills a snapshot item (made, as a draft, when
// the save is asked) with the twin's state/ folder as a tar.gz asset,
// after running the twin's save phase, and publishes it. A save asked
// while the job runs is made by the worker running it, in the live
// workspace; one asked after the job ended is made by any worker from
// the state the job's last attempt left (FinalState), in a fresh
// workspace. A save that cannot be made leaves its item a draft with
// dt:save_error saying why.

// Properties of snapshot items.
const (
	// PropSaveError says why a snapshot could not be made.
	PropSaveError = "dt:save_error"
	// PropSaved is when the snapshot's state was taken.
	PropSaved = "dt:saved"
)

// SnapshotsCollection is the default collection of a twin's snapshots:
// one per twin.
func SnapshotsCollection(twinCollection, twinItem string) string {
	return twinCollection + "-" + twinItem + "-snapshots"
}

// finalStateKey is the blob key of the state a job's attempt left.
func finalStateKey(jobID string) string { return "jobs/" + jobID + "/state.tar.gz" }

// liveRun is the workspace of an attempt running here, once laid out.
type liveRun struct {
	mu sync.Mutex
	ws Workspace
}

func (l *liveRun) set(w Workspace) {
	l.mu.Lock()
	l.ws = w
	l.mu.Unlock()
}

func (l *liveRun) get() Workspace {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ws
}

// hasPhase reports whether a twin has a lifecycle script for phase.
func hasPhase(c Component, phase string) bool {
	for _, f := range c.Files {
		if f.Path == LifecycleDir+"/"+phase {
			return true
		}
	}
	return false
}

// makeSave runs the twin's save phase (if it has one) in w, then stores
// its state/ folder into the snapshot item ref and publishes it. A save
// that fails marks the item; the error returned is only for a store or
// blob store that is unavailable.
func (r *Runner) makeSave(ctx context.Context, j *jobs.Job, w Workspace, ref string, log *JobLog) error {
	coll, id, ok := jobs.ParseRef(ref)
	if !ok {
		return nil
	}
	say := func(text string) {
		if log != nil {
			log.System(PhaseSave, text)
		}
	}
	say("saving the state into " + ref)
	res, ran := w.RunPhase(ctx, PhaseSave)
	if ran && !res.OK() {
		msg := describeFailure(&res)
		say(msg)
		return r.failSave(ctx, coll, id, msg)
	}
	return r.storeSnapshot(ctx, coll, id, filepath.Join(w.Dir(), StateDir), say)
}

// storeSnapshot packs a state folder into the snapshot item's asset and
// publishes the item.
func (r *Runner) storeSnapshot(ctx context.Context, coll, id, stateDir string, say func(string)) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(PackState(stateDir, pw)) }()
	_, err := r.Catalog.PutAsset(ctx, coll, id, SnapshotAsset, StateMediaType, pr, nil, catalog.Quota{})
	_ = pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		if catalog.ErrorCode(err) == catalog.EUNAVAILABLE {
			return err
		}
		say("the state could not be stored: " + err.Error())
		return r.failSave(ctx, coll, id, "the state could not be stored: "+err.Error())
	}
	patch, _ := json.Marshal(map[string]any{"properties": map[string]any{PropSaved: r.now().Format(time.RFC3339Nano), PropSaveError: nil}})
	if _, err := r.Catalog.PatchItem(ctx, coll, id, patch, nil); err != nil {
		return ignoreGone(err)
	}
	if _, err := r.Catalog.MoveItem(ctx, coll, id, catalog.StatePublished, "saved", nil); err != nil {
		return ignoreGone(err)
	}
	say("state saved into " + jobs.Ref(coll, id))
	return nil
}

// failSave records on the snapshot item why its save failed.
func (r *Runner) failSave(ctx context.Context, coll, id, msg string) error {
	patch, _ := json.Marshal(map[string]any{"properties": map[string]any{PropSaveError: msg}})
	_, err := r.Catalog.PatchItem(context.WithoutCancel(ctx), coll, id, patch, nil)
	return ignoreGone(err)
}

// ignoreGone drops the errors of a snapshot item deleted or changed
// meanwhile: the save has no item left to fill.
func ignoreGone(err error) error {
	switch catalog.ErrorCode(err) {
	case catalog.ENOTFOUND, catalog.ECONFLICT, catalog.EINVALID:
		return nil
	}
	return err
}

// serveSaves makes the saves asked of a running job, in its live
// workspace, as the store shows them.
func (r *Runner) serveSaves(ctx context.Context, j *jobs.Job, live *liveRun, log *JobLog) {
	w := live.get()
	if w == nil {
		return
	}
	for _, ref := range j.Saves {
		if err := r.makeSave(ctx, j, w, ref, log); err != nil {
			return // the store is unavailable: the save stays asked
		}
		_ = r.Jobs.SaveDone(ctx, j.ID, ref)
	}
}

// keepFinalState stores the state an attempt left, if any, and returns
// its blob key ("" when the state folder is empty).
func (r *Runner) keepFinalState(ctx context.Context, j *jobs.Job, out *Outcome) string {
	dir := filepath.Join(out.Dir, StateDir)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 || r.Catalog.Blobs == nil {
		return ""
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(PackState(dir, pw)) }()
	key := finalStateKey(j.ID)
	_, err = r.Catalog.Blobs.Put(ctx, key, pr, 0)
	_ = pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return ""
	}
	return key
}

// afterFinish makes the saves still asked of a job that just ended, in
// its workspace, which is still there.
func (r *Runner) afterFinish(ctx context.Context, j *jobs.Job, live *liveRun) {
	ctx = context.WithoutCancel(ctx)
	log := NewJobLog(r.Jobs, j.ID, j.Attempt, r.MaxLogBytes, 0)
	defer func() { _ = log.Close() }()
	if live.get() != nil {
		r.serveSaves(ctx, j, live, log)
		return
	}
	// The workspace was never laid out: the saves are made, or fail,
	// from the final state.
	for _, ref := range j.Saves {
		if r.Queue != nil {
			if err := r.Queue.EnqueueSave(ctx, j.ID, ref); err == nil {
				_ = r.Jobs.SaveDone(ctx, j.ID, ref)
			}
		}
	}
}

// Save makes a save asked of a job that is not running, from the state
// its last attempt left, in a fresh workspace: the twin's save phase
// runs there (if it has one) and state/ becomes the snapshot. It
// returns an error only when the save should be tried again.
func (r *Runner) Save(ctx context.Context, jobID, ref string) error {
	coll, id, ok := jobs.ParseRef(ref)
	if !ok {
		return nil
	}
	j, err := r.Jobs.GetJob(ctx, jobID)
	if catalog.ErrorCode(err) == catalog.ENOTFOUND {
		return r.failSave(ctx, coll, id, "job "+jobID+" is gone")
	}
	if err != nil {
		return err
	}
	snap, err := r.Catalog.GetItem(ctx, coll, id)
	if err != nil || snap.State != catalog.StateDraft {
		return ignoreGone(err) // made already, or deleted
	}
	if !j.Status.Final() {
		// Still running: its worker makes it.
		if _, err := r.Jobs.RequestSave(ctx, jobID, ref, r.now()); err != nil {
			return err
		}
		if cur, err := r.Jobs.GetJob(ctx, jobID); err == nil && !cur.Status.Final() {
			return nil
		}
	}
	var req Request
	_ = json.Unmarshal(j.Request, &req)
	req.Restore = ""
	run, _, err := r.prepare(ctx, j, req)
	if err != nil {
		if catalog.ErrorCode(err) == catalog.EUNAVAILABLE {
			return err
		}
		return r.failSave(ctx, coll, id, err.Error())
	}
	switch {
	case j.FinalState != "":
		key := j.FinalState
		run.Restore = func(ctx context.Context) (io.ReadCloser, error) { return r.Catalog.Blobs.Open(ctx, key) }
	case !hasPhase(run.Twin, PhaseSave):
		return r.failSave(ctx, coll, id, fmt.Sprintf("job %s left no state to save, and its twin has no save phase", j.ID))
	}
	run.Phases, run.Always = []string{PhaseSave}, nil
	run.Label = "save-" + id
	if !safeName.MatchString(run.Label) {
		run.Label = "save"
	}
	log := NewJobLog(r.Jobs, j.ID, max(j.Attempt, 1), r.MaxLogBytes, 0)
	defer func() { _ = log.Close() }()
	run.Logs = log
	log.System(PhaseSave, "saving the state the job left into "+ref)
	out, err := r.Executor.Run(ctx, run)
	if err != nil {
		return r.failSave(ctx, coll, id, "the workspace could not be laid out: "+err.Error())
	}
	defer func() { _ = r.Executor.Cleanup(out) }()
	if f := out.Failed(); f != nil {
		log.System(PhaseSave, describeFailure(f))
		return r.failSave(ctx, coll, id, describeFailure(f))
	}
	return r.storeSnapshot(ctx, coll, id, filepath.Join(out.Dir, StateDir), func(s string) { log.System(PhaseSave, s) })
}

// AskSave asks for a save of a job by user: it makes the snapshot item,
// a draft owned by user in the twin's snapshots collection, and has the
// save made: by the worker running the job, or by a save task when the
// job is over. It returns the item as <collection>/<item>. A 2xx for it
// is durable: the draft is there, and the save is in the job's row or
// in the queue. Codes: ECONFLICT (the job has not started),
// EUNAVAILABLE.
func AskSave(ctx context.Context, cat *catalog.Service, st jobs.Store, q jobs.Queue, j *jobs.Job, user string, now time.Time) (string, error) {
	if j.Status == jobs.StatusAccepted {
		return "", catalog.Errorf(catalog.ECONFLICT, "job %s has not started: there is no state to save yet", j.ID)
	}
	twin, err := cat.GetItem(ctx, j.TwinCollection, j.TwinItem)
	if err != nil {
		return "", fmt.Errorf("twin %s/%s: %w", j.TwinCollection, j.TwinItem, err)
	}
	coll := SnapshotsCollection(j.TwinCollection, j.TwinItem)
	if err := ensureCollection(ctx, cat, coll, j.TwinOwner, "Snapshots of the state of runs of the twin "+jobs.Ref(twin.Collection, twin.ID)+"."); err != nil {
		return "", err
	}
	id := jobs.NewID()
	doc := map[string]any{
		"type": "Feature", "stac_version": "1.1.0", "id": id, "geometry": nil,
		"properties": map[string]any{
			"datetime":        now.Format(time.RFC3339Nano),
			"title":           "Snapshot of job " + j.ID,
			catalog.PropKind:  catalog.KindSnapshot,
			catalog.PropOwner: user,
			"dt:job":          j.ID,
			"dt:process":      j.Process,
			"dt:twin":         jobs.Ref(twin.Collection, twin.ID),
			"dt:twin_version": j.TwinETag,
		},
		"links": []map[string]any{
			{"rel": "derived_from", "href": catalog.ItemPath(twin.Collection, twin.ID), "type": "application/geo+json", "title": "the twin"},
			{"rel": "related", "href": "/jobs/" + j.ID, "type": "application/json", "title": "the job"},
		},
		"assets": map[string]any{},
	}
	raw, _ := json.Marshal(doc)
	if _, err := cat.CreateItems(ctx, coll, [][]byte{raw}, catalog.CreateOptions{MaySetOwner: true}); err != nil {
		return "", err
	}
	ref := jobs.Ref(coll, id)
	if j.Status == jobs.StatusRunning {
		cur, err := st.RequestSave(ctx, j.ID, ref, now)
		if err != nil {
			_ = cat.DeleteItem(context.WithoutCancel(ctx), coll, id, nil)
			return "", err
		}
		for _, x := range cur.Saves {
			if x == ref {
				return ref, nil
			}
		}
		// It ended meanwhile: a save task makes it.
	}
	if err := q.EnqueueSave(ctx, j.ID, ref); err != nil {
		_ = cat.DeleteItem(context.WithoutCancel(ctx), coll, id, nil)
		return "", err
	}
	return ref, nil
}

// ensureCollection creates a collection the server fills (results,
// snapshots) when it is missing, owned by owner and private.
func ensureCollection(ctx context.Context, cat *catalog.Service, coll, owner, description string) error {
	if _, err := cat.GetCollection(ctx, coll); err == nil {
		return nil
	} else if catalog.ErrorCode(err) != catalog.ENOTFOUND {
		return err
	}
	raw, _ := json.Marshal(map[string]any{
		"type": "Collection", "stac_version": "1.1.0", "id": coll, "license": "other", "description": description,
		"extent": map[string]any{
			"spatial":  map[string]any{"bbox": [][]float64{{-180, -90, 180, 90}}},
			"temporal": map[string]any{"interval": [][]any{{nil, nil}}},
		},
		"links": []any{},
	})
	_, err := cat.CreateCollection(ctx, raw, owner)
	if catalog.ErrorCode(err) == catalog.ECONFLICT {
		return nil // made meanwhile by another worker
	}
	return err
}
