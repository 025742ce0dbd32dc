package openapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
)

// StoredBytes is a limit and the use against it.
type StoredBytes struct {
	Limit int64 `json:"limit" doc:"The limit in bytes; 0 is unlimited."`
	Used  int64 `json:"used" doc:"Asset bytes stored in the collections the user owns."`
}

// QuotaInfo describes a user's quotas.
type QuotaInfo struct {
	User        string      `json:"user"`
	StoredBytes StoredBytes `json:"stored_bytes"`
}

// QuotaRequest sets a user's limits.
type QuotaRequest struct {
	StoredBytes *int64 `json:"stored_bytes" minimum:"0" doc:"The stored-bytes limit for this user (0: unlimited); null returns the user to the node default."`
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
	return &quotaOutput{Body: QuotaInfo{User: user, StoredBytes: StoredBytes{Limit: limit, Used: used}}}, nil
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
		"Overrides the node's default limits for a user (admins only).", http.StatusOK, 400, 403)
	op.Security = requiredAuth
	op.SkipValidateBody = false
	huma.Register(s.api, op, func(ctx context.Context, in *setQuotaInput) (*quotaOutput, error) {
		if s.deps.Quotas == nil || s.deps.Quotas.Store == nil {
			return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server keeps no quotas")
		}
		if err := s.deps.Quotas.SetStoredBytesLimit(ctx, CallerOf(ctx), in.User, in.Body.StoredBytes); err != nil {
			return nil, err
		}
		return s.quotaInfo(ctx, in.User)
	})
}
