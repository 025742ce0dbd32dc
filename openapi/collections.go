package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// CollectionPath names a collection in the path.
type CollectionPath struct {
	CollectionID string `path:"collectionId" doc:"The collection id." example:"water-tanks"`
}

// IfMatchHeader carries a conditional request header.
type IfMatchHeader struct {
	IfMatch string `header:"If-Match" doc:"The ETag the client last saw (or *): the change applies only if the object still has it, otherwise 412."`
}

type collectionOutput struct {
	ETag     string `header:"ETag" doc:"The entity tag of the collection's current version."`
	Location string `header:"Location" doc:"The URL of the created collection."`
	Body     collectionJSON
}

type listCollectionsInput struct {
	Limit int    `query:"limit" minimum:"1" maximum:"10000" default:"10" doc:"The page size."`
	Token string `query:"token" doc:"The paging token from a next or prev link."`
	CollectionSearchParams
}

type collectionsOutput struct {
	Body collectionsJSON
}

type createCollectionInput struct {
	Body collectionInput
}

type replaceCollectionInput struct {
	CollectionPath
	IfMatchHeader
	Body collectionInput
}

type patchCollectionInput struct {
	CollectionPath
	IfMatchHeader
	Body patchInput `contentType:"application/merge-patch+json"`
}

type deleteCollectionInput struct {
	CollectionPath
	IfMatchHeader
}

type emptyOutput struct{}

func (s *Server) registerCollections() {
	huma.Register(s.api, s.operation("getCollections", http.MethodGet, "/collections", "Collections",
		"List and search collections", "Lists the collections the caller may read, ordered by id, a page at a time; follow the next and prev links to page. bbox, datetime, q and filter keep the collections whose extent, text or members match.", http.StatusOK, 400, 403),
		func(ctx context.Context, in *listCollectionsInput) (*collectionsOutput, error) {
			readable, err := s.deps.Authz.ReadFilter(ctx, CallerOf(ctx))
			if err != nil {
				return nil, err
			}
			m, err := newCollectionMatcher(&in.CollectionSearchParams)
			if err != nil {
				return nil, err
			}
			var after, before string
			if in.Token != "" {
				if after, before, err = decodeCollectionToken(in.Token); err != nil {
					return nil, err
				}
			}
			page := &catalog.CollectionPage{}
			if m == nil {
				page, err = s.deps.Catalog.ListCollections(ctx, catalog.CollectionQuery{Limit: in.Limit, Readable: readable, After: after, Before: before})
			} else {
				page.Collections, page.Next, page.Prev, err = s.matchingCollections(ctx, readable, m, in.Limit, after, before)
			}
			if err != nil {
				return nil, err
			}
			base := s.baseURL(requestOf(ctx))
			cols := make([]json.RawMessage, 0, len(page.Collections))
			for _, c := range page.Collections {
				b, err := renderCollection(base, c)
				if err != nil {
					return nil, err
				}
				cols = append(cols, b)
			}
			self := base + "/collections"
			pageURL := func(tok string) string {
				v := url.Values{}
				for k, vs := range requestOf(ctx).URL.Query() {
					if k != "token" {
						v[k] = vs
					}
				}
				v.Set("limit", itoa(in.Limit))
				if tok != "" {
					v.Set("token", tok)
				}
				return self + "?" + v.Encode()
			}
			links := []catalog.Document{
				link("self", pageURL(in.Token), mediaJSON),
				link("root", base+"/", mediaJSON),
				link("parent", base+"/", mediaJSON),
			}
			if page.Next != "" {
				links = append(links, link("next", pageURL(encodeCollectionToken("n", page.Next)), mediaJSON))
			}
			if page.Prev != "" {
				links = append(links, link("prev", pageURL(encodeCollectionToken("p", page.Prev)), mediaJSON))
			}
			body := map[string]any{"collections": cols, "links": links, "numberReturned": len(cols)}
			return &collectionsOutput{Body: collectionsJSON(mustMarshal(body))}, nil
		})

	op := s.operation("createCollection", http.MethodPost, "/collections", "Collections",
		"Create a collection", "Creates a collection from a STAC collection document. The server adds its links; every other member is kept as sent.",
		http.StatusCreated, 400, 409, 413, 403)
	huma.Register(s.api, op, func(ctx context.Context, in *createCollectionInput) (*collectionOutput, error) {
		if err := s.mayCreateCollections(ctx); err != nil {
			return nil, err
		}
		c, err := s.deps.Catalog.CreateCollection(ctx, in.Body.rawInput, CallerOf(ctx).User)
		if err != nil {
			return nil, err
		}
		out, err := s.collectionOut(ctx, c)
		if err != nil {
			return nil, err
		}
		out.Location = collectionURL(s.baseURL(requestOf(ctx)), c.ID)
		return out, nil
	})

	huma.Register(s.api, s.operation("getCollection", http.MethodGet, "/collections/{collectionId}", "Collections",
		"Get a collection", "Returns one collection with its ETag.", http.StatusOK, 404),
		func(ctx context.Context, in *CollectionPath) (*collectionOutput, error) {
			c, err := s.readableCollection(ctx, in.CollectionID)
			if err != nil {
				return nil, err
			}
			return s.collectionOut(ctx, c)
		})

	huma.Register(s.api, s.operation("replaceCollection", http.MethodPut, "/collections/{collectionId}", "Collections",
		"Replace a collection", "Replaces a collection's document. Send If-Match with the ETag you last saw so that you never overwrite someone else's change.",
		http.StatusOK, 400, 404, 412, 413, 403),
		func(ctx context.Context, in *replaceCollectionInput) (*collectionOutput, error) {
			if _, err := s.writableCollection(ctx, in.CollectionID, access.ActionUpdate, access.CollectionResource(in.CollectionID)); err != nil {
				return nil, err
			}
			c, err := s.deps.Catalog.ReplaceCollection(ctx, in.CollectionID, in.Body.rawInput, parseIfMatch(in.IfMatch))
			if err != nil {
				return nil, err
			}
			return s.collectionOut(ctx, c)
		})

	op = s.operation("updateCollection", http.MethodPatch, "/collections/{collectionId}", "Collections",
		"Update a collection", "Applies a JSON merge patch (RFC 7396) to a collection: members set replace, members set to null are removed.",
		http.StatusOK, 400, 404, 412, 413, 403)
	op.RequestBody = mergePatchBody()
	huma.Register(s.api, op, func(ctx context.Context, in *patchCollectionInput) (*collectionOutput, error) {
		if _, err := s.writableCollection(ctx, in.CollectionID, access.ActionUpdate, access.CollectionResource(in.CollectionID)); err != nil {
			return nil, err
		}
		c, err := s.deps.Catalog.PatchCollection(ctx, in.CollectionID, in.Body.rawInput, parseIfMatch(in.IfMatch))
		if err != nil {
			return nil, err
		}
		return s.collectionOut(ctx, c)
	})

	huma.Register(s.api, s.operation("deleteCollection", http.MethodDelete, "/collections/{collectionId}", "Collections",
		"Delete a collection", "Deletes a collection with all its items and their files.", http.StatusNoContent, 404, 412, 403),
		func(ctx context.Context, in *deleteCollectionInput) (*emptyOutput, error) {
			if _, err := s.writableCollection(ctx, in.CollectionID, access.ActionDelete, access.CollectionResource(in.CollectionID)); err != nil {
				return nil, err
			}
			return nil, s.deps.Catalog.DeleteCollection(ctx, in.CollectionID, parseIfMatch(in.IfMatch))
		})
}

// mayCreateCollections: any signed-in caller whose token allows create.
func (s *Server) mayCreateCollections(ctx context.Context) error {
	c := CallerOf(ctx)
	switch {
	case c.IsAnonymous():
		return catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in to create collections")
	case !c.InScope(access.ActionCreate):
		return catalog.Errorf(catalog.EFORBIDDEN, "this token's scopes do not allow creating")
	case s.cfg.CollectionCreators != "" && !c.IsAdmin() && !slices.Contains(c.Groups, s.cfg.CollectionCreators):
		s.auditDenied(ctx, access.ActionCreate, "collections")
		return catalog.Errorf(catalog.EFORBIDDEN, "only members of group %q create collections on this node", s.cfg.CollectionCreators)
	}
	return nil
}

// mergePatchBody documents a body sent as application/merge-patch+json or
// application/json.
func mergePatchBody() *huma.RequestBody {
	return &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
		"application/json": {Schema: ref("MergePatch")},
	}}
}

func (s *Server) collectionOut(ctx context.Context, c *catalog.Collection) (*collectionOutput, error) {
	b, err := renderCollection(s.baseURL(requestOf(ctx)), c)
	if err != nil {
		return nil, err
	}
	return &collectionOutput{ETag: quoteETag(c.ETag), Body: collectionJSON(b)}, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
