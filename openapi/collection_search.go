package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
)

// Collection search (STAC API collection search): bbox, datetime, q and
// filter on GET /collections. Collections are few beside items, so the
// server reads the caller's readable collections in id order from the
// store and keeps those that match, a page at a time.

// CollectionSearchParams are the search parameters of GET /collections.
type CollectionSearchParams struct {
	BBox       string `query:"bbox" doc:"Only collections whose spatial extent intersects this box: west,south,east,north."`
	Datetime   string `query:"datetime" doc:"Only collections whose temporal extent overlaps this instant or interval."`
	Q          string `query:"q" doc:"Free text: only collections whose title, description or keywords hold one of these terms (comma-separated; the words of a term in a row, any case)." example:"flood,urban heat"`
	Filter     string `query:"filter" doc:"A CQL2 filter on the collection's members (id, title, license, keywords, dt:owner, ...)."`
	FilterLang string `query:"filter-lang" enum:"cql2-text,cql2-json" doc:"The language of filter (default cql2-text)."`
}

// collectionMatcher is a prepared collection search; nil matches all.
type collectionMatcher struct {
	bbox       []float64
	start, end *time.Time
	terms      []string
	filter     *cql2.Filter
}

func newCollectionMatcher(p *CollectionSearchParams) (*collectionMatcher, error) {
	if p.BBox == "" && p.Datetime == "" && p.Q == "" && p.Filter == "" {
		return nil, nil
	}
	m := &collectionMatcher{}
	var err error
	if p.BBox != "" {
		if m.bbox, err = parseBBoxParam(p.BBox); err != nil {
			return nil, err
		}
	}
	if m.start, m.end, err = catalog.ParseInterval("query.datetime", p.Datetime); err != nil {
		return nil, err
	}
	if p.Q != "" {
		q := search.Query{Q: splitList(p.Q)}
		if err := search.Prepare(&q); err != nil {
			return nil, paramError(err, false)
		}
		m.terms = q.Q
	}
	if p.Filter != "" {
		lang := p.FilterLang
		if lang == "" {
			lang = "cql2-text"
		}
		e, err := parseFilter(lang, []byte(p.Filter), "query.filter")
		if err != nil {
			return nil, err
		}
		if m.filter, err = cql2.NewFilter(e); err != nil {
			return nil, filterError(err, "query.filter")
		}
	}
	return m, nil
}

// match reports whether a collection passes every criterion.
func (m *collectionMatcher) match(c *catalog.Collection) bool {
	if m == nil {
		return true
	}
	var ext struct {
		Spatial struct {
			BBox [][]float64 `json:"bbox"`
		} `json:"spatial"`
		Temporal struct {
			Interval [][]*string `json:"interval"`
		} `json:"temporal"`
	}
	_ = json.Unmarshal(c.Doc["extent"], &ext)
	if m.bbox != nil {
		if len(ext.Spatial.BBox) == 0 || !bboxesIntersect(ext.Spatial.BBox[0], m.bbox) {
			return false
		}
	}
	if m.start != nil || m.end != nil {
		if len(ext.Temporal.Interval) == 0 || len(ext.Temporal.Interval[0]) != 2 {
			return false
		}
		iv := ext.Temporal.Interval[0]
		if iv[0] != nil && m.end != nil {
			if t, err := catalog.ParseTime(*iv[0]); err == nil && t.After(*m.end) {
				return false
			}
		}
		if iv[1] != nil && m.start != nil {
			if t, err := catalog.ParseTime(*iv[1]); err == nil && t.Before(*m.start) {
				return false
			}
		}
	}
	if m.terms != nil && !search.MatchText(m.terms, search.CollectionText(c.Doc)) {
		return false
	}
	if m.filter != nil {
		props := map[string]any{}
		for k, raw := range c.Doc {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			var v any
			if d.Decode(&v) == nil {
				props[k] = v
			}
		}
		if !m.filter.Match(&cql2.MapFeature{ID: c.ID, Properties: props}) {
			return false
		}
	}
	return true
}

// bboxesIntersect reports whether two bboxes (4 or 6 numbers, either
// perhaps across the antimeridian) share a point.
func bboxesIntersect(a, b []float64) bool {
	if (len(a) != 4 && len(a) != 6) || (len(b) != 4 && len(b) != 6) {
		return false
	}
	aw, as, ae, an := search.Corners(a)
	bw, bs, be, bn := search.Corners(b)
	if as > bn || bs > an {
		return false
	}
	spans := func(w, e float64) [][2]float64 {
		if w <= e {
			return [][2]float64{{w, e}}
		}
		return [][2]float64{{w, 180}, {-180, e}}
	}
	for _, x := range spans(aw, ae) {
		for _, y := range spans(bw, be) {
			if x[0] <= y[1] && y[0] <= x[1] {
				return true
			}
		}
	}
	return false
}

// collectionScanSize is how many collections a search reads from the
// store at a time.
const collectionScanSize = 500

// matchingCollections reads a page of the readable collections that
// match m, after or before a cursor (ids), with the cursors of its
// neighbours, as the store's keyset listing gives them.
func (s *Server) matchingCollections(ctx context.Context, readable *catalog.ReadFilter, m *collectionMatcher, limit int, after, before string) ([]*catalog.Collection, string, string, error) {
	var out []*catalog.Collection
	if before == "" {
		cursor := after
		for len(out) <= limit {
			page, err := s.deps.Catalog.ListCollections(ctx, catalog.CollectionQuery{Readable: readable, Limit: collectionScanSize, After: cursor})
			if err != nil {
				return nil, "", "", err
			}
			for _, c := range page.Collections {
				if m.match(c) && len(out) <= limit {
					out = append(out, c)
				}
			}
			if page.Next == "" || len(page.Collections) == 0 {
				break
			}
			cursor = page.Collections[len(page.Collections)-1].ID
		}
		var next, prev string
		if len(out) > limit {
			out = out[:limit]
			next = out[limit-1].ID
		}
		if after != "" && len(out) > 0 {
			prev = out[0].ID
		}
		return out, next, prev, nil
	}
	cursor := before
	for len(out) <= limit {
		page, err := s.deps.Catalog.ListCollections(ctx, catalog.CollectionQuery{Readable: readable, Limit: collectionScanSize, Before: cursor})
		if err != nil {
			return nil, "", "", err
		}
		for i := len(page.Collections) - 1; i >= 0; i-- {
			if c := page.Collections[i]; m.match(c) && len(out) <= limit {
				out = append(out, c)
			}
		}
		if page.Prev == "" || len(page.Collections) == 0 {
			break
		}
		cursor = page.Collections[0].ID
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	slices.Reverse(out)
	var next, prev string
	if len(out) > 0 {
		next = out[len(out)-1].ID
		if more {
			prev = out[0].ID
		}
	}
	return out, next, prev, nil
}
