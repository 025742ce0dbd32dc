// Package apitest is the one way HTTP tests talk to the server: a client
// whose transport validates every request and response against the
// committed OpenAPI 3.0 document with kin-openapi. A response that the
// document does not describe (status, field, content type) fails the test
// that produced it, and so does a 2xx answer to a request the document
// rejects.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/twinstac/twinstac/internal/stacschema"
	"github.com/twinstac/twinstac/openapi"
)

// Undocumented lists paths served outside the API description: the
// description itself, its documentation page and the metrics.
var Undocumented = []string{"/api", "/api.yaml", "/api/openapi-3.0.json", "/api/docs", "/api/docs/redoc.standalone.js", "/metrics"}

var (
	loadOnce sync.Once
	doc      *openapi3.T
	router   routers.Router
	loadErr  error
)

// Document loads and validates the committed 3.0 document once.
func Document() (*openapi3.T, routers.Router, error) {
	loadOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
		loader := openapi3.NewLoader()
		doc, loadErr = loader.LoadFromData(openapi.Spec30YAML)
		if loadErr != nil {
			return
		}
		if loadErr = doc.Validate(context.Background()); loadErr != nil {
			return
		}
		// Route on paths alone: the document's server is "/".
		doc.Servers = nil
		router, loadErr = gorillamux.NewRouter(doc)
	})
	return doc, router, loadErr
}

// Client returns an HTTP client for the server at base whose transport
// validates every exchange against the document and reports violations
// on t.
func Client(t testing.TB, base string) *http.Client {
	t.Helper()
	if _, _, err := Document(); err != nil {
		t.Fatalf("loading the OpenAPI document: %v", err)
	}
	return &http.Client{Transport: &transport{t: t, base: http.DefaultTransport}}
}

type transport struct {
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	_, router, _ := Document()
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	route, params, routeErr := router.FindRoute(routable(req))
	// CORS preflights are answered by middleware, not by API operations.
	preflight := req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != ""
	undocumented := preflight || isUndocumented(req.URL.Path)
	var input *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		probe := req.Clone(req.Context())
		probe.Body = io.NopCloser(bytes.NewReader(reqBody))
		input = &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
		reqErr = openapi3filter.ValidateRequest(req.Context(), input)
	}
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	where := req.Method + " " + req.URL.RequestURI()
	switch {
	case undocumented:
		return resp, nil
	case routeErr != nil:
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			tr.t.Errorf("%s: not in the OpenAPI document (%v) but answered %d", where, routeErr, resp.StatusCode)
		}
		return resp, nil
	}
	if reqErr != nil && resp.StatusCode < 400 {
		tr.t.Errorf("%s: the document rejects this request (%v) but the server answered %d", where, short(reqErr), resp.StatusCode)
	}
	if req.Method == http.MethodHead {
		return resp, nil
	}
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), rin); err != nil {
		tr.t.Errorf("%s: response %d does not match the OpenAPI document: %v\nbody: %s", where, resp.StatusCode, short(err), clip(body))
	}
	if resp.StatusCode < 300 && strings.Contains(resp.Header.Get("Content-Type"), "json") && !asksFields(req, reqBody) {
		tr.checkSTAC(where, body)
	}
	return resp, nil
}

var (
	stacOnce      sync.Once
	stacValidator *stacschema.Validator
)

// checkSTAC validates every STAC object in a response (an item, a
// collection, the landing page, or those in a page of them) against the
// official STAC JSON Schema of its version.
func (tr *transport) checkSTAC(where string, body []byte) {
	stacOnce.Do(func() {
		if dir, ok := stacschema.Dir(); ok {
			stacValidator = stacschema.New(dir)
		}
	})
	if stacValidator == nil {
		if os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
			tr.t.Errorf("../shared/conformance/stac-schemas is missing: STAC responses cannot be checked")
		}
		return
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return
	}
	var objs []json.RawMessage
	var typ string
	_ = json.Unmarshal(top["type"], &typ)
	switch {
	case typ == "FeatureCollection":
		_ = json.Unmarshal(top["features"], &objs)
	case top["collections"] != nil:
		_ = json.Unmarshal(top["collections"], &objs)
	case top["stac_version"] != nil:
		objs = []json.RawMessage{body}
	}
	for _, o := range objs {
		if err := stacValidator.Validate(o); err != nil {
			tr.t.Errorf("%s: not valid STAC: %v\n%s", where, short(err), clip(o))
		}
	}
}

// asksFields reports a search that names the fields it wants (the fields
// extension): its items may leave out members STAC requires.
func asksFields(req *http.Request, body []byte) bool {
	if req.URL.Query().Has("fields") {
		return true
	}
	var b struct {
		Fields json.RawMessage `json:"fields"`
	}
	return req.Method == http.MethodPost && json.Unmarshal(body, &b) == nil && b.Fields != nil
}

// routable strips the query-irrelevant parts so the router matches paths
// relative to the document's server.
func routable(req *http.Request) *http.Request {
	r := req.Clone(req.Context())
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	r.Host = ""
	return r
}

func isUndocumented(path string) bool {
	for _, p := range Undocumented {
		if path == p {
			return true
		}
	}
	return false
}

func short(err error) string {
	s := err.Error()
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}

func clip(b []byte) string {
	s := string(b)
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	return strings.TrimSpace(s)
}
