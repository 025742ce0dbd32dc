package catalog

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event types written to the outbox.
const (
	EventCollectionCreated = "collection.created"
	EventCollectionUpdated = "collection.updated"
	EventCollectionDeleted = "collection.deleted"
	EventItemCreated       = "item.created"
	EventItemUpdated       = "item.updated"
	EventItemStateChanged  = "item.state_changed"
	EventItemDeleted       = "item.deleted"
	EventItemAssetAdded    = "item.asset_added"
)

// Event is one change, written to the outbox in the same transaction as
// the change. Seq, assigned by the store, orders events and is the change
// feed cursor.
type Event struct {
	Seq     int64
	ID      string
	Type    string
	Subject string
	Time    time.Time
	Payload json.RawMessage
}

// ItemSubject names an item in events and access rules.
func ItemSubject(collection, id string) string {
	return "collections/" + collection + "/items/" + id
}

// CollectionSubject names a collection in events and access rules.
func CollectionSubject(id string) string { return "collections/" + id }

// EventPayload is the payload of item events.
type EventPayload struct {
	Collection string `json:"collection"`
	ID         string `json:"id,omitempty"`
	State      State  `json:"state,omitempty"`
	From       State  `json:"from,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Asset      string `json:"asset,omitempty"`
	ETag       string `json:"etag,omitempty"`
}

// NewEvent builds an event with a fresh id.
func NewEvent(typ, subject string, now time.Time, payload EventPayload) *Event {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return &Event{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Subject: subject, Time: now, Payload: b}
}

// NewItemEvent builds an event about an item.
func NewItemEvent(typ string, it *Item, now time.Time) *Event {
	return NewEvent(typ, ItemSubject(it.Collection, it.ID), now,
		EventPayload{Collection: it.Collection, ID: it.ID, State: it.State, ETag: it.ETag})
}
