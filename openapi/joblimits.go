package openapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/internal/access"
)

// checkJobLimits refuses a submission of n jobs by caller that would go
// over one of the caller's job limits: a 429 that names the limit, the
// count and the limit, with Retry-After. Admins are exempt; without
// limits configured it costs nothing. Call it before submitting.
func (s *Server) checkJobLimits(ctx context.Context, caller *access.Caller, n int) error {
	if s.deps.Quotas == nil || s.deps.Jobs == nil {
		return nil
	}
	err := s.deps.Quotas.AdmitJobs(ctx, caller, n, s.deps.Jobs.Store.CountActiveJobs)
	var le *access.JobLimitError
	if errors.As(err, &le) {
		secs := max(int(le.RetryAfter.Seconds()), 1)
		return huma.ErrorWithHeaders(err, http.Header{"Retry-After": {strconv.Itoa(secs)}})
	}
	return err
}
