package openapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// StoredBytes is a limit and the use against it.
type StoredBytes struct {
	Limit int64 `json:"limit" doc:"The limit in bytes; 0 is unlimited."`
	Used  int64 `json:"used" doc:"Asset bytes stored in the collections the user owns."`
}

// JobCount is a job limit and the jobs that count against it.
type JobCount struct {
	Limit int64 `json:"limit" doc:"The limit in jobs; 0 is unlimited."`
	Used  int64 `json:"used" doc:"The user's jobs that count against the limit now."`
}

// QuotaInfo describes a user's quotas.
type QuotaInfo struct {
	User        string      `json:"user"`
	StoredBytes StoredBytes `json:"stored_bytes"`
	RunningJobs JobCount    `json:"running_jobs" doc:"How many of the user's jobs may be queued or running at once: every accepted job may start at any moment, so this bounds the jobs that run at the same time. A submission over it is a 429."`
	QueuedJobs  JobCount    `json:"queued_jobs" doc:"How many of the user's jobs may wait for a worker (accepted). A submission over it is a 429."`
}

// QuotaRequest sets a user's limits. A member left out keeps its
// value; null returns it to the node default.
type QuotaRequest struct {
	StoredBytes OptionalLimit `json:"stored_bytes,omitempty" doc:"The stored-bytes limit for this user (0: unlimited); null returns the user to the node default; left out, it stays."`
	RunningJobs OptionalLimit `json:"running_jobs,omitempty" doc:"The limit on the user's jobs queued or running at once (0: unlimited); null returns the user to the node default; left out, it stays."`
	QueuedJobs  OptionalLimit `json:"queued_jobs,omitempty" doc:"The limit on the user's jobs waiting for a worker (0: unlimited); null returns the user to the node default; left out, it stays."`
}

// OptionalLimit is a limit in a request that may be left out (Set
// false), null (Value nil) or a number.
type OptionalLimit struct {
	Set   bool
	Value *int64
}

// UnmarshalJSON implements json.Unmarshaler; it is called for null too.
func (o *OptionalLimit) UnmarshalJSON(b []byte) error {
	o.Set, o.Value = true, nil
	if string(b) == "null" {
		return nil
	}
	var v int64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// Schema implements huma.SchemaProvider: an integer of at least 0, or
// null.
func (o OptionalLimit) Schema(huma.Registry) *huma.Schema {
	zero := 0.0
	return &huma.Schema{Type: huma.TypeInteger, Format: "int64", Nullable: true, Minimum: &zero}
}

// QuotaPath names a user in the path.
type QuotaPath struct {
	User string `path:"user" doc:"The user id." example:"ana"`
}

type setQuotaInput struct {
	QuotaPath
	Body QuotaRequest
}

type quotaOutput struct {
	Body QuotaInfo
}

func (s *Server) quotaInfo(ctx context.Context, user string) (*quotaOutput, error) {
	limit, err := s.deps.Quotas.StoredBytesLimit(ctx, user)
	if err != nil {
		return nil, err
	}
	used, err := s.deps.Catalog.Store.StoredBytes(ctx, user)
	if err != nil {
		return nil, err
	}
	info := QuotaInfo{User: user, StoredBytes: StoredBytes{Limit: limit, Used: used}}
	jl, err := s.deps.Quotas.JobLimits(ctx, user)
	if err != nil {
		return nil, err
	}
	info.RunningJobs.Limit, info.QueuedJobs.Limit = jl.Running, jl.Queued
	if s.deps.Jobs != nil {
		accepted, running, err := s.deps.Jobs.Store.CountActiveJobs(ctx, user)
		if err != nil {
			return nil, err
		}
		info.RunningJobs.Used, info.QueuedJobs.Used = int64(accepted+running), int64(accepted)
	}
	return &quotaOutput{Body: info}, nil
}

func (s *Server) registerQuotas() {
	op := s.operation("getQuota", http.MethodGet, "/quotas/{user}", "Access", "Get a user's quotas",
		"The limits that apply to a user and the use against them; users see their own, admins anyone's.", http.StatusOK, 403)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *QuotaPath) (*quotaOutput, error) {
		c := CallerOf(ctx)
		switch {
		case c.IsAnonymous():
			return nil, catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in to see quotas")
		case c.User != in.User && !c.IsAdmin():
			return nil, catalog.Errorf(catalog.EFORBIDDEN, "only node administrators see other users' quotas")
		}
		return s.quotaInfo(ctx, in.User)
	})

	op = s.operation("setQuota", http.MethodPut, "/quotas/{user}", "Access", "Set a user's quotas",
		"Overrides the node's default limits for a user (admins only): stored bytes, and jobs queued or running at once and jobs queued. Members left out keep their value; null returns one to the node default.", http.StatusOK, 400, 403)
	op.Security = requiredAuth
	op.SkipValidateBody = false
	huma.Register(s.api, op, func(ctx context.Context, in *setQuotaInput) (*quotaOutput, error) {
		if s.deps.Quotas == nil || s.deps.Quotas.Store == nil {
			return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server keeps no quotas")
		}
		if b := in.Body.StoredBytes; b.Set {
			if err := s.deps.Quotas.SetStoredBytesLimit(ctx, CallerOf(ctx), in.User, b.Value); err != nil {
				return nil, err
			}
		}
		change := map[access.JobLimitKind]*int64{}
		for kind, v := range map[access.JobLimitKind]OptionalLimit{access.RunningJobs: in.Body.RunningJobs, access.QueuedJobs: in.Body.QueuedJobs} {
			if v.Set {
				change[kind] = v.Value
			}
		}
		if err := s.deps.Quotas.SetJobLimits(ctx, CallerOf(ctx), in.User, change); err != nil {
			return nil, err
		}
		return s.quotaInfo(ctx, in.User)
	})
}
