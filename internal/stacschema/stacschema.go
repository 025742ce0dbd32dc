// Package stacschema validates STAC documents against the official STAC
// 1.0.0 and 1.1.0 JSON Schemas, read offline from the shared conformance
// folder (../shared/conformance/stac-schemas beside the repository).
package stacschema

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validator holds the compiled schemas.
type Validator struct {
	mu      sync.Mutex
	dir     string
	schemas map[string]*jsonschema.Schema
}

// Dir finds the STAC schema folder: ../shared/conformance/stac-schemas
// beside the repository root. ok is false when it is absent (a clone
// outside the workplace).
func Dir() (dir string, ok bool) {
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(d), "shared", "conformance", "stac-schemas")
			if _, err := os.Stat(p); err == nil {
				return p, true
			}
			return "", false
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// New returns a validator over the schemas in dir.
func New(dir string) *Validator {
	return &Validator{dir: dir, schemas: map[string]*jsonschema.Schema{}}
}

type fileLoader struct{ dir string }

// Load maps schema URLs to the offline copies.
func (l fileLoader) Load(url string) (any, error) {
	url, _, _ = strings.Cut(url, "#")
	var path string
	switch {
	case strings.HasPrefix(url, "https://schemas.stacspec.org/"):
		path = filepath.Join(l.dir, strings.TrimPrefix(url, "https://schemas.stacspec.org/"))
	case strings.HasPrefix(url, "https://geojson.org/schema/"):
		path = filepath.Join(l.dir, "geojson", strings.TrimPrefix(url, "https://geojson.org/schema/"))
	default:
		return nil, fmt.Errorf("no offline copy of %s", url)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

func (v *Validator) schema(version, kind string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	key := version + "/" + kind
	if s, ok := v.schemas[key]; ok {
		return s, nil
	}
	if version != "1.0.0" && version != "1.1.0" {
		return nil, fmt.Errorf("stac_version %q is neither 1.0.0 nor 1.1.0", version)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(fileLoader{dir: v.dir})
	s, err := c.Compile(fmt.Sprintf("https://schemas.stacspec.org/v%s/%s-spec/json-schema/%s.json", version, kind, kind))
	if err != nil {
		return nil, err
	}
	v.schemas[key] = s
	return s, nil
}

// Validate checks one STAC object (an item, collection or catalog, told
// apart by its type) against the schema of its stac_version.
func (v *Validator) Validate(doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	m, ok := inst.(map[string]any)
	if !ok {
		return fmt.Errorf("not a JSON object")
	}
	version, _ := m["stac_version"].(string)
	var kind string
	switch m["type"] {
	case "Feature":
		kind = "item"
	case "Collection":
		kind = "collection"
	case "Catalog":
		kind = "catalog"
	default:
		return fmt.Errorf("type %v is not a STAC object type", m["type"])
	}
	s, err := v.schema(version, kind)
	if err != nil {
		return err
	}
	return s.Validate(inst)
}
