package catalog_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// TestItemDatetimeAlwaysWritten: an item with a time range and no
// datetime member gets "datetime": null, which STAC requires; one with
// neither is refused.
func TestItemDatetimeAlwaysWritten(t *testing.T) {
	raw := `{"type":"Feature","stac_version":"1.1.0","id":"i","geometry":null,"links":[],"assets":{},
		"properties":{"start_datetime":"2026-01-01T00:00:00Z","end_datetime":"2026-01-02T00:00:00Z"}}`
	for _, load := range []struct {
		name string
		item func() (*catalog.Item, error)
	}{
		{"parsed", func() (*catalog.Item, error) { return catalog.ParseItem("c", []byte(raw)) }},
		{"loaded from a store", func() (*catalog.Item, error) {
			return catalog.LoadItem("c", "i", catalog.StateDraft, `"e"`, time.Now(), time.Now(), []byte(raw))
		}},
	} {
		it, err := load.item()
		if err != nil {
			t.Fatalf("%s: %v", load.name, err)
		}
		b, err := it.MarshalDocument()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if v, ok := doc.Properties["datetime"]; !ok || string(v) != "null" {
			t.Fatalf("%s: properties %s", load.name, b)
		}
	}
	_, err := catalog.ParseItem("c", []byte(`{"type":"Feature","stac_version":"1.1.0","id":"i","geometry":null,"properties":{}}`))
	if catalog.ErrorCode(err) != catalog.EINVALID {
		t.Fatalf("an item without any time: %v", err)
	}
}
