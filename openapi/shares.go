package openapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// ShareRequest grants a subject actions on a collection or an item.
type ShareRequest struct {
	Subject string     `json:"subject" doc:"Who: user:<id>, group:<name>, node:<peer> or anonymous." example:"user:ana"`
	Actions []string   `json:"actions,omitempty" enum:"read,create,update,publish,delete,execute,share" doc:"What they may do; or give a role instead." example:"[\"read\",\"execute\"]"`
	Role    string     `json:"role,omitempty" enum:"viewer,executor,editor" doc:"A role instead of actions: viewer (read), executor (read, execute), editor (read, create, update, publish, delete)."`
	Expires *time.Time `json:"expires,omitempty" doc:"When the share ends (RFC 3339); none: until deleted."`
}

// ShareInfo is one share.
type ShareInfo struct {
	ID      string     `json:"id" doc:"The share id."`
	Subject string     `json:"subject"`
	Actions []string   `json:"actions"`
	Expires *time.Time `json:"expires,omitempty"`
	Created time.Time  `json:"created"`
}

// ShareList lists the shares of an object.
type ShareList struct {
	Shares []ShareInfo `json:"shares"`
}

func shareInfo(sh *access.Share) ShareInfo {
	i := ShareInfo{ID: sh.ID, Subject: sh.Subject, Actions: sh.Actions, Created: sh.Created}
	if !sh.Expires.IsZero() {
		e := sh.Expires
		i.Expires = &e
	}
	return i
}

type createCollectionShareInput struct {
	CollectionPath
	Body ShareRequest
}

type createItemShareInput struct {
	ItemPath
	Body ShareRequest
}

type shareOutput struct {
	Body ShareInfo
}

type shareListOutput struct {
	Body ShareList
}

type collectionSharePath struct {
	CollectionPath
	ShareID string `path:"shareId" doc:"The share id."`
}

type itemSharePath struct {
	ItemPath
	ShareID string `path:"shareId" doc:"The share id."`
}

// shareable checks that the caller may share the collection (item "")
// or item, and returns what the share is of.
func (s *Server) shareable(ctx context.Context, collection, item string) (access.ShareTarget, error) {
	on, resource := access.CollectionShare(collection), access.CollectionResource(collection)
	if item != "" {
		if _, err := s.readableItem(ctx, collection, item); err != nil {
			return on, err
		}
		on, resource = access.ItemShare(collection, item), access.ItemResource(collection, item)
	}
	coll, err := s.deps.Catalog.GetCollection(ctx, collection)
	if err != nil {
		return on, err
	}
	if item == "" {
		if coll, err = s.readableCollection(ctx, collection); err != nil {
			return on, err
		}
	}
	return on, s.require(ctx, coll, access.ActionShare, resource)
}

func (s *Server) registerShares() {
	type target struct {
		prefix, what string
	}
	for _, t := range []target{{"/collections/{collectionId}", "collection"}, {"/collections/{collectionId}/items/{itemId}", "item"}} {
		id := "Collection"
		if t.what == "item" {
			id = "Item"
		}
		create := s.operation("create"+id+"Share", http.MethodPost, t.prefix+"/shares", "Access", "Share a "+t.what,
			"Grants a user, group or peer node actions on the "+t.what+(map[bool]string{true: " and its items", false: ""}[t.what == "collection"])+", until an optional expiry. Owners, admins and those granted share may share.",
			http.StatusCreated, 400, 403, 404)
		create.SkipValidateBody = false
		list := s.operation("list"+id+"Shares", http.MethodGet, t.prefix+"/shares", "Access", "List the shares of a "+t.what,
			"Lists who the "+t.what+" is shared with.", http.StatusOK, 403, 404)
		del := s.operation("delete"+id+"Share", http.MethodDelete, t.prefix+"/shares/{shareId}", "Access", "End a share",
			"Ends a share; it takes effect on the next request.", http.StatusNoContent, 403, 404)
		if t.what == "collection" {
			huma.Register(s.api, create, func(ctx context.Context, in *createCollectionShareInput) (*shareOutput, error) {
				on, err := s.shareable(ctx, in.CollectionID, "")
				if err != nil {
					return nil, err
				}
				return s.createShare(ctx, on, in.Body)
			})
			huma.Register(s.api, list, func(ctx context.Context, in *CollectionPath) (*shareListOutput, error) {
				on, err := s.shareable(ctx, in.CollectionID, "")
				if err != nil {
					return nil, err
				}
				return s.listShares(ctx, on)
			})
			huma.Register(s.api, del, func(ctx context.Context, in *collectionSharePath) (*emptyOutput, error) {
				on, err := s.shareable(ctx, in.CollectionID, "")
				if err != nil {
					return nil, err
				}
				return nil, s.deleteShare(ctx, on, in.ShareID)
			})
			continue
		}
		huma.Register(s.api, create, func(ctx context.Context, in *createItemShareInput) (*shareOutput, error) {
			on, err := s.shareable(ctx, in.CollectionID, in.ItemID)
			if err != nil {
				return nil, err
			}
			return s.createShare(ctx, on, in.Body)
		})
		huma.Register(s.api, list, func(ctx context.Context, in *ItemPath) (*shareListOutput, error) {
			on, err := s.shareable(ctx, in.CollectionID, in.ItemID)
			if err != nil {
				return nil, err
			}
			return s.listShares(ctx, on)
		})
		huma.Register(s.api, del, func(ctx context.Context, in *itemSharePath) (*emptyOutput, error) {
			on, err := s.shareable(ctx, in.CollectionID, in.ItemID)
			if err != nil {
				return nil, err
			}
			return nil, s.deleteShare(ctx, on, in.ShareID)
		})
	}
}

func (s *Server) policyManager() (*access.Manager, error) {
	if s.deps.Authz == nil || s.deps.Authz.Manager == nil {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server keeps no policies")
	}
	return s.deps.Authz.Manager, nil
}

// createShare makes a share of what the caller was found to be allowed
// to share.
func (s *Server) createShare(ctx context.Context, on access.ShareTarget, r ShareRequest) (*shareOutput, error) {
	m, err := s.policyManager()
	if err != nil {
		return nil, err
	}
	var expires time.Time
	if r.Expires != nil {
		expires = *r.Expires
	}
	actions := r.Actions
	if r.Role != "" {
		if len(actions) > 0 {
			return nil, catalog.Invalid("/role", "give either actions or a role, not both")
		}
		if actions, err = access.RoleActions(r.Role); err != nil {
			return nil, err
		}
	}
	sh, err := m.CreateShare(ctx, CallerOf(ctx), on, r.Subject, actions, expires)
	if err != nil {
		return nil, err
	}
	return &shareOutput{Body: shareInfo(sh)}, nil
}

func (s *Server) listShares(ctx context.Context, on access.ShareTarget) (*shareListOutput, error) {
	m, err := s.policyManager()
	if err != nil {
		return nil, err
	}
	shares, err := m.Shares(ctx, on)
	if err != nil {
		return nil, err
	}
	out := ShareList{Shares: make([]ShareInfo, 0, len(shares))}
	for _, sh := range shares {
		out.Shares = append(out.Shares, shareInfo(sh))
	}
	return &shareListOutput{Body: out}, nil
}

func (s *Server) deleteShare(ctx context.Context, on access.ShareTarget, id string) error {
	m, err := s.policyManager()
	if err != nil {
		return err
	}
	return m.DeleteShare(ctx, on, id)
}
