package openapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/jobs"
)

// Shares of jobs and batches: the share policies of collections and
// items, on jobs:<id> and batches:<id>. A share only lets its subject see
// (status, results, log, events, listings); dismissing and saving stay
// with who ran the job, the twin's owner and admins.

// JobShareRequest grants a subject reading a job, or a batch and its
// jobs. Its fields are ShareRequest's, with the actions and roles that
// fit jobs.
type JobShareRequest struct {
	Subject string     `json:"subject" doc:"Who: user:<id>, group:<name>, node:<peer> or token:<id>. Jobs are shown to signed-in callers only, so not anonymous." example:"user:ana"`
	Actions []string   `json:"actions,omitempty" enum:"read" doc:"What they may do: read (the status, results, log and events; for a batch, of its jobs too); or give a role instead." example:"[\"read\"]"`
	Role    string     `json:"role,omitempty" enum:"viewer" doc:"A role instead of actions: viewer (read)."`
	Expires *time.Time `json:"expires,omitempty" doc:"When the share ends (RFC 3339); none: until deleted."`
}

type createJobShareInput struct {
	JobPath
	Body JobShareRequest
}

type createBatchShareInput struct {
	BatchPath
	Body JobShareRequest
}

type jobSharePath struct {
	JobPath
	ShareID string `path:"shareId" doc:"The share id."`
}

type batchSharePath struct {
	BatchPath
	ShareID string `path:"shareId" doc:"The share id."`
}

// shareableJob checks that the caller may share a job: it sees the job
// (404 otherwise) and ran it, owns its twin, is an admin or holds the
// share action on it (403 otherwise).
func (s *Server) shareableJob(ctx context.Context, id string) (access.ShareTarget, error) {
	j, err := s.visibleJob(ctx, id)
	if err != nil {
		return access.ShareTarget{}, err
	}
	return access.JobShare(j.ID), s.requireJobShare(ctx, j.Owner, j.TwinOwner, access.JobResource(j.ID))
}

// shareableBatch is shareableJob for a batch.
func (s *Server) shareableBatch(ctx context.Context, id string) (access.ShareTarget, error) {
	b, err := s.visibleBatch(ctx, id)
	if err != nil {
		return access.ShareTarget{}, err
	}
	return access.BatchShare(b.ID), s.requireJobShare(ctx, b.Owner, b.TwinOwner, access.BatchResource(b.ID))
}

func (s *Server) requireJobShare(ctx context.Context, owner, twinOwner, resource string) error {
	c := CallerOf(ctx)
	ok, err := s.deps.Authz.CanShareJob(ctx, c, owner, twinOwner, resource)
	if err != nil || ok {
		return err
	}
	s.auditDenied(ctx, access.ActionShare, resource)
	return catalog.Errorf(catalog.EFORBIDDEN, "%s may not share %s", c.User, resource)
}

// jobVisibility returns the jobs and batches the caller sees: its own,
// those of its twins and those shared with it; nil for admins (all).
func (s *Server) jobVisibility(ctx context.Context, c *access.Caller) (*jobs.Visibility, error) {
	if c.IsAdmin() {
		return nil, nil
	}
	v := &jobs.Visibility{User: c.User}
	if s.deps.Authz == nil {
		return v, nil
	}
	g, err := s.deps.Authz.SharedJobs(ctx, c)
	if err != nil {
		return nil, err
	}
	v.Jobs, v.Batches = g.Jobs, g.Batches
	return v, nil
}

func (s *Server) registerJobShares() {
	const who = " Who ran it, the twin's owner, admins and those granted share on it may share; a share grants read only, so its subject sees but may not dismiss or save."
	createJob := s.operation("createJobShare", http.MethodPost, "/jobs/{jobId}/shares", "Access", "Share a job",
		"Lets a user, group or peer node see the job: its status, results, log and events, and find it in GET /jobs, until an optional expiry."+who,
		http.StatusCreated, 400, 403, 404)
	listJob := s.operation("listJobShares", http.MethodGet, "/jobs/{jobId}/shares", "Access", "List the shares of a job",
		"Lists who the job is shared with (not those who see it through its batch).", http.StatusOK, 403, 404)
	delJob := s.operation("deleteJobShare", http.MethodDelete, "/jobs/{jobId}/shares/{shareId}", "Access", "End a share of a job",
		"Ends a share; it takes effect on the next request.", http.StatusNoContent, 403, 404)
	createBatch := s.operation("createBatchShare", http.MethodPost, "/batches/{batchId}/shares", "Access", "Share a batch",
		"Lets a user, group or peer node see the batch and every job of it (as a share of each job would), and find them in GET /batches and GET /jobs, until an optional expiry."+who,
		http.StatusCreated, 400, 403, 404)
	listBatch := s.operation("listBatchShares", http.MethodGet, "/batches/{batchId}/shares", "Access", "List the shares of a batch",
		"Lists who the batch is shared with.", http.StatusOK, 403, 404)
	delBatch := s.operation("deleteBatchShare", http.MethodDelete, "/batches/{batchId}/shares/{shareId}", "Access", "End a share of a batch",
		"Ends a share; it takes effect on the next request.", http.StatusNoContent, 403, 404)
	for _, op := range []*huma.Operation{&createJob, &listJob, &delJob, &createBatch, &listBatch, &delBatch} {
		op.Security = requiredAuth
	}
	createJob.SkipValidateBody, createBatch.SkipValidateBody = false, false

	huma.Register(s.api, createJob, func(ctx context.Context, in *createJobShareInput) (*shareOutput, error) {
		on, err := s.shareableJob(ctx, in.JobID)
		if err != nil {
			return nil, err
		}
		return s.createShare(ctx, on, ShareRequest(in.Body))
	})
	huma.Register(s.api, listJob, func(ctx context.Context, in *JobPath) (*shareListOutput, error) {
		on, err := s.shareableJob(ctx, in.JobID)
		if err != nil {
			return nil, err
		}
		return s.listShares(ctx, on)
	})
	huma.Register(s.api, delJob, func(ctx context.Context, in *jobSharePath) (*emptyOutput, error) {
		on, err := s.shareableJob(ctx, in.JobID)
		if err != nil {
			return nil, err
		}
		return nil, s.deleteShare(ctx, on, in.ShareID)
	})
	huma.Register(s.api, createBatch, func(ctx context.Context, in *createBatchShareInput) (*shareOutput, error) {
		on, err := s.shareableBatch(ctx, in.BatchID)
		if err != nil {
			return nil, err
		}
		return s.createShare(ctx, on, ShareRequest(in.Body))
	})
	huma.Register(s.api, listBatch, func(ctx context.Context, in *BatchPath) (*shareListOutput, error) {
		on, err := s.shareableBatch(ctx, in.BatchID)
		if err != nil {
			return nil, err
		}
		return s.listShares(ctx, on)
	})
	huma.Register(s.api, delBatch, func(ctx context.Context, in *batchSharePath) (*emptyOutput, error) {
		on, err := s.shareableBatch(ctx, in.BatchID)
		if err != nil {
			return nil, err
		}
		return nil, s.deleteShare(ctx, on, in.ShareID)
	})
}
