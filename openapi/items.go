package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
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
	Limit    int    `query:"limit" minimum:"1" maximum:"10000" default:"10" doc:"The page size."`
	Token    string `query:"token" doc:"The paging token from a next or prev link."`
	BBox     string `query:"bbox" doc:"Only items whose geometry intersects this box: west,south,east,north (or with bottom and top heights: west,south,bottom,east,north,top)." example:"11.3,48.0,11.9,48.3"`
	Datetime string `query:"datetime" doc:"Only items whose time overlaps this instant or interval (RFC 3339; \"start/end\" with \"..\" for an open end)." example:"2024-06-01T00:00:00Z/2024-06-30T23:59:59Z"`
	State    string `query:"dt:state" doc:"Only items in these lifecycle states (comma-separated). By default archived and deleted items are left out." example:"published,archived"`
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
			q, err := itemQuery(in)
			if err != nil {
				return nil, err
			}
			coll, err := s.readableCollection(ctx, in.CollectionID)
			if err != nil {
				return nil, err
			}
			if drafts, err := s.seesDrafts(ctx, coll, "*"); err != nil {
				return nil, err
			} else if !drafts {
				q.States = withoutDrafts(q.States)
			}
			page, err := s.deps.Catalog.ListItems(ctx, q)
			if err != nil {
				return nil, err
			}
			b, err := s.renderItemPage(requestOf(ctx), in, page)
			if err != nil {
				return nil, err
			}
			return &itemsOutput{Body: b}, nil
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

func itemQuery(in *listItemsInput) (catalog.ItemQuery, error) {
	q := catalog.ItemQuery{Collection: in.CollectionID, Limit: in.Limit}
	if in.BBox != "" {
		b, err := parseBBoxParam(in.BBox)
		if err != nil {
			return q, err
		}
		q.BBox = b
	}
	var err error
	if q.Start, q.End, err = catalog.ParseInterval("query.datetime", in.Datetime); err != nil {
		return q, err
	}
	if in.State != "" {
		if q.States, err = catalog.ParseStates("query.dt:state", in.State); err != nil {
			return q, err
		}
	}
	if in.Token != "" {
		if q.After, q.Before, err = decodeItemToken(in.Token); err != nil {
			return q, err
		}
	}
	return q, nil
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

func (s *Server) renderItemPage(r *http.Request, in *listItemsInput, page *catalog.ItemPage) (itemsJSON, error) {
	base := s.baseURL(r)
	var buf bytes.Buffer
	buf.WriteString(`{"type":"FeatureCollection","features":[`)
	for i, it := range page.Items {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := renderItem(base, it)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	self := collectionURL(base, in.CollectionID) + "/items"
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
	links := []catalog.Document{
		link("self", pageURL(in.Token), mediaGeoJSON),
		link("root", base+"/", mediaJSON),
		link("parent", collectionURL(base, in.CollectionID), mediaJSON),
		link("collection", collectionURL(base, in.CollectionID), mediaJSON),
	}
	if page.Next != nil {
		links = append(links, link("next", pageURL(encodeItemToken("n", page.Next)), mediaGeoJSON))
	}
	if page.Prev != nil {
		links = append(links, link("prev", pageURL(encodeItemToken("p", page.Prev)), mediaGeoJSON))
	}
	buf.WriteString(`],"links":`)
	buf.Write(mustMarshal(links))
	buf.WriteString(`,"numberReturned":`)
	buf.WriteString(strconv.Itoa(len(page.Items)))
	buf.WriteByte('}')
	return itemsJSON(buf.Bytes()), nil
}
