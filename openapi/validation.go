package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"sigs.k8s.io/yaml"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// ValidationResult says whether an execution request's inputs fit the
// process, and lists every error.
type ValidationResult struct {
	Valid  bool              `json:"valid"`
	Errors []jobs.InputError `json:"errors" doc:"Every error, with the JSON pointer of its input (/level)."`
}

type validateInput struct {
	ProcessPath
	ContentType string `header:"Content-Type"`
	RawBody     []byte
}

type validationOutput struct {
	Body ValidationResult
}

func (s *Server) registerValidation() {
	op := s.operation("validateExecution", http.MethodPost, "/processes/{processId}/validation", "Processes", "Check an execution request",
		"Checks the inputs of an execution request against the process's parameters (the twin's dt:parameters) and lists every error; nothing runs. The body is that of an execution, as JSON or as YAML (Content-Type: application/yaml), so a configuration file can be checked as it is.",
		http.StatusOK, 400, 404)
	schema := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(ExecuteBody{}), true, "")
	op.RequestBody = &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
		mediaJSON:          {Schema: schema},
		"application/yaml": {Schema: schema},
	}}
	huma.Register(s.api, op, func(ctx context.Context, in *validateInput) (*validationOutput, error) {
		p, err := s.process(ctx, in.ProcessID)
		if err != nil {
			return nil, err
		}
		body, err := parseExecuteBody(in.ContentType, in.RawBody)
		if err != nil {
			return nil, err
		}
		errs := p.ValidateInputs(body.Inputs)
		if errs == nil {
			errs = []jobs.InputError{}
		}
		return &validationOutput{Body: ValidationResult{Valid: len(errs) == 0, Errors: errs}}, nil
	})
}

// parseExecuteBody reads an execution request as JSON or YAML.
// Codes: EINVALID.
func parseExecuteBody(contentType string, raw []byte) (*ExecuteBody, error) {
	if strings.Contains(contentType, "yaml") {
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, catalog.Invalid("", "the body is not YAML: %v", err)
		}
		raw = j
	}
	var b ExecuteBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, catalog.Invalid("", "the body is not an execution request (inputs, restore): %v", err)
	}
	return &b, nil
}
