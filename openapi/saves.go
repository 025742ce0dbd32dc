package openapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// SaveInfo is an accepted save of a job.
type SaveInfo struct {
	JobID    string       `json:"jobID"`
	Status   string       `json:"status" enum:"accepted" doc:"The save is asked; the snapshot item is a draft until its state is stored, then published. A save that fails leaves the draft with dt:save_error."`
	Snapshot string       `json:"snapshot" doc:"The snapshot item, <collection>/<item>: what a later execution names in restore." example:"twins-water-tank-snapshots/0190a000-0000-7000-8000-000000000001"`
	Links    []LinkObject `json:"links"`
}

type saveOutput struct {
	Location string `header:"Location"`
	Body     SaveInfo
}

func (s *Server) registerSaves() {
	op := s.operation("saveJob", http.MethodPost, "/jobs/{jobId}/save", "Processes", "Save a job's state",
		"Saves the state of a running or finished job as a snapshot item: the twin's save phase runs (in the running job's workspace, or in a fresh one holding the state the finished job left), then its state/ folder is stored as a tar.gz asset of a new item of kind snapshot in <collection>-<twin>-snapshots, linked to the twin and the job. 202 with the item, a draft until the state is stored; an execution with \"restore\": \"<collection>/<item>\" starts from it. 409 for a job that has not started.",
		http.StatusAccepted, 401, 403, 404, 409)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *JobPath) (*saveOutput, error) {
		j, err := s.visibleJob(ctx, in.JobID)
		if err != nil {
			return nil, err
		}
		c := CallerOf(ctx)
		if !c.IsAdmin() && j.Owner != c.User && j.TwinOwner != c.User {
			return nil, catalog.Errorf(catalog.EFORBIDDEN, "%s may not save job %s", c.User, j.ID)
		}
		svc, err := s.jobService()
		if err != nil {
			return nil, err
		}
		ref, err := workers.AskSave(ctx, s.deps.Catalog, svc.Store, svc.Queue, j, c.User, time.Now().UTC())
		if err != nil {
			return nil, err
		}
		coll, id, _ := jobs.ParseRef(ref)
		base := s.baseURL(requestOf(ctx))
		href := base + catalog.ItemPath(coll, id)
		return &saveOutput{Location: href, Body: SaveInfo{JobID: j.ID, Status: "accepted", Snapshot: ref, Links: []LinkObject{
			{Rel: "item", Href: href, Type: mediaGeoJSON, Title: "The snapshot"},
			{Rel: "up", Href: base + "/jobs/" + j.ID, Type: mediaJSON, Title: "The job"},
		}}}, nil
	})
}
