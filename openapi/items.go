package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// ItemPath names an item in the path.
type ItemPath struct {
	CollectionID string `path:"collectionId" doc:"The collection id." example:"water-tanks"`
	ItemID       string `path:"itemId" doc:"The item id." example:"tank-sim-v1"`
}

type itemOutput struct {
	ETag     string `header:"ETag" doc:"The entity tag of the item's current version."`
	Location string `header:"Location" doc:"The URL of the created item."`
	Body     itemJSON
}

type itemsOutput struct {
	Body itemsJSON
}

type listItemsInput struct {
	CollectionPath
	ItemFilterParams
}

type createItemInput struct {
	CollectionPath
	Body itemOrFeaturesInput
}

type replaceItemInput struct {
	ItemPath
	IfMatchHeader
	Body itemInput
}

type patchItemInput struct {
	ItemPath
	IfMatchHeader
	Body patchInput `contentType:"application/merge-patch+json"`
}

type deleteItemInput struct {
	ItemPath
	IfMatchHeader
}

// createdItemsJSON is the answer to a FeatureCollection POST or a single item.
type createdJSON []byte

func (b createdJSON) MarshalJSON() ([]byte, error) { return b, nil }
func (createdJSON) Schema(r huma.Registry) *huma.Schema {
	registerSchemas(r)
	return &huma.Schema{OneOf: []*huma.Schema{ref("Item"), ref("ItemCollection")}}
}
func (createdJSON) ContentType(string) string { return mediaGeoJSON }

type createdOutput struct {
	ETag     string `header:"ETag" doc:"The entity tag of the created item (single item only)."`
	Location string `header:"Location" doc:"The URL of the created item (single item only)."`
	Body     createdJSON
}

func (s *Server) registerItems() {
	huma.Register(s.api, s.operation("getItems", http.MethodGet, "/collections/{collectionId}/items", "Items",
		"List a collection's items", "Lists items newest first (by datetime, then id), a page at a time. Filters: bbox, datetime and dt:state; follow the next and prev links to page.",
		http.StatusOK, 400, 404),
		func(ctx context.Context, in *listItemsInput) (*itemsOutput, error) {
			q, token, err := getSearchQuery("", "", &in.ItemFilterParams)
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
			base := s.baseURL(requestOf(ctx))
			return s.search(ctx, q, token, nil, []catalog.Document{
				link("parent", collectionURL(base, coll.ID), mediaJSON),
				link("collection", collectionURL(base, coll.ID), mediaJSON),
			})
		})

	op := s.operation("createItem", http.MethodPost, "/collections/{collectionId}/items", "Items",
		"Create items", "Creates an item (a STAC item document) or several (a FeatureCollection, all or none). New items are drafts unless `dt:state` is `published`. The answer is the item as the server now holds it, with its links, state and timestamps.",
		http.StatusCreated, 400, 404, 409, 413, 403)
	huma.Register(s.api, op, func(ctx context.Context, in *createItemInput) (*createdOutput, error) {
		base := s.baseURL(requestOf(ctx))
		raws, single, err := splitFeatures(in.Body.rawInput)
		if err != nil {
			return nil, err
		}
		coll, err := s.writableCollection(ctx, in.CollectionID, access.ActionCreate, access.ItemResource(in.CollectionID, "*"))
		if err != nil {
			return nil, err
		}
		mayPublish, err := s.deps.Authz.Can(ctx, CallerOf(ctx), coll, access.ActionPublish, access.ItemResource(in.CollectionID, "*"))
		if err != nil {
			return nil, err
		}
		items, err := s.deps.Catalog.CreateItems(ctx, in.CollectionID, raws, catalog.CreateOptions{MayPublish: mayPublish, MaySetOwner: CallerOf(ctx).IsAdmin()})
		if err != nil {
			return nil, err
		}
		if single {
			b, err := renderItem(base, items[0])
			if err != nil {
				return nil, err
			}
			return &createdOutput{ETag: quoteETag(items[0].ETag), Location: base + catalog.ItemPath(in.CollectionID, items[0].ID), Body: createdJSON(b)}, nil
		}
		feats := make([]json.RawMessage, len(items))
		for i, it := range items {
			if feats[i], err = renderItem(base, it); err != nil {
				return nil, err
			}
		}
		body := map[string]any{"type": "FeatureCollection", "features": feats, "numberReturned": len(feats),
			"links": []catalog.Document{link("collection", collectionURL(base, in.CollectionID), mediaJSON), link("root", base+"/", mediaJSON)}}
		return &createdOutput{Body: createdJSON(mustMarshal(body))}, nil
	})

	huma.Register(s.api, s.operation("getItem", http.MethodGet, "/collections/{collectionId}/items/{itemId}", "Items",
		"Get an item", "Returns one item with its ETag. A deleted item answers 410 Gone.", http.StatusOK, 404, 410),
		func(ctx context.Context, in *ItemPath) (*itemOutput, error) {
			it, err := s.readableItem(ctx, in.CollectionID, in.ItemID)
			if err != nil {
				return nil, err
			}
			return s.itemOut(ctx, it)
		})

	huma.Register(s.api, s.operation("replaceItem", http.MethodPut, "/collections/{collectionId}/items/{itemId}", "Items",
		"Replace an item", "Replaces a draft item's document. Published content is immutable (409: create a new version instead). `dt:state` and the timestamps stay the server's. Send If-Match with the ETag you last saw.",
		http.StatusOK, 400, 404, 409, 410, 412, 413, 403),
		func(ctx context.Context, in *replaceItemInput) (*itemOutput, error) {
			if err := s.mayChangeItem(ctx, in.ItemPath, access.ActionUpdate); err != nil {
				return nil, err
			}
			it, err := s.deps.Catalog.ReplaceItem(ctx, in.CollectionID, in.ItemID, in.Body.rawInput, parseIfMatch(in.IfMatch))
			if err != nil {
				return nil, err
			}
			return s.itemOut(ctx, it)
		})

	op = s.operation("updateItem", http.MethodPatch, "/collections/{collectionId}/items/{itemId}", "Items",
		"Update an item", "Applies a JSON merge patch (RFC 7396) to a draft item. Published content is immutable (409).",
		http.StatusOK, 400, 404, 409, 410, 412, 413, 403)
	op.RequestBody = mergePatchBody()
	huma.Register(s.api, op, func(ctx context.Context, in *patchItemInput) (*itemOutput, error) {
		if err := s.mayChangeItem(ctx, in.ItemPath, access.ActionUpdate); err != nil {
			return nil, err
		}
		it, err := s.deps.Catalog.PatchItem(ctx, in.CollectionID, in.ItemID, in.Body.rawInput, parseIfMatch(in.IfMatch))
		if err != nil {
			return nil, err
		}
		return s.itemOut(ctx, it)
	})

	huma.Register(s.api, s.operation("deleteItem", http.MethodDelete, "/collections/{collectionId}/items/{itemId}", "Items",
		"Delete an item", "Moves an item to `deleted`: its content and files go, a tombstone (id, collection, state, time) stays, and GET answers 410 Gone from then on.",
		http.StatusNoContent, 404, 410, 412, 403),
		func(ctx context.Context, in *deleteItemInput) (*emptyOutput, error) {
			if err := s.mayChangeItem(ctx, in.ItemPath, access.ActionDelete); err != nil {
				return nil, err
			}
			return nil, s.deps.Catalog.DeleteItem(ctx, in.CollectionID, in.ItemID, parseIfMatch(in.IfMatch))
		})
}

// mayChangeItem checks that the caller may do action on an item: 404
// when it may not read the item (a draft it cannot see included), then
// 401/403 when it may not act.
func (s *Server) mayChangeItem(ctx context.Context, p ItemPath, action string) error {
	it, err := s.readableItem(ctx, p.CollectionID, p.ItemID)
	if err != nil && catalog.ErrorCode(err) != catalog.EGONE {
		return err
	}
	if s.ownsItem(ctx, it, action) {
		return nil
	}
	// The item is readable: through its collection, or shared on its own;
	// readableItem just looked the collection up, so this is the cache.
	coll, err := s.deps.Catalog.CachedCollection(ctx, p.CollectionID)
	if err != nil {
		return err
	}
	return s.require(ctx, coll, action, access.ItemResource(p.CollectionID, p.ItemID))
}

func (s *Server) itemOut(ctx context.Context, it *catalog.Item) (*itemOutput, error) {
	b, err := renderItem(s.baseURL(requestOf(ctx)), it)
	if err != nil {
		return nil, err
	}
	return &itemOutput{ETag: quoteETag(it.ETag), Body: itemJSON(b)}, nil
}

// splitFeatures returns the items of a POST body: one item, or the
// features of a FeatureCollection.
func splitFeatures(raw []byte) (items [][]byte, single bool, err error) {
	var head struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, false, catalog.Invalid("", "the body must be a STAC item or a FeatureCollection of items")
	}
	if head.Type != "FeatureCollection" {
		return [][]byte{raw}, true, nil
	}
	if len(head.Features) == 0 {
		return nil, false, catalog.Invalid("/features", "the FeatureCollection has no features")
	}
	items = make([][]byte, len(head.Features))
	for i, f := range head.Features {
		items[i] = f
	}
	return items, false, nil
}

func parseBBoxParam(s string) ([]float64, error) {
	parts := strings.Split(s, ",")
	b := make([]float64, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, catalog.Invalid("query.bbox", "%q is not a number; a bbox is west,south,east,north", p)
		}
		b[i] = v
	}
	return b, catalog.ParseBBox("query.bbox", b)
}
