// Package openapi is the HTTP API of twinstac: every huma operation (a
// file per resource), the mapping of domain errors to problem details,
// links and paging tokens, middleware (request ids, logs, metrics, CORS),
// and the export of the OpenAPI documents.
//
// Handlers are thin: parse (by huma), call the domain service, render.
// No SQL and no business rules live here.
package openapi

//go:generate go run ./export -out .
