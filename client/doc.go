// Package client is the Go client of the twinstac API.
//
// client.gen.go is generated from the exported OpenAPI 3.0 document
// (openapi/openapi-3.0.yaml) by oapi-codegen: types, and a client whose
// methods return typed responses. It is not edited by hand; `go generate
// ./client` makes it again, and a test fails when it no longer matches
// the document.
//
// Beside it, by hand and kept thin: New, which sets up bearer-token
// authentication and retries of 429 and 503 answers (honouring
// Retry-After); iterators that follow the next links of collections,
// items, searches and jobs (the Docs variants yield each element's JSON
// as the server wrote it beside its typed value); following a job's log and the event stream
// (server-sent events); and Error, the problem details of a failed call
// as a Go error.
package client

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../openapi/openapi-3.0.yaml
