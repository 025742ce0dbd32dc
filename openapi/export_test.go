package openapi_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/twinstac/twinstac/openapi"
)

// TestExportedDocumentsAreCurrent fails when the committed documents
// differ from what the code generates; run `go generate ./...` to update.
func TestExportedDocumentsAreCurrent(t *testing.T) {
	t.Parallel()
	docs, err := openapi.Documents()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range docs {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run `go generate ./...` and commit the result", name)
		}
	}
	if !bytes.Equal(openapi.Spec30YAML, docs["openapi-3.0.yaml"]) {
		t.Error("the embedded 3.0 document differs from the generated one: run `go generate ./...`")
	}
}
