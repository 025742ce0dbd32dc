package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/twinstac/twinstac/catalog"
)

// Hub follows a node's stream with one ordered consumer and fans the
// events out to the server's subscribers (the clients of GET /events).
type Hub struct {
	js     jetstream.JetStream
	node   string
	buffer int
	log    *slog.Logger

	mu   sync.Mutex
	head int64 // the relay's cursor as of the last event the hub read
	// next is the stream sequence the hub reads next.
	next  uint64
	ready chan struct{}
	subs  map[*Subscription]struct{}
}

// Subscription receives the events the hub reads after it subscribed, in
// stream order: by Seq, except events that committed late (Seq at or
// below ones already received), which come when the relay finds them.
type Subscription struct {
	// C delivers the events. It is closed when the subscription ends:
	// by Close, when the hub stops, or when the subscriber fell more than
	// the hub's buffer behind (Lagged reports true; subscribe again and
	// catch up from the outbox).
	C      <-chan *catalog.Event
	c      chan *catalog.Event
	hub    *Hub
	lagged bool
}

// NewHub returns a hub for node's stream on conn; buffer is how many
// events a subscriber may fall behind (default 1024). Run starts it.
func NewHub(conn *nats.Conn, node string, buffer int, log *slog.Logger) (*Hub, error) {
	js, err := jetstream.New(conn)
	if err != nil {
		return nil, err
	}
	if buffer <= 0 {
		buffer = 1024
	}
	if log == nil {
		log = slog.Default()
	}
	return &Hub{js: js, node: node, buffer: buffer, log: log, ready: make(chan struct{}), subs: map[*Subscription]struct{}{}}, nil
}

// Node returns the node whose events the hub follows.
func (h *Hub) Node() string { return h.node }

// Subscribe returns a subscription to every event the hub reads from now
// on, and head: the outbox sequence up to which every event is in the
// stream before them. A subscriber that reads the outbox up to head and
// then the subscription misses nothing and sees nothing twice (events
// with Seq <= head excepted: those committed late). It waits until the
// hub has found its place in the stream. Codes: EUNAVAILABLE (ctx ended
// first).
func (h *Hub) Subscribe(ctx context.Context) (*Subscription, int64, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, 0, catalog.Errorf(catalog.EUNAVAILABLE, "the event stream is not available")
	}
	c := make(chan *catalog.Event, h.buffer)
	s := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
	return s, h.head, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.end()
}

// Lagged reports whether the subscription ended because its subscriber
// fell behind.
func (s *Subscription) Lagged() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.lagged
}

// end ends the subscription; the hub's lock is held.
func (s *Subscription) end() {
	if _, ok := s.hub.subs[s]; ok {
		delete(s.hub.subs, s)
		close(s.c)
	}
}

// Head returns the relay's cursor as of the last event the hub read;
// ok is false until the hub has found its place in the stream.
func (h *Hub) Head() (head int64, ok bool) {
	select {
	case <-h.ready:
	default:
		return 0, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head, true
}

// Run follows the stream until ctx ends, then ends every subscription.
// Failures are logged and retried.
func (h *Hub) Run(ctx context.Context) {
	defer func() {
		h.mu.Lock()
		for s := range h.subs {
			s.end()
		}
		h.mu.Unlock()
	}()
	pause := 100 * time.Millisecond
	for {
		err := h.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("event hub: following the stream again", "error", err.Error(), "in", pause.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// follow finds the hub's place (the first time: the stream's last
// message) and reads on from it.
func (h *Hub) follow(ctx context.Context) error {
	name := StreamName(h.node)
	st, err := h.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("opening stream %s: %w", name, err)
	}
	h.mu.Lock()
	next := h.next
	h.mu.Unlock()
	if next == 0 {
		head, n, err := h.place(ctx, st)
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.head, h.next, next = head, n, n
		h.mu.Unlock()
		close(h.ready)
	}
	cons, err := h.js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{NodeSubjects(h.node)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    next,
	})
	if err != nil {
		return fmt.Errorf("following stream %s: %w", name, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("following stream %s: %w", name, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		ev, cursor, err := decode(m.Headers(), m.Data())
		if err != nil {
			// Not one of the relay's messages: skip it.
			h.log.Warn("event hub: skipping a message", "subject", m.Subject(), "error", err.Error())
			h.mu.Lock()
			h.next = meta.Sequence.Stream + 1
			h.mu.Unlock()
			continue
		}
		h.deliver(ev, cursor, meta.Sequence.Stream)
	}
}

// place returns the relay's cursor at the stream's last message and the
// stream sequence after it.
func (h *Hub) place(ctx context.Context, st jetstream.Stream) (head int64, next uint64, err error) {
	m, err := st.GetLastMsgForSubject(ctx, NodeSubjects(h.node))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, 1, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading the stream's last event: %w", err)
	}
	head, err = headerInt(m.Header, HeaderCursor)
	return head, m.Sequence + 1, err
}

// deliver hands an event to every subscriber; one whose buffer is full
// is ended as lagged.
func (h *Hub) deliver(ev *catalog.Event, cursor int64, streamSeq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.head = max(h.head, cursor)
	h.next = streamSeq + 1
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			s.lagged = true
			s.end()
		}
	}
}
