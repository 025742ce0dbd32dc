package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/twinstac/twinstac/catalog"
)

// Outbox is the part of the store the relay reads.
type Outbox interface {
	// ListEvents returns up to limit events with Seq > after, in Seq order.
	ListEvents(ctx context.Context, after int64, limit int) ([]*catalog.Event, error)
}

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Node names the node whose outbox this is; it is the second token
	// of every subject and part of the stream name.
	Node string
	// Outbox is the store's outbox.
	Outbox Outbox
	// Conn is the connection to NATS (JetStream enabled).
	Conn *nats.Conn
	// Poll is how often the relay looks for new events when idle
	// (default 100 ms).
	Poll time.Duration
	// GapWait is how long the relay waits at a hole in the outbox
	// sequence before it moves past it (default 10 s). A sequence is
	// taken when an event is written, not when its transaction commits:
	// a hole is a transaction still open, or one rolled back. An event
	// that commits after the relay moved past it is still published
	// (Late), for LateWindow after the relay moved on.
	GapWait time.Duration
	// LateWindow is how long the relay keeps looking for the events of
	// holes it moved past (default 10 min).
	LateWindow time.Duration
	// Batch is how many events the relay reads at once (default 1000).
	Batch int
	// MaxInFlight bounds the publications awaiting their acks (default 256).
	MaxInFlight int
	// MaxBytes bounds the stream (the oldest events go first); 0: no
	// bound. The newest event always stays: it is the relay's cursor.
	MaxBytes int64
	// Replicas is the stream's replica count on a NATS cluster (default 1).
	Replicas int
	Logger   *slog.Logger
}

// Relay publishes the outbox to the node's JetStream stream in Seq
// order, once: each message carries Nats-Msg-Id node:seq (the stream's
// duplicate window drops a repeat) and expects the stream's last
// sequence to be the one the relay saw (a publication out of order, by
// a retry or by another replica's relay, is refused, and the relay reads
// the stream's position again). The relay keeps no state of its own: on
// start it takes its cursor from the stream's last message, so that it
// resumes where any relay of the node left off.
type Relay struct {
	cfg    RelayConfig
	js     jetstream.JetStream
	cursor atomic.Int64
	wake   chan struct{}

	// hole is the hole in the outbox the relay waits at.
	hole struct {
		from, to int64
		since    time.Time
	}
	// late holds the holes the relay moved past: seq → when.
	late      map[int64]time.Time
	lateCheck time.Time
}

// maxLate bounds the holes the relay keeps looking for.
const maxLate = 10000

// NewRelay returns a relay; Run starts it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Node == "" || cfg.Outbox == nil || cfg.Conn == nil {
		return nil, errors.New("events: a relay needs a node, an outbox and a NATS connection")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.GapWait <= 0 {
		cfg.GapWait = 10 * time.Second
	}
	if cfg.LateWindow <= 0 {
		cfg.LateWindow = 10 * time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := jetstream.New(cfg.Conn, jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight+1), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		return nil, err
	}
	return &Relay{cfg: cfg, js: js, wake: make(chan struct{}, 1), late: map[int64]time.Time{}}, nil
}

// Cursor returns the outbox sequence up to which every event is in the
// stream.
func (r *Relay) Cursor() int64 { return r.cursor.Load() }

// Wake makes an idle relay look for new events now instead of at its
// next poll.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// StreamConfig is the configuration of the node's stream.
func (r *Relay) StreamConfig() jetstream.StreamConfig {
	maxBytes := r.cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        StreamName(r.cfg.Node),
		Description: "twinstac events of node " + r.cfg.Node,
		Subjects:    []string{NodeSubjects(r.cfg.Node)},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxBytes:    maxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    r.cfg.Replicas,
		Duplicates:  2 * time.Minute,
	}
}

// Run relays until ctx ends. Failures (NATS or the database away) are
// logged and retried with a growing pause; Run returns only when ctx
// ends.
func (r *Relay) Run(ctx context.Context) {
	pause := r.cfg.Poll
	for {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		level := slog.LevelWarn
		if errors.Is(err, errMoved) {
			level, pause = slog.LevelDebug, r.cfg.Poll
		}
		r.cfg.Logger.Log(ctx, level, "event relay: retrying", "error", err.Error(), "in", pause.String(), "cursor", r.Cursor())
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

// errMoved: the stream moved on under the relay (another relay of the
// node published, or a publication was refused as out of order).
var errMoved = errors.New("the stream moved on")

// session ensures the stream, takes the position from it and relays
// until something fails.
func (r *Relay) session(ctx context.Context) error {
	st, err := r.js.CreateOrUpdateStream(ctx, r.StreamConfig())
	if err != nil {
		return fmt.Errorf("creating stream %s: %w", StreamName(r.cfg.Node), err)
	}
	cursor, last, err := r.position(ctx, st)
	if err != nil {
		return err
	}
	r.cursor.Store(cursor)
	for {
		n, err := r.step(ctx, &cursor, &last)
		r.cursor.Store(cursor)
		if err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		case <-time.After(r.cfg.Poll):
		}
	}
}

// position reads the relay's cursor (from the stream's last message) and
// the stream's last sequence.
func (r *Relay) position(ctx context.Context, st jetstream.Stream) (cursor int64, last uint64, err error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the stream: %w", err)
	}
	last = info.State.LastSeq
	m, err := st.GetLastMsgForSubject(ctx, NodeSubjects(r.cfg.Node))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, last, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading the stream's last event: %w", err)
	}
	cursor, err = headerInt(m.Header, HeaderCursor)
	return cursor, last, err
}

// step publishes what follows the cursor, and the late events of holes
// the relay moved past; n is how many it published.
func (r *Relay) step(ctx context.Context, cursor *int64, last *uint64) (n int, err error) {
	now := time.Now()
	if len(r.late) > 0 && now.Sub(r.lateCheck) >= time.Second {
		r.lateCheck = now
		n, err = r.publishLate(ctx, now, *cursor, last)
		if err != nil {
			return n, err
		}
	}
	evs, err := r.cfg.Outbox.ListEvents(ctx, *cursor, r.cfg.Batch)
	if err != nil {
		return n, fmt.Errorf("reading the outbox: %w", err)
	}
	next := *cursor
	ready := evs[:0:0]
	for _, ev := range evs {
		if ev.Seq > next+1 && !r.passHole(next+1, ev.Seq-1, now) {
			break
		}
		ready = append(ready, ev)
		next = ev.Seq
	}
	if len(ready) == 0 {
		return n, nil
	}
	published, err := r.publish(ctx, ready, func(ev *catalog.Event) int64 { return ev.Seq }, last)
	if published > 0 {
		*cursor = ready[published-1].Seq
	}
	return n + published, err
}

// passHole reports whether the relay may move past the hole from..to:
// when it has waited GapWait at it. It then looks for the hole's events
// for LateWindow.
func (r *Relay) passHole(from, to int64, now time.Time) bool {
	h := &r.hole
	if h.since.IsZero() || to < h.from || from > h.to {
		h.since = now
	}
	h.from, h.to = from, to
	if now.Sub(h.since) < r.cfg.GapWait {
		return false
	}
	r.cfg.Logger.Info("event relay: moving past a hole in the outbox (a transaction rolled back, or still open)", "from", from, "to", to)
	h.since = time.Time{}
	for s := max(from, to-maxLate+1); s <= to; s++ {
		r.late[s] = now
	}
	if len(r.late) > maxLate {
		seqs := make([]int64, 0, len(r.late))
		for s := range r.late {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		for _, s := range seqs[:len(seqs)-maxLate] {
			delete(r.late, s)
		}
	}
	return true
}

// publishLate publishes the events of holes that committed after the
// relay moved past them, and forgets holes older than LateWindow.
func (r *Relay) publishLate(ctx context.Context, now time.Time, cursor int64, last *uint64) (int, error) {
	seqs := make([]int64, 0, len(r.late))
	for s, at := range r.late {
		if now.Sub(at) > r.cfg.LateWindow {
			delete(r.late, s)
			continue
		}
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	var found []*catalog.Event
	for _, s := range seqs {
		evs, err := r.cfg.Outbox.ListEvents(ctx, s-1, 1)
		if err != nil {
			return 0, fmt.Errorf("reading the outbox: %w", err)
		}
		if len(evs) == 1 && evs[0].Seq == s {
			found = append(found, evs[0])
		}
	}
	if len(found) == 0 {
		return 0, nil
	}
	n, err := r.publish(ctx, found, func(*catalog.Event) int64 { return cursor }, last)
	for _, ev := range found[:n] {
		delete(r.late, ev.Seq)
		r.cfg.Logger.Info("event relay: published an event that committed late", "seq", ev.Seq, "cursor", cursor)
	}
	return n, err
}

// publish publishes events in order, at most MaxInFlight awaiting their
// acks, each expecting the stream's last sequence to be the one before
// it; n is how many the stream acknowledged, in order. cursorOf gives the
// cursor header of each.
func (r *Relay) publish(ctx context.Context, evs []*catalog.Event, cursorOf func(*catalog.Event) int64, last *uint64) (n int, err error) {
	pending := make([]jetstream.PubAckFuture, 0, r.cfg.MaxInFlight)
	expect := *last
	// await waits for the oldest publication's ack.
	await := func() error {
		f := pending[0]
		pending = pending[1:]
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				// Another relay published it: the sequences expected
				// from here on are wrong.
				n++
				return errMoved
			}
			*last = ack.Sequence
			n++
			return nil
		case err := <-f.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
				return errMoved
			}
			return fmt.Errorf("publishing event %d: %w", evs[n].Seq, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// drain waits for what is in flight after a failure, so that no
	// publication of this round lands after the next round starts.
	drain := func(err error) (int, error) {
		for _, f := range pending {
			select {
			case <-f.Ok():
			case <-f.Err():
			case <-ctx.Done():
			}
		}
		return n, err
	}
	for _, ev := range evs {
		if len(pending) == r.cfg.MaxInFlight {
			if err := await(); err != nil {
				return drain(err)
			}
		}
		m, err := encode(r.cfg.Node, ev, cursorOf(ev))
		if err != nil {
			return drain(err)
		}
		f, err := r.js.PublishMsgAsync(m, jetstream.WithExpectLastSequence(expect))
		if err != nil {
			return drain(fmt.Errorf("publishing event %d: %w", ev.Seq, err))
		}
		expect++
		pending = append(pending, f)
	}
	for len(pending) > 0 {
		if err := await(); err != nil {
			return drain(err)
		}
	}
	return n, nil
}
