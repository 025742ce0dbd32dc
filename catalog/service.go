package catalog

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/uuid"
)

// Service applies the catalog's rules on top of a Store and a BlobStore.
// Handlers call it; it never sees HTTP.
type Service struct {
	Store Store
	Blobs BlobStore
	// MaxAssetBytes caps one asset upload (0: no limit).
	MaxAssetBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CollectionCacheTTL, when positive, lets CachedCollection answer
	// from memory for that long. Changes made through this service clear
	// the entry at once; other processes' changes show within the TTL,
	// the same bound the policy manager keeps.
	CollectionCacheTTL time.Duration

	cacheMu sync.Mutex
	cache   map[string]cachedCollection
	lists   map[string]cachedList
	gen     uint64 // bumped by every change, so that a list read across one is not kept
}

type cachedList struct {
	cs []*Collection
	at time.Time
}

type cachedCollection struct {
	c  *Collection
	at time.Time
}

// CachedCollection returns a collection for decisions on the hot path
// (reading an item checks its collection), from memory when fresh.
// Callers must not modify it. Codes: ENOTFOUND.
func (s *Service) CachedCollection(ctx context.Context, id string) (*Collection, error) {
	if s.CollectionCacheTTL <= 0 {
		return s.GetCollection(ctx, id)
	}
	now := time.Now()
	s.cacheMu.Lock()
	e, ok := s.cache[id]
	s.cacheMu.Unlock()
	if ok && now.Sub(e.at) < s.CollectionCacheTTL {
		return e.c, nil
	}
	c, err := s.GetCollection(ctx, id)
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	if s.cache == nil || len(s.cache) > 10000 {
		s.cache = map[string]cachedCollection{}
	}
	s.cache[id] = cachedCollection{c: c, at: now}
	s.cacheMu.Unlock()
	return c, nil
}

// ReadableCollections returns every collection readable under f (every
// collection for nil), in id order, for decisions on the hot path (a
// search resolves its caller's collections on every request): from
// memory when fresh, as CachedCollection. Callers must not modify them.
func (s *Service) ReadableCollections(ctx context.Context, f *ReadFilter) ([]*Collection, error) {
	key := readFilterKey(f)
	now := time.Now()
	s.cacheMu.Lock()
	e, ok := s.lists[key]
	gen := s.gen
	s.cacheMu.Unlock()
	if ok && now.Sub(e.at) < s.CollectionCacheTTL {
		return e.cs, nil
	}
	var out []*Collection
	q := CollectionQuery{Readable: f, Limit: MaxPageSize}
	for {
		page, err := s.Store.ListCollections(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Collections...)
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if s.CollectionCacheTTL > 0 {
		s.cacheMu.Lock()
		if s.gen != gen {
			s.cacheMu.Unlock()
			return out, nil
		}
		if s.lists == nil || len(s.lists) > 1000 {
			s.lists = map[string]cachedList{}
		}
		s.lists[key] = cachedList{cs: out, at: now}
		s.cacheMu.Unlock()
	}
	return out, nil
}

// readFilterKey identifies a read filter in the list cache.
func readFilterKey(f *ReadFilter) string {
	if f == nil {
		return "*"
	}
	var b strings.Builder
	b.WriteString(strconv.Quote(f.User))
	for _, id := range f.IDs {
		b.WriteString(" =" + strconv.Quote(id))
	}
	for _, p := range f.Prefixes {
		b.WriteString(" ^" + strconv.Quote(p))
	}
	return b.String()
}

// forget drops a collection from the cache after a change, and every
// cached list of readable collections (a change of owner or visibility
// moves it in or out of them).
func (s *Service) forget(id string) {
	s.cacheMu.Lock()
	delete(s.cache, id)
	clear(s.lists)
	s.gen++
	s.cacheMu.Unlock()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Preconditions carries the ETags of an If-Match header. A nil value
// means no precondition; "*" matches any existing object.
type Preconditions []string

func (p Preconditions) check(etag string) error {
	if p == nil || slices.Contains(p, "*") || slices.Contains(p, etag) {
		return nil
	}
	return Errorf(EPRECONDITION, "the object has changed: its ETag is no longer the one in If-Match; fetch it again and retry")
}

// ---- collections ----

// CreateCollection validates and stores a new collection owned by owner.
// Codes: EINVALID, ECONFLICT.
func (s *Service) CreateCollection(ctx context.Context, raw []byte, owner string) (*Collection, error) {
	c, err := ParseCollection("", raw)
	if err != nil {
		return nil, err
	}
	c.SetOwner(owner)
	now := s.now()
	c.Created, c.Updated = now, now
	if _, err := c.Seal(); err != nil {
		return nil, err
	}
	defer s.forget(c.ID)
	err = s.Store.Update(ctx, func(tx Tx) error {
		if err := tx.InsertCollection(ctx, c); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, NewEvent(EventCollectionCreated, CollectionSubject(c.ID), now, EventPayload{Collection: c.ID, ETag: c.ETag}))
	})
	if ErrorCode(err) == ECONFLICT {
		return nil, Errorf(ECONFLICT, "collection %q already exists", c.ID)
	}
	return c, err
}

// GetCollection returns a collection. Codes: ENOTFOUND.
func (s *Service) GetCollection(ctx context.Context, id string) (*Collection, error) {
	c, err := s.Store.GetCollection(ctx, id)
	return c, notFound(err, "collection %q not found", id)
}

// ListCollections returns a page of collections.
func (s *Service) ListCollections(ctx context.Context, q CollectionQuery) (*CollectionPage, error) {
	return s.Store.ListCollections(ctx, q)
}

// ReplaceCollection replaces a collection with a new document.
// Codes: EINVALID, ENOTFOUND, EPRECONDITION.
func (s *Service) ReplaceCollection(ctx context.Context, id string, raw []byte, pre Preconditions) (*Collection, error) {
	next, err := ParseCollection(id, raw)
	if err != nil {
		return nil, err
	}
	return s.updateCollection(ctx, id, pre, func(*Collection) (*Collection, error) { return next, nil })
}

// PatchCollection applies a JSON merge patch (RFC 7396) to a collection.
// Codes: EINVALID, ENOTFOUND, EPRECONDITION.
func (s *Service) PatchCollection(ctx context.Context, id string, patch []byte, pre Preconditions) (*Collection, error) {
	if _, err := DecodeDocument("", patch); err != nil {
		return nil, err
	}
	return s.updateCollection(ctx, id, pre, func(cur *Collection) (*Collection, error) {
		b, err := json.Marshal(cur.Doc)
		if err != nil {
			return nil, Internal(err)
		}
		merged, err := jsonpatch.MergePatch(b, patch)
		if err != nil {
			return nil, Invalid("", "cannot apply the merge patch: %s", err)
		}
		return ParseCollection(id, merged)
	})
}

func (s *Service) updateCollection(ctx context.Context, id string, pre Preconditions, change func(*Collection) (*Collection, error)) (*Collection, error) {
	defer s.forget(id)
	var out *Collection
	err := s.Store.Update(ctx, func(tx Tx) error {
		cur, err := tx.GetCollection(ctx, id)
		if err != nil {
			return notFound(err, "collection %q not found", id)
		}
		if err := pre.check(cur.ETag); err != nil {
			return err
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		now := s.now()
		next.Created, next.Updated = cur.Created, now
		next.SetOwner(cur.Owner) // ownership moves only by an admin's explicit transfer
		if _, err := next.Seal(); err != nil {
			return err
		}
		if err := tx.UpdateCollection(ctx, next, cur.ETag); err != nil {
			return err
		}
		out = next
		return tx.AppendEvents(ctx, NewEvent(EventCollectionUpdated, CollectionSubject(id), now, EventPayload{Collection: id, ETag: next.ETag}))
	})
	return out, err
}

// DeleteCollection removes a collection, its items and their assets.
// Codes: ENOTFOUND, EPRECONDITION.
func (s *Service) DeleteCollection(ctx context.Context, id string, pre Preconditions) error {
	defer s.forget(id)
	err := s.Store.Update(ctx, func(tx Tx) error {
		cur, err := tx.GetCollection(ctx, id)
		if err != nil {
			return notFound(err, "collection %q not found", id)
		}
		if err := pre.check(cur.ETag); err != nil {
			return err
		}
		if err := tx.DeleteCollection(ctx, id); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, NewEvent(EventCollectionDeleted, CollectionSubject(id), s.now(), EventPayload{Collection: id}))
	})
	if err != nil {
		return err
	}
	// The rows are gone; blobs left by a failure here are unreachable
	// and harmless, so the deletion stands either way.
	_ = s.Blobs.DeletePrefix(ctx, blobFolder(id))
	return nil
}

// ---- items ----

// CreateItem validates and stores a new item. It starts as a draft unless
// the document sets dt:state to published.
// Codes: EINVALID, ENOTFOUND (collection), ECONFLICT.
func (s *Service) CreateItem(ctx context.Context, collection string, raw []byte) (*Item, error) {
	items, err := s.CreateItems(ctx, collection, [][]byte{raw}, CreateOptions{MayPublish: true})
	if err != nil {
		return nil, err
	}
	return items[0], nil
}

// CreateItems creates several items in one transaction: all or none.
// Errors about one item point into /features/{i}.
// Codes: EINVALID, ENOTFOUND (collection), ECONFLICT, EFORBIDDEN.
func (s *Service) CreateItems(ctx context.Context, collection string, raws [][]byte, opts CreateOptions) ([]*Item, error) {
	items := make([]*Item, len(raws))
	for i, raw := range raws {
		it, err := s.prepareNew(collection, raw, opts)
		if err != nil {
			return nil, pointInto(err, len(raws), i)
		}
		if it.State == StatePublished && !opts.MayPublish {
			return nil, Errorf(EFORBIDDEN, "you may create drafts in collection %q but not publish; leave dt:state out", collection)
		}
		items[i] = it
	}
	// The collection is checked without locking its row: item creations
	// in one collection (the result items of many jobs) would otherwise
	// run one after another. A collection deleted meanwhile makes
	// InsertItem fail with ENOTFOUND.
	if _, err := s.Store.GetCollection(ctx, collection); err != nil {
		return nil, notFound(err, "collection %q not found", collection)
	}
	// Items that name no predecessor go in as one write; a predecessor
	// may be an item created just before in the same request, so with
	// one the items go one by one.
	together := len(items) > 1
	for _, it := range items {
		if _, _, ok, err := predecessorOf(it); ok || err != nil {
			together = false
		}
	}
	err := s.Store.Update(ctx, func(tx Tx) error {
		var events []*Event
		if together {
			if err := tx.InsertItems(ctx, collection, items); err != nil {
				return err
			}
			for _, it := range items {
				events = append(events, NewItemEvent(EventItemCreated, it, it.Created))
			}
			return tx.AppendEvents(ctx, events...)
		}
		for i, it := range items {
			if err := s.checkPredecessor(ctx, tx, it); err != nil {
				return pointInto(err, len(items), i)
			}
			if err := tx.InsertItem(ctx, it); err != nil {
				return err
			}
			events = append(events, NewItemEvent(EventItemCreated, it, it.Created))
			if it.State == StatePublished {
				evs, err := s.supersede(ctx, tx, it, it.Created)
				if err != nil {
					return err
				}
				events = append(events, evs...)
			}
		}
		return tx.AppendEvents(ctx, events...)
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}

// pointInto prefixes the pointer of an EINVALID error with /features/{i}
// when the item was one of several.
func pointInto(err error, n, i int) error {
	var e *Error
	if n == 1 || !errors.As(err, &e) || e.Code != EINVALID {
		return err
	}
	return &Error{Code: e.Code, Message: e.Message, Pointer: "/features/" + itoa(int64(i)) + e.Pointer, Err: e.Err}
}

// CreateOptions say what the creator of items may set.
type CreateOptions struct {
	// MayPublish lets items be created already published.
	MayPublish bool
	// MaySetOwner lets items name their own owner (dt:owner), which
	// otherwise is the collection's; the server sets it for results and
	// snapshots, admins may set it.
	MaySetOwner bool
}

// PrepareBulkItem parses, validates and seals one item of a bulk load,
// in the given initial state (draft or published).
// Codes: EINVALID.
func (s *Service) PrepareBulkItem(collection string, raw []byte, state State, opts CreateOptions) (*Item, error) {
	it, err := ParseItem(collection, raw)
	if err != nil {
		return nil, err
	}
	if err := s.initState(it, state, opts); err != nil {
		return nil, err
	}
	if _, err := it.Seal(); err != nil {
		return nil, err
	}
	return it, nil
}

// BulkLoad writes items read from next in one transaction.
// Codes: those of Store.BulkLoad.
func (s *Service) BulkLoad(ctx context.Context, collection string, mode BulkMode, next func() (*Item, error)) (BulkResult, error) {
	res, err := s.Store.BulkLoad(ctx, collection, mode, next)
	return res, notFound(err, "collection %q not found", collection)
}

func (s *Service) prepareNew(collection string, raw []byte, opts CreateOptions) (*Item, error) {
	it, err := ParseItem(collection, raw)
	if err != nil {
		return nil, err
	}
	if err := s.initState(it, "", opts); err != nil {
		return nil, err
	}
	if _, err := it.Seal(); err != nil {
		return nil, err
	}
	return it, nil
}

// initState sets the lifecycle fields of a new item. want is the state a
// bulk load asks for ("" for a single create, where the document decides).
func (s *Service) initState(it *Item, want State, opts CreateOptions) error {
	if owner, ok, err := it.Props.String("/properties", PropOwner); err != nil {
		return err
	} else if ok {
		if !opts.MaySetOwner {
			return Invalid("/properties/"+PropOwner, "an item's owner is its collection's owner; only the server and administrators name another")
		}
		if err := CheckID("/properties/"+PropOwner, owner); err != nil {
			return err
		}
	}
	st := StateDraft
	if v, ok, err := it.Props.String("/properties", PropState); err != nil {
		return err
	} else if ok {
		st = State(v)
		if st != StateDraft && st != StatePublished {
			return Invalid("/properties/"+PropState, "a new item is created as draft or published, not %q; use the lifecycle operation to move it on", v)
		}
	}
	if want != "" {
		if it.Props.Has(PropState) && st != want {
			return Invalid("/properties/"+PropState, "the item says %q but the load asks for state %q", st, want)
		}
		st = want
	}
	now := s.now()
	it.State, it.Created, it.Updated = st, now, now
	for _, k := range []string{PropPublished, PropUnpublished, "dt:stateReason"} {
		delete(it.Props, k)
	}
	it.Props.Set(PropState, st)
	it.Props.Set(PropCreated, FormatTime(now))
	it.Props.Set(PropUpdated, FormatTime(now))
	if st == StatePublished {
		it.Props.Set(PropPublished, FormatTime(now))
		addExtension(it.Doc, ExtTimestamps)
	}
	return nil
}

// GetItem returns a live item. Codes: ENOTFOUND, EGONE (deleted).
func (s *Service) GetItem(ctx context.Context, collection, id string) (*Item, error) {
	it, err := s.Store.GetItem(ctx, collection, id)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			if _, cerr := s.Store.GetCollection(ctx, collection); ErrorCode(cerr) == ENOTFOUND {
				return nil, Errorf(ENOTFOUND, "collection %q not found", collection)
			}
		}
		return nil, notFound(err, "item %q not found in collection %q", id, collection)
	}
	if it.Deleted() {
		return nil, gone(it)
	}
	return it, nil
}

// ListItems returns a page of a collection's items.
// Codes: ENOTFOUND (collection).
func (s *Service) ListItems(ctx context.Context, q ItemQuery) (*ItemPage, error) {
	p, err := s.Store.ListItems(ctx, q)
	return p, notFound(err, "collection %q not found", q.Collection)
}

// ReplaceItem replaces a draft item's document.
// Codes: EINVALID, ENOTFOUND, EGONE, ECONFLICT (not a draft), EPRECONDITION.
func (s *Service) ReplaceItem(ctx context.Context, collection, id string, raw []byte, pre Preconditions) (*Item, error) {
	return s.editItem(ctx, collection, id, pre, func(*Item) ([]byte, error) { return raw, nil })
}

// PatchItem applies a JSON merge patch (RFC 7396) to a draft item.
// Codes: EINVALID, ENOTFOUND, EGONE, ECONFLICT (not a draft), EPRECONDITION.
func (s *Service) PatchItem(ctx context.Context, collection, id string, patch []byte, pre Preconditions) (*Item, error) {
	if _, err := DecodeDocument("", patch); err != nil {
		return nil, err
	}
	return s.editItem(ctx, collection, id, pre, func(cur *Item) ([]byte, error) {
		b, err := cur.MarshalDocument()
		if err != nil {
			return nil, Internal(err)
		}
		merged, err := jsonpatch.MergePatch(b, patch)
		if err != nil {
			return nil, Invalid("", "cannot apply the merge patch: %s", err)
		}
		return merged, nil
	})
}

func (s *Service) editItem(ctx context.Context, collection, id string, pre Preconditions, newDoc func(*Item) ([]byte, error)) (*Item, error) {
	var out *Item
	err := s.Store.Update(ctx, func(tx Tx) error {
		cur, err := s.lockItem(ctx, tx, collection, id, pre)
		if err != nil {
			return err
		}
		if !cur.State.Editable() {
			return Errorf(ECONFLICT, "item %q is %s and its content is immutable; create a new version: POST a new item with a link {\"rel\": \"predecessor-version\", \"href\": \".../collections/%s/items/%s\"}", id, cur.State, collection, id)
		}
		raw, err := newDoc(cur)
		if err != nil {
			return err
		}
		next := &Item{Collection: collection, ID: id}
		if err := next.decode(raw, true); err != nil {
			return err
		}
		if v, ok, err := next.Props.String("/properties", PropState); err != nil {
			return err
		} else if ok && State(v) != cur.State {
			return Invalid("/properties/"+PropState, "dt:state is %q and changes only through the lifecycle operation (POST .../lifecycle), not by editing the item", cur.State)
		}
		if err := s.checkPredecessor(ctx, tx, next); err != nil {
			return err
		}
		now := s.now()
		next.State, next.Created, next.Updated = cur.State, cur.Created, now
		keepServerProps(next.Props, cur.Props)
		next.Props.Set(PropUpdated, FormatTime(now))
		keepServerLinks(next, cur)
		if _, err := next.Seal(); err != nil {
			return err
		}
		if err := tx.UpdateItem(ctx, next, cur.ETag); err != nil {
			return err
		}
		out = next
		return tx.AppendEvents(ctx, NewItemEvent(EventItemUpdated, next, now))
	})
	return out, err
}

// keepServerProps copies the properties the server owns from cur.
func keepServerProps(next, cur Document) {
	for _, k := range []string{PropState, PropCreated, PropPublished, PropUnpublished, PropDeprecated, PropOwner, "dt:stateReason"} {
		if v, ok := cur[k]; ok {
			next[k] = v
		} else {
			delete(next, k)
		}
	}
}

// keepServerLinks carries links the server wrote (latest-version,
// successor-version) over to an edited document.
func keepServerLinks(next, cur *Item) {
	var kept []Document
	for _, l := range cur.Links() {
		if rel, _, _ := l.String("", "rel"); rel == "latest-version" || rel == "successor-version" {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		return
	}
	links := next.Links()
	links = slices.DeleteFunc(links, func(l Document) bool {
		rel, _, _ := l.String("", "rel")
		return rel == "successor-version"
	})
	next.Doc.Set("links", append(links, kept...))
}

// DeleteItem turns an item into a tombstone and removes its assets.
// Codes: ENOTFOUND, EGONE, EPRECONDITION.
func (s *Service) DeleteItem(ctx context.Context, collection, id string, pre Preconditions) error {
	_, err := s.MoveItem(ctx, collection, id, StateDeleted, "", pre)
	return err
}

// MoveItem moves an item along its lifecycle and keeps the STAC
// timestamps in step. Publishing an item that names a predecessor
// deprecates the predecessor and links it to its latest version.
// Codes: EINVALID (unknown state), ENOTFOUND, EGONE, ECONFLICT (move not
// allowed), EPRECONDITION.
func (s *Service) MoveItem(ctx context.Context, collection, id string, to State, reason string, pre Preconditions) (*Item, error) {
	if !to.Valid() {
		return nil, Invalid("/state", "unknown state %q; states are %s", to, joinStates(States))
	}
	var out *Item
	err := s.Store.Update(ctx, func(tx Tx) error {
		cur, err := s.lockItem(ctx, tx, collection, id, pre)
		if err != nil {
			return err
		}
		now := s.now()
		next, err := s.move(cur, to, reason, now)
		if err != nil {
			return err
		}
		if err := tx.UpdateItem(ctx, next, cur.ETag); err != nil {
			return err
		}
		out = next
		typ := EventItemStateChanged
		if to == StateDeleted {
			typ = EventItemDeleted
		}
		ev := NewEvent(typ, ItemSubject(collection, id), now, EventPayload{Collection: collection, ID: id, State: to, From: cur.State, Reason: reason, ETag: next.ETag})
		events := []*Event{ev}
		if to == StatePublished {
			evs, err := s.supersede(ctx, tx, next, now)
			if err != nil {
				return err
			}
			events = append(events, evs...)
		}
		return tx.AppendEvents(ctx, events...)
	})
	if err != nil {
		return nil, err
	}
	if to == StateDeleted {
		_ = s.Blobs.DeletePrefix(ctx, blobFolder(collection, id))
	}
	return out, nil
}

// move returns cur moved to state to, without writing it.
func (s *Service) move(cur *Item, to State, reason string, now time.Time) (*Item, error) {
	if !cur.State.CanMove(to) {
		allowed := joinStates(cur.State.AllowedMoves())
		return nil, Errorf(ECONFLICT, "item %q is %s and cannot move to %s; from %s it may move to: %s", cur.ID, cur.State, to, cur.State, allowed)
	}
	next := &Item{Collection: cur.Collection, ID: cur.ID, State: to, Start: cur.Start, End: cur.End, Created: cur.Created, Updated: now}
	if to == StateDeleted {
		if _, err := next.Seal(); err != nil {
			return nil, err
		}
		return next, nil
	}
	next.BBox = cur.BBox
	next.Doc, next.Props = cur.Doc.Clone(), cur.Props.Clone()
	cur.copyGeometry(next)
	p := next.Props
	p.Set(PropState, to)
	p.Set(PropUpdated, FormatTime(now))
	if reason != "" {
		p.Set("dt:stateReason", reason)
	} else {
		delete(p, "dt:stateReason")
	}
	switch to {
	case StatePublished:
		p.Set(PropPublished, FormatTime(now))
		delete(p, PropUnpublished)
		if !hasLink(cur, "latest-version") {
			delete(p, PropDeprecated)
		}
		addExtension(next.Doc, ExtTimestamps)
	case StateDeprecated:
		p.Set(PropDeprecated, true)
		addExtension(next.Doc, ExtVersion)
	case StateArchived:
		p.Set(PropUnpublished, FormatTime(now))
		addExtension(next.Doc, ExtTimestamps)
	}
	if _, err := next.Seal(); err != nil {
		return nil, err
	}
	return next, nil
}

func hasLink(it *Item, rel string) bool {
	return slices.ContainsFunc(it.Links(), func(l Document) bool {
		r, _, _ := l.String("", "rel")
		return r == rel
	})
}

// lockItem reads an item for update and checks it is live and matches pre.
func (s *Service) lockItem(ctx context.Context, tx Tx, collection, id string, pre Preconditions) (*Item, error) {
	cur, err := tx.GetItem(ctx, collection, id)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			if _, cerr := tx.GetCollection(ctx, collection); ErrorCode(cerr) == ENOTFOUND {
				return nil, Errorf(ENOTFOUND, "collection %q not found", collection)
			}
		}
		return nil, notFound(err, "item %q not found in collection %q", id, collection)
	}
	if cur.Deleted() {
		return nil, gone(cur)
	}
	if err := pre.check(cur.ETag); err != nil {
		return nil, err
	}
	return cur, nil
}

// ---- versions ----

// predecessorOf returns the collection and id named by the item's
// predecessor-version link, if it has one.
func predecessorOf(it *Item) (collection, id string, ok bool, err error) {
	for i, l := range it.Links() {
		if rel, _, _ := l.String("", "rel"); rel != "predecessor-version" {
			continue
		}
		href, _, _ := l.String("", "href")
		c, id, ok := ParseItemHref(href)
		if !ok {
			return "", "", false, Invalid("/links/"+itoa(int64(i))+"/href", "a predecessor-version link must point at an item of this catalog (.../collections/{collectionId}/items/{itemId}), not %q", href)
		}
		return c, id, true, nil
	}
	return "", "", false, nil
}

// ParseItemHref extracts the collection and item id from an item URL or
// path of this catalog (".../collections/{c}/items/{i}").
func ParseItemHref(href string) (collection, id string, ok bool) {
	u, err := url.Parse(href)
	if err != nil {
		return "", "", false
	}
	segs := strings.Split(strings.TrimSuffix(u.EscapedPath(), "/"), "/")
	n := len(segs)
	if n < 4 || segs[n-4] != "collections" || segs[n-2] != "items" {
		return "", "", false
	}
	c, err1 := url.PathUnescape(segs[n-3])
	i, err2 := url.PathUnescape(segs[n-1])
	if err1 != nil || err2 != nil || c == "" || i == "" {
		return "", "", false
	}
	return c, i, true
}

func (s *Service) checkPredecessor(ctx context.Context, tx Tx, it *Item) error {
	c, id, ok, err := predecessorOf(it)
	if err != nil || !ok {
		return err
	}
	if c == it.Collection && id == it.ID {
		return Invalid("/links", "an item cannot be its own predecessor")
	}
	pred, err := tx.GetItem(ctx, c, id)
	if ErrorCode(err) == ENOTFOUND {
		return Invalid("/links", "the predecessor-version item %s/%s does not exist", c, id)
	}
	if err != nil {
		return err
	}
	if pred.Deleted() {
		return Invalid("/links", "the predecessor-version item %s/%s was deleted", c, id)
	}
	return nil
}

// maxVersionChain bounds the walk along predecessor links.
const maxVersionChain = 1000

// supersede runs when it is published: its predecessor (if published) is
// deprecated, and every earlier version gets a latest-version link to it;
// the direct predecessor also gets a successor-version link.
func (s *Service) supersede(ctx context.Context, tx Tx, it *Item, now time.Time) ([]*Event, error) {
	var events []*Event
	latest := ItemPath(it.Collection, it.ID)
	cur := it
	for step := 0; step < maxVersionChain; step++ {
		c, id, ok, err := predecessorOf(cur)
		if err != nil || !ok {
			return events, nil
		}
		pred, err := tx.GetItem(ctx, c, id)
		if ErrorCode(err) == ENOTFOUND {
			return events, nil
		}
		if err != nil {
			return nil, err
		}
		if pred.Deleted() {
			return events, nil
		}
		old := pred.ETag
		next := pred
		from := pred.State
		if step == 0 && pred.State == StatePublished {
			if next, err = s.move(pred, StateDeprecated, "superseded by "+it.ID, now); err != nil {
				return nil, err
			}
		} else {
			next = &Item{Collection: pred.Collection, ID: pred.ID, State: pred.State, Start: pred.Start, End: pred.End,
				BBox: pred.BBox, Created: pred.Created, Updated: now, Doc: pred.Doc.Clone(), Props: pred.Props.Clone()}
			pred.copyGeometry(next)
			next.Props.Set(PropUpdated, FormatTime(now))
		}
		links := slices.DeleteFunc(next.Links(), func(l Document) bool {
			rel, _, _ := l.String("", "rel")
			return rel == "latest-version" || (step == 0 && rel == "successor-version")
		})
		links = append(links, Document{"rel": json.RawMessage(`"latest-version"`), "href": mustJSON(latest), "type": json.RawMessage(`"application/geo+json"`)})
		if step == 0 {
			links = append(links, Document{"rel": json.RawMessage(`"successor-version"`), "href": mustJSON(latest), "type": json.RawMessage(`"application/geo+json"`)})
		}
		next.Doc.Set("links", links)
		addExtension(next.Doc, ExtVersion)
		if _, err := next.Seal(); err != nil {
			return nil, err
		}
		if err := tx.UpdateItem(ctx, next, old); err != nil {
			return nil, err
		}
		if next.State != from {
			events = append(events, NewEvent(EventItemStateChanged, ItemSubject(next.Collection, next.ID), now,
				EventPayload{Collection: next.Collection, ID: next.ID, State: next.State, From: from, Reason: "superseded by " + it.ID, ETag: next.ETag}))
		} else {
			events = append(events, NewItemEvent(EventItemUpdated, next, now))
		}
		cur = pred
	}
	return events, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// ---- assets ----

// ItemPath is the root-relative path of an item; the API makes it absolute.
func ItemPath(collection, id string) string {
	return "/collections/" + url.PathEscape(collection) + "/items/" + url.PathEscape(id)
}

// AssetPath is the root-relative download path of an uploaded asset.
func AssetPath(collection, id, key string) string {
	return ItemPath(collection, id) + "/assets/" + url.PathEscape(key)
}

func blobFolder(parts ...string) string { return strings.Join(parts, "/") }

func blobKey(collection, id, key, sha string) string {
	return blobFolder(collection, id, key, sha)
}

// PutAsset stores an uploaded file as asset key of a draft item and
// records href, type, file:size and file:checksum in the item.
// Codes: EINVALID, ENOTFOUND, EGONE, ECONFLICT (not a draft),
// EPRECONDITION, ETOOLARGE.
func (s *Service) PutAsset(ctx context.Context, collection, id, key, contentType string, body io.Reader, pre Preconditions, quota Quota) (*Item, error) {
	if err := CheckID("path.assetKey", key); err != nil {
		return nil, err
	}
	// Check before reading the body, so a doomed upload is refused at once.
	cur, err := s.GetItem(ctx, collection, id)
	if err != nil {
		return nil, err
	}
	if err := pre.check(cur.ETag); err != nil {
		return nil, err
	}
	if !cur.State.Editable() {
		return nil, Errorf(ECONFLICT, "item %q is %s and its assets are immutable; create a new version of the item to change them", id, cur.State)
	}
	max := s.MaxAssetBytes
	if quota.StoredBytes > 0 {
		used, err := s.Store.StoredBytes(ctx, quota.Owner)
		if err != nil {
			return nil, err
		}
		// The file this upload replaces stops counting.
		room := quota.StoredBytes - used + assetSize(cur.Assets()[key], collection, id, key)
		if room <= 0 {
			return nil, quota.exceeded(used)
		}
		if max <= 0 || room < max {
			max = room
		}
	}
	tmp := blobFolder(collection, id, key, "upload-"+newToken())
	info, err := s.Blobs.Put(ctx, tmp, body, max)
	if err != nil {
		if ErrorCode(err) == ETOOLARGE {
			if max != s.MaxAssetBytes {
				used, _ := s.Store.StoredBytes(ctx, quota.Owner)
				return nil, quota.exceeded(used)
			}
			return nil, Errorf(ETOOLARGE, "the upload exceeds the asset size limit of %d bytes", s.MaxAssetBytes)
		}
		return nil, err
	}
	sha := hex.EncodeToString(info.SHA256[:])
	final := blobKey(collection, id, key, sha)
	if err := s.Blobs.Move(ctx, tmp, final); err != nil {
		_ = s.Blobs.Delete(ctx, tmp)
		return nil, err
	}
	var out *Item
	var replaced string
	err = s.Store.Update(ctx, func(tx Tx) error {
		cur, err := s.lockItem(ctx, tx, collection, id, pre)
		if err != nil {
			return err
		}
		if !cur.State.Editable() {
			return Errorf(ECONFLICT, "item %q is %s and its assets are immutable", id, cur.State)
		}
		assets := cur.Assets()
		if assets == nil {
			assets = map[string]Document{}
		}
		a := assets[key]
		if a == nil {
			a = Document{}
		} else {
			replaced = managedBlob(collection, id, key, a)
		}
		if contentType == "" {
			contentType = "application/octet-stream"
		}
		a.Set("href", AssetPath(collection, id, key))
		a.Set("type", contentType)
		a.Set("file:size", info.Size)
		a.Set("file:checksum", "1220"+sha) // multihash: sha2-256 (0x12), 32 bytes (0x20)
		assets[key] = a
		now := s.now()
		next := &Item{Collection: collection, ID: id, State: cur.State, Start: cur.Start, End: cur.End,
			BBox: cur.BBox, Created: cur.Created, Updated: now, Doc: cur.Doc.Clone(), Props: cur.Props.Clone()}
		cur.copyGeometry(next)
		next.Doc.Set("assets", assets)
		next.Props.Set(PropUpdated, FormatTime(now))
		addExtension(next.Doc, ExtFile)
		if _, err := next.Seal(); err != nil {
			return err
		}
		if err := tx.UpdateItem(ctx, next, cur.ETag); err != nil {
			return err
		}
		if err := tx.SetAssetBytes(ctx, collection, id, key, info.Size); err != nil {
			return err
		}
		if quota.StoredBytes > 0 {
			// Concurrent uploads may have used the room since the check.
			used, err := tx.StoredBytes(ctx, quota.Owner)
			if err != nil {
				return err
			}
			if used > quota.StoredBytes {
				return quota.exceeded(used - info.Size)
			}
		}
		out = next
		ev := NewEvent(EventItemAssetAdded, ItemSubject(collection, id), now, EventPayload{Collection: collection, ID: id, State: next.State, Asset: key, ETag: next.ETag})
		return tx.AppendEvents(ctx, ev)
	})
	if err != nil {
		_ = s.Blobs.Delete(ctx, final)
		return nil, err
	}
	if replaced != "" && replaced != final {
		_ = s.Blobs.Delete(ctx, replaced)
	}
	return out, nil
}

// Quota is the stored-bytes limit an upload counts against: that of the
// collection's owner. StoredBytes 0 is unlimited (admins, or no limit).
type Quota struct {
	Owner       string
	StoredBytes int64
}

func (q Quota) exceeded(used int64) error {
	return Errorf(ETOOLARGE, "the storage quota of %s is %d bytes and %d are in use; delete files or ask an administrator for more", q.Owner, q.StoredBytes, used)
}

// assetSize returns the recorded size of an uploaded asset, or 0.
func assetSize(a Document, collection, id, key string) int64 {
	if a == nil || managedBlob(collection, id, key, a) == "" {
		return 0
	}
	var n int64
	_ = json.Unmarshal(a["file:size"], &n)
	return n
}

// managedBlob returns the blob key of an asset the catalog stores, or "".
func managedBlob(collection, id, key string, a Document) string {
	href, _, _ := a.String("", "href")
	sum, _, _ := a.String("", "file:checksum")
	if href != AssetPath(collection, id, key) || len(sum) != 68 || !strings.HasPrefix(sum, "1220") {
		return ""
	}
	return blobKey(collection, id, key, sum[4:])
}

// OpenAsset opens the stored file of an uploaded asset.
// Codes: ENOTFOUND (item, or no uploaded file for key), EGONE.
func (s *Service) OpenAsset(ctx context.Context, collection, id, key string) (Blob, Document, error) {
	it, err := s.GetItem(ctx, collection, id)
	if err != nil {
		return nil, nil, err
	}
	return s.OpenItemAsset(ctx, it, key)
}

// OpenItemAsset opens the stored file of an uploaded asset of an item
// already read, so that a reader of several of its files reads it once.
// Codes: ENOTFOUND (no uploaded file for key).
func (s *Service) OpenItemAsset(ctx context.Context, it *Item, key string) (Blob, Document, error) {
	a := it.Assets()[key]
	bk := ""
	if a != nil {
		bk = managedBlob(it.Collection, it.ID, key, a)
	}
	if bk == "" {
		return nil, nil, Errorf(ENOTFOUND, "item %q has no uploaded file for asset %q", it.ID, key)
	}
	b, err := s.Blobs.Open(ctx, bk)
	if err != nil {
		return nil, nil, notFound(err, "the file of asset %q is missing", key)
	}
	return b, a, nil
}

// ---- helpers ----

func notFound(err error, format string, args ...any) error {
	if ErrorCode(err) == ENOTFOUND {
		return Errorf(ENOTFOUND, format, args...)
	}
	return err
}

func gone(it *Item) error {
	return Errorf(EGONE, "item %q was deleted at %s", it.ID, FormatTime(it.Updated))
}

func newToken() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }
