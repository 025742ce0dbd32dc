package access

import (
	"context"
	"strings"

	"github.com/ory/ladon"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/search"
)

// Resource names of the catalog in policies.
func CollectionResource(id string) string { return "collections:" + id }

// ItemResource names an item; ItemResource(c, "*") stands for every item
// of collection c (a policy "items:c/<.*>" matches it).
func ItemResource(collection, id string) string { return "items:" + collection + "/" + id }

// Authorizer answers the catalog's questions about a caller: the rules of
// ownership and visibility, then the policies.
type Authorizer struct {
	Manager *Manager
	Warden  *Warden
}

// NewAuthorizer returns an authorizer over a policy manager.
func NewAuthorizer(m *Manager) *Authorizer { return &Authorizer{Manager: m, Warden: NewWarden(m)} }

// CanReadCollection: admins, the owner, anyone for a public collection,
// signed-in callers for a node-wide one, and those a policy grants read.
func (a *Authorizer) CanReadCollection(ctx context.Context, c *Caller, coll *catalog.Collection) (bool, error) {
	switch {
	case !c.InScope(ActionRead):
		return false, nil
	case c.IsAdmin(), coll.Visibility == catalog.VisibilityPublic:
		return true, nil
	case c.IsAnonymous():
		return a.allowed(ctx, c, ActionRead, CollectionResource(coll.ID))
	case coll.Owner == c.User, coll.Visibility == catalog.VisibilityNode:
		return true, nil
	}
	return a.allowed(ctx, c, ActionRead, CollectionResource(coll.ID))
}

// Can reports whether c may do action on resource of collection coll:
// admins and the collection's owner may do everything (within the
// token's scopes); others need a policy.
func (a *Authorizer) Can(ctx context.Context, c *Caller, coll *catalog.Collection, action, resource string) (bool, error) {
	switch {
	case !c.InScope(action), c.IsAnonymous():
		return false, nil
	case c.IsAdmin(), coll.Owner == c.User:
		return true, nil
	}
	return a.allowed(ctx, c, action, resource)
}

func (a *Authorizer) allowed(ctx context.Context, c *Caller, action, resource string) (bool, error) {
	if a == nil || a.Warden == nil {
		return false, nil
	}
	return a.Warden.Allowed(ctx, c.Subjects(), action, resource, ladon.Context{})
}

// ReadFilter returns what c may read as a filter stores push into their
// queries; nil (no filter) for admins. Grants come from allow policies
// without conditions that give read on collections:<id>, or on every id
// with a prefix (collections:<prefix><.*>, or a wider pattern such as
// <.*>). Read policies only grant (Validate refuses read denials), so the
// filter is the whole answer. Codes: EFORBIDDEN (the token's scopes exclude read).
func (a *Authorizer) ReadFilter(ctx context.Context, c *Caller) (*catalog.ReadFilter, error) {
	if !c.InScope(ActionRead) {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "this token's scopes do not allow reading")
	}
	if c.IsAdmin() {
		return nil, nil
	}
	f := &catalog.ReadFilter{User: c.User}
	const kind = "collections:"
	err := a.readGrants(ctx, c, func(r string) {
		prefix, isPattern := literalPrefix(r)
		switch {
		case !isPattern:
			if id, ok := strings.CutPrefix(r, kind); ok {
				f.IDs = append(f.IDs, id)
			}
		case r != prefix+"<.*>":
			// Other patterns are not read grants (checkReadForm).
		case strings.HasPrefix(prefix, kind):
			f.Prefixes = append(f.Prefixes, prefix[len(kind):])
		case strings.HasPrefix(kind, prefix):
			f.Prefixes = append(f.Prefixes, "")
		}
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ReadableItems returns the items granted to c for reading one by one
// (allow policies without conditions on items:<collection>/<id>).
// Codes: EFORBIDDEN (the token's scopes exclude read).
func (a *Authorizer) ReadableItems(ctx context.Context, c *Caller) ([]search.ItemRef, error) {
	if !c.InScope(ActionRead) {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "this token's scopes do not allow reading")
	}
	var out []search.ItemRef
	err := a.readGrants(ctx, c, func(r string) {
		if _, isPattern := literalPrefix(r); isPattern {
			return
		}
		rest, ok := strings.CutPrefix(r, "items:")
		if !ok {
			return
		}
		if coll, id, ok := strings.Cut(rest, "/"); ok && coll != "" && id != "" {
			out = append(out, search.ItemRef{Collection: coll, ID: id})
		}
	})
	return out, err
}

// readGrants calls fn with each resource of the live allow policies
// without conditions that grant c read, once per policy.
func (a *Authorizer) readGrants(ctx context.Context, c *Caller, fn func(resource string)) error {
	if a == nil || a.Manager == nil {
		return nil
	}
	x, err := a.Manager.current(ctx)
	if err != nil {
		return err
	}
	var m matcher
	now := a.Manager.now()
	seen := map[*entry]bool{}
	visit := func(e *entry) {
		if seen[e] || !e.p.AllowAccess() || len(e.p.Conditions) > 0 || !e.live(now) {
			return
		}
		seen[e] = true
		if ok, _ := m.Matches(e.p, e.p.Actions, ActionRead); !ok {
			return
		}
		for _, r := range e.p.Resources {
			fn(r)
		}
	}
	for _, s := range c.Subjects() {
		byRes := x.bySubject[s]
		if byRes == nil {
			continue
		}
		for _, es := range byRes.exact {
			for _, e := range es {
				visit(e)
			}
		}
		for _, es := range byRes.patterns {
			for _, e := range es {
				visit(e)
			}
		}
	}
	return nil
}
