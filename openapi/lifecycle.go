package openapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// LifecycleRequest asks to move an item to another state.
type LifecycleRequest struct {
	State  string `json:"state" enum:"published,deprecated,archived,deleted" doc:"The state to move to. Allowed moves: draft→published, draft→deleted, published→deprecated, published|deprecated→archived, archived→published, any→deleted." example:"published"`
	Reason string `json:"reason,omitempty" maxLength:"2000" doc:"Why; kept in the item as dt:stateReason and in the event." example:"validated by the twin's owner"`
}

type lifecycleInput struct {
	ItemPath
	IfMatchHeader
	Body LifecycleRequest
}

// lifecycleOutput is an item (200) or nothing (204, after a deletion);
// its body is raw bytes so that the 204 carries none.
type lifecycleOutput struct {
	Status      int
	ETag        string `header:"ETag" doc:"The entity tag of the item's new version."`
	ContentType string `header:"Content-Type"`
	Body        []byte
}

func (s *Server) registerLifecycle() {
	op := s.operation("moveItem", http.MethodPost, "/collections/{collectionId}/items/{itemId}/lifecycle", "Lifecycle",
		"Move an item through its lifecycle",
		"Moves an item to another state and keeps the STAC timestamps (published, unpublished) in step. Publishing an item that names a predecessor-version deprecates the predecessor and links it to its latest version. A move that is not allowed is a 409 that lists the allowed ones. Moving to deleted answers 204, like DELETE.",
		http.StatusOK, 400, 404, 409, 410, 412, 403)
	op.SkipValidateBody = false
	op.Responses = map[string]*huma.Response{
		"200": {Description: "The item as it now is.", Content: map[string]*huma.MediaType{mediaGeoJSON: {Schema: ref("Item")}},
			Headers: map[string]*huma.Param{"ETag": {Description: "The entity tag of the item's new version.", Schema: &huma.Schema{Type: "string"}}}},
		"204": {Description: "The item was deleted; a tombstone stays."},
	}
	huma.Register(s.api, op, func(ctx context.Context, in *lifecycleInput) (*lifecycleOutput, error) {
		action := access.ActionPublish
		if in.Body.State == string(catalog.StateDeleted) {
			action = access.ActionDelete
		}
		if err := s.mayChangeItem(ctx, in.ItemPath, action); err != nil {
			return nil, err
		}
		it, err := s.deps.Catalog.MoveItem(ctx, in.CollectionID, in.ItemID, catalog.State(in.Body.State), in.Body.Reason, parseIfMatch(in.IfMatch))
		if err != nil {
			return nil, err
		}
		if it.Deleted() {
			return &lifecycleOutput{Status: http.StatusNoContent}, nil
		}
		out, err := s.itemOut(ctx, it)
		if err != nil {
			return nil, err
		}
		return &lifecycleOutput{Status: http.StatusOK, ETag: out.ETag, ContentType: mediaGeoJSON, Body: out.Body}, nil
	})
}
