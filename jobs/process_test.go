package jobs_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// waterTank is the example twin's item, published, with its parameters.
func waterTank(t *testing.T, mutate func(doc map[string]any)) *catalog.Item {
	t.Helper()
	params, err := os.ReadFile("../examples/water-tank/parameters.json")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"type": "Feature", "stac_version": "1.1.0", "id": "water-tank", "geometry": nil, "links": []any{},
		"properties": map[string]any{"datetime": "2026-01-01T00:00:00Z", "title": "Water tank", catalog.PropKind: catalog.KindDigitalTwin,
			jobs.PropParameters: json.RawMessage(params), "dt:state": "published", catalog.PropOwner: "olga"},
		"assets": map[string]any{"execute": map[string]any{"href": "/x", "roles": []string{catalog.RoleLifecycle}}}}
	if mutate != nil {
		mutate(doc)
	}
	raw, _ := json.Marshal(doc)
	it, err := catalog.ParseItem("twins", raw)
	if err != nil {
		t.Fatal(err)
	}
	it.State = catalog.StatePublished
	return it
}

func TestProcessOf(t *testing.T) {
	t.Parallel()
	p, err := jobs.ProcessOf(waterTank(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "twins:water-tank" || p.Title != "Water tank" || p.Parameters == nil || p.SyncExecute {
		t.Fatalf("%+v", p)
	}
	for name, mutate := range map[string]func(map[string]any){
		"not a twin":        func(d map[string]any) { d["properties"].(map[string]any)[catalog.PropKind] = catalog.KindModel },
		"no execute script": func(d map[string]any) { d["assets"] = map[string]any{} },
		"parameters not an object": func(d map[string]any) {
			d["properties"].(map[string]any)[jobs.PropParameters] = map[string]any{"type": "string"}
		},
		"parameters not a schema": func(d map[string]any) {
			d["properties"].(map[string]any)[jobs.PropParameters] = map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "tomato"}}}
		},
	} {
		if _, err := jobs.ProcessOf(waterTank(t, mutate)); err == nil {
			t.Errorf("%s: ProcessOf accepted it", name)
		}
	}
	if _, _, err := jobs.ParseProcessID("no-colon"); catalog.ErrorCode(err) != catalog.EINVALID {
		t.Errorf("ParseProcessID: %v", err)
	}
}

func TestValidateInputs(t *testing.T) {
	t.Parallel()
	p, err := jobs.ProcessOf(waterTank(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.ValidateInputs(map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 10.0}); errs != nil {
		t.Fatalf("valid inputs: %+v", errs)
	}
	errs := p.ValidateInputs(map[string]any{"inflow": -1.0, "outflow": "fast", "steps": 2.5, "colour": "blue"})
	got := map[string]string{}
	for _, e := range errs {
		got[e.Pointer] = e.Message
	}
	for _, ptr := range []string{"/inflow", "/outflow", "/steps", "/colour"} {
		if got[ptr] == "" {
			t.Errorf("no error at %s: %+v", ptr, errs)
		}
	}
	if len(errs) != 4 || got["/colour"] == "" {
		t.Errorf("every error is listed, the unknown input at its pointer too: %+v", errs)
	}
	missing := p.ValidateInputs(map[string]any{"inflow": 1.0})
	if len(missing) != 1 || !strings.Contains(missing[0].Message, "outflow") {
		t.Errorf("a missing required input: %+v", missing)
	}
}
