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

// JobResource names a job in policies.
func JobResource(id string) string { return "jobs:" + id }

// BatchResource names a batch in policies; a grant on it covers the
// batch's jobs.
func BatchResource(id string) string { return "batches:" + id }

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
	err := a.readGrants(ctx, c, func(e *entry) {
		f.IDs = append(f.IDs, e.collections...)
		f.Prefixes = append(f.Prefixes, e.prefixes...)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// collectionGrants returns what a policy's resources grant on
// collections when it grants read: the collection ids it names, and the
// id prefixes of its collections:<prefix><.*> patterns ("" for a wider
// pattern such as <.*>). Other patterns are not read grants
// (checkReadForm).
func collectionGrants(resources []string) (ids, prefixes []string) {
	const kind = "collections:"
	for _, r := range resources {
		prefix, isPattern := literalPrefix(r)
		switch {
		case !isPattern:
			if id, ok := strings.CutPrefix(r, kind); ok {
				ids = append(ids, id)
			}
		case r != prefix+"<.*>":
		case strings.HasPrefix(prefix, kind):
			prefixes = append(prefixes, prefix[len(kind):])
		case strings.HasPrefix(kind, prefix):
			prefixes = append(prefixes, "")
		}
	}
	return ids, prefixes
}

// ReadableItems returns the policies that grant c reading items one by
// one (allow policies without conditions on items:<collection>/<id>),
// each with the items it names. The items are the policy index's, shared
// by every caller: read them, never change them. Codes: EFORBIDDEN (the
// token's scopes exclude read).
func (a *Authorizer) ReadableItems(ctx context.Context, c *Caller) ([]search.Share, error) {
	if !c.InScope(ActionRead) {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "this token's scopes do not allow reading")
	}
	var out []search.Share
	err := a.readGrants(ctx, c, func(e *entry) {
		if len(e.items) > 0 {
			out = append(out, search.Share{Policy: e.p.ID, Items: e.items[:len(e.items):len(e.items)]})
		}
	})
	return out, err
}

// SharedItem returns the item a resource names one by one
// (items:<collection>/<id>, without a <regex> part); ok is false for any
// other resource.
func SharedItem(r string) (ref search.ItemRef, ok bool) {
	if _, isPattern := literalPrefix(r); isPattern {
		return ref, false
	}
	rest, ok := strings.CutPrefix(r, "items:")
	if !ok {
		return ref, false
	}
	coll, id, ok := strings.Cut(rest, "/")
	if !ok || coll == "" || id == "" {
		return ref, false
	}
	return search.ItemRef{Collection: coll, ID: id}, true
}

// SharedItems returns the items p names one by one, each once.
func SharedItems(p *Policy) []search.ItemRef {
	var out []search.ItemRef
	seen := map[search.ItemRef]bool{}
	for _, r := range p.Resources {
		if ref, ok := SharedItem(r); ok && !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out
}

// JobGrants are the jobs and batches shared with a caller for reading.
type JobGrants struct {
	// Jobs and Batches are ids, each once; a batch's jobs are shared
	// with it.
	Jobs, Batches []string
}

// SharedJobs returns the jobs and batches c may read by policy: allow
// policies without conditions naming jobs:<id> or batches:<id> exactly,
// as shares make them. Patterns grant no jobs, so that the one-by-one
// answer and the store's listings agree (stores filter by these ids), and
// the policies written before jobs were shared give no one new jobs. Read
// policies only grant (Validate refuses read denials), so these ids are
// the whole answer. A token whose scopes exclude read gets none.
func (a *Authorizer) SharedJobs(ctx context.Context, c *Caller) (*JobGrants, error) {
	g := &JobGrants{}
	if c.IsAnonymous() || !c.InScope(ActionRead) {
		return g, nil
	}
	seen := map[string]bool{}
	err := a.readGrants(ctx, c, func(e *entry) {
		for _, r := range e.p.Resources {
			if _, isPattern := literalPrefix(r); isPattern || seen[r] {
				continue
			}
			seen[r] = true
			if id, ok := strings.CutPrefix(r, "jobs:"); ok && id != "" {
				g.Jobs = append(g.Jobs, id)
			} else if id, ok := strings.CutPrefix(r, "batches:"); ok && id != "" {
				g.Batches = append(g.Batches, id)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// CanShareJob reports whether c may share a job or batch (resource, a
// JobResource or BatchResource) that owner ran, of a twin twinOwner
// owns: they and admins may, and those a policy grants share (within the
// token's scopes).
func (a *Authorizer) CanShareJob(ctx context.Context, c *Caller, owner, twinOwner, resource string) (bool, error) {
	switch {
	case !c.InScope(ActionShare), c.IsAnonymous():
		return false, nil
	case c.IsAdmin(), owner == c.User, twinOwner == c.User:
		return true, nil
	}
	return a.allowed(ctx, c, ActionShare, resource)
}

// readGrants calls fn with each live allow policy without conditions
// that grants c read, once.
func (a *Authorizer) readGrants(ctx context.Context, c *Caller, fn func(e *entry)) error {
	if a == nil || a.Manager == nil {
		return nil
	}
	x, err := a.Manager.current(ctx)
	if err != nil {
		return err
	}
	var m matcher
	now := a.Manager.now()
	var seen map[*entry]bool
	subjects := c.Subjects()
	for _, s := range subjects {
		for _, e := range x.ofSubject[s] {
			if !e.p.AllowAccess() || len(e.p.Conditions) > 0 || !e.live(now) {
				continue
			}
			if len(subjects) > 1 {
				// A policy may name more than one of c's subjects.
				if seen[e] {
					continue
				}
				if seen == nil {
					seen = map[*entry]bool{}
				}
				seen[e] = true
			}
			if ok, _ := m.Matches(e.p, e.p.Actions, ActionRead); ok {
				fn(e)
			}
		}
	}
	return nil
}
