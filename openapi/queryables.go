package openapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
)

// Queryables: GET /queryables and /collections/{id}/queryables as JSON
// Schema, derived from each collection's newest items and refined by
// administrators with PUT /collections/{id}/queryables.

const mediaSchema = "application/schema+json"

// derivedTTL is how long the properties derived from a collection's
// items are reused before they are derived again.
const derivedTTL = time.Minute

type queryablesJSON []byte

func (b queryablesJSON) MarshalJSON() ([]byte, error) { return b, nil }
func (queryablesJSON) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "object", AdditionalProperties: true, Required: []string{"type", "properties"},
		Description: "A JSON Schema whose properties are the queryables: the names a filter may use, with their types.",
		Properties: map[string]*huma.Schema{
			"$schema":    {Type: "string"},
			"$id":        {Type: "string"},
			"type":       {Type: "string", Enum: []any{"object"}},
			"title":      {Type: "string"},
			"properties": {Type: "object", AdditionalProperties: true},
		}}
}
func (queryablesJSON) ContentType(string) string { return mediaSchema }

type queryablesOutput struct {
	Body queryablesJSON
}

type putQueryablesInput struct {
	CollectionPath
	Body map[string]any
}

// derivedCache keeps the derived properties of collections.
type derivedCache struct {
	mu      sync.Mutex
	entries map[string]derivedEntry
}

type derivedEntry struct {
	props map[string]any
	at    time.Time
}

func (s *Server) registerQueryables() {
	huma.Register(s.api, s.operation("getQueryables", http.MethodGet, "/queryables", "Item Search",
		"Queryables of all collections", "The properties a filter may name across the collections the caller may read, as JSON Schema: each collection's own (derived from its newest items, refined by administrators), merged. Other names are accepted too (additionalProperties).",
		http.StatusOK),
		func(ctx context.Context, _ *noInput) (*queryablesOutput, error) {
			a, err := s.searchAccess(ctx)
			if err != nil {
				return nil, err
			}
			ids, err := s.readableCollectionIDs(ctx, a)
			if err != nil {
				return nil, err
			}
			derived := map[string]any{}
			var refined []json.RawMessage
			for _, id := range ids {
				d, r, err := s.collectionQueryables(ctx, id)
				if err != nil {
					return nil, err
				}
				maps.Copy(derived, d)
				refined = append(refined, propertiesOnly(r))
			}
			doc, err := search.QueryablesDocument(s.baseURL(requestOf(ctx))+"/queryables", "Queryables", derived, refined...)
			if err != nil {
				return nil, err
			}
			return &queryablesOutput{Body: queryablesJSON(mustMarshal(doc))}, nil
		})
	huma.Register(s.api, s.operation("getCollectionQueryables", http.MethodGet, "/collections/{collectionId}/queryables", "Item Search",
		"Queryables of a collection", "The properties a filter on this collection's items may name, as JSON Schema: derived from its newest items and refined by administrators. Properties marked x-twinstac-index are indexed: filters on them and sorting by them are fast.",
		http.StatusOK, 404),
		func(ctx context.Context, in *CollectionPath) (*queryablesOutput, error) {
			coll, err := s.readableCollection(ctx, in.CollectionID)
			if err != nil {
				return nil, err
			}
			return s.renderCollectionQueryables(ctx, coll.ID)
		})
	op := s.operation("setCollectionQueryables", http.MethodPut, "/collections/{collectionId}/queryables", "Item Search",
		"Refine a collection's queryables", "Administrators describe the queryables of a collection with a JSON Schema whose properties replace the derived ones of the same name (titles, descriptions, enums). A property with \"x-twinstac-index\": true and type number, integer, string, boolean or array is indexed (an array for A_CONTAINS): on PostgreSQL the server builds its indexes before it answers (without blocking reads and writes), and drops those of properties no longer marked.",
		http.StatusOK, 400, 403, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *putQueryablesInput) (*queryablesOutput, error) {
		coll, err := s.readableCollection(ctx, in.CollectionID)
		if err != nil {
			return nil, err
		}
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		qs, err := s.queryableStore()
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(in.Body)
		if err != nil {
			return nil, catalog.Internal(err)
		}
		doc, indexes, err := search.ParseRefined(raw)
		if err != nil {
			return nil, err
		}
		if err := qs.SetQueryables(ctx, coll.ID, doc, indexes); err != nil {
			return nil, err
		}
		return s.renderCollectionQueryables(ctx, coll.ID)
	})
}

func (s *Server) queryableStore() (search.QueryableStore, error) {
	qs, ok := s.deps.Catalog.Store.(search.QueryableStore)
	if !ok {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this store keeps no queryables")
	}
	return qs, nil
}

func (s *Server) renderCollectionQueryables(ctx context.Context, id string) (*queryablesOutput, error) {
	derived, refined, err := s.collectionQueryables(ctx, id)
	if err != nil {
		return nil, err
	}
	doc, err := search.QueryablesDocument(collectionURL(s.baseURL(requestOf(ctx)), id)+"/queryables", "Queryables of "+id, derived, refined)
	if err != nil {
		return nil, err
	}
	return &queryablesOutput{Body: queryablesJSON(mustMarshal(doc))}, nil
}

// collectionQueryables returns the derived properties of a collection
// (from its newest items, cached for derivedTTL) and its refined
// document (nil when none).
func (s *Server) collectionQueryables(ctx context.Context, id string) (map[string]any, json.RawMessage, error) {
	qs, err := s.queryableStore()
	if err != nil {
		return nil, nil, err
	}
	refined, err := qs.Queryables(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	s.derived.mu.Lock()
	e, ok := s.derived.entries[id]
	s.derived.mu.Unlock()
	if ok && time.Since(e.at) < derivedTTL {
		return e.props, refined, nil
	}
	se, err := s.searcher()
	if err != nil {
		return nil, nil, err
	}
	// Published and deprecated items only: drafts do not show their
	// property names to readers.
	q := &search.Query{Collections: []string{id}, Limit: search.SampleSize,
		States: []catalog.State{catalog.StatePublished, catalog.StateDeprecated}}
	if err := search.Prepare(q); err != nil {
		return nil, nil, err
	}
	page, err := se.Search(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	props := search.Derive(page.Items)
	s.derived.mu.Lock()
	if s.derived.entries == nil {
		s.derived.entries = map[string]derivedEntry{}
	}
	s.derived.entries[id] = derivedEntry{props: props, at: time.Now()}
	s.derived.mu.Unlock()
	return props, refined, nil
}

// propertiesOnly keeps the properties of a refined document, so that
// one collection's title does not become the catalog's.
func propertiesOnly(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var doc struct {
		Properties json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(raw, &doc) != nil || doc.Properties == nil {
		return nil
	}
	return mustMarshal(map[string]json.RawMessage{"properties": doc.Properties})
}

// readableCollectionIDs lists the collections whose items a caller may
// read (every collection for nil access).
func (s *Server) readableCollectionIDs(ctx context.Context, a *search.Access) ([]string, error) {
	if a != nil {
		return a.Collections, nil
	}
	var ids []string
	err := s.eachCollection(ctx, nil, func(c *catalog.Collection) error {
		ids = append(ids, c.ID)
		return nil
	})
	return ids, err
}
