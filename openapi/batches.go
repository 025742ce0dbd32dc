package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// What-if batches: many jobs of one process from one request.

// BatchBody is a batch request: a process and either a sweep over
// parameter values or a list of input sets.
type BatchBody struct {
	Process           string           `json:"process" example:"twins:water-tank" doc:"The process id, <collection>:<item> of the twin."`
	Inputs            map[string]any   `json:"inputs,omitempty" doc:"Base inputs every job gets (an input set's own values win)."`
	Sweep             map[string][]any `json:"sweep,omitempty" doc:"Parameters to sweep over, each with its values: one job per combination (mode product) or per position (mode zip)."`
	Mode              string           `json:"mode,omitempty" enum:"product,zip" doc:"How a sweep combines its values: every combination (product, the default) or the i-th value of each (zip)."`
	InputSets         []map[string]any `json:"inputSets,omitempty" doc:"The inputs of each job, instead of a sweep."`
	MaxParallel       int              `json:"maxParallel,omitempty" minimum:"0" doc:"How many of the batch's jobs may be queued or run at once; 0 or absent: no limit."`
	Restore           string           `json:"restore,omitempty" doc:"A snapshot item, <collection>/<item>, every job starts from."`
	ResultsCollection string           `json:"resultsCollection,omitempty" doc:"A collection the caller may create items in, for the jobs' result items; by default the twin's results collection."`
}

// BatchCounts are a batch's jobs by status.
type BatchCounts struct {
	Accepted   int `json:"accepted"`
	Running    int `json:"running"`
	Successful int `json:"successful"`
	Failed     int `json:"failed"`
	Dismissed  int `json:"dismissed"`
}

// BatchInfo is a batch's status.
type BatchInfo struct {
	ID                string       `json:"id"`
	Process           string       `json:"process"`
	Status            string       `json:"status" enum:"accepted,running,successful,failed,dismissed" doc:"accepted until a job runs, running until every job is over; then successful when all succeeded, dismissed when any was dismissed, failed otherwise."`
	Total             int          `json:"total"`
	Counts            BatchCounts  `json:"counts"`
	Progress          int          `json:"progress" minimum:"0" maximum:"100" doc:"The percentage of the jobs that are over."`
	MaxParallel       int          `json:"maxParallel"`
	ResultsCollection string       `json:"resultsCollection" doc:"The collection of the jobs' result items."`
	Created           time.Time    `json:"created"`
	Updated           time.Time    `json:"updated"`
	Links             []LinkObject `json:"links"`
}

// BatchList is a page of batches.
type BatchList struct {
	Batches []BatchInfo  `json:"batches"`
	Links   []LinkObject `json:"links"`
}

// BatchPath is the path parameter of a batch.
type BatchPath struct {
	BatchID string `path:"batchId" doc:"The batch id."`
}

type submitBatchInput struct {
	Body BatchBody
}

type batchOutput struct {
	Location string `header:"Location"`
	Body     BatchInfo
}

type listBatchesInput struct {
	Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Token string `query:"token" doc:"The page token of a next link (the last batch id of the page before)."`
}

type batchListOutput struct {
	Body BatchList
}

type batchJobsInput struct {
	BatchPath
	Status []string `query:"status,explode" enum:"accepted,running,successful,failed,dismissed" doc:"Only jobs in these statuses."`
	Limit  int      `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Token  string   `query:"token" doc:"The page token of a next link (the last job id of the page before)."`
}

func (s *Server) registerBatches() {
	op := s.operation("submitBatch", http.MethodPost, "/batches", "Processes", "Submit a batch",
		"Runs a process many times from one request (what-if): a sweep over parameter values, every combination (mode product) or position by position (mode zip), or a list of input sets. 201 with the batch. Every job's inputs are checked first: a 400 lists every error, pointing into the sweep, the base inputs or the input sets, and nothing is queued. maxParallel bounds the jobs queued or running at once. Needs the execute right on the twin.",
		http.StatusCreated, 400, 401, 403, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *submitBatchInput) (*batchOutput, error) {
		return s.submitBatch(ctx, &in.Body)
	})

	op = s.operation("getBatches", http.MethodGet, "/batches", "Processes", "List batches",
		"Lists the batches the caller may see, newest first: those it submitted, those of the twins it owns and those shared with it (admins: all).", http.StatusOK, 400, 401)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *listBatchesInput) (*batchListOutput, error) {
		return s.listBatches(ctx, in)
	})

	op = s.operation("getBatch", http.MethodGet, "/batches/{batchId}", "Processes", "Get a batch's status",
		"The batch's jobs counted by status, its progress and overall status.", http.StatusOK, 401, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *BatchPath) (*batchOutput, error) {
		b, err := s.visibleBatch(ctx, in.BatchID)
		if err != nil {
			return nil, err
		}
		return &batchOutput{Body: s.batchInfo(ctx, b)}, nil
	})

	op = s.operation("getBatchJobs", http.MethodGet, "/batches/{batchId}/jobs", "Processes", "List a batch's jobs",
		"The batch's jobs, newest first, as in GET /jobs.", http.StatusOK, 400, 401, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *batchJobsInput) (*jobListOutput, error) {
		return s.batchJobs(ctx, in)
	})

	op = s.operation("dismissBatch", http.MethodDelete, "/batches/{batchId}", "Processes", "Dismiss a batch",
		"Dismisses every job of the batch: queued and held ones never start, running ones are stopped.", http.StatusOK, 401, 403, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *BatchPath) (*batchOutput, error) {
		b, err := s.visibleBatch(ctx, in.BatchID)
		if err != nil {
			return nil, err
		}
		c := CallerOf(ctx)
		if !c.IsAdmin() && b.Owner != c.User && b.TwinOwner != c.User {
			return nil, catalog.Errorf(catalog.EFORBIDDEN, "%s may not dismiss batch %s", c.User, b.ID)
		}
		svc, err := s.jobService()
		if err != nil {
			return nil, err
		}
		if b, err = svc.DismissBatch(ctx, b.ID); err != nil {
			return nil, err
		}
		return &batchOutput{Body: s.batchInfo(ctx, b)}, nil
	})
}

func (s *Server) submitBatch(ctx context.Context, body *BatchBody) (*batchOutput, error) {
	svc, err := s.jobService()
	if err != nil {
		return nil, err
	}
	if body.Process == "" {
		return nil, catalog.Invalid("/process", "name the process to run")
	}
	switch {
	case len(body.Sweep) > 0 && len(body.InputSets) > 0:
		return nil, catalog.Invalid("/inputSets", "give a sweep or input sets, not both")
	case len(body.Sweep) == 0 && len(body.InputSets) == 0:
		return nil, catalog.Invalid("/sweep", "give a sweep over parameter values or a list of input sets")
	case body.MaxParallel < 0:
		return nil, catalog.Invalid("/maxParallel", "maxParallel is 0 (no limit) or more")
	case body.Mode != "" && len(body.Sweep) == 0:
		return nil, catalog.Invalid("/mode", "mode says how a sweep combines its values; this batch has no sweep")
	}
	p, err := s.runnableProcess(ctx, body.Process)
	if err != nil {
		return nil, err
	}
	if err := s.checkRestore(ctx, "/restore", body.Restore); err != nil {
		return nil, err
	}
	if err := s.checkResultsCollection(ctx, "/resultsCollection", body.ResultsCollection); err != nil {
		return nil, err
	}
	sub := jobs.BatchSubmission{Process: p, Owner: CallerOf(ctx).User, MaxParallel: body.MaxParallel,
		ResultsCollection: body.ResultsCollection}
	if sub.ResultsCollection == "" {
		sub.ResultsCollection = workers.ResultsCollection(p.Collection, p.Item)
	}
	if len(body.Sweep) > 0 {
		sets, err := jobs.ExpandSweep(body.Inputs, body.Sweep, body.Mode)
		if err != nil {
			return nil, err
		}
		sub.InputSets = make([]map[string]any, len(sets))
		for i, set := range sets {
			sub.InputSets[i] = set.Inputs
		}
		// An error in a job's inputs points at the swept value or base
		// input it came from.
		sub.Locate = func(i int, ptr string) string {
			name, rest, _ := strings.Cut(strings.TrimPrefix(ptr, "/"), "/")
			if k, ok := sets[i].Picks[unescapePointer(name)]; ok {
				return "/sweep/" + name + "/" + strconv.Itoa(k) + strings.TrimSuffix("/"+rest, "/")
			}
			return "/inputs" + ptr
		}
	} else {
		if len(body.InputSets) > jobs.MaxBatchJobs {
			return nil, catalog.Invalid("/inputSets", "a batch has at most %d jobs, not %d", jobs.MaxBatchJobs, len(body.InputSets))
		}
		sub.InputSets = make([]map[string]any, len(body.InputSets))
		for i, set := range body.InputSets {
			m := make(map[string]any, len(body.Inputs)+len(set))
			for k, v := range body.Inputs {
				m[k] = v
			}
			for k, v := range set {
				m[k] = v
			}
			sub.InputSets[i] = m
		}
	}
	req := workers.Request{Restore: body.Restore, ResultsCollection: sub.ResultsCollection, BatchMaxParallel: body.MaxParallel}
	sub.Request, _ = json.Marshal(req)
	sub.Raw, _ = json.Marshal(body)
	if err := s.checkJobLimits(ctx, CallerOf(ctx), len(sub.InputSets)); err != nil {
		return nil, err
	}
	b, err := svc.SubmitBatch(ctx, sub)
	if err != nil {
		return nil, err
	}
	info := s.batchInfo(ctx, b)
	return &batchOutput{Location: info.Links[0].Href, Body: info}, nil
}

// unescapePointer reads one token of a JSON pointer (RFC 6901).
func unescapePointer(tok string) string {
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
}

// visibleBatch returns a batch the caller may see, or 404.
func (s *Server) visibleBatch(ctx context.Context, id string) (*jobs.Batch, error) {
	svc, c, err := s.jobCaller(ctx)
	if err != nil {
		return nil, err
	}
	bs, ok := svc.Store.(jobs.BatchStore)
	if !ok {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server keeps no batches")
	}
	b, err := bs.GetBatch(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.IsAdmin() || jobs.BatchVisible(b, c.User) {
		return b, nil
	}
	v, err := s.jobVisibility(ctx, c)
	if err != nil {
		return nil, err
	}
	if !v.SeesBatch(b) {
		return nil, catalog.Errorf(catalog.ENOTFOUND, "batch %s not found", id)
	}
	return b, nil
}

func (s *Server) batchInfo(ctx context.Context, b *jobs.Batch) BatchInfo {
	base := s.baseURL(requestOf(ctx))
	self := base + "/batches/" + url.PathEscape(b.ID)
	results := base + "/collections/" + url.PathEscape(b.ResultsCollection) + "/items?" +
		url.Values{"filter": {`"dt:batch" = '` + strings.ReplaceAll(b.ID, "'", "''") + `'`}, "filter-lang": {"cql2-text"}}.Encode()
	return BatchInfo{
		ID: b.ID, Process: b.Process, Status: string(b.Status()), Total: b.Total, Progress: b.Progress(),
		Counts: BatchCounts{Accepted: b.Counts[jobs.StatusAccepted], Running: b.Counts[jobs.StatusRunning],
			Successful: b.Counts[jobs.StatusSuccessful], Failed: b.Counts[jobs.StatusFailed], Dismissed: b.Counts[jobs.StatusDismissed]},
		MaxParallel: b.MaxParallel, ResultsCollection: b.ResultsCollection, Created: b.Created, Updated: b.Updated,
		Links: []LinkObject{
			{Rel: "self", Href: self, Type: mediaJSON, Title: "This batch"},
			{Rel: "up", Href: base + "/batches", Type: mediaJSON, Title: "Batches"},
			{Rel: "jobs", Href: self + "/jobs", Type: mediaJSON, Title: "The batch's jobs"},
			{Rel: "process", Href: base + "/processes/" + url.PathEscape(b.Process), Type: mediaJSON, Title: "The process"},
			{Rel: "results", Href: results, Type: mediaGeoJSON, Title: "The batch's result items"},
		},
	}
}

func (s *Server) listBatches(ctx context.Context, in *listBatchesInput) (*batchListOutput, error) {
	svc, c, err := s.jobCaller(ctx)
	if err != nil {
		return nil, err
	}
	bs, ok := svc.Store.(jobs.BatchStore)
	if !ok {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server keeps no batches")
	}
	q := jobs.BatchQuery{Limit: in.Limit, After: in.Token}
	if q.Visible, err = s.jobVisibility(ctx, c); err != nil {
		return nil, err
	}
	list, err := bs.ListBatches(ctx, q)
	if err != nil {
		return nil, err
	}
	base := s.baseURL(requestOf(ctx))
	out := BatchList{Batches: make([]BatchInfo, 0, len(list)), Links: []LinkObject{{Rel: "self", Href: base + "/batches", Type: mediaJSON}}}
	for _, b := range list {
		out.Batches = append(out.Batches, s.batchInfo(ctx, b))
	}
	if len(list) == in.Limit {
		v := url.Values{"limit": {itoa(in.Limit)}, "token": {list[len(list)-1].ID}}
		out.Links = append(out.Links, LinkObject{Rel: "next", Href: base + "/batches?" + v.Encode(), Type: mediaJSON})
	}
	return &batchListOutput{Body: out}, nil
}

func (s *Server) batchJobs(ctx context.Context, in *batchJobsInput) (*jobListOutput, error) {
	b, err := s.visibleBatch(ctx, in.BatchID)
	if err != nil {
		return nil, err
	}
	svc, _ := s.jobService()
	q := jobs.Query{Batch: b.ID, Limit: in.Limit, After: in.Token}
	for _, st := range in.Status {
		q.Statuses = append(q.Statuses, jobs.Status(st))
	}
	list, err := svc.Store.ListJobs(ctx, q)
	if err != nil {
		return nil, err
	}
	base := s.baseURL(requestOf(ctx))
	self := base + "/batches/" + url.PathEscape(b.ID) + "/jobs"
	out := JobList{Jobs: make([]StatusInfo, 0, len(list)), Links: []LinkObject{{Rel: "self", Href: self, Type: mediaJSON}}}
	for _, j := range list {
		out.Jobs = append(out.Jobs, s.statusInfo(ctx, j))
	}
	if len(list) == in.Limit {
		v := url.Values{"limit": {itoa(in.Limit)}, "token": {list[len(list)-1].ID}}
		for _, st := range in.Status {
			v.Add("status", st)
		}
		out.Links = append(out.Links, LinkObject{Rel: "next", Href: self + "?" + v.Encode(), Type: mediaJSON})
	}
	return &jobListOutput{Body: out}, nil
}
