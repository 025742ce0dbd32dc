package openapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// Authorisation, asked once per operation before it acts. A collection
// the caller may not read answers 404, whoever asks, so that private
// collections do not leak their existence; an action the caller may not
// take on something it may read answers 403, or 401 without identity.

// readableCollection returns a collection the caller may read, or 404.
func (s *Server) readableCollection(ctx context.Context, id string) (*catalog.Collection, error) {
	return s.checkReadable(ctx, id, s.deps.Catalog.GetCollection)
}

// readableCollectionCached is readableCollection for decisions about the
// collection's items, which may use the service's short-lived cache.
func (s *Server) readableCollectionCached(ctx context.Context, id string) (*catalog.Collection, error) {
	return s.checkReadable(ctx, id, s.deps.Catalog.CachedCollection)
}

func (s *Server) checkReadable(ctx context.Context, id string, get func(context.Context, string) (*catalog.Collection, error)) (*catalog.Collection, error) {
	coll, err := get(ctx, id)
	if err != nil {
		return nil, err
	}
	ok, err := s.deps.Authz.CanReadCollection(ctx, CallerOf(ctx), coll)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.auditDenied(ctx, access.ActionRead, access.CollectionResource(id))
		return nil, catalog.Errorf(catalog.ENOTFOUND, "collection %q not found", id)
	}
	return coll, nil
}

// require checks that the caller may do action on resource of coll.
func (s *Server) require(ctx context.Context, coll *catalog.Collection, action, resource string) error {
	c := CallerOf(ctx)
	ok, err := s.deps.Authz.Can(ctx, c, coll, action, resource)
	if err != nil || ok {
		return err
	}
	s.auditDenied(ctx, action, resource)
	if c.IsAnonymous() {
		return catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in to %s %s", action, resource)
	}
	return catalog.Errorf(catalog.EFORBIDDEN, "%s may not %s %s", c.User, action, resource)
}

// writableCollection returns a collection the caller may read and on
// which it may do action to resource.
func (s *Server) writableCollection(ctx context.Context, id, action, resource string) (*catalog.Collection, error) {
	coll, err := s.readableCollection(ctx, id)
	if err != nil {
		return nil, err
	}
	return coll, s.require(ctx, coll, action, resource)
}

// seesDrafts reports whether the caller may see the drafts of a
// collection: its owner, admins and editors.
func (s *Server) seesDrafts(ctx context.Context, coll *catalog.Collection, itemID string) (bool, error) {
	return s.deps.Authz.Can(ctx, CallerOf(ctx), coll, access.ActionUpdate, access.ItemResource(coll.ID, itemID))
}

// readableItem returns an item the caller may read, or 404: an item of a
// readable collection (drafts only for owners and editors), an item
// shared on its own, or an item the caller owns itself (results and
// snapshots belong to who made them).
func (s *Server) readableItem(ctx context.Context, collection, id string) (*catalog.Item, error) {
	notFound := catalog.Errorf(catalog.ENOTFOUND, "item %q not found in collection %q", id, collection)
	coll, err := s.readableCollectionCached(ctx, collection)
	if catalog.ErrorCode(err) == catalog.ENOTFOUND {
		coll, err = s.itemShared(ctx, collection, id)
	}
	it, ierr := s.deps.Catalog.GetItem(ctx, collection, id)
	if s.ownsItem(ctx, it, access.ActionRead) {
		return it, nil
	}
	if err != nil {
		return nil, err
	}
	if ierr != nil {
		return nil, ierr
	}
	if it.State == catalog.StateDraft {
		ok, err := s.seesDrafts(ctx, coll, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound
		}
	}
	return it, nil
}

// ownsItem reports whether the caller is the item's own owner and its
// token allows action.
func (s *Server) ownsItem(ctx context.Context, it *catalog.Item, action string) bool {
	c := CallerOf(ctx)
	return it != nil && !c.IsAnonymous() && it.Owner() != "" && it.Owner() == c.User && c.InScope(action)
}

// itemShared returns the collection of an item the caller may read by a
// grant on the item itself, or 404.
func (s *Server) itemShared(ctx context.Context, collection, id string) (*catalog.Collection, error) {
	notFound := catalog.Errorf(catalog.ENOTFOUND, "item %q not found in collection %q", id, collection)
	coll, err := s.deps.Catalog.GetCollection(ctx, collection)
	if err != nil {
		return nil, notFound
	}
	ok, err := s.deps.Authz.Can(ctx, CallerOf(ctx), coll, access.ActionRead, access.ItemResource(collection, id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound
	}
	return coll, nil
}

// EventAccessDenied is the audit event of a request refused by the
// authorisation rules.
const EventAccessDenied = "access.denied"

// auditDenied writes an access.denied event: who was refused which action
// on what. The request id ties it to the log line. A failure to write it
// is logged and does not change the answer.
func (s *Server) auditDenied(ctx context.Context, action, resource string) {
	if s.deps.Catalog == nil {
		return
	}
	c := CallerOf(ctx)
	payload, _ := json.Marshal(map[string]any{"subjects": c.Subjects(), "action": action, "resource": resource, "request_id": RequestID(ctx)})
	ev := &catalog.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: EventAccessDenied, Subject: resource, Time: time.Now().UTC(), Payload: payload}
	err := s.deps.Catalog.Store.Update(context.WithoutCancel(ctx), func(tx catalog.Tx) error { return tx.AppendEvents(ctx, ev) })
	if err != nil {
		logger(ctx).Warn("audit event not written", "error", err.Error())
	}
}
