package openapi

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/twinstac/twinstac/catalog"
)

func TestProblemMapping(t *testing.T) {
	t.Parallel()
	ctx := context.WithValue(context.Background(), requestIDKey{}, "req-1")
	cases := []struct {
		name    string
		err     error
		status  int
		detail  string
		pointer string
	}{
		{"invalid", catalog.Invalid("/id", "an item needs an id"), http.StatusBadRequest, "an item needs an id", "/id"},
		{"not found", catalog.Errorf(catalog.ENOTFOUND, "item %q not found", "x"), http.StatusNotFound, `item "x" not found`, ""},
		{"conflict", catalog.Errorf(catalog.ECONFLICT, "exists"), http.StatusConflict, "exists", ""},
		{"precondition", catalog.Errorf(catalog.EPRECONDITION, "changed"), http.StatusPreconditionFailed, "changed", ""},
		{"gone", catalog.Errorf(catalog.EGONE, "deleted"), http.StatusGone, "deleted", ""},
		{"too large", catalog.Errorf(catalog.ETOOLARGE, "big"), http.StatusRequestEntityTooLarge, "big", ""},
		{"forbidden", catalog.Errorf(catalog.EFORBIDDEN, "no"), http.StatusForbidden, "no", ""},
		{"unauthenticated", catalog.Errorf(catalog.EUNAUTHENTICATED, "who"), http.StatusUnauthorized, "who", ""},
		{"unavailable", catalog.Errorf(catalog.EUNAVAILABLE, "db down"), http.StatusServiceUnavailable, "db down", ""},
		{"internal hides the cause", catalog.Internal(errors.New("pq: secret table name")), http.StatusInternalServerError, "internal error; quote request id req-1 when reporting it", ""},
		{"foreign error hides the cause", errors.New("dial tcp 10.0.0.1: refused"), http.StatusInternalServerError, "internal error; quote request id req-1 when reporting it", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := problemFor(ctx, tc.err)
			if p.Status != tc.status || p.Detail != tc.detail || p.Pointer != tc.pointer || p.RequestID != "req-1" {
				t.Fatalf("got %d %q at %q (request %q), want %d %q at %q", p.Status, p.Detail, p.Pointer, p.RequestID, tc.status, tc.detail, tc.pointer)
			}
		})
	}
	// Huma's own 422 (parameter validation) becomes a 400.
	if p := newProblem(ctx, http.StatusUnprocessableEntity, "validation failed"); p.Status != http.StatusBadRequest || p.Code != catalog.EINVALID {
		t.Fatalf("422 became %d %q", p.Status, p.Code)
	}
}
