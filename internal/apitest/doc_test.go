package apitest

import "testing"

func TestDocumentLoads(t *testing.T) {
	t.Parallel()
	doc, _, err := Document()
	if err != nil {
		t.Fatalf("the committed OpenAPI 3.0 document does not load: %v", err)
	}
	if doc.Paths.Find("/collections/{collectionId}/items/{itemId}") == nil {
		t.Fatal("the document lacks the item path")
	}
}
