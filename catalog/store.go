package catalog

import (
	"context"
	"time"
)

// MaxPageSize is the largest page any listing returns.
const MaxPageSize = 10000

// DefaultPageSize is the page size when the caller names none.
const DefaultPageSize = 10

// Store persists collections, items and the outbox. One implementation per
// database (internal/postgres, internal/sqlite); internal/storetest holds
// the contract every implementation passes.
type Store interface {
	// Ping checks that the database answers. Codes: EUNAVAILABLE.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error

	// Update runs fn in one transaction and commits when fn returns nil.
	// Writes inside fn and their events commit together or not at all.
	// A serialization failure is retried by the store (fn may run again).
	// Codes: those of fn, EUNAVAILABLE.
	Update(ctx context.Context, fn func(Tx) error) error

	// GetCollection returns a collection. Codes: ENOTFOUND.
	GetCollection(ctx context.Context, id string) (*Collection, error)
	// ListCollections returns a page of collections ordered by id.
	ListCollections(ctx context.Context, q CollectionQuery) (*CollectionPage, error)
	// GetItem returns an item, a tombstone for a deleted one.
	// Codes: ENOTFOUND.
	GetItem(ctx context.Context, collection, id string) (*Item, error)
	// ListItems returns a page of a collection's items ordered by Start
	// descending, then id descending. Codes: ENOTFOUND (no collection).
	ListItems(ctx context.Context, q ItemQuery) (*ItemPage, error)

	// BulkLoad writes many items into one collection in one transaction,
	// with one item.created (or, for a replaced item, item.updated) event
	// per item. It reads items from next until next returns io.EOF; an
	// error from next aborts the load and is returned. Items come sealed
	// (state, timestamps and ETag set). Concurrent loads into the same or
	// different collections do not deadlock.
	// In BulkInsert mode an id that exists (or existed: a tombstone) fails
	// the load with ECONFLICT. In BulkUpsert mode an existing draft is
	// replaced, keeping its created time; an existing item in any other
	// state fails the load with ECONFLICT.
	// next is called one call at a time, possibly from another goroutine.
	// Codes: ENOTFOUND (no collection), ECONFLICT, EINVALID (unknown
	// mode), EUNAVAILABLE, those of next.
	BulkLoad(ctx context.Context, collection string, mode BulkMode, next func() (*Item, error)) (BulkResult, error)

	// StoredBytes returns the asset bytes stored in the collections owner
	// owns.
	StoredBytes(ctx context.Context, owner string) (int64, error)

	// ListEvents returns up to limit outbox events with Seq > after, in Seq
	// order. Seq is assigned when an event is written, not when its
	// transaction commits, so an event with a lower Seq may become visible
	// after one with a higher Seq: a reader that follows the feed must
	// not move its cursor past a gap until the gap is older than the
	// longest transaction.
	ListEvents(ctx context.Context, after int64, limit int) ([]*Event, error)
}

// Tx is the write side of a store inside one transaction.
type Tx interface {
	// GetCollection returns a collection and locks it against concurrent
	// writers until the transaction ends. Codes: ENOTFOUND.
	GetCollection(ctx context.Context, id string) (*Collection, error)
	// InsertCollection stores a new collection (sealed).
	// Codes: ECONFLICT, EUNAVAILABLE (a lock could not be had in time).
	InsertCollection(ctx context.Context, c *Collection) error
	// UpdateCollection replaces a collection whose ETag is still etag.
	// Codes: ENOTFOUND, EPRECONDITION.
	UpdateCollection(ctx context.Context, c *Collection, etag string) error
	// DeleteCollection removes a collection with all its items.
	// Codes: ENOTFOUND, EUNAVAILABLE (a lock could not be had in time).
	DeleteCollection(ctx context.Context, id string) error
	// GetItem returns an item (or tombstone) and locks it against
	// concurrent writers until the transaction ends. Codes: ENOTFOUND.
	GetItem(ctx context.Context, collection, id string) (*Item, error)
	// InsertItem stores a new item (sealed). Codes: ENOTFOUND (no
	// collection), ECONFLICT (the id exists or existed).
	InsertItem(ctx context.Context, it *Item) error
	// InsertItems stores new items (sealed) of one collection, as one
	// write where the store can. Codes: ENOTFOUND (no collection),
	// ECONFLICT (an id exists, existed, or comes twice).
	InsertItems(ctx context.Context, collection string, items []*Item) error
	// UpdateItem replaces an item whose ETag is still etag; an item whose
	// Doc is nil is written as a tombstone. Codes: ENOTFOUND, EPRECONDITION.
	UpdateItem(ctx context.Context, it *Item, etag string) error
	// SetAssetBytes records the size of an uploaded asset file of an item
	// (replacing the size recorded for that key); size 0 forgets it.
	// Stored bytes count against the collection owner's quota. Writing a
	// tombstone (UpdateItem with a nil Doc) and deleting the collection
	// forget the item's sizes too. Codes: ENOTFOUND (no collection),
	// EINVALID (a negative size).
	SetAssetBytes(ctx context.Context, collection, item, key string, size int64) error
	// StoredBytes returns the asset bytes stored in the collections owner
	// owns, as this transaction sees them.
	StoredBytes(ctx context.Context, owner string) (int64, error)
	// AppendEvents writes events to the outbox; the store assigns Seq.
	AppendEvents(ctx context.Context, events ...*Event) error
}

// BulkMode says what a bulk load does with ids that exist.
type BulkMode string

// The bulk load modes.
const (
	BulkInsert BulkMode = "insert"
	BulkUpsert BulkMode = "upsert"
)

// BulkResult counts what a bulk load wrote.
type BulkResult struct {
	Inserted int `json:"inserted"`
	Updated  int `json:"updated"`
}

// CollectionQuery selects a page of collections.
type CollectionQuery struct {
	// Readable, when set, keeps only the collections its caller may read.
	Readable *ReadFilter
	Limit    int
	// After and Before are keyset cursors (collection ids); at most one is set.
	After, Before string
}

// ReadFilter describes the collections a caller may read, in a form a
// store turns into its query: a collection is readable when it is public,
// or node-wide and the caller is signed in, or owned by the caller, or
// granted to the caller by id or by id prefix.
type ReadFilter struct {
	// User is the caller's user id; "" for an anonymous caller.
	User string
	// IDs are collections granted by policy.
	IDs []string
	// Prefixes grant every collection whose id starts with one of them
	// ("" grants all).
	Prefixes []string
}

// CollectionPage is one page of collections. Next and Prev are the
// cursors of the neighbouring pages, empty when there is none (and always
// on an empty page).
type CollectionPage struct {
	Collections []*Collection
	Next, Prev  string
}

// ItemQuery selects a page of a collection's items.
type ItemQuery struct {
	Collection string
	// BBox, when set, keeps items whose geometry intersects it
	// (4 numbers; for 6 the heights are ignored). Items with a null
	// geometry never match a bbox.
	BBox []float64
	// Start and End, when set, keep items whose [Start, End] overlaps
	// the interval; a nil end is open.
	Start, End *time.Time
	// States keeps items in these states; empty means DefaultListStates.
	States []State
	Limit  int
	// After and Before are keyset cursors; at most one is set.
	After, Before *Cursor
}

// Cursor is a position in the item order (Start descending, id descending).
type Cursor struct {
	Start time.Time
	ID    string
}

// CursorOf returns the cursor at an item.
func CursorOf(it *Item) *Cursor { return &Cursor{Start: it.Start, ID: it.ID} }

// ItemPage is one page of items with the cursors of its neighbours
// (nil when there is none, and always nil on an empty page).
type ItemPage struct {
	Items      []*Item
	Next, Prev *Cursor
}

// NewItemPage builds a page from rows a store read: at most limit+1 of
// them, in the order of the read (ascending when the query had Before).
// It trims the extra row, restores the listing order and sets the
// cursors as ItemQuery documents. Stores share it so that paging means
// the same everywhere.
func NewItemPage(items []*Item, q ItemQuery, limit int) *ItemPage {
	if len(items) == 0 {
		return &ItemPage{Items: []*Item{}}
	}
	backward := q.Before != nil
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	if backward {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	page := &ItemPage{Items: items}
	first, last := CursorOf(items[0]), CursorOf(items[len(items)-1])
	switch {
	case backward:
		page.Next = last
		if more {
			page.Prev = first
		}
	default:
		if more {
			page.Next = last
		}
		if q.After != nil {
			page.Prev = first
		}
	}
	return page
}

// ErrCollectionNotFound is the ENOTFOUND error of a missing collection.
func ErrCollectionNotFound(id string) error {
	return Errorf(ENOTFOUND, "collection %q not found", id)
}

// ErrItemNotFound is the ENOTFOUND error of a missing item.
func ErrItemNotFound(collection, id string) error {
	return Errorf(ENOTFOUND, "item %q not found in collection %q", id, collection)
}

// ErrItemExists is the ECONFLICT error of inserting an id that exists or
// existed; deleted tells which, so that the message says why the id is
// taken. cause is kept for logs.
func ErrItemExists(collection, id string, deleted bool, cause error) error {
	msg := "item " + quote(id) + " already exists in collection " + quote(collection)
	if deleted {
		msg = "item " + quote(id) + " existed in collection " + quote(collection) + " and was deleted; the id of a deleted item is not reused"
	}
	return &Error{Code: ECONFLICT, Message: msg, Err: cause}
}

func quote(s string) string { return string(appendString(nil, s)) }
