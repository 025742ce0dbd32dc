package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/twinstac/twinstac/catalog"
)

// Headers of every message the relay publishes, besides Nats-Msg-Id.
const (
	// HeaderSeq is the event's outbox sequence.
	HeaderSeq = "Twinstac-Seq"
	// HeaderCursor is where the relay stood in the outbox when it
	// published the message: every event up to it is in the stream (or
	// was given up as never committed). It equals HeaderSeq except for
	// an event that committed late, after the relay had moved past it.
	HeaderCursor = "Twinstac-Cursor"
	// HeaderType is the event type (item.created, job.successful…).
	HeaderType = "Twinstac-Type"
	// HeaderID is the event id.
	HeaderID = "Twinstac-Event-Id"
)

// Message is the body of a published event: the outbox event as JSON,
// with the node it comes from.
type Message struct {
	Seq     int64           `json:"seq"`
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Node    string          `json:"node"`
	Payload json.RawMessage `json:"payload"`
}

// MsgID is the JetStream deduplication id of a node's event: a repeat
// publication within the stream's duplicate window is dropped.
func MsgID(node string, seq int64) string { return node + ":" + strconv.FormatInt(seq, 10) }

// encode builds the NATS message of an event.
func encode(node string, ev *catalog.Event, cursor int64) (*nats.Msg, error) {
	payload := ev.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	body, err := json.Marshal(Message{Seq: ev.Seq, ID: ev.ID, Type: ev.Type, Subject: ev.Subject, Time: ev.Time.UTC(), Node: node, Payload: payload})
	if err != nil {
		return nil, fmt.Errorf("encoding event %d: %w", ev.Seq, err)
	}
	m := nats.NewMsg(Subject(node, ev))
	m.Data = body
	m.Header.Set(nats.MsgIdHdr, MsgID(node, ev.Seq))
	m.Header.Set(HeaderSeq, strconv.FormatInt(ev.Seq, 10))
	m.Header.Set(HeaderCursor, strconv.FormatInt(cursor, 10))
	m.Header.Set(HeaderType, ev.Type)
	m.Header.Set(HeaderID, ev.ID)
	return m, nil
}

// decode reads an event and the relay's cursor back from a message.
func decode(h nats.Header, data []byte) (*catalog.Event, int64, error) {
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, 0, fmt.Errorf("decoding an event: %w", err)
	}
	cursor, err := headerInt(h, HeaderCursor)
	if err != nil {
		return nil, 0, err
	}
	return &catalog.Event{Seq: m.Seq, ID: m.ID, Type: m.Type, Subject: m.Subject, Time: m.Time, Payload: m.Payload}, cursor, nil
}

func headerInt(h nats.Header, key string) (int64, error) {
	v := h.Get(key)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("message header %s is %q, not a sequence", key, v)
	}
	return n, nil
}
