package openapi_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"net/http/httptest"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/apitest"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/events"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/openapi"
)

// eventNATS are the NATS servers the event tests run on.
var eventNATS = []struct {
	name string
	conn func(t *testing.T) *nats.Conn
}{
	{"embedded", func(t *testing.T) *nats.Conn {
		e, err := events.StartEmbedded(t.TempDir(), slog.New(slog.DiscardHandler))
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
		nc, err := events.Connect(testdb.ServiceURL(t, "TWINSTAC_TEST_NATS_URL"), "test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}},
}

// eachEventServer runs fn against a server whose events are relayed to
// NATS and followed by a hub: on SQLite with every NATS server, and on
// PostgreSQL with the embedded one.
func eachEventServer(t *testing.T, fn func(t *testing.T, b *bundle)) {
	for _, n := range eventNATS {
		for _, k := range testdb.Kinds {
			if k.Name == "postgres" && n.name != "embedded" {
				continue
			}
			t.Run(k.Name+"/"+n.name, func(t *testing.T) {
				t.Parallel()
				fn(t, setupEvents(t, k.Open, n.conn(t)))
			})
		}
	}
}

// setupEvents is setup with the relay and the hub on nc, under a node
// name of the test's own; the node's stream is deleted when it ends.
func setupEvents(t *testing.T, open func(testing.TB) catalog.Store, nc *nats.Conn) *bundle {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	node := "api-test-" + hex.EncodeToString(r[:])
	st := open(t)
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	relay, err := events.NewRelay(events.RelayConfig{Node: node, Outbox: st, Conn: nc, Poll: 20 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := events.NewHub(nc, node, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); relay.Run(ctx) }()
	go func() { defer wg.Done(); hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if js, err := jetstream.New(nc); err == nil {
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			_ = js.DeleteStream(dctx, events.StreamName(node))
		}
	})
	svc := &catalog.Service{Store: st, Blobs: blobs, MaxAssetBytes: maxAsset, CollectionCacheTTL: time.Minute}
	adminHash := access.HashSecret(adminSecret)
	tokens := &access.Tokens{Store: st.(access.TokenStore), AdminSecretHash: &adminHash}
	manager := access.NewManager(st.(access.PolicyStore))
	manager.MaxAge = 0
	queue := &recordQueue{}
	jobSvc := &jobs.Service{Store: st.(jobs.Store), Queue: queue}
	api := openapi.New(openapi.Config{MaxBodyBytes: maxBody},
		openapi.Deps{Catalog: svc, Tokens: tokens, Authz: access.NewAuthorizer(manager), Jobs: jobSvc, Events: hub,
			Quotas: &access.Quotas{Store: st.(access.QuotaStore)}, Ready: st.Ping, Registry: prometheus.NewRegistry(), Logger: log})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &bundle{t: t, base: srv.URL, client: apitest.Client(t, srv.URL), store: st, policies: manager, tokens: tokens, jobs: jobSvc, queue: queue, catalog: svc}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event string
	data      openapi.Event
}

// follow opens GET path as an event stream with the headers given (the
// node admin's token unless they name another) and returns its events
// as they come; the stream closes when the test ends.
func follow(t *testing.T, b *bundle, path string, headers ...string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 1000)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev.data); err != nil {
					t.Errorf("event data %q: %v", line, err)
				}
			}
		}
	}()
	return out
}

// collect reads events from c until one satisfies last, and returns
// them all.
func collect(t *testing.T, c <-chan sseEvent, last func(sseEvent) bool) []sseEvent {
	t.Helper()
	var got []sseEvent
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-c:
			got = append(got, ev)
			if last(ev) {
				return got
			}
		case <-timeout:
			t.Fatalf("the awaited event did not come; got %v", describe(got))
			return nil
		}
	}
}

// about reports whether ev is of type typ about subject.
func about(typ, subject string) func(sseEvent) bool {
	return func(ev sseEvent) bool { return ev.event == typ && ev.data.Subject == subject }
}

func describe(evs []sseEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.id + " " + ev.event + " " + ev.data.Subject
	}
	return out
}

func TestEventsFollowFilterResume(t *testing.T) {
	t.Parallel()
	eachEventServer(t, func(t *testing.T, b *bundle) {
		b.want(b.do("POST", "/collections", collectionDoc("c1")), 201)
		b.want(b.do("POST", "/collections", collectionDoc("c2")), 201)
		b.want(b.do("POST", "/collections/c1/items", itemDoc("a")), 201)
		b.want(b.do("POST", "/collections/c2/items", itemDoc("x")), 201)
		b.want(b.do("POST", "/collections/c1/items/a/lifecycle", map[string]any{"state": "published"}), 200)

		// Everything, from the start: the outbox replayed, then live.
		all := follow(t, b, "/events")
		// Only c1's item events: type prefix and collection, comma
		// separated and repeated.
		c1 := follow(t, b, "/events?type=item.*,collection.created&collection=c1&type=job.*")
		b.want(b.do("POST", "/collections/c1/items", itemDoc("b")), 201)
		b.want(b.do("POST", "/collections/c2/items", itemDoc("y")), 201)
		b.want(b.do("POST", "/collections/c1/items/b/lifecycle", map[string]any{"state": "published"}), 200)

		got := collect(t, all, about("item.state_changed", "collections/c1/items/b"))
		wantTypes := []string{"collection.created", "collection.created", "item.created", "item.created", "item.state_changed", "item.created", "item.created", "item.state_changed"}
		var types []string
		for i, ev := range got {
			types = append(types, ev.event)
			if ev.id != strconv.FormatInt(ev.data.Seq, 10) || (i > 0 && ev.data.Seq <= got[i-1].data.Seq) || ev.data.Type != ev.event || ev.data.ID == "" {
				t.Fatalf("event %d out of order or malformed: %v", i, describe(got))
			}
		}
		if !slices.Equal(types, wantTypes) {
			t.Fatalf("events %v, want types %v", describe(got), wantTypes)
		}
		filtered := collect(t, c1, about("item.state_changed", "collections/c1/items/b"))
		if d := describe(filtered); len(d) != 5 || !strings.HasSuffix(d[0], "collection.created collections/c1") ||
			!strings.HasSuffix(d[1], "item.created collections/c1/items/a") || !strings.HasSuffix(d[3], "item.created collections/c1/items/b") {
			t.Fatalf("c1's events: %v", d)
		}

		// Resumed after the third event: the rest, once each.
		resumed := collect(t, follow(t, b, "/events", "Last-Event-ID", got[2].id), about("item.state_changed", "collections/c1/items/b"))
		if !slices.Equal(describe(resumed), describe(got[3:])) {
			t.Fatalf("resumed after %s: %v, want %v", got[2].id, describe(resumed), describe(got[3:]))
		}
		// after works as well, and Last-Event-ID wins when it is later.
		resumed = collect(t, follow(t, b, "/events?after=1", "Last-Event-ID", got[5].id), about("item.state_changed", "collections/c1/items/b"))
		if !slices.Equal(describe(resumed), describe(got[6:])) {
			t.Fatalf("resumed after %s: %v", got[5].id, describe(resumed))
		}

		// As a page.
		page := b.want(b.do("GET", "/events?type=item.created&limit=100", nil), 200).json(t)
		if evs := page["events"].([]any); len(evs) != 4 || page["next"].(float64) != float64(got[len(got)-1].data.Seq) {
			t.Fatalf("page: %v", page)
		}
		page = b.want(b.do("GET", "/events?after="+got[1].id+"&limit=2", nil), 200).json(t)
		if evs := page["events"].([]any); len(evs) != 2 || evs[0].(map[string]any)["seq"].(float64) != float64(got[2].data.Seq) ||
			page["next"].(float64) != float64(got[3].data.Seq) {
			t.Fatalf("second page: %v", page)
		}

		// Bad parameters.
		b.problem(b.do("GET", "/events?type=item..created", nil), 400, "query.type")
		b.problem(b.do("GET", "/events?type=*", nil), 400, "query.type")
		b.problem(b.do("GET", "/events", nil, "Last-Event-ID", "yesterday"), 400, "header.Last-Event-ID")
		b.problem(b.do("GET", "/events", nil, "Accept", "text/event-stream", "Last-Event-ID", "-3"), 400, "header.Last-Event-ID")
	})
}

func TestEventsVisibility(t *testing.T) {
	t.Parallel()
	eachEventServer(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		system := &access.Caller{User: "admin", Groups: []string{access.AdminGroup}}
		secrets := map[string]string{}
		for _, u := range []string{"owen", "olga"} {
			_, secret, err := b.tokens.Mint(ctx, system, access.MintRequest{Name: u, User: u})
			if err != nil {
				t.Fatal(err)
			}
			secrets[u] = secret
		}
		owen, olga := bearer(secrets["owen"]), bearer(secrets["olga"])
		public := collectionDoc("pub")
		public["dt:visibility"] = "public"
		b.want(b.do("POST", "/collections", public, owen...), 201)
		b.want(b.do("POST", "/collections", collectionDoc("priv"), owen...), 201)
		b.want(b.do("POST", "/collections", collectionDoc("olgas"), olga...), 201)

		streams := map[string]<-chan sseEvent{
			"admin": follow(t, b, "/events"),
			"owen":  follow(t, b, "/events", owen...),
			"olga":  follow(t, b, "/events", olga...),
			"anon":  follow(t, b, "/events", anonymous...),
		}
		b.want(b.do("POST", "/collections/priv/items", itemDoc("secret"), owen...), 201)
		b.want(b.do("POST", "/collections/pub/items", itemDoc("draft"), owen...), 201)
		b.want(b.do("POST", "/collections/pub/items", itemDoc("open"), owen...), 201)
		b.want(b.do("POST", "/collections/pub/items/open/lifecycle", map[string]any{"state": "published"}, owen...), 200)
		job := &jobs.Job{ID: "job-of-owen", Process: "priv:secret", Owner: "owen", TwinOwner: "owen", Status: jobs.StatusAccepted,
			Created: time.Now().UTC(), Updated: time.Now().UTC(), Inputs: json.RawMessage(`{}`), MaxAttempts: 1}
		if _, _, err := b.jobs.Store.CreateJob(ctx, job, jobs.NewEvent(job, jobs.EventJobAccepted, time.Now().UTC())); err != nil {
			t.Fatal(err)
		}
		b.want(b.do("POST", "/policies", map[string]any{"id": "p1", "subjects": []string{"user:zed"}, "resources": []string{"collections:zed"},
			"actions": []string{"read"}, "effect": "allow"}), 201)
		// The last event: everyone may see it.
		b.want(b.do("POST", "/collections/pub/items/draft/lifecycle", map[string]any{"state": "published"}, owen...), 200)
		end := about("item.state_changed", "collections/pub/items/draft")

		want := map[string][]string{
			"admin": {"token.created", "token.created", "collection.created collections/pub", "collection.created collections/priv", "collection.created collections/olgas",
				"item.created collections/priv/items/secret", "item.created collections/pub/items/draft", "item.created collections/pub/items/open",
				"item.state_changed collections/pub/items/open", "job.accepted jobs/job-of-owen", "policy.created policies/p1", "item.state_changed collections/pub/items/draft"},
			"owen": {"collection.created collections/pub", "collection.created collections/priv",
				"item.created collections/priv/items/secret", "item.created collections/pub/items/draft", "item.created collections/pub/items/open",
				"item.state_changed collections/pub/items/open", "job.accepted jobs/job-of-owen", "item.state_changed collections/pub/items/draft"},
			"olga": {"collection.created collections/pub", "collection.created collections/olgas",
				"item.state_changed collections/pub/items/open", "item.state_changed collections/pub/items/draft"},
			"anon": {"collection.created collections/pub", "item.state_changed collections/pub/items/open", "item.state_changed collections/pub/items/draft"},
		}
		for who, c := range streams {
			var got []string
			for _, ev := range collect(t, c, end) {
				if strings.HasPrefix(ev.event, "token.") {
					got = append(got, ev.event) // the tokens' ids are the store's
					continue
				}
				got = append(got, ev.event+" "+ev.data.Subject)
			}
			if !slices.Equal(got, want[who]) {
				t.Errorf("%s sees %v\nwant %v", who, got, want[who])
			}
		}
		// Pages show the same.
		page := b.want(b.do("GET", "/events?limit=1000", nil, anonymous...), 200).json(t)
		if evs := page["events"].([]any); len(evs) != 3 {
			t.Fatalf("an anonymous page: %v", page)
		}
	})
}
