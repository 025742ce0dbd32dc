package openapi

import (
	"encoding/json"

	"github.com/danielgtaylor/huma/v2"
)

// requestExamples are whole request bodies, by operation id, shown in
// the API documentation beside the schema: what a first request of each
// kind looks like.
var requestExamples = map[string]string{
	"createCollection": `{
  "type": "Collection", "stac_version": "1.1.0", "id": "twins", "title": "Twins of the plant",
  "description": "The digital twins of the water plant.", "license": "CC-BY-4.0",
  "extent": {"spatial": {"bbox": [[5.9, 45.8, 10.5, 47.8]]}, "temporal": {"interval": [["2026-01-01T00:00:00Z", null]]}},
  "links": []
}`,
	"createItem": `{
  "type": "Feature", "stac_version": "1.1.0", "id": "water-tank", "geometry": null, "links": [], "assets": {},
  "properties": {
    "datetime": "2026-01-01T00:00:00Z", "title": "Water tank", "dt:kind": "digital-twin",
    "dt:parameters": {"type": "object", "required": ["inflow"], "properties": {"inflow": {"type": "number", "minimum": 0}, "steps": {"type": "integer", "default": 100}}}
  }
}`,
	"moveItem": `{"state": "published", "reason": "reviewed by the twin's owner"}`,
	"postItemSearch": `{
  "collections": ["sentinel-2-l2a"], "bbox": [5.9, 45.8, 10.5, 47.8], "datetime": "2026-06-01T00:00:00Z/2026-06-30T23:59:59Z",
  "filter-lang": "cql2-json", "filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
  "sortby": [{"field": "datetime", "direction": "desc"}], "limit": 50
}`,
	"postAggregate": `{"collections": ["sentinel-2-l2a"], "aggregations": ["total_count", "datetime_frequency"], "datetime": "2026-01-01T00:00:00Z/.."}`,
	"execute": `{
  "inputs": {"inflow": 0.5, "outflow": 0.2, "steps": 100},
  "subscriber": {"successUri": "https://example.org/hooks/done", "failedUri": "https://example.org/hooks/failed"}
}`,
	"submitBatch": `{
  "process": "twins:water-tank", "inputs": {"outflow": 0.2},
  "sweep": {"inflow": [0.1, 0.2, 0.3], "steps": [10, 100]}, "mode": "product", "maxParallel": 4
}`,
	"createToken":           `{"name": "laptop", "scopes": ["read", "execute"], "expires": "2027-01-01T00:00:00Z"}`,
	"createCollectionShare": `{"subject": "user:ana", "role": "viewer"}`,
	"createItemShare":       `{"subject": "group:hydrology", "role": "viewer"}`,
	"createJobShare":        `{"subject": "user:ana", "role": "viewer"}`,
	"createBatchShare":      `{"subject": "user:ana", "role": "viewer"}`,
}

// addRequestExamples puts requestExamples into the document's JSON
// request bodies.
func addRequestExamples(doc *huma.OpenAPI) {
	for _, item := range doc.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil || op.RequestBody == nil {
				continue
			}
			raw, ok := requestExamples[op.OperationID]
			if !ok {
				continue
			}
			mt := op.RequestBody.Content["application/json"]
			if mt == nil {
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				panic("openapi: the request example of " + op.OperationID + " is not JSON: " + err.Error())
			}
			mt.Example = v
		}
	}
}
