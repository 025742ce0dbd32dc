package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
)

// natsKinds are the NATS servers the tests run against: one embedded in
// the test, and the real one of TWINSTAC_TEST_NATS_URL.
var natsKinds = []struct {
	name string
	conn func(t *testing.T) *nats.Conn
}{
	{"embedded", func(t *testing.T) *nats.Conn {
		e, err := StartEmbedded(t.TempDir(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		nc, err := e.Connect("test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}},
	{"nats", func(t *testing.T) *nats.Conn {
		nc, err := Connect(testdb.ServiceURL(t, "TWINSTAC_TEST_NATS_URL"), "test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}},
}

// eachNATS runs fn against every NATS server with a node name of its
// own (with characters that need escaping); the node's stream is deleted
// when the test ends.
func eachNATS(t *testing.T, fn func(t *testing.T, nc *nats.Conn, node string)) {
	for _, k := range natsKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			nc := k.conn(t)
			var b [4]byte
			_, _ = rand.Read(b[:])
			node := "test." + hex.EncodeToString(b[:]) + " n*"
			t.Cleanup(func() {
				js, err := jetstream.New(nc)
				if err == nil {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_ = js.DeleteStream(ctx, StreamName(node))
				}
			})
			fn(t, nc, node)
		})
	}
}

// startRelay runs a relay until the test ends or stop is called.
func startRelay(t *testing.T, cfg RelayConfig) (r *Relay, stop func()) {
	t.Helper()
	if cfg.Logger == nil {
		// What the relay logs shows in a failed test's output.
		cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	r, err := NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return r, stop
}

// testLog writes log lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// published is a message read back from a stream.
type published struct {
	subject     string
	seq, cursor int64
	msgID       string
	ev          Message
}

// readStream returns every message of the node's stream, in order.
func readStream(t *testing.T, nc *nats.Conn, node string) []published {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, StreamName(node))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // the relay has not made it yet
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []published
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		p := published{subject: m.Subject, msgID: m.Header.Get(nats.MsgIdHdr)}
		p.seq, _ = headerInt(m.Header, HeaderSeq)
		p.cursor, _ = headerInt(m.Header, HeaderCursor)
		if err := json.Unmarshal(m.Data, &p.ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func seqsOf(ps []published) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.seq
	}
	return out
}

func upTo(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

// writeEvents commits n item events in collection coll, and a job event.
func writeEvents(t *testing.T, st catalog.Store, coll string, n int) {
	t.Helper()
	now := time.Now().UTC()
	err := st.Update(context.Background(), func(tx catalog.Tx) error {
		var evs []*catalog.Event
		for i := range n {
			it := &catalog.Item{Collection: coll, ID: "item " + string(rune('a'+i%26))}
			evs = append(evs, catalog.NewItemEvent(catalog.EventItemCreated, it, now))
		}
		evs = append(evs, jobs.NewEvent(&jobs.Job{ID: "job.1", Process: coll + ":t", Owner: "owen"}, jobs.EventJobRunning, now))
		return tx.AppendEvents(context.Background(), evs...)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRelayPublishesTheOutboxInOrderOnce(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, nc *nats.Conn, node string) {
		st := testdb.SQLite(t)
		writeEvents(t, st, "a.b *>c", 300) // 301 events
		_, stop := startRelay(t, RelayConfig{Node: node, Outbox: st, Conn: nc, MaxInFlight: 16, Batch: 100})
		// The waits are long: on a loaded two-core machine a relay whose
		// publications time out pauses up to 10 s before it goes on.
		testdb.WaitFor(t, time.Minute, "301 events in the stream", func() bool { return len(readStream(t, nc, node)) >= 301 })
		got := readStream(t, nc, node)
		if !slices.Equal(seqsOf(got), upTo(301)) {
			t.Fatalf("stream holds seqs %v", seqsOf(got))
		}
		evs, err := st.ListEvents(context.Background(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range got {
			ev := evs[i]
			if p.subject != Subject(node, ev) || p.msgID != MsgID(node, ev.Seq) || p.cursor != ev.Seq ||
				p.ev.ID != ev.ID || p.ev.Type != ev.Type || p.ev.Node != node || string(p.ev.Payload) != string(ev.Payload) {
				t.Fatalf("message %d: %+v, event %+v", i, p, ev)
			}
		}
		if want := "twinstac." + EscapeToken(node) + ".items.a%2Eb%20%2A%3Ec.created"; got[0].subject != want {
			t.Fatalf("subject %q, want %q", got[0].subject, want)
		}

		// Stopped and started again (twice, as two replicas of the
		// server would), the relays go on where the stream stands:
		// nothing twice, nothing missing.
		stop()
		writeEvents(t, st, "other", 49) // 50 more
		startRelay(t, RelayConfig{Node: node, Outbox: st, Conn: nc, MaxInFlight: 4})
		startRelay(t, RelayConfig{Node: node, Outbox: st, Conn: nc, MaxInFlight: 4})
		writeEvents(t, st, "third", 49) // 50 more
		testdb.WaitFor(t, time.Minute, "401 events in the stream", func() bool { return len(readStream(t, nc, node)) >= 401 })
		if got := seqsOf(readStream(t, nc, node)); !slices.Equal(got, upTo(401)) {
			t.Fatalf("after the restart the stream holds seqs %v", got)
		}
	})
}

func TestRelaySubjectsFilter(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, nc *nats.Conn, node string) {
		st := testdb.SQLite(t)
		// A subscriber of one collection's items, a collection whose id
		// has every character NATS reserves.
		filter := "twinstac." + EscapeToken(node) + ".items." + EscapeToken("x.y *>") + ".*"
		got := make(chan *nats.Msg, 100)
		sub, err := nc.ChanSubscribe(filter, got)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		jobsSub, err := nc.SubscribeSync("twinstac." + EscapeToken(node) + ".jobs.running." + EscapeToken("job.1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		writeEvents(t, st, "x.y", 2)
		writeEvents(t, st, "x.y *>", 3)
		writeEvents(t, st, "x", 2)
		startRelay(t, RelayConfig{Node: node, Outbox: st, Conn: nc})
		for i := range 3 {
			select {
			case m := <-got:
				var ev Message
				if err := json.Unmarshal(m.Data, &ev); err != nil {
					t.Fatal(err)
				}
				var p catalog.EventPayload
				_ = json.Unmarshal(ev.Payload, &p)
				if p.Collection != "x.y *>" {
					t.Fatalf("event %d of the filter is of collection %q", i, p.Collection)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%d events of the filter, want 3", i)
			}
		}
		for range 3 {
			if _, err := jobsSub.NextMsg(20 * time.Second); err != nil {
				t.Fatalf("job events: %v", err)
			}
		}
		testdb.WaitFor(t, 20*time.Second, "every event relayed", func() bool { return len(readStream(t, nc, node)) == 10 })
		select {
		case m := <-got:
			t.Fatalf("the filter also matched %s", m.Subject)
		default:
		}
	})
}

// memOutbox is an outbox whose events become visible out of Seq order,
// as a database's do when transactions commit in another order than
// they took their sequences.
type memOutbox struct {
	mu  sync.Mutex
	evs []*catalog.Event // sorted by Seq
}

func (o *memOutbox) commit(seqs ...int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range seqs {
		o.evs = append(o.evs, catalog.NewEvent(catalog.EventItemCreated, "c", time.Now(), catalog.EventPayload{Collection: "c", ID: "i"}))
		o.evs[len(o.evs)-1].Seq = s
	}
	slices.SortFunc(o.evs, func(a, b *catalog.Event) int { return int(a.Seq - b.Seq) })
}

func (o *memOutbox) ListEvents(_ context.Context, after int64, limit int) ([]*catalog.Event, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*catalog.Event
	for _, ev := range o.evs {
		if ev.Seq > after && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func TestRelayWaitsAtHoles(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, nc *nats.Conn, node string) {
		o := &memOutbox{}
		o.commit(1, 2, 4)
		r, _ := startRelay(t, RelayConfig{Node: node, Outbox: o, Conn: nc, GapWait: time.Hour})
		testdb.WaitFor(t, 20*time.Second, "the relay at 2", func() bool { return r.Cursor() == 2 })
		r.Wake()
		if got := seqsOf(readStream(t, nc, node)); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("with 3 not committed the stream holds %v", got)
		}
		o.commit(3)
		testdb.WaitFor(t, 20*time.Second, "the relay at 4", func() bool { return r.Cursor() == 4 })
		if got := seqsOf(readStream(t, nc, node)); !slices.Equal(got, upTo(4)) {
			t.Fatalf("the stream holds %v", got)
		}
	})
}

func TestRelayPublishesLateEvents(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, nc *nats.Conn, node string) {
		o := &memOutbox{}
		o.commit(1, 3)
		r, _ := startRelay(t, RelayConfig{Node: node, Outbox: o, Conn: nc, GapWait: time.Millisecond})
		testdb.WaitFor(t, 20*time.Second, "the relay past the hole", func() bool { return r.Cursor() == 3 })
		o.commit(2)
		testdb.WaitFor(t, 20*time.Second, "the late event", func() bool { return len(readStream(t, nc, node)) == 3 })
		got := readStream(t, nc, node)
		if !slices.Equal(seqsOf(got), []int64{1, 3, 2}) || got[2].cursor != 3 {
			t.Fatalf("stream: %+v", got)
		}
	})
}
