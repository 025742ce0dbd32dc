package openapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog/search"
)

// Aggregation (STAC API aggregation extension): /aggregate over the same
// parameters as /search, and /aggregations listing what may be asked.

// AggregateParams are the query parameters of GET /aggregate.
type AggregateParams struct {
	Collections string `query:"collections" doc:"Only items of these collections (comma-separated)."`
	IDs         string `query:"ids" doc:"Only items with these ids (comma-separated)."`
	AggregateFilterParams
}

// AggregateFilterParams are the parameters GET /aggregate and a
// collection's aggregate share.
type AggregateFilterParams struct {
	BBox         string `query:"bbox" doc:"Only items whose geometry intersects this box: west,south,east,north."`
	Intersects   string `query:"intersects" doc:"Only items whose geometry intersects this GeoJSON geometry."`
	Datetime     string `query:"datetime" doc:"Only items whose time overlaps this instant or interval."`
	Filter       string `query:"filter" doc:"A CQL2 filter, in the language filter-lang names."`
	FilterLang   string `query:"filter-lang" enum:"cql2-text,cql2-json" doc:"The language of filter (default cql2-text)."`
	FilterCRS    string `query:"filter-crs" doc:"The CRS of the filter's geometries; only CRS84 (the default)."`
	State        string `query:"dt:state" doc:"Only items in these lifecycle states (comma-separated)."`
	Q            string `query:"q" doc:"Free text: only items whose title, description or keywords hold one of these terms (comma-separated)."`
	Aggregations string `query:"aggregations" doc:"The aggregations to compute (comma-separated; GET /aggregations lists them; <property>_frequency counts the values of any property). Default: total_count, datetime_min, datetime_max, collection_frequency." example:"total_count,platform_frequency,datetime_frequency"`
	Interval     string `query:"datetime_frequency_interval" enum:"year,month,day,hour" doc:"The interval of datetime_frequency; by default one that suits the range of the matches."`
}

// AggregateBody is the body of POST /aggregate.
type AggregateBody struct {
	SearchBody
	Aggregations []string `json:"aggregations,omitempty" doc:"The aggregations to compute."`
	Interval     string   `json:"datetime_frequency_interval,omitempty" enum:"year,month,day,hour" doc:"The interval of datetime_frequency."`
}

// AggregationCollection is the answer of /aggregate.
type AggregationCollection struct {
	Type         string             `json:"type" enum:"AggregationCollection"`
	Aggregations []search.AggResult `json:"aggregations"`
	Links        []LinkObject       `json:"links"`
}

// AggregationList is the answer of /aggregations.
type AggregationList struct {
	Aggregations []search.AggResult `json:"aggregations" doc:"The aggregations /aggregate computes, by name and data type."`
	Links        []LinkObject       `json:"links"`
}

type aggregateOutput struct {
	Body AggregationCollection
}

type aggregationsOutput struct {
	Body AggregationList
}

type getAggregateInput struct {
	AggregateParams
}

type postAggregateInput struct {
	Body AggregateBody
}

type collectionAggregateInput struct {
	CollectionPath
	AggregateFilterParams
}

func (p *AggregateFilterParams) filterParams() *ItemFilterParams {
	return &ItemFilterParams{BBox: p.BBox, Intersects: p.Intersects, Datetime: p.Datetime, Filter: p.Filter,
		FilterLang: p.FilterLang, FilterCRS: p.FilterCRS, State: p.State, Q: p.Q}
}

func (s *Server) registerAggregate() {
	huma.Register(s.api, s.operation("getAggregate", http.MethodGet, "/aggregate", "Aggregation",
		"Aggregate items", "Counts, time ranges and frequency distributions over the items a search with the same parameters finds (among those the caller may read).",
		http.StatusOK, 400),
		func(ctx context.Context, in *getAggregateInput) (*aggregateOutput, error) {
			q, _, err := getSearchQuery(in.AggregateParams.Collections, in.IDs, in.filterParams())
			if err != nil {
				return nil, err
			}
			if q.Access, err = s.searchAccess(ctx); err != nil {
				return nil, err
			}
			return s.aggregate(ctx, q, splitList(in.Aggregations), in.Interval, "query.aggregations")
		})
	huma.Register(s.api, s.operation("postAggregate", http.MethodPost, "/aggregate", "Aggregation",
		"Aggregate items (POST)", "Aggregates as GET /aggregate does, with the search in a JSON body as for POST /search.",
		http.StatusOK, 400),
		func(ctx context.Context, in *postAggregateInput) (*aggregateOutput, error) {
			q, err := postSearchQuery(&in.Body.SearchBody)
			if err != nil {
				return nil, err
			}
			if q.Access, err = s.searchAccess(ctx); err != nil {
				return nil, err
			}
			return s.aggregate(ctx, q, in.Body.Aggregations, in.Body.Interval, "/aggregations")
		})
	huma.Register(s.api, s.operation("getCollectionAggregate", http.MethodGet, "/collections/{collectionId}/aggregate", "Aggregation",
		"Aggregate a collection's items", "Aggregates the collection's items as GET /aggregate does.",
		http.StatusOK, 400, 404),
		func(ctx context.Context, in *collectionAggregateInput) (*aggregateOutput, error) {
			q, _, err := getSearchQuery("", "", in.filterParams())
			if err != nil {
				return nil, err
			}
			coll, err := s.readableCollection(ctx, in.CollectionID)
			if err != nil {
				return nil, err
			}
			q.Collections = []string{coll.ID}
			if q.Access, err = s.collectionAccess(ctx, coll); err != nil {
				return nil, err
			}
			return s.aggregate(ctx, q, splitList(in.Aggregations), in.Interval, "query.aggregations")
		})
	huma.Register(s.api, s.operation("getAggregations", http.MethodGet, "/aggregations", "Aggregation",
		"List aggregations", "The aggregations /aggregate computes.", http.StatusOK),
		func(ctx context.Context, _ *noInput) (*aggregationsOutput, error) {
			return s.aggregationList(ctx, "/aggregations"), nil
		})
	huma.Register(s.api, s.operation("getCollectionAggregations", http.MethodGet, "/collections/{collectionId}/aggregations", "Aggregation",
		"List a collection's aggregations", "The aggregations /collections/{collectionId}/aggregate computes.", http.StatusOK, 404),
		func(ctx context.Context, in *CollectionPath) (*aggregationsOutput, error) {
			coll, err := s.readableCollection(ctx, in.CollectionID)
			if err != nil {
				return nil, err
			}
			return s.aggregationList(ctx, "/collections/"+coll.ID+"/aggregations"), nil
		})
}

func (s *Server) aggregationList(ctx context.Context, path string) *aggregationsOutput {
	base := s.baseURL(requestOf(ctx))
	return &aggregationsOutput{Body: AggregationList{
		Aggregations: search.AggregationNames(),
		Links: []LinkObject{
			{Rel: "self", Href: base + path, Type: mediaJSON},
			{Rel: "root", Href: base + "/", Type: mediaJSON},
		},
	}}
}

// aggregate prepares a query whose Access is set and aggregates it.
func (s *Server) aggregate(ctx context.Context, q *search.Query, names []string, interval, at string) (*aggregateOutput, error) {
	specs, err := search.ParseAggregations(at, names, interval)
	if err != nil {
		return nil, err
	}
	se, err := s.searcher()
	if err != nil {
		return nil, err
	}
	if err := search.Prepare(q); err != nil {
		return nil, paramError(err, at[0] == '/')
	}
	res, err := search.Aggregate(ctx, se, q, specs)
	if err != nil {
		return nil, err
	}
	r := requestOf(ctx)
	base := s.baseURL(r)
	return &aggregateOutput{Body: AggregationCollection{
		Type:         "AggregationCollection",
		Aggregations: res,
		Links: []LinkObject{
			{Rel: "self", Href: base + r.URL.RequestURI(), Type: mediaJSON},
			{Rel: "root", Href: base + "/", Type: mediaJSON},
		},
	}}, nil
}
