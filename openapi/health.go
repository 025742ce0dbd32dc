package openapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
)

// Health is the body of the health probes.
type Health struct {
	Status string `json:"status" enum:"ok" doc:"ok when the probe passes."`
}

type healthOutput struct {
	Body Health
}

func (s *Server) registerHealth() {
	op := s.operation("getHealth", http.MethodGet, "/healthz", "Health", "Liveness probe",
		"Answers 200 while the process serves requests.", http.StatusOK)
	op.Errors = nil
	registerHealth(s, op, func(context.Context) error { return nil })
	op = s.operation("getReadiness", http.MethodGet, "/readyz", "Health", "Readiness probe",
		"Answers 200 when the database and blob store answer, 503 otherwise.", http.StatusOK, 503)
	registerHealth(s, op, func(ctx context.Context) error {
		if s.deps.Ready == nil {
			return nil
		}
		return s.deps.Ready(ctx)
	})
}

func registerHealth(s *Server, op huma.Operation, check func(context.Context) error) {
	huma.Register(s.api, op, func(ctx context.Context, _ *noInput) (*healthOutput, error) {
		if err := check(ctx); err != nil {
			return nil, catalog.Errorf(catalog.EUNAVAILABLE, "not ready: %s", catalog.ErrorMessage(err))
		}
		return &healthOutput{Body: Health{Status: "ok"}}, nil
	})
}
