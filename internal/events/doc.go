// Package events relays the outbox to NATS and serves it back to clients.
//
// The outbox (catalog.Store.ListEvents) is the truth: every change writes
// its event there in the same transaction. A Relay reads it in Seq order
// and publishes each event to the node's JetStream stream, one subject
// per kind of change (Subject), so that other services subscribe to what
// they need. A Hub follows that stream and fans it out to the server's
// live clients (GET /events); clients resume from the outbox, which is
// exact, and the Hub tells them where the stream stands so that the
// switch from the outbox to live events has neither gap nor duplicate.
// Embedded runs a NATS server with JetStream inside the process when the
// deployment names none.
//
// This package depends on catalog and jobs (the event types) and NATS;
// it must not import openapi, the stores or the queue.
package events
