package openapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/testdb"
)

func TestAssets(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		b.want(b.do("POST", "/collections", collectionDoc("tanks")), 201)
		b.want(b.do("POST", "/collections/tanks/items", itemDoc("twin")), 201)
		content := bytes.Repeat([]byte("water level,42\n"), 1000)
		sum := sha256.Sum256(content)
		r := b.want(b.do("PUT", "/collections/tanks/items/twin/assets/execute", content, "Content-Type", "text/x-shellscript"), 200)
		it := r.json(t)
		a := it["assets"].(map[string]any)["execute"].(map[string]any)
		href := b.base + "/collections/tanks/items/twin/assets/execute"
		if a["href"] != href || a["type"] != "text/x-shellscript" || a["file:size"] != float64(len(content)) || a["file:checksum"] != "1220"+hex.EncodeToString(sum[:]) {
			t.Fatalf("asset: %v", a)
		}
		if it["assets"].(map[string]any)["readme"] == nil {
			t.Fatal("upload dropped the other assets")
		}
		dl := b.want(b.do("GET", "/collections/tanks/items/twin/assets/execute", nil), 200)
		if !bytes.Equal(dl.body, content) || dl.Header.Get("Content-Type") != "text/x-shellscript" || dl.Header.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("download: %d bytes, type %q", len(dl.body), dl.Header.Get("Content-Type"))
		}
		part := b.want(b.do("GET", "/collections/tanks/items/twin/assets/execute", nil, "Range", "bytes=15-29"), 206)
		if string(part.body) != "water level,42\n" {
			t.Fatalf("range body %q", part.body)
		}
		b.want(b.do("GET", "/collections/tanks/items/twin/assets/execute", nil, "If-None-Match", dl.Header.Get("ETag")), 304)
		b.problem(b.do("GET", "/collections/tanks/items/twin/assets/readme", nil), 404, "")

		// Replacing the file replaces the bytes.
		b.want(b.do("PUT", "/collections/tanks/items/twin/assets/execute", "echo v2\n", "Content-Type", "text/x-shellscript"), 200)
		if got := b.want(b.do("GET", "/collections/tanks/items/twin/assets/execute", nil), 200); string(got.body) != "echo v2\n" {
			t.Fatalf("after replace: %q", got.body)
		}

		// Over the limit: refused, and the item and its file are unchanged.
		before := b.want(b.do("GET", "/collections/tanks/items/twin", nil), 200)
		b.problem(b.do("PUT", "/collections/tanks/items/twin/assets/big", bytes.Repeat([]byte{1}, maxAsset+1)), 413, "")
		after := b.want(b.do("GET", "/collections/tanks/items/twin", nil), 200)
		if before.Header.Get("ETag") != after.Header.Get("ETag") {
			t.Fatal("a refused upload changed the item")
		}
		b.problem(b.do("GET", "/collections/tanks/items/twin/assets/big", nil), 404, "")
		// A stream without Content-Length over the limit is refused too.
		req, _ := http.NewRequest("PUT", b.base+"/collections/tanks/items/twin/assets/big", io.MultiReader(bytes.NewReader(make([]byte, maxAsset)), strings.NewReader("x")))
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+adminSecret)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("streamed oversize upload: %d", resp.StatusCode)
		}

		// Published items take no uploads; deleted items lose their files.
		b.want(b.do("POST", "/collections/tanks/items/twin/lifecycle", map[string]any{"state": "published"}), 200)
		b.problem(b.do("PUT", "/collections/tanks/items/twin/assets/execute", "x"), 409, "")
		b.want(b.do("GET", "/collections/tanks/items/twin/assets/execute", nil), 200)
		b.want(b.do("DELETE", "/collections/tanks/items/twin", nil), 204)
		b.problem(b.do("GET", "/collections/tanks/items/twin/assets/execute", nil), 410, "")
		b.problem(b.do("PUT", "/collections/nope/items/twin/assets/x", "x"), 404, "")
	})
}

func ndjson(t *testing.T, from, n int, edit func(i int, d map[string]any)) []byte {
	var buf bytes.Buffer
	for i := from; i < from+n; i++ {
		d := itemDoc(fmt.Sprintf("bulk-%05d", i))
		props(d)["datetime"] = fmt.Sprintf("2024-06-%02dT10:00:00Z", 1+i%28)
		if i%20 == 0 {
			d["geometry"] = nil
			delete(d, "bbox")
		}
		if edit != nil {
			edit(i, d)
		}
		line, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func TestBulkLoad(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		b.want(b.do("POST", "/collections", collectionDoc("eo")), 201)
		res := b.want(b.do("POST", "/collections/eo/bulk_items", ndjson(t, 0, 1000, nil), "Content-Type", "application/x-ndjson"), 200).json(t)
		if res["inserted"] != 1000.0 {
			t.Fatalf("bulk result %v", res)
		}
		got := b.want(b.do("GET", "/collections/eo/items/bulk-00007", nil), 200).json(t)
		if props(got)["dt:state"] != "draft" || props(got)["created"] == nil {
			t.Fatalf("bulk item: %v", props(got))
		}
		// A duplicate fails the whole load, which leaves nothing behind.
		p := b.problem(b.do("POST", "/collections/eo/bulk_items", ndjson(t, 990, 20, nil), "Content-Type", "application/x-ndjson"), 409, "")
		if !strings.Contains(p["detail"].(string), "bulk-00") {
			t.Fatalf("409 does not name the id: %v", p["detail"])
		}
		b.problem(b.do("GET", "/collections/eo/items/bulk-01005", nil), 404, "")
		// An invalid item names its line and field; nothing is written.
		bad := ndjson(t, 2000, 10, func(i int, d map[string]any) {
			if i == 2006 {
				delete(props(d), "datetime")
			}
		})
		p = b.problem(b.do("POST", "/collections/eo/bulk_items", bad, "Content-Type", "application/x-ndjson"), 400, "/properties/datetime")
		if !strings.Contains(p["detail"].(string), "line 7") {
			t.Fatalf("400 does not name the line: %v", p["detail"])
		}
		b.problem(b.do("GET", "/collections/eo/items/bulk-02000", nil), 404, "")
		b.problem(b.do("POST", "/collections/eo/bulk_items", "{not json\n", "Content-Type", "application/x-ndjson"), 400, "")

		// JSON: an array, and a FeatureCollection, published at once.
		var arr []json.RawMessage
		for _, line := range bytes.Split(bytes.TrimSpace(ndjson(t, 3000, 5, nil)), []byte("\n")) {
			arr = append(arr, line)
		}
		b.want(b.do("POST", "/collections/eo/bulk_items?state=published", arr), 200)
		if got := b.want(b.do("GET", "/collections/eo/items/bulk-03002", nil), 200).json(t); props(got)["dt:state"] != "published" || props(got)["published"] == nil {
			t.Fatalf("bulk published item: %v", props(got))
		}
		fc := map[string]any{"type": "FeatureCollection", "links": []any{}, "features": arr[:0]}
		for _, line := range bytes.Split(bytes.TrimSpace(ndjson(t, 4000, 3, nil)), []byte("\n")) {
			fc["features"] = append(fc["features"].([]json.RawMessage), line)
		}
		if r := b.want(b.do("POST", "/collections/eo/bulk_items", fc), 200).json(t); r["inserted"] != 3.0 {
			t.Fatalf("FeatureCollection bulk: %v", r)
		}

		// Upsert replaces drafts and refuses published items.
		up := ndjson(t, 995, 10, func(i int, d map[string]any) { props(d)["title"] = "v2" })
		if r := b.want(b.do("POST", "/collections/eo/bulk_items?mode=upsert", up, "Content-Type", "application/x-ndjson"), 200).json(t); r["inserted"] != 5.0 || r["updated"] != 5.0 {
			t.Fatalf("upsert: %v", r)
		}
		b.problem(b.do("POST", "/collections/eo/bulk_items?mode=upsert", ndjson(t, 3000, 1, nil), "Content-Type", "application/x-ndjson"), 409, "")
		b.problem(b.do("POST", "/collections/eo/bulk_items?mode=sideways", ndjson(t, 1, 1, nil), "Content-Type", "application/x-ndjson"), 400, "")
		b.problem(b.do("POST", "/collections/nope/bulk_items", ndjson(t, 1, 1, nil), "Content-Type", "application/x-ndjson"), 404, "")
		b.problem(b.do("POST", "/collections/eo/bulk_items", "", "Content-Type", "application/x-ndjson"), 400, "")

		// An item larger than the body limit is refused.
		huge := ndjson(t, 5000, 1, func(i int, d map[string]any) { props(d)["pad"] = strings.Repeat("x", maxBody) })
		b.problem(b.do("POST", "/collections/eo/bulk_items", huge, "Content-Type", "application/x-ndjson"), 413, "")

		// One event per item.
		evs, err := b.store.ListEvents(t.Context(), 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		created := 0
		for _, e := range evs {
			if e.Type == catalog.EventItemCreated {
				created++
			}
		}
		if created != 1000+5+3+5 {
			t.Fatalf("%d item.created events, want %d", created, 1013)
		}
	})
}

func TestItemListing(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		b.want(b.do("POST", "/collections", collectionDoc("eo")), 201)
		b.want(b.do("POST", "/collections/eo/bulk_items", ndjson(t, 0, 57, nil), "Content-Type", "application/x-ndjson"), 200)
		var ids []string
		var prevs []string
		next := "/collections/eo/items?limit=10"
		for pages := 0; next != ""; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			page := b.want(b.do("GET", strings.TrimPrefix(next, b.base), nil), 200).json(t)
			if page["numberReturned"] != float64(len(page["features"].([]any))) {
				t.Fatalf("numberReturned %v", page["numberReturned"])
			}
			ids = append(ids, featureIDs(page)...)
			prevs = append(prevs, linkHref(t, page, "prev"))
			next = linkHref(t, page, "next")
		}
		if len(ids) != 57 || prevs[0] != "" || prevs[1] == "" {
			t.Fatalf("paged %d items; prev links %v", len(ids), prevs)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("%s served twice", id)
			}
			seen[id] = true
		}
		// Back from the last page.
		back := b.want(b.do("GET", strings.TrimPrefix(prevs[len(prevs)-1], b.base), nil), 200).json(t)
		if got := featureIDs(back); strings.Join(got, ",") != strings.Join(ids[40:50], ",") {
			t.Fatalf("prev page %v, want %v", got, ids[40:50])
		}
		// bbox and datetime filters; nulls never match a bbox.
		geo := b.want(b.do("GET", "/collections/eo/items?limit=100&bbox=11,48,12,49", nil), 200).json(t)
		if n := len(featureIDs(geo)); n != 57-3 {
			t.Fatalf("bbox matched %d items, want 54", n)
		}
		b.want(b.do("GET", "/collections/eo/items?limit=100&bbox=0,0,1,1", nil), 200)
		day := b.want(b.do("GET", "/collections/eo/items?limit=100&datetime=2024-06-03T00:00:00Z/2024-06-03T23:59:59Z", nil), 200).json(t)
		if n := len(featureIDs(day)); n != 2 {
			t.Fatalf("datetime matched %d items, want 2", n)
		}
		open := b.want(b.do("GET", "/collections/eo/items?limit=100&datetime=2024-06-27T00:00:00Z/..", nil), 200).json(t)
		if n := len(featureIDs(open)); n != 4 {
			t.Fatalf("open interval matched %d items, want 4", n)
		}
		b.problem(b.do("GET", "/collections/eo/items?bbox=1,2,3", nil), 400, "query.bbox")
		b.problem(b.do("GET", "/collections/eo/items?datetime=yesterday", nil), 400, "query.datetime")
		b.problem(b.do("GET", "/collections/eo/items?limit=0", nil), 400, "")
		b.problem(b.do("GET", "/collections/eo/items?token=bm9wZQ", nil), 400, "query.token")
		b.problem(b.do("GET", "/collections/nope/items", nil), 404, "")
	})
}

func TestCrossCutting(t *testing.T) {
	t.Parallel()
	b := setup(t, func(tb testing.TB) catalog.Store { return testdb.SQLite(tb) })
	// Request ids: a client's is kept, else one is made.
	r := b.do("GET", "/collections/none", nil, "X-Request-Id", "client-id-123")
	if r.Header.Get("X-Request-Id") != "client-id-123" || b.problem(r, 404, "")["request_id"] != "client-id-123" {
		t.Fatalf("request id not kept: %q", r.Header.Get("X-Request-Id"))
	}
	if r := b.do("GET", "/", nil, "X-Request-Id", "bad id with spaces"); r.Header.Get("X-Request-Id") == "bad id with spaces" || r.Header.Get("X-Request-Id") == "" {
		t.Fatal("an unsafe request id was echoed")
	}
	// CORS: reads from anywhere, writes from the listed origin only.
	pre := b.do("OPTIONS", "/collections", nil, "Origin", "https://viewer.example", "Access-Control-Request-Method", "GET")
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "https://viewer.example" {
		t.Fatalf("read preflight: %d %q", pre.StatusCode, pre.Header.Get("Access-Control-Allow-Origin"))
	}
	if pre := b.do("OPTIONS", "/collections", nil, "Origin", "https://viewer.example", "Access-Control-Request-Method", "POST"); pre.StatusCode != 403 {
		t.Fatalf("write preflight from an unlisted origin: %d", pre.StatusCode)
	}
	if pre := b.do("OPTIONS", "/collections", nil, "Origin", "https://editor.example", "Access-Control-Request-Method", "POST"); pre.StatusCode != 204 || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "If-Match") {
		t.Fatalf("write preflight from the editor: %d", pre.StatusCode)
	}
	get := b.do("GET", "/", nil, "Origin", "https://viewer.example")
	if get.Header.Get("Access-Control-Allow-Origin") != "https://viewer.example" || !strings.Contains(get.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatal("CORS headers missing on a read")
	}
	// Method not allowed is a problem too.
	if r := b.do("PUT", "/conformance", "{}"); r.StatusCode != 405 || r.Header.Get("Allow") != "GET" {
		t.Fatalf("PUT /conformance: %d allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	// Metrics count requests per operation.
	m := b.want(b.do("GET", "/metrics", nil), 200)
	if !bytes.Contains(m.body, []byte(`twinstac_http_requests_total{method="GET",operation="getLandingPage",status="200"}`)) {
		t.Fatalf("metrics lack the landing page count:\n%s", m.body)
	}
}
