package openapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"sigs.k8s.io/yaml"
)

//go:embed docs/redoc.standalone.js
var redocJS []byte

// DocumentJSON returns the OpenAPI 3.1 document as JSON.
func (s *Server) DocumentJSON() ([]byte, error) {
	b, err := json.Marshal(s.api.OpenAPI())
	if err != nil {
		return nil, err
	}
	return indent(b)
}

// Document30JSON returns the OpenAPI 3.0 downgrade, adjusted for tools
// that read 3.0 strictly (kin-openapi, oapi-codegen).
func (s *Server) Document30JSON() ([]byte, error) {
	b, err := s.api.OpenAPI().Downgrade()
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	fix30(doc)
	b, err = json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return indent(b)
}

// Document30YAML returns the 3.0 downgrade as YAML.
func (s *Server) Document30YAML() ([]byte, error) {
	b, err := s.Document30JSON()
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(b)
}

// fix30 rewrites what the 3.0 downgrade keeps but 3.0 readers reject:
// const becomes a one-value enum, and contentMediaType/contentEncoding go.
func fix30(v any) {
	switch v := v.(type) {
	case map[string]any:
		if c, ok := v["const"]; ok {
			v["enum"] = []any{c}
			delete(v, "const")
		}
		delete(v, "contentMediaType")
		delete(v, "contentEncoding")
		delete(v, "$schema")
		for _, child := range v {
			fix30(child)
		}
	case []any:
		for _, child := range v {
			fix30(child)
		}
	}
}

func indent(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// registerSpec serves the documents and the documentation page.
func (s *Server) registerSpec() {
	serve := func(op, ct string, doc func() ([]byte, error)) http.Handler {
		return s.metrics.observe(op, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := doc()
			if err != nil {
				writeProblem(w, r, err)
				return
			}
			w.Header().Set("Content-Type", ct)
			_, _ = w.Write(b)
		}))
	}
	s.mux.Handle("GET /api", serve("getOpenAPI", "application/vnd.oai.openapi+json;version=3.1", s.DocumentJSON))
	s.mux.Handle("GET /api.yaml", serve("getOpenAPIYAML", "application/yaml", func() ([]byte, error) { return s.api.OpenAPI().YAML() }))
	s.mux.Handle("GET /api/openapi-3.0.json", serve("getOpenAPI30", "application/vnd.oai.openapi+json;version=3.0", s.Document30JSON))
	s.mux.Handle("GET /api/docs", serve("getDocs", "text/html; charset=utf-8", func() ([]byte, error) { return []byte(docsPage), nil }))
	s.mux.Handle("GET /api/docs/redoc.standalone.js", serve("getDocsScript", "text/javascript; charset=utf-8", func() ([]byte, error) { return redocJS, nil }))
}

// docsPage renders the API description with Redoc, served from the binary
// itself so that the page works offline.
var docsPage = fmt.Sprintf(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>twinstac API</title>
<style>body { margin: 0; padding: 0; font-family: system-ui, sans-serif; }</style>
</head>
<body>
<redoc spec-url="%s" hide-download-button="false"></redoc>
<script src="%s"></script>
</body>
</html>
`, "../api", "docs/redoc.standalone.js")

// Documents returns the exported documents by file name, as `go generate`
// writes them: openapi.json (3.1) and openapi-3.0.yaml.
func Documents() (map[string][]byte, error) {
	s := New(Config{}, Deps{})
	j, err := s.DocumentJSON()
	if err != nil {
		return nil, err
	}
	y, err := s.Document30YAML()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"openapi.json": j, "openapi-3.0.yaml": y}, nil
}

// Spec30YAML is the committed OpenAPI 3.0 document (openapi-3.0.yaml), the
// contract that tests validate traffic against and the client is
// generated from.
//
//go:embed openapi-3.0.yaml
var Spec30YAML []byte

// tidyDocument removes what huma adds but this API never does: 422
// answers (parameter errors are 400 here) and Content-Type listed as a
// response header (OpenAPI ignores it).
func (s *Server) tidyDocument() {
	for _, item := range s.api.OpenAPI().Paths {
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch, item.Head} {
			if op == nil {
				continue
			}
			delete(op.Responses, "422")
			for _, r := range op.Responses {
				delete(r.Headers, "Content-Type")
			}
		}
	}
}

// documentBody sets the request body of an operation in the document
// after it was registered; see registerBulk.
func (s *Server) documentBody(op huma.Operation, rb *huma.RequestBody) {
	item := s.api.OpenAPI().Paths[op.Path]
	for _, o := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch} {
		if o != nil && o.OperationID == op.OperationID {
			o.RequestBody = rb
		}
	}
}
