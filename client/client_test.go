package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinstac/twinstac/client"
	"github.com/twinstac/twinstac/internal/apitest"
)

// connect returns a client of the test server as its admin, whose calls
// are checked against the OpenAPI document.
func connect(t *testing.T, opts ...client.Option) *client.API {
	t.Helper()
	api, err := client.New(serverURL, append([]client.Option{client.Token(adminToken), client.HTTPClient(apitest.Client(t, serverURL))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

var runs atomic.Int32

// uniq makes a collection id of name that no earlier run of the test
// took on the shared server (go test -count).
func uniq(t *testing.T, name string) string {
	return fmt.Sprintf("%s-%d", name, runs.Add(1))
}

func createCollection(t *testing.T, api *client.API, id string) {
	t.Helper()
	_, err := client.Check(api.CreateCollectionWithBodyWithResponse(t.Context(), "application/json", strings.NewReader(fmt.Sprintf(`{
		"type": "Collection", "stac_version": "1.1.0", "id": %q, "description": "client tests", "license": "CC-BY-4.0",
		"extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[null, null]]}}, "links": []}`, id))))
	if err != nil {
		t.Fatal(err)
	}
}

func createItem(t *testing.T, api *client.API, coll, id string, n int) {
	t.Helper()
	_, err := client.Check(api.CreateItemWithBodyWithResponse(t.Context(), coll, "application/json", strings.NewReader(fmt.Sprintf(`{
		"type": "Feature", "stac_version": "1.1.0", "id": %q, "geometry": {"type": "Point", "coordinates": [%d, 45]}, "links": [], "assets": {},
		"properties": {"datetime": "2026-01-01T00:%02d:00Z", "n": %d}}`, id, n%180, n%60, n))))
	if err != nil {
		t.Fatal(err)
	}
}

// TestErrors: a refused call is an *client.Error with the problem's
// detail, in one line.
func TestErrors(t *testing.T) {
	api := connect(t)
	_, err := client.Check(api.GetCollectionWithResponse(t.Context(), "no-such-collection"))
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 404 || client.StatusOf(err) != 404 {
		t.Fatalf("error %v (%T), want a 404 *client.Error", err, err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "404 Not Found: ") || !strings.Contains(msg, "no-such-collection") ||
		!strings.Contains(msg, "[request ") || strings.Contains(msg, "\n") {
		t.Fatalf("message %q", msg)
	}
	_, err = client.Check(api.CreateItemWithBodyWithResponse(t.Context(), "no-such-collection", "application/json", strings.NewReader(`{"type":"Feature"}`)))
	if client.StatusOf(err) < 400 || client.StatusOf(err) >= 500 {
		t.Fatalf("a bad item: %v", err)
	}
	// Without the token, writing is refused.
	anon, err := client.New(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Check(anon.CreateCollectionWithBodyWithResponse(t.Context(), "application/json", strings.NewReader(`{}`)))
	if s := client.StatusOf(err); s != 401 {
		t.Fatalf("anonymous write: %v", err)
	}
	if _, err := client.New("ftp://example.com"); err == nil {
		t.Fatal("an ftp URL was taken")
	}
}

// TestIterators: the iterators visit every element once, across pages,
// for GET listings and POST searches alike.
func TestIterators(t *testing.T) {
	api := connect(t)
	pages, pages2 := uniq(t, "pages"), uniq(t, "pages")
	createCollection(t, api, pages)
	want := map[string]bool{}
	for i := range 23 {
		id := fmt.Sprintf("i%02d", i)
		createItem(t, api, pages, id, i)
		want[id] = true
	}
	collect := func(name string, seq func(func(client.ItemProjection, error) bool)) {
		t.Helper()
		seen := map[string]int{}
		for it, err := range seq {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			seen[it.Id]++
		}
		for id := range want {
			if seen[id] != 1 {
				t.Fatalf("%s: %s seen %d times (all: %v)", name, id, seen[id], seen)
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("%s: %d items, want %d", name, len(seen), len(want))
		}
	}
	limit := int64(5)
	// The Docs variants keep each element's JSON as the server wrote it:
	// a range item's "datetime": null, which the typed value drops.
	spans := uniq(t, "spans")
	createCollection(t, api, spans)
	if _, err := client.Check(api.CreateItemWithBodyWithResponse(t.Context(), spans, "application/json", strings.NewReader(`{
		"type": "Feature", "stac_version": "1.1.0", "id": "span", "geometry": null, "links": [], "assets": {},
		"properties": {"datetime": null, "start_datetime": "2026-01-01T00:00:00Z", "end_datetime": "2026-01-02T00:00:00Z"}}`))); err != nil {
		t.Fatal(err)
	}
	spanned := 0
	for d, err := range api.SearchDocs(t.Context(), client.SearchBody{Collections: &[]string{spans}}) {
		spanned++
		var doc struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err != nil || json.Unmarshal(d.Raw, &doc) != nil || string(doc.Properties["datetime"]) != "null" || d.Value.Id != "span" {
			t.Fatalf("SearchDocs: %s, %+v, %v", d.Raw, d.Value, err)
		}
	}
	if spanned != 1 {
		t.Fatalf("SearchDocs yielded %d items, want 1", spanned)
	}
	collect("items", api.Items(t.Context(), pages, &client.GetItemsParams{Limit: &limit}))
	collect("search", api.Search(t.Context(), client.SearchBody{Collections: &[]string{pages}, Limit: &limit}))

	// A filter the next links keep (POST links merge their body into
	// the search).
	var filter client.SearchBody_Filter
	if err := filter.FromSearchBodyFilter1("n >= 10"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for it, err := range api.Search(t.Context(), client.SearchBody{Collections: &[]string{pages}, Limit: &limit, Filter: &filter}) {
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := it.Properties.Get("n"); v.(float64) < 10 {
			t.Fatalf("item %s has n %v", it.Id, v)
		}
		n++
	}
	if n != 13 {
		t.Fatalf("the filtered search found %d items, want 13", n)
	}

	// Breaking off stops the paging.
	for range api.Items(t.Context(), pages, &client.GetItemsParams{Limit: &limit}) {
		break
	}

	createCollection(t, api, pages2)
	var colls []string
	one := int64(1)
	for c, err := range api.Collections(t.Context(), &client.GetCollectionsParams{Limit: &one}) {
		if err != nil {
			t.Fatal(err)
		}
		colls = append(colls, c.Id)
	}
	if !slices.Contains(colls, pages) || !slices.Contains(colls, pages2) {
		t.Fatalf("collections %v", colls)
	}

	// An error ends the iteration with it.
	var got error
	for _, err := range api.Items(t.Context(), "no-such-collection", nil) {
		got = err
	}
	if client.StatusOf(got) != 404 {
		t.Fatalf("items of a missing collection: %v", got)
	}
}

// TestFollowEvents: the event stream shows what happened before (from
// after=0) and then live, and ends with the context.
func TestFollowEvents(t *testing.T) {
	// Not through the document's checks, which read whole answers.
	api, err := client.New(serverURL, client.Token(adminToken))
	if err != nil {
		t.Fatal(err)
	}
	watched := uniq(t, "watched")
	createCollection(t, api, watched)
	createItem(t, api, watched, "before", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var seen []string
	zero := int64(0)
	err = api.FollowEvents(ctx, &client.GetEventsParams{Collection: &[]string{watched}, After: &zero}, func(e client.Event) error {
		seen = append(seen, e.Type+" "+e.Subject)
		switch {
		case e.Type == "item.created" && strings.HasSuffix(e.Subject, "/before"):
			// Seen from the past; the next one comes live.
			go func() {
				_, err := client.Check(api.CreateItemWithBodyWithResponse(ctx, watched, "application/json", strings.NewReader(`{
					"type": "Feature", "stac_version": "1.1.0", "id": "live", "geometry": null, "links": [], "assets": {},
					"properties": {"datetime": "2026-01-01T00:00:00Z"}}`)))
				if err != nil {
					t.Error(err)
					cancel()
				}
			}()
		case e.Type == "item.created" && strings.HasSuffix(e.Subject, "/live"):
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowEvents ended with %v (saw %v)", err, seen)
	}
	if len(seen) < 3 || !strings.HasPrefix(seen[0], "collection.created") {
		t.Fatalf("events seen: %v", seen)
	}
}

// TestFollowLogResumes: a log stream that drops is opened again after
// the last line seen, so every line comes once; a missing job is an
// error at once.
func TestFollowLogResumes(t *testing.T) {
	var opens atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/jobs/j1/logs") {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			fmt.Fprint(w, `{"status":404,"title":"Not Found","detail":"job x not found"}`)
			return
		}
		opens.Add(1)
		from := int64(0)
		fmt.Sscan(r.URL.Query().Get("after"), &from)
		if h := r.Header.Get("Last-Event-ID"); h != "" && r.URL.Query().Get("after") == "" {
			fmt.Sscan(h, &from)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for seq := from + 1; seq <= 5; seq++ {
			fmt.Fprintf(w, "id: %d\nevent: log\ndata: {\"seq\":%d,\"attempt\":1,\"phase\":\"execute\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00Z\",\"text\":\"line %d\"}\n\n", seq, seq, seq)
			if seq == 2 && from == 0 {
				return // the connection drops
			}
		}
		fmt.Fprint(w, ": keep-alive\n\nevent: end\ndata: {\"status\":\"successful\"}\n\n")
	}))
	defer srv.Close()
	api, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	status, err := api.FollowLog(t.Context(), "j1", 0, func(l client.LogLine) error {
		lines = append(lines, l.Text)
		return nil
	})
	if err != nil || status != "successful" {
		t.Fatalf("FollowLog: %q, %v", status, err)
	}
	if want := []string{"line 1", "line 2", "line 3", "line 4", "line 5"}; !slices.Equal(lines, want) || opens.Load() != 2 {
		t.Fatalf("lines %v in %d opens", lines, opens.Load())
	}
	if _, err := api.FollowLog(t.Context(), "x", 0, func(client.LogLine) error { return nil }); client.StatusOf(err) != 404 {
		t.Fatalf("a missing job: %v", err)
	}
	// An error of the callback stops the stream and is returned.
	stop := errors.New("enough")
	if _, err := api.FollowLog(t.Context(), "j1", 0, func(client.LogLine) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("a failing callback: %v", err)
	}
}

// TestRetries: 429 and 503 answers are retried after Retry-After (or a
// backoff), with the same body; a streamed body and a wait past the
// limit are not; the token goes to the server's host only.
func TestRetries(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
		auths  []string
	)
	fails := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(b))
		auths = append(auths, r.Header.Get("Authorization"))
		key := r.URL.Path
		switch {
		case key == "/far":
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(503)
		case fails[key] < 2:
			fails[key]++
			if key == "/limited" {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(429)
			} else {
				w.WriteHeader(503)
			}
		default:
			w.WriteHeader(200)
		}
	}))
	defer srv.Close()
	api, err := client.New(srv.URL, client.Token("secret"))
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string, body io.Reader) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := api.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if s := do("POST", "/limited", strings.NewReader(`{"a":1}`)); s != 200 {
		t.Fatalf("429 twice then 200: %d", s)
	}
	if s := do("GET", "/busy", nil); s != 200 {
		t.Fatalf("503 twice then 200: %d", s)
	}
	// A write answered 503 may have been made: it is not sent again.
	if s := do("POST", "/write", strings.NewReader("w")); s != 503 {
		t.Fatalf("a POST answered 503: %d", s)
	}
	mu.Lock()
	if len(bodies) != 7 || bodies[0] != `{"a":1}` || bodies[2] != `{"a":1}` {
		t.Fatalf("bodies %q", bodies)
	}
	for _, a := range auths {
		if a != "Bearer secret" {
			t.Fatalf("authorization %q", a)
		}
	}
	mu.Unlock()
	// A streamed body cannot be sent again: its first answer stands.
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte("stream")); _ = pw.Close() }()
	if s := do("PUT", "/streamed", pr); s != 503 {
		t.Fatalf("a streamed upload: %d", s)
	}
	// An hour's wait is not made.
	start := time.Now()
	if s := do("GET", "/far", nil); s != 503 || time.Since(start) > 10*time.Second {
		t.Fatalf("Retry-After an hour: %d after %s", s, time.Since(start))
	}
	// A bytes body of a POST is replayed; Retries(0) turns retrying off.
	none, err := client.New(srv.URL, client.Retries(0))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/once", bytes.NewReader([]byte("x")))
	resp, err := none.HTTP.Do(req)
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("no retries: %v, %v", resp, err)
	}
	_ = resp.Body.Close()

	// The token is not sent to another host a link leads to.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			w.WriteHeader(400)
		}
	}))
	defer other.Close()
	req, _ = http.NewRequestWithContext(t.Context(), "GET", strings.Replace(other.URL, "127.0.0.1", "localhost", 1), nil)
	resp, err = api.HTTP.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("another host: %v, %v", resp, err)
	}
	_ = resp.Body.Close()
}

// An upload of a stream with a known length goes with that length, not
// chunked; an empty one with none.
func TestUploadLength(t *testing.T) {
	type seen struct {
		length  int64
		chunked bool
		body    string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.ContentLength, slices.Contains(r.TransferEncoding, "chunked"), string(b)}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	api, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"level,time\n1,2\n", ""} {
		size := int64(len(body))
		// Not a strings.Reader, whose length net/http finds itself: a
		// stream, as a file is.
		stream := io.MultiReader(strings.NewReader(body))
		if _, err := api.PutAssetWithBody(t.Context(), "c", "i", "data", &client.PutAssetParams{ContentLength: &size}, "text/csv", stream); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s.length != size || s.chunked || s.body != body {
			t.Fatalf("upload of %d bytes arrived as %+v", size, s)
		}
	}
}
