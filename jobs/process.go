package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/twinstac/twinstac/catalog"
)

// Process is a published, runnable twin seen as an OGC API – Processes
// process.
type Process struct {
	// ID is <collection>:<item> of the twin.
	ID                 string
	Collection, Item   string
	Title, Description string
	// Version is the twin's ETag: the version a job runs.
	Version string
	// Parameters is the twin's dt:parameters, an OpenAPI 3 schema of an
	// object (nil: the twin takes no inputs).
	Parameters *openapi3.Schema
	// ParametersJSON is dt:parameters as the twin holds it.
	ParametersJSON json.RawMessage
	// SyncExecute is whether the twin allows synchronous execution
	// (dt:syncExecute).
	SyncExecute bool
	// Owner is the twin's owner.
	Owner string
}

// Properties of twins that describe them as processes.
const (
	PropParameters  = "dt:parameters"
	PropSyncExecute = "dt:syncExecute"
)

// ProcessID names the process of a twin.
func ProcessID(collection, item string) string { return collection + ":" + item }

// ParseProcessID splits a process id into the twin's collection and
// item. Codes: EINVALID.
func ParseProcessID(id string) (collection, item string, err error) {
	c, i, ok := strings.Cut(id, ":")
	if !ok || c == "" || i == "" {
		return "", "", catalog.Invalid("/processId", "process id %q is not <collection>:<item>", id)
	}
	return c, i, nil
}

// Runnable reports why an item is not a runnable twin ("" when it is):
// a published item of kind digital-twin with an execute script.
func Runnable(it *catalog.Item) string {
	kind, _, _ := it.Props.String("", catalog.PropKind)
	switch {
	case kind != catalog.KindDigitalTwin:
		return fmt.Sprintf("item %q is not a digital twin (dt:kind %q)", it.ID, kind)
	case it.State != catalog.StatePublished:
		return fmt.Sprintf("twin %q is %s; only published twins run", it.ID, it.State)
	}
	a := it.Assets()["execute"]
	var roles []string
	if a != nil {
		_ = json.Unmarshal(a["roles"], &roles)
	}
	if !slices.Contains(roles, catalog.RoleLifecycle) {
		return fmt.Sprintf("twin %q has no execute script (an asset \"execute\" with role lifecycle)", it.ID)
	}
	return ""
}

// ProcessOf describes a runnable twin as a process. Codes: ECONFLICT (not
// runnable: Runnable says why), EINVALID (its dt:parameters is not a
// valid OpenAPI 3 schema of an object).
func ProcessOf(it *catalog.Item) (*Process, error) {
	if why := Runnable(it); why != "" {
		return nil, catalog.Errorf(catalog.ECONFLICT, "%s", why)
	}
	p := &Process{ID: ProcessID(it.Collection, it.ID), Collection: it.Collection, Item: it.ID, Version: it.ETag, Owner: it.Owner()}
	p.Title, _, _ = it.Props.String("", "title")
	p.Description, _, _ = it.Props.String("", "description")
	if p.Title == "" {
		p.Title = it.ID
	}
	_ = json.Unmarshal(it.Props[PropSyncExecute], &p.SyncExecute)
	if raw := it.Props[PropParameters]; len(raw) > 0 && string(raw) != "null" {
		s := &openapi3.Schema{}
		if err := json.Unmarshal(raw, s); err != nil {
			return nil, catalog.Invalid("/properties/dt:parameters", "dt:parameters is not an OpenAPI 3 schema: %v", err)
		}
		if err := s.Validate(context.Background()); err != nil {
			return nil, catalog.Invalid("/properties/dt:parameters", "dt:parameters is not a valid OpenAPI 3 schema: %v", err)
		}
		if s.Type != nil && !s.Type.Is(openapi3.TypeObject) {
			return nil, catalog.Invalid("/properties/dt:parameters", "dt:parameters describes the inputs object, so its type is object")
		}
		p.Parameters, p.ParametersJSON = s, raw
	}
	return p, nil
}

// unsupported finds the name in the reason kin-openapi gives for an
// input that additionalProperties forbids.
var unsupported = regexp.MustCompile(`^property "(.*)" is unsupported$`)

// InputError is one thing wrong with the inputs of an execution.
type InputError struct {
	// Pointer is the JSON pointer of the input, from the inputs object
	// ("/level"; "" for the object itself).
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

// ValidateInputs checks inputs against the process's parameters and
// lists every error, sorted by pointer (none: valid).
func (p *Process) ValidateInputs(inputs map[string]any) []InputError {
	if p.Parameters == nil {
		if len(inputs) > 0 {
			names := make([]string, 0, len(inputs))
			for k := range inputs {
				names = append(names, k)
			}
			sort.Strings(names)
			return []InputError{{Pointer: "/" + names[0], Message: "the process takes no inputs"}}
		}
		return nil
	}
	err := p.Parameters.VisitJSON(inputs, openapi3.MultiErrors(), openapi3.VisitAsRequest(), openapi3.EnableFormatValidation())
	if err == nil {
		return nil
	}
	var out []InputError
	var walk func(error)
	walk = func(err error) {
		var multi openapi3.MultiError
		var se *openapi3.SchemaError
		switch {
		case errors.As(err, &multi):
			for _, e := range multi {
				walk(e)
			}
		case errors.As(err, &se):
			parts := se.JSONPointer()
			// An input the schema does not allow is named by the reason
			// only; point at it.
			if m := unsupported.FindStringSubmatch(se.Reason); m != nil {
				parts = append(parts, m[1])
			}
			ptr := ""
			for _, part := range parts {
				ptr += "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(part)
			}
			out = append(out, InputError{Pointer: ptr, Message: se.Reason})
		default:
			out = append(out, InputError{Message: err.Error()})
		}
	}
	walk(err)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
}
