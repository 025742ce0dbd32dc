package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
)

// Item search (STAC API item search with the filter, sort and fields
// extensions): GET and POST /search, and the same parameters on a
// collection's items.

// CRS84 is the one filter-crs the filter extension knows.
const crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

// DefaultCountBudget is how long a search may spend counting its matches
// (numberMatched) when the server names no budget.
const DefaultCountBudget = 50 * time.Millisecond

// SearchParams are the query parameters of GET /search.
type SearchParams struct {
	Collections string `query:"collections" doc:"Only items of these collections (comma-separated)." example:"sentinel-2-l2a"`
	IDs         string `query:"ids" doc:"Only items with these ids (comma-separated)."`
	ItemFilterParams
}

// ItemFilterParams are the search parameters GET /search and a
// collection's items share.
type ItemFilterParams struct {
	Limit      int    `query:"limit" minimum:"1" maximum:"10000" default:"10" doc:"The page size."`
	Token      string `query:"token" doc:"The paging token from a next or prev link."`
	BBox       string `query:"bbox" doc:"Only items whose geometry intersects this box: west,south,east,north (or with bottom and top heights: west,south,bottom,east,north,top). West greater than east crosses the antimeridian." example:"11.3,48.0,11.9,48.3"`
	Intersects string `query:"intersects" doc:"Only items whose geometry intersects this GeoJSON geometry."`
	Datetime   string `query:"datetime" doc:"Only items whose time overlaps this instant or interval (RFC 3339; \"start/end\" with \"..\" for an open end)." example:"2024-06-01T00:00:00Z/2024-06-30T23:59:59Z"`
	Filter     string `query:"filter" doc:"A CQL2 filter, in the language filter-lang names." example:"eo:cloud_cover < 10 AND platform = 'sentinel-2b'"`
	FilterLang string `query:"filter-lang" enum:"cql2-text,cql2-json" doc:"The language of filter (default cql2-text)."`
	FilterCRS  string `query:"filter-crs" doc:"The CRS of the filter's geometries; only CRS84 (the default)."`
	SortBy     string `query:"sortby" doc:"Sort keys, comma-separated, each with an optional + (ascending, the default) or - (descending) prefix. Ties are broken by id." example:"-datetime,+eo:cloud_cover"`
	State      string `query:"dt:state" doc:"Only items in these lifecycle states (comma-separated). By default archived and deleted items are left out; a filter on dt:state opts into archived ones." example:"published,archived"`
	Q          string `query:"q" doc:"Free text: only items whose title, description or keywords hold one of these terms (comma-separated; the words of a term in a row, any case)." example:"flood,urban heat"`
	Fields     string `query:"fields" doc:"Which fields of each item to return, comma-separated: a name includes it, -name leaves it out (properties as name or properties.name). Empty: the fields of a valid STAC item." example:"id,properties.eo:cloud_cover,-geometry"`
}

// SearchBody is the body of POST /search.
type SearchBody struct {
	Collections []string        `json:"collections,omitempty" doc:"Only items of these collections."`
	IDs         []string        `json:"ids,omitempty" doc:"Only items with these ids."`
	BBox        []float64       `json:"bbox,omitempty" minItems:"4" maxItems:"6" doc:"Only items whose geometry intersects this box."`
	Intersects  *geometryJSON   `json:"intersects,omitempty" doc:"Only items whose geometry intersects this GeoJSON geometry."`
	Datetime    string          `json:"datetime,omitempty" doc:"Only items whose time overlaps this instant or interval."`
	Limit       int             `json:"limit,omitempty" minimum:"1" maximum:"10000" doc:"The page size (default 10)."`
	Token       string          `json:"token,omitempty" doc:"The paging token from a next or prev link."`
	Filter      *filterJSON     `json:"filter,omitempty" doc:"A CQL2 filter: a CQL2-JSON object, or a CQL2-Text string."`
	FilterLang  string          `json:"filter-lang,omitempty" enum:"cql2-text,cql2-json" doc:"The language of filter (default cql2-json)."`
	FilterCRS   string          `json:"filter-crs,omitempty" doc:"The CRS of the filter's geometries; only CRS84 (the default)."`
	SortBy      []SortByJSON    `json:"sortby,omitempty" doc:"Sort keys; ties are broken by id."`
	States      []catalog.State `json:"dt:state,omitempty" doc:"Only items in these lifecycle states."`
	Fields      *FieldsJSON     `json:"fields,omitempty" doc:"Which fields of each item to return."`
	Q           *termsJSON      `json:"q,omitempty" doc:"Free text: terms (an array, or one string), any of which an item's title, description or keywords hold."`
}

// termsJSON is the q member of a POST search: an array of terms or one.
type termsJSON []string

func (t *termsJSON) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*t = []string{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return catalog.Invalid("/q", "q is a string or an array of strings")
	}
	*t = list
	return nil
}
func (termsJSON) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{OneOf: []*huma.Schema{{Type: "string"}, {Type: "array", Items: &huma.Schema{Type: "string"}}}}
}

// SortByJSON is one sort key of a POST search.
type SortByJSON struct {
	Field     string `json:"field" doc:"A queryable, as name or properties.name." example:"properties.datetime"`
	Direction string `json:"direction,omitempty" enum:"asc,desc" doc:"asc (default) or desc."`
}

// geometryJSON and filterJSON carry a body member as raw JSON.
type geometryJSON json.RawMessage
type filterJSON json.RawMessage

func (g *geometryJSON) UnmarshalJSON(b []byte) error {
	*g = append((*g)[:0], b...)
	return nil
}
func (geometryJSON) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "object", Description: "A GeoJSON geometry.", Required: []string{"type"}}
}
func (f *filterJSON) UnmarshalJSON(b []byte) error {
	*f = append((*f)[:0], b...)
	return nil
}
func (filterJSON) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{OneOf: []*huma.Schema{{Type: "object"}, {Type: "string"}}}
}

type searchGetInput struct {
	SearchParams
}

type searchPostInput struct {
	Body SearchBody
}

func (s *Server) registerSearch() {
	huma.Register(s.api, s.operation("getItemSearch", http.MethodGet, "/search", "Item Search",
		"Search items", "Searches the items of every collection the caller may read: by collections, ids, bbox, intersects, datetime and a CQL2 filter, sorted, a page at a time. Follow the next and prev links to page. numberMatched is given when it can be counted exactly within the server's budget.",
		http.StatusOK, 400),
		func(ctx context.Context, in *searchGetInput) (*itemsOutput, error) {
			q, token, err := getSearchQuery(in.SearchParams.Collections, in.IDs, &in.ItemFilterParams)
			if err != nil {
				return nil, err
			}
			if q.Access, err = s.searchAccess(ctx); err != nil {
				return nil, err
			}
			return s.search(ctx, q, token, nil, nil)
		})
	huma.Register(s.api, s.operation("postItemSearch", http.MethodPost, "/search", "Item Search",
		"Search items (POST)", "Searches items as GET /search does, with the parameters in a JSON body: filter as CQL2-JSON (or CQL2-Text with filter-lang cql2-text), sortby as a list of {field, direction}. The next and prev links are POST requests whose body merges the token into this one.",
		http.StatusOK, 400),
		func(ctx context.Context, in *searchPostInput) (*itemsOutput, error) {
			q, err := postSearchQuery(&in.Body)
			if err != nil {
				return nil, err
			}
			if q.Access, err = s.searchAccess(ctx); err != nil {
				return nil, err
			}
			return s.search(ctx, q, in.Body.Token, &in.Body, nil)
		})
}

// getSearchQuery reads the GET form of a search.
func getSearchQuery(collections, ids string, p *ItemFilterParams) (*search.Query, string, error) {
	q := &search.Query{Limit: p.Limit, Collections: splitList(collections), IDs: splitList(ids), Q: splitList(p.Q)}
	var err error
	if p.BBox != "" {
		if q.BBox, err = parseBBoxParam(p.BBox); err != nil {
			return nil, "", err
		}
	}
	if p.Intersects != "" {
		if q.Intersects, err = checkGeometry("query.intersects", []byte(p.Intersects)); err != nil {
			return nil, "", err
		}
	}
	if q.Start, q.End, err = catalog.ParseInterval("query.datetime", p.Datetime); err != nil {
		return nil, "", err
	}
	if p.State != "" {
		if q.States, err = catalog.ParseStates("query.dt:state", p.State); err != nil {
			return nil, "", err
		}
	}
	if p.FilterCRS != "" && p.FilterCRS != crs84 {
		return nil, "", catalog.Invalid("query.filter-crs", "filters are in CRS84 (%s), not %q", crs84, p.FilterCRS)
	}
	if p.Filter != "" {
		lang := p.FilterLang
		if lang == "" {
			lang = "cql2-text"
		}
		if q.Filter, err = parseFilter(lang, []byte(p.Filter), "query.filter"); err != nil {
			return nil, "", err
		}
	}
	for i, f := range splitList(p.SortBy) {
		k := search.SortKey{Property: f}
		switch f[0] {
		case '-':
			k = search.SortKey{Property: f[1:], Desc: true}
		case '+':
			k.Property = f[1:]
		}
		if k.Property == "" {
			return nil, "", catalog.Invalid("query.sortby", "sort key %d names no property", i+1)
		}
		q.Sort = append(q.Sort, k)
	}
	return q, p.Token, nil
}

// postSearchQuery reads the POST form of a search.
func postSearchQuery(b *SearchBody) (*search.Query, error) {
	q := &search.Query{Limit: b.Limit, Collections: b.Collections, IDs: b.IDs, BBox: b.BBox, States: b.States}
	if b.Q != nil {
		q.Q = *b.Q
	}
	var err error
	if b.BBox != nil {
		if err := search.CheckBBox("/bbox", b.BBox); err != nil {
			return nil, err
		}
	}
	if b.Intersects != nil {
		if q.Intersects, err = checkGeometry("/intersects", *b.Intersects); err != nil {
			return nil, err
		}
	}
	if q.Start, q.End, err = catalog.ParseInterval("/datetime", b.Datetime); err != nil {
		return nil, err
	}
	for _, st := range b.States {
		if !st.Valid() {
			return nil, catalog.Invalid("/dt:state", "%q is not a lifecycle state", st)
		}
	}
	if b.FilterCRS != "" && b.FilterCRS != crs84 {
		return nil, catalog.Invalid("/filter-crs", "filters are in CRS84 (%s), not %q", crs84, b.FilterCRS)
	}
	if b.Filter != nil {
		raw := bytes.TrimSpace(*b.Filter)
		lang := b.FilterLang
		if len(raw) > 0 && raw[0] == '"' {
			// A CQL2-Text filter given as a JSON string.
			var text string
			if err := json.Unmarshal(raw, &text); err != nil {
				return nil, catalog.Invalid("/filter", "the filter is not a JSON string")
			}
			if lang == "cql2-json" {
				return nil, catalog.Invalid("/filter", "filter-lang is cql2-json but the filter is a string; send a CQL2-JSON object, or filter-lang cql2-text")
			}
			raw, lang = []byte(text), "cql2-text"
		} else if lang == "" {
			lang = "cql2-json"
		}
		if q.Filter, err = parseFilter(lang, raw, "/filter"); err != nil {
			return nil, err
		}
	}
	for i, k := range b.SortBy {
		if k.Field == "" {
			return nil, catalog.Invalid("/sortby/"+strconv.Itoa(i)+"/field", "a sort key names a field")
		}
		q.Sort = append(q.Sort, search.SortKey{Property: k.Field, Desc: k.Direction == "desc"})
	}
	return q, nil
}

// parseFilter parses a filter and checks it; errors point into it from
// at (a parameter or the body's /filter).
func parseFilter(lang string, raw []byte, at string) (cql2.Expr, error) {
	var (
		e   cql2.Expr
		err error
	)
	switch lang {
	case "cql2-text":
		e, err = cql2.ParseText(string(raw))
	case "cql2-json":
		e, err = cql2.ParseJSON(raw)
	default:
		return nil, catalog.Invalid(at, "filter-lang is cql2-text or cql2-json, not %q", lang)
	}
	if err == nil {
		err = cql2.Check(e)
	}
	if err != nil {
		return nil, filterError(err, at)
	}
	normalizeProperties(e)
	return e, nil
}

// filterError places a filter error's pointer under the filter's own
// location: "/filter/args/0" for a JSON body, "query.filter:12" for a
// text parameter.
func filterError(err error, at string) error {
	ce, ok := err.(*catalog.Error)
	if !ok {
		return err
	}
	out := *ce
	p := ce.Pointer
	switch {
	case strings.HasPrefix(p, "filter:"):
		out.Pointer = at + ":" + strings.TrimPrefix(p, "filter:")
	case p == "" || p == "filter":
		out.Pointer = at
	case strings.HasPrefix(p, "/"):
		out.Pointer = at + p
	default:
		out.Pointer = at + " " + p
	}
	if !strings.HasPrefix(out.Message, "filter") {
		out.Message = "filter: " + out.Message
	}
	return &out
}

// normalizeProperties reads "properties.name" as "name" throughout.
func normalizeProperties(e cql2.Expr) {
	search.Walk(e, func(x cql2.Expr) bool {
		if p, ok := x.(*cql2.Property); ok {
			p.Name = search.NormalizeProperty(p.Name)
		}
		return true
	})
}

// checkGeometry checks that raw is a GeoJSON geometry the catalog reads.
func checkGeometry(at string, raw []byte) (json.RawMessage, error) {
	g, err := catalog.ParseGeometry(at, raw)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, catalog.Invalid(at, "intersects needs a geometry, not null")
	}
	return json.RawMessage(raw), nil
}

func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// searcher returns the store's search.
func (s *Server) searcher() (search.Searcher, error) {
	se, ok := s.deps.Catalog.Store.(search.Searcher)
	if !ok {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this store cannot search")
	}
	return se, nil
}

// searchAccess resolves what the caller may read into the form stores
// push into their queries; nil for admins, who read everything.
func (s *Server) searchAccess(ctx context.Context) (*search.Access, error) {
	c := CallerOf(ctx)
	f, err := s.deps.Authz.ReadFilter(ctx, c)
	if err != nil || f == nil {
		return nil, err
	}
	a := &search.Access{Owner: c.User}
	colls, err := s.deps.Catalog.ReadableCollections(ctx, f)
	if err != nil {
		return nil, err
	}
	for _, coll := range colls {
		a.Collections = append(a.Collections, coll.ID)
		drafts, err := s.seesDrafts(ctx, coll, "*")
		if err != nil {
			return nil, err
		}
		if drafts {
			a.Drafts = append(a.Drafts, coll.ID)
		}
	}
	if a.Shares, err = s.deps.Authz.ReadableItems(ctx, c); err != nil {
		return nil, err
	}
	return a, nil
}

// eachCollection calls fn for every collection readable under f (every
// collection for nil), in id order.
func (s *Server) eachCollection(ctx context.Context, f *catalog.ReadFilter, fn func(*catalog.Collection) error) error {
	q := catalog.CollectionQuery{Readable: f, Limit: catalog.MaxPageSize}
	for {
		page, err := s.deps.Catalog.Store.ListCollections(ctx, q)
		if err != nil {
			return err
		}
		for _, c := range page.Collections {
			if err := fn(c); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.After = page.Next
	}
}

// search runs a query whose Access is set and renders the page. post is
// the body of a POST search, for its next and prev links; nil for GET.
// extra are links the page carries besides self, root, next and prev.
func (s *Server) search(ctx context.Context, q *search.Query, token string, post *SearchBody, extra []catalog.Document) (*itemsOutput, error) {
	r := requestOf(ctx)
	var fields *fieldRules
	if post != nil {
		fields = fieldsOf(post.Fields)
	} else {
		fields = parseFieldsParam(r.URL.Query().Get("fields"), r.URL.Query().Has("fields"))
	}
	se, err := s.searcher()
	if err != nil {
		return nil, err
	}
	if err := search.Prepare(q); err != nil {
		return nil, paramError(err, post != nil)
	}
	if token != "" {
		c, before, err := search.DecodeToken(token, q.Sort)
		if err != nil {
			return nil, paramError(err, post != nil)
		}
		if before {
			q.Before = c
		} else {
			q.After = c
		}
	}
	if s.cfg.CountBudget >= 0 {
		q.Count = true
		q.CountBudget = s.cfg.CountBudget
		if q.CountBudget == 0 {
			q.CountBudget = DefaultCountBudget
		}
	}
	page, err := se.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	base := s.baseURL(r)
	self := base + r.URL.Path
	var next, prev, selfLink catalog.Document
	if post == nil {
		pageURL := func(tok string) string {
			v := url.Values{}
			for k, vs := range r.URL.Query() {
				if k != "token" {
					v[k] = vs
				}
			}
			if tok != "" {
				v.Set("token", tok)
			}
			if len(v) == 0 {
				return self
			}
			return self + "?" + v.Encode()
		}
		selfLink = link("self", pageURL(token), mediaGeoJSON)
		if page.Next != nil {
			next = link("next", pageURL(search.EncodeToken(page.Next, false)), mediaGeoJSON)
		}
		if page.Prev != nil {
			prev = link("prev", pageURL(search.EncodeToken(page.Prev, true)), mediaGeoJSON)
		}
	} else {
		selfLink = link("self", self, mediaGeoJSON)
		postLink := func(rel, tok string) catalog.Document {
			l := link(rel, self, mediaGeoJSON)
			l.Set("method", http.MethodPost)
			l.Set("body", map[string]string{"token": tok})
			l.Set("merge", true)
			return l
		}
		if page.Next != nil {
			next = postLink("next", search.EncodeToken(page.Next, false))
		}
		if page.Prev != nil {
			prev = postLink("prev", search.EncodeToken(page.Prev, true))
		}
	}
	links := append([]catalog.Document{selfLink, link("root", base+"/", mediaJSON)}, extra...)
	for _, l := range []catalog.Document{next, prev} {
		if l != nil {
			links = append(links, l)
		}
	}
	b, err := renderFeatureCollection(base, page.Items, links, page.Matched, fields)
	if err != nil {
		return nil, err
	}
	return &itemsOutput{Body: b}, nil
}

// paramError places the pointer of a search error that names a
// parameter ("limit", "token") where the request carried it: a query
// parameter of a GET, a member of a POST body.
func paramError(err error, post bool) error {
	ce, ok := err.(*catalog.Error)
	if !ok || ce.Pointer == "" || strings.HasPrefix(ce.Pointer, "/") || strings.HasPrefix(ce.Pointer, "query.") {
		return err
	}
	out := *ce
	if post {
		out.Pointer = "/" + ce.Pointer
	} else {
		out.Pointer = "query." + ce.Pointer
	}
	return &out
}

// renderFeatureCollection writes a page of items.
func renderFeatureCollection(base string, items []*catalog.Item, links []catalog.Document, matched *int64, fields *fieldRules) (itemsJSON, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"type":"FeatureCollection","features":[`)
	for i, it := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := renderItem(base, it)
		if err != nil {
			return nil, err
		}
		if fields != nil {
			if b, err = fields.apply(b); err != nil {
				return nil, err
			}
		}
		buf.Write(b)
	}
	buf.WriteString(`],"links":`)
	buf.Write(mustMarshal(links))
	if matched != nil {
		buf.WriteString(`,"numberMatched":`)
		buf.WriteString(strconv.FormatInt(*matched, 10))
	}
	buf.WriteString(`,"numberReturned":`)
	buf.WriteString(strconv.Itoa(len(items)))
	buf.WriteByte('}')
	return itemsJSON(buf.Bytes()), nil
}

// collectionAccess is what the caller may read of one collection it may
// read: its items, drafts only for owners and editors, and items of its
// own; nil for admins.
func (s *Server) collectionAccess(ctx context.Context, coll *catalog.Collection) (*search.Access, error) {
	c := CallerOf(ctx)
	if c.IsAdmin() {
		return nil, nil
	}
	a := &search.Access{Owner: c.User, Collections: []string{coll.ID}}
	drafts, err := s.seesDrafts(ctx, coll, "*")
	if err != nil {
		return nil, err
	}
	if drafts {
		a.Drafts = []string{coll.ID}
	}
	return a, nil
}

// ParseSearchBody reads a POST /search body into a prepared query (as an
// administrator's: no access rules), for tools that run searches on a
// store directly (twinstac bench explain).
func ParseSearchBody(raw []byte) (*search.Query, error) {
	var b SearchBody
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, catalog.Invalid("", "not a search body: %v", err)
	}
	q, err := postSearchQuery(&b)
	if err != nil {
		return nil, err
	}
	if err := search.Prepare(q); err != nil {
		return nil, err
	}
	if b.Token != "" {
		c, before, err := search.DecodeToken(b.Token, q.Sort)
		if err != nil {
			return nil, err
		}
		if before {
			q.Before = c
		} else {
			q.After = c
		}
	}
	return q, nil
}
