package openapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Problem is an RFC 9457 problem detail, the body of every error response.
type Problem struct {
	Type      string         `json:"type,omitempty" doc:"A URI naming the kind of problem." example:"about:blank"`
	Title     string         `json:"title" doc:"A short summary of the kind of problem." example:"Bad Request"`
	Status    int            `json:"status" doc:"The HTTP status code." example:"400"`
	Detail    string         `json:"detail,omitempty" doc:"What went wrong, for a person." example:"an item needs an id"`
	Instance  string         `json:"instance,omitempty" doc:"The request path."`
	Code      string         `json:"code,omitempty" doc:"A stable, machine-readable code." example:"invalid"`
	Pointer   string         `json:"pointer,omitempty" doc:"Where in the request the problem is: a JSON pointer into the body (/properties/datetime) or a parameter (query.bbox)." example:"/id"`
	RequestID string         `json:"request_id,omitempty" doc:"The request id, also in the X-Request-Id header; quote it when reporting a problem."`
	Errors    []*ErrorDetail `json:"errors,omitempty" doc:"Individual problems, when there are several." nullable:"false"`
}

// ErrorDetail is one of several problems.
type ErrorDetail struct {
	Message  string `json:"message,omitempty" doc:"What is wrong."`
	Location string `json:"location,omitempty" doc:"Where: a parameter or a path into the body."`
}

// Error implements error.
func (p *Problem) Error() string { return p.Detail }

// GetStatus implements huma.StatusError.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes error responses application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" || ct == "" {
		return "application/problem+json"
	}
	return ct
}

// statusOf maps domain error codes to HTTP statuses, in one place.
var statusOf = map[string]int{
	catalog.EINVALID:         http.StatusBadRequest,
	catalog.ENOTFOUND:        http.StatusNotFound,
	catalog.ECONFLICT:        http.StatusConflict,
	catalog.EPRECONDITION:    http.StatusPreconditionFailed,
	catalog.EGONE:            http.StatusGone,
	catalog.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	catalog.ETOOMANY:         http.StatusTooManyRequests,
	catalog.EFORBIDDEN:       http.StatusForbidden,
	catalog.EUNAUTHENTICATED: http.StatusUnauthorized,
	catalog.EUNAVAILABLE:     http.StatusServiceUnavailable,
	catalog.EINTERNAL:        http.StatusInternalServerError,
}

// problemFor turns any error into a problem detail. Domain errors keep
// their message; anything else is logged and shown as "internal error".
func problemFor(ctx context.Context, err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	code := catalog.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status, code = http.StatusInternalServerError, catalog.EINTERNAL
	}
	p = &Problem{Status: status, Title: http.StatusText(status), Code: code, RequestID: RequestID(ctx)}
	var ce *catalog.Error
	if errors.As(err, &ce) && code != catalog.EINTERNAL {
		p.Detail, p.Pointer = ce.Message, ce.Pointer
		// Every wrong input of an execution, each at its pointer.
		var ie *jobs.InputsError
		if errors.As(err, &ie) {
			for _, e := range ie.Errors {
				p.Errors = append(p.Errors, &ErrorDetail{Message: e.Message, Location: ie.Pointer(e)})
			}
		}
	} else {
		p.Detail = "internal error; quote request id " + p.RequestID + " when reporting it"
	}
	if status >= 500 {
		logger(ctx).Error("request failed", "error", err.Error(), "code", code)
	}
	return p
}

// installErrors makes huma build every error as a Problem: its own
// (parameter validation, body limits) and ours (domain errors returned by
// handlers). Huma's 422 for invalid parameters becomes 400, the status
// STAC clients expect.
func installErrors() {
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return newProblem(context.Background(), status, msg, errs...)
	}
	huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		ctx := context.Background()
		if hctx != nil {
			ctx = hctx.Context()
		}
		return newProblem(ctx, status, msg, errs...)
	}
}

func newProblem(ctx context.Context, status int, msg string, errs ...error) *Problem {
	// A handler's error arrives as the only detail of a 500.
	if status == http.StatusInternalServerError && len(errs) == 1 {
		if _, ok := errs[0].(huma.ErrorDetailer); !ok {
			return problemFor(ctx, errs[0])
		}
	}
	if status == http.StatusUnprocessableEntity {
		status = http.StatusBadRequest
	}
	p := &Problem{Status: status, Title: http.StatusText(status), Detail: msg, RequestID: RequestID(ctx)}
	if code, ok := codeOf[status]; ok {
		p.Code = code
	}
	for _, e := range errs {
		if e == nil {
			continue
		}
		d := &ErrorDetail{Message: e.Error()}
		if ed, ok := e.(huma.ErrorDetailer); ok {
			hd := ed.ErrorDetail()
			d = &ErrorDetail{Message: hd.Message, Location: hd.Location}
			if p.Pointer == "" {
				p.Pointer = hd.Location
			}
		}
		p.Errors = append(p.Errors, d)
	}
	if len(p.Errors) > 0 {
		first := p.Errors[0]
		p.Detail = msg + ": " + first.Message
		if first.Location != "" {
			p.Detail += " (at " + first.Location + ")"
		}
	}
	if status >= 500 {
		logger(ctx).Error("request failed", "detail", msg)
	}
	return p
}

var codeOf = func() map[int]string {
	m := map[int]string{}
	for code, status := range statusOf {
		m[status] = code
	}
	return m
}()

// writeProblem writes a problem outside huma (middleware, raw handlers).
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(r.Context(), err)
	writeProblemDetail(w, r, p)
}

func writeProblemDetail(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = jsonEncode(w, p)
}

var _ huma.StatusError = (*Problem)(nil)

// logger returns the request's logger.
func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
