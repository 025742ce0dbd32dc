package openapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// ConformanceClasses lists exactly what this server implements.
var ConformanceClasses = []string{
	"https://api.stacspec.org/v1.0.0/core",
	"https://api.stacspec.org/v1.0.0/collections",
	"https://api.stacspec.org/v1.0.0/ogcapi-features",
	"https://api.stacspec.org/v1.0.0/ogcapi-features/extensions/transaction",
	"https://api.stacspec.org/v1.0.0/collections/extensions/transaction",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
	"http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/simpletx",
	"https://api.stacspec.org/v1.0.0/item-search",
	"https://api.stacspec.org/v1.0.0/item-search#sort",
	"https://api.stacspec.org/v1.0.0/ogcapi-features#sort",
	"https://api.stacspec.org/v1.0.0/item-search#fields",
	"https://api.stacspec.org/v1.0.0/item-search#filter",
	"https://api.stacspec.org/v1.0.0/ogcapi-features#filter",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
	"https://api.stacspec.org/v1.0.0-rc.1/item-search#free-text",
	"https://api.stacspec.org/v1.0.0-rc.1/ogcapi-features#free-text",
	"https://api.stacspec.org/v1.0.0-rc.1/collection-search",
	"https://api.stacspec.org/v1.0.0-rc.1/collection-search#free-text",
	"https://api.stacspec.org/v1.0.0-rc.1/collection-search#filter",
	"https://api.stacspec.org/v0.3.0/aggregation",
	"https://api.stacspec.org/v0.3.0/aggregation#filter",
	"https://api.stacspec.org/v1.0.0/ogcapi-features#fields",
	// CQL2: every class the OGC test suite checks passes on both stores
	// (internal/storetest's CQL2ConformanceSuite).
	"http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
	"http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
	"http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
	"http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
	"http://www.opengis.net/spec/cql2/1.0/conf/accent-insensitive-comparison",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
	"http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
	"http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
	"http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
	"http://www.opengis.net/spec/cql2/1.0/conf/property-property",
	"http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
	// OGC API – Processes over published twins (processes.go).
	confProcessesCore,
	confProcessesDescription,
	confProcessesJSON,
	confProcessesOAS30,
	confProcessesJobList,
	confProcessesDismiss,
	confProcessesCallback,
}

// LandingPage is the root of the catalog.
type LandingPage struct {
	Type        string       `json:"type" enum:"Catalog" doc:"Always Catalog."`
	ID          string       `json:"id" example:"twinstac"`
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description"`
	STACVersion string       `json:"stac_version" example:"1.1.0"`
	ConformsTo  []string     `json:"conformsTo" doc:"The conformance classes the server implements."`
	Links       []LinkObject `json:"links"`
}

// LinkObject is a link in the landing page.
type LinkObject struct {
	Rel   string `json:"rel"`
	Href  string `json:"href"`
	Type  string `json:"type,omitempty"`
	Title string `json:"title,omitempty"`
	// Method is the HTTP method of a search link.
	Method string `json:"method,omitempty"`
}

// Conformance lists conformance classes.
type Conformance struct {
	ConformsTo []string `json:"conformsTo"`
}

type landingOutput struct {
	Body LandingPage
}

type conformanceOutput struct {
	Body Conformance
}

type noInput struct{}

func (s *Server) registerLanding() {
	huma.Register(s.api, s.operation("getLandingPage", http.MethodGet, "/", "Capabilities",
		"Landing page", "The root catalog: what the server is and links to everything else (conformance, the API description, collections).", http.StatusOK),
		func(ctx context.Context, _ *noInput) (*landingOutput, error) {
			base := s.baseURL(requestOf(ctx))
			return &landingOutput{Body: LandingPage{
				Type: "Catalog", ID: "twinstac", Title: "twinstac",
				Description: "A STAC catalog of digital-twin assets and their results.",
				STACVersion: "1.1.0", ConformsTo: ConformanceClasses,
				Links: []LinkObject{
					{Rel: "self", Href: base + "/", Type: mediaJSON, Title: "This catalog"},
					{Rel: "root", Href: base + "/", Type: mediaJSON, Title: "This catalog"},
					{Rel: "conformance", Href: base + "/conformance", Type: mediaJSON, Title: "Conformance classes"},
					{Rel: "service-desc", Href: base + "/api", Type: "application/vnd.oai.openapi+json;version=3.1", Title: "The OpenAPI 3.1 description"},
					{Rel: "service-doc", Href: base + "/api/docs", Type: "text/html", Title: "The API documentation"},
					{Rel: "data", Href: base + "/collections", Type: mediaJSON, Title: "Collections"},
					{Rel: "search", Href: base + "/search", Type: mediaGeoJSON, Method: http.MethodGet, Title: "Item search"},
					{Rel: "search", Href: base + "/search", Type: mediaGeoJSON, Method: http.MethodPost, Title: "Item search"},
					{Rel: "http://www.opengis.net/def/rel/ogc/1.0/queryables", Href: base + "/queryables", Type: mediaSchema, Title: "Queryables"},
					{Rel: "aggregate", Href: base + "/aggregate", Type: mediaJSON, Method: http.MethodGet, Title: "Aggregate items"},
					{Rel: "aggregate", Href: base + "/aggregate", Type: mediaJSON, Method: http.MethodPost, Title: "Aggregate items"},
					{Rel: "aggregations", Href: base + "/aggregations", Type: mediaJSON, Title: "The aggregations /aggregate computes"},
					{Rel: "http://www.opengis.net/def/rel/ogc/1.0/processes", Href: base + "/processes", Type: mediaJSON, Title: "Processes: the twins that can run"},
					{Rel: "http://www.opengis.net/def/rel/ogc/1.0/job-list", Href: base + "/jobs", Type: mediaJSON, Title: "Jobs"},
				},
			}}, nil
		})
	huma.Register(s.api, s.operation("getConformance", http.MethodGet, "/conformance", "Capabilities",
		"Conformance classes", "The OGC API and STAC API conformance classes this server implements.", http.StatusOK),
		func(ctx context.Context, _ *noInput) (*conformanceOutput, error) {
			return &conformanceOutput{Body: Conformance{ConformsTo: ConformanceClasses}}, nil
		})
}

// requestOf returns the HTTP request of a handler's context.
func requestOf(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	return r
}

type requestKey struct{}

// keepRequest puts the *http.Request into the handler context, so that
// handlers can build absolute links.
func keepRequest(hctx huma.Context, next func(huma.Context)) {
	r, _ := humago.Unwrap(hctx)
	next(huma.WithValue(hctx, requestKey{}, r))
}

func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
