package stacschema

import (
	"os"
	"path/filepath"
	"testing"
)

func validator(t *testing.T) *Validator {
	t.Helper()
	dir, ok := Dir()
	if !ok {
		if os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("../shared/conformance/stac-schemas is missing")
		}
		t.Skip("../shared/conformance/stac-schemas is missing (a clone outside the workplace)")
	}
	return New(dir)
}

func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	v := validator(t)
	dir, _ := Dir()
	examples := filepath.Join(filepath.Dir(dir), "stac-examples")
	for _, name := range []string{"core-item.json", "extended-item.json", "collection.json", "catalog.json"} {
		b, err := os.ReadFile(filepath.Join(examples, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestInvalidItemFails(t *testing.T) {
	t.Parallel()
	v := validator(t)
	bad := `{"type":"Feature","stac_version":"1.1.0","id":"x","geometry":null,"properties":{},"links":[],"assets":{}}`
	if err := v.Validate([]byte(bad)); err == nil {
		t.Fatal("an item without datetime validated")
	}
}
