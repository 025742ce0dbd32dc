package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/apitest"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/openapi"
)

// bundle is a running server and a validating client.
type bundle struct {
	t      *testing.T
	base   string
	client *http.Client
	store  catalog.Store
	// policies is the server's policy manager, for tests that grant roles.
	policies *access.Manager
	tokens   *access.Tokens
	// jobs is the server's job service; queue records what it queued.
	jobs  *jobs.Service
	queue *recordQueue
	// catalog is the server's catalog service.
	catalog *catalog.Service
}

// recordQueue is a jobs.Queue that records what is queued; no worker
// takes it (end-to-end tests start one of their own).
type recordQueue struct {
	mu     sync.Mutex
	queued []string
	// saves are the saves queued: job id, snapshot item.
	saves [][2]string
}

func (q *recordQueue) Enqueue(_ context.Context, j *jobs.Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queued = append(q.queued, j.ID)
	return nil
}

func (q *recordQueue) EnqueueSave(_ context.Context, job, ref string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.saves = append(q.saves, [2]string{job, ref})
	return nil
}

func (q *recordQueue) Notify(context.Context, *jobs.Job, jobs.Status) error { return nil }

func (q *recordQueue) Requeue(context.Context, *jobs.Job) error { return nil }

func (q *recordQueue) Lost(context.Context, *jobs.Job) (bool, error) { return false, nil }

const maxBody = 64 << 10

// adminSecret is the node-admin token of test servers.
const adminSecret = "test-admin-secret"
const maxAsset = 1 << 20

func setup(t *testing.T, open func(testing.TB) catalog.Store) *bundle {
	t.Helper()
	return setupWith(t, open, nil)
}

func setupWith(t *testing.T, open func(testing.TB) catalog.Store, oidc *access.OIDC) *bundle {
	t.Helper()
	return setupConfig(t, open, oidc, openapi.Config{})
}

func setupConfig(t *testing.T, open func(testing.TB) catalog.Store, oidc *access.OIDC, cfg openapi.Config) *bundle {
	t.Helper()
	return setupFull(t, open, oidc, cfg, 0)
}

// setupFull also sets the default stored-bytes quota.
func setupFull(t *testing.T, open func(testing.TB) catalog.Store, oidc *access.OIDC, cfg openapi.Config, storedBytes int64) *bundle {
	t.Helper()
	st := open(t)
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := &catalog.Service{Store: st, Blobs: blobs, MaxAssetBytes: maxAsset, CollectionCacheTTL: time.Minute}
	adminHash := access.HashSecret(adminSecret)
	tokens := &access.Tokens{Store: st.(access.TokenStore), AdminSecretHash: &adminHash}
	manager := access.NewManager(st.(access.PolicyStore))
	manager.MaxAge = 0
	cfg.MaxBodyBytes = maxBody
	cfg.CORS = openapi.CORS{ReadOrigins: []string{"*"}, WriteOrigins: []string{"https://editor.example"}}
	queue := &recordQueue{}
	jobSvc := &jobs.Service{Store: st.(jobs.Store), Queue: queue}
	api := openapi.New(cfg,
		openapi.Deps{Catalog: svc, Tokens: tokens, Authz: access.NewAuthorizer(manager), OIDC: oidc, Jobs: jobSvc,
			Quotas: &access.Quotas{Store: st.(access.QuotaStore), DefaultStoredBytes: storedBytes}, Ready: st.Ping, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &bundle{t: t, base: srv.URL, client: apitest.Client(t, srv.URL), store: st, policies: manager, tokens: tokens, jobs: jobSvc, queue: queue, catalog: svc}
}

// eachStoreFull is eachStore with a default stored-bytes quota.
func eachStoreFull(t *testing.T, storedBytes int64, fn func(t *testing.T, b *bundle)) {
	for _, k := range testdb.Kinds {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, setupFull(t, k.Open, nil, openapi.Config{}, storedBytes))
		})
	}
}

// eachStore runs fn against a fresh server on every store.
func eachStore(t *testing.T, fn func(t *testing.T, b *bundle)) {
	for _, k := range testdb.Kinds {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, setup(t, k.Open))
		})
	}
}

type response struct {
	*http.Response
	body []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

func (b *bundle) do(method, path string, body any, headers ...string) response {
	b.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		j, err := json.Marshal(v)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	// Requests act as the node admin unless they say otherwise; an empty
	// Authorization value sends none (anonymous).
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{resp, data}
}

func (b *bundle) want(r response, status int) response {
	b.t.Helper()
	if r.StatusCode != status {
		b.t.Fatalf("%s %s: status %d, want %d\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	return r
}

// problem checks a problem+json answer and returns it.
func (b *bundle) problem(r response, status int, pointer string) map[string]any {
	b.t.Helper()
	b.want(r, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		b.t.Fatalf("problem content type %q", ct)
	}
	p := r.json(b.t)
	if p["detail"] == "" || p["request_id"] != r.Header.Get("X-Request-Id") {
		b.t.Fatalf("problem lacks detail or request id: %v", p)
	}
	if pointer != "" && p["pointer"] != pointer {
		b.t.Fatalf("problem points at %v, want %q: %v", p["pointer"], pointer, p["detail"])
	}
	return p
}

func collectionDoc(id string) map[string]any {
	return map[string]any{
		"type": "Collection", "id": id, "description": "Water-tank twins", "license": "CC-BY-4.0",
		"extent": map[string]any{
			"spatial":  map[string]any{"bbox": [][]float64{{-180, -90, 180, 90}}},
			"temporal": map[string]any{"interval": [][]any{{"2020-01-01T00:00:00Z", nil}}},
		},
		"keywords": []string{"twin"}, "x:custom": map[string]any{"kept": true},
	}
}

func itemDoc(id string) map[string]any {
	return map[string]any{
		"type": "Feature", "stac_version": "1.0.0", "id": id,
		"stac_extensions": []string{"https://stac-extensions.github.io/eo/v1.1.0/schema.json"},
		"geometry":        map[string]any{"type": "Point", "coordinates": []float64{11.5, 48.1}},
		"bbox":            []float64{11.5, 48.1, 11.5, 48.1},
		"properties": map[string]any{
			"datetime": "2024-06-01T10:00:00Z", "dt:kind": "digital-twin", "eo:cloud_cover": 3.5,
			"nested": map[string]any{"a": []any{1, "two", nil}},
		},
		"links":  []map[string]any{{"rel": "license", "href": "https://example.com/license"}},
		"assets": map[string]any{"readme": map[string]any{"href": "https://example.com/README.md", "roles": []string{"description"}}},
		"x:top":  "kept",
	}
}

func linkHref(t *testing.T, doc map[string]any, rel string) string {
	t.Helper()
	links, _ := doc["links"].([]any)
	for _, l := range links {
		m := l.(map[string]any)
		if m["rel"] == rel {
			return m["href"].(string)
		}
	}
	return ""
}

func props(doc map[string]any) map[string]any { return doc["properties"].(map[string]any) }

func TestLandingAndDocuments(t *testing.T) {
	t.Parallel()
	b := setup(t, func(tb testing.TB) catalog.Store { return testdb.SQLite(tb) })
	land := b.want(b.do("GET", "/", nil), 200).json(t)
	for _, rel := range []string{"self", "root", "conformance", "service-desc", "service-doc", "data"} {
		if !strings.HasPrefix(linkHref(t, land, rel), b.base) {
			t.Fatalf("landing page link %s = %q, want an absolute URL on %s", rel, linkHref(t, land, rel), b.base)
		}
	}
	conf := b.want(b.do("GET", "/conformance", nil), 200).json(t)
	if !slices.Contains(toStrings(conf["conformsTo"]), "https://api.stacspec.org/v1.0.0/ogcapi-features/extensions/transaction") {
		t.Fatalf("conformance lacks the transaction class: %v", conf)
	}
	api := b.want(b.do("GET", "/api", nil), 200)
	if api.json(t)["openapi"] != "3.1.0" {
		t.Fatal("/api is not the 3.1 document")
	}
	if d := b.want(b.do("GET", "/api/openapi-3.0.json", nil), 200).json(t); !strings.HasPrefix(d["openapi"].(string), "3.0") {
		t.Fatalf("/api/openapi-3.0.json is %v", d["openapi"])
	}
	if y := b.want(b.do("GET", "/api.yaml", nil), 200); !bytes.Contains(y.body, []byte("openapi: 3.1.0")) {
		t.Fatal("/api.yaml is not the 3.1 document")
	}
	page := b.want(b.do("GET", "/api/docs", nil), 200)
	if !bytes.Contains(page.body, []byte(`src="docs/redoc.standalone.js"`)) || bytes.Contains(page.body, []byte("https://")) {
		t.Fatalf("docs page must load its script from this server only:\n%s", page.body)
	}
	if js := b.want(b.do("GET", "/api/docs/redoc.standalone.js", nil), 200); len(js.body) < 100000 {
		t.Fatalf("docs script is %d bytes", len(js.body))
	}
	b.want(b.do("GET", "/healthz", nil), 200)
	b.want(b.do("GET", "/readyz", nil), 200)
	b.problem(b.do("GET", "/no/such/thing", nil), 404, "")
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestCollections(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		r := b.want(b.do("POST", "/collections", collectionDoc("tanks")), 201)
		if r.Header.Get("Location") != b.base+"/collections/tanks" || r.Header.Get("ETag") == "" {
			t.Fatalf("create: Location %q ETag %q", r.Header.Get("Location"), r.Header.Get("ETag"))
		}
		c := r.json(t)
		if c["stac_version"] != "1.1.0" || c["x:custom"] == nil || linkHref(t, c, "items") != b.base+"/collections/tanks/items" {
			t.Fatalf("created collection: %v", c)
		}
		b.problem(b.do("POST", "/collections", collectionDoc("tanks")), 409, "")
		bad := collectionDoc("bad")
		delete(bad, "license")
		b.problem(b.do("POST", "/collections", bad), 400, "/license")
		bad = collectionDoc("bad")
		bad["extent"] = map[string]any{"spatial": map[string]any{"bbox": [][]float64{{0, 10, 5, 2}}}, "temporal": map[string]any{"interval": [][]any{{nil, nil}}}}
		b.problem(b.do("POST", "/collections", bad), 400, "/extent/spatial/bbox/0")
		b.problem(b.do("POST", "/collections", `{"id": "x", `), 400, "")

		got := b.want(b.do("GET", "/collections/tanks", nil), 200)
		etag := got.Header.Get("ETag")
		if etag != r.Header.Get("ETag") {
			t.Fatalf("GET ETag %q, create ETag %q", etag, r.Header.Get("ETag"))
		}
		// Merge patch, then a stale If-Match.
		p := b.want(b.do("PATCH", "/collections/tanks", map[string]any{"title": "Tanks", "keywords": nil}, "If-Match", etag, "Content-Type", "application/merge-patch+json"), 200)
		pc := p.json(t)
		if pc["title"] != "Tanks" || pc["keywords"] != nil || pc["description"] != "Water-tank twins" {
			t.Fatalf("patched collection: %v", pc)
		}
		b.problem(b.do("PUT", "/collections/tanks", collectionDoc("tanks"), "If-Match", etag), 412, "")
		b.problem(b.do("PUT", "/collections/tanks", collectionDoc("other")), 400, "/id")
		b.want(b.do("PUT", "/collections/tanks", collectionDoc("tanks"), "If-Match", p.Header.Get("ETag")), 200)

		for i := range 4 {
			b.want(b.do("POST", "/collections", collectionDoc(fmt.Sprintf("c%d", i))), 201)
		}
		var ids []string
		next := "/collections?limit=2"
		for pages := 0; next != ""; pages++ {
			if pages > 5 {
				t.Fatal("collection paging does not end")
			}
			page := b.want(b.do("GET", strings.TrimPrefix(next, b.base), nil), 200).json(t)
			for _, c := range page["collections"].([]any) {
				ids = append(ids, c.(map[string]any)["id"].(string))
			}
			next = linkHref(t, page, "next")
		}
		if !slices.Equal(ids, []string{"c0", "c1", "c2", "c3", "tanks"}) {
			t.Fatalf("paged collections %v", ids)
		}
		b.problem(b.do("GET", "/collections?token=garbage", nil), 400, "query.token")

		b.want(b.do("DELETE", "/collections/c0", nil), 204)
		b.problem(b.do("GET", "/collections/c0", nil), 404, "")
		b.problem(b.do("DELETE", "/collections/c0", nil), 404, "")
	})
}

func TestItems(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		b.want(b.do("POST", "/collections", collectionDoc("tanks")), 201)
		r := b.want(b.do("POST", "/collections/tanks/items", itemDoc("tank-1")), 201)
		if r.Header.Get("Location") != b.base+"/collections/tanks/items/tank-1" || r.Header.Get("ETag") == "" {
			t.Fatalf("create: Location %q ETag %q", r.Header.Get("Location"), r.Header.Get("ETag"))
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/geo+json" {
			t.Fatalf("item content type %q", ct)
		}
		it := r.json(t)
		p := props(it)
		if p["dt:state"] != "draft" || p["created"] == nil || p["updated"] == nil || p["published"] != nil {
			t.Fatalf("new item properties: %v", p)
		}
		if it["collection"] != "tanks" || it["x:top"] != "kept" || it["stac_version"] != "1.0.0" || p["nested"] == nil || p["eo:cloud_cover"] != 3.5 {
			t.Fatalf("fields did not round-trip: %v", it)
		}
		for _, rel := range []string{"self", "parent", "collection", "root", "license"} {
			if linkHref(t, it, rel) == "" {
				t.Fatalf("item lacks a %s link: %v", rel, it["links"])
			}
		}
		if linkHref(t, it, "self") != b.base+"/collections/tanks/items/tank-1" {
			t.Fatalf("self link %q", linkHref(t, it, "self"))
		}
		b.problem(b.do("POST", "/collections/tanks/items", itemDoc("tank-1")), 409, "")
		b.problem(b.do("POST", "/collections/nope/items", itemDoc("x")), 404, "")

		// Validation names the field.
		cases := []struct {
			name    string
			edit    func(map[string]any)
			pointer string
		}{
			{"missing id", func(d map[string]any) { delete(d, "id") }, "/id"},
			{"bad geometry", func(d map[string]any) {
				d["geometry"] = map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{0, 0}, {1, 0}, {1, 1}}}}
				delete(d, "bbox")
			}, "/geometry"},
			{"unknown geometry", func(d map[string]any) {
				d["geometry"] = map[string]any{"type": "Circle", "coordinates": []float64{0, 0}}
			}, "/geometry"},
			{"bbox not matching", func(d map[string]any) { d["bbox"] = []float64{0, 0, 1, 1} }, "/bbox"},
			{"no datetime", func(d map[string]any) { delete(props(d), "datetime") }, "/properties/datetime"},
			{"bad datetime", func(d map[string]any) { props(d)["datetime"] = "yesterday" }, "/properties/datetime"},
			{"wrong collection", func(d map[string]any) { d["collection"] = "other" }, "/collection"},
			{"state on create", func(d map[string]any) { props(d)["dt:state"] = "archived" }, "/properties/dt:state"},
			{"bad id", func(d map[string]any) { d["id"] = "a/b" }, "/id"},
			{"bad expires", func(d map[string]any) { props(d)["expires"] = "soon" }, "/properties/expires"},
			{"end before start", func(d map[string]any) {
				props(d)["datetime"] = nil
				props(d)["start_datetime"] = "2024-02-01T00:00:00Z"
				props(d)["end_datetime"] = "2024-01-01T00:00:00Z"
			}, "/properties/end_datetime"},
		}
		for _, tc := range cases {
			d := itemDoc("v-" + strings.ReplaceAll(tc.name, " ", "-"))
			tc.edit(d)
			b.problem(b.do("POST", "/collections/tanks/items", d), 400, tc.pointer)
		}
		// A null geometry is fine; bbox goes.
		nullGeom := itemDoc("no-geometry")
		nullGeom["geometry"] = nil
		delete(nullGeom, "bbox")
		b.want(b.do("POST", "/collections/tanks/items", nullGeom), 201)
		// The bbox is computed when a client leaves it out.
		noBBox := itemDoc("no-bbox")
		delete(noBBox, "bbox")
		if got := b.want(b.do("POST", "/collections/tanks/items", noBBox), 201).json(t); len(got["bbox"].([]any)) != 4 {
			t.Fatalf("bbox not computed: %v", got["bbox"])
		}

		got := b.want(b.do("GET", "/collections/tanks/items/tank-1", nil), 200)
		etag := got.Header.Get("ETag")
		b.problem(b.do("GET", "/collections/tanks/items/nope", nil), 404, "")

		// Edit a draft: PUT keeps server fields, PATCH merges, If-Match guards.
		d := itemDoc("tank-1")
		props(d)["title"] = "Tank one"
		put := b.want(b.do("PUT", "/collections/tanks/items/tank-1", d, "If-Match", etag), 200).json(t)
		if props(put)["title"] != "Tank one" || props(put)["created"] != p["created"] || props(put)["dt:state"] != "draft" {
			t.Fatalf("replaced item: %v", props(put))
		}
		b.problem(b.do("PUT", "/collections/tanks/items/tank-1", d, "If-Match", etag), 412, "")
		props(d)["dt:state"] = "published"
		b.problem(b.do("PUT", "/collections/tanks/items/tank-1", d), 400, "/properties/dt:state")
		patched := b.want(b.do("PATCH", "/collections/tanks/items/tank-1", map[string]any{"properties": map[string]any{"title": nil, "level": 7}}), 200).json(t)
		if props(patched)["title"] != nil || props(patched)["level"] != 7.0 || props(patched)["datetime"] != "2024-06-01T10:00:00Z" {
			t.Fatalf("patched item: %v", props(patched))
		}

		// A FeatureCollection creates several items at once, or none.
		fc := map[string]any{"type": "FeatureCollection", "features": []any{itemDoc("fc-1"), itemDoc("fc-2")}}
		created := b.want(b.do("POST", "/collections/tanks/items", fc), 201).json(t)
		if len(created["features"].([]any)) != 2 {
			t.Fatalf("FeatureCollection create returned %v", created)
		}
		bad := itemDoc("fc-4")
		delete(bad, "geometry")
		fc = map[string]any{"type": "FeatureCollection", "features": []any{itemDoc("fc-3"), bad}}
		b.problem(b.do("POST", "/collections/tanks/items", fc), 400, "/features/1/geometry")
		b.problem(b.do("GET", "/collections/tanks/items/fc-3", nil), 404, "")

		// Body size limit.
		big := itemDoc("big")
		props(big)["blob"] = strings.Repeat("x", maxBody)
		b.problem(b.do("POST", "/collections/tanks/items", big), 413, "")
	})
}

func TestLifecycleAndVersions(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		b.want(b.do("POST", "/collections", collectionDoc("tanks")), 201)
		b.want(b.do("POST", "/collections/tanks/items", itemDoc("v1")), 201)
		pub := b.want(b.do("POST", "/collections/tanks/items/v1/lifecycle", map[string]any{"state": "published", "reason": "reviewed"}), 200).json(t)
		if props(pub)["dt:state"] != "published" || props(pub)["published"] == nil || props(pub)["dt:stateReason"] != "reviewed" {
			t.Fatalf("published item: %v", props(pub))
		}
		// Published content is immutable.
		p := b.problem(b.do("PUT", "/collections/tanks/items/v1", itemDoc("v1")), 409, "")
		if !strings.Contains(p["detail"].(string), "new version") {
			t.Fatalf("409 does not say to create a new version: %v", p["detail"])
		}
		b.problem(b.do("PATCH", "/collections/tanks/items/v1", map[string]any{"properties": map[string]any{"x": 1}}), 409, "")
		// A disallowed move lists the allowed ones.
		p = b.problem(b.do("POST", "/collections/tanks/items/v1/lifecycle", map[string]any{"state": "published"}), 409, "")
		if !strings.Contains(p["detail"].(string), "deprecated, archived, deleted") {
			t.Fatalf("409 does not list the allowed moves: %v", p["detail"])
		}
		b.problem(b.do("POST", "/collections/tanks/items/v1/lifecycle", map[string]any{"state": "frozen"}), 400, "")

		// A new version names its predecessor; publishing it deprecates v1.
		v2 := itemDoc("v2")
		v2["links"] = []map[string]any{{"rel": "predecessor-version", "href": b.base + "/collections/tanks/items/v1"}}
		b.want(b.do("POST", "/collections/tanks/items", v2), 201)
		b.want(b.do("POST", "/collections/tanks/items/v2/lifecycle", map[string]any{"state": "published"}), 200)
		old := b.want(b.do("GET", "/collections/tanks/items/v1", nil), 200).json(t)
		if props(old)["dt:state"] != "deprecated" || props(old)["deprecated"] != true || linkHref(t, old, "latest-version") != b.base+"/collections/tanks/items/v2" {
			t.Fatalf("predecessor after publishing v2: state %v deprecated %v links %v", props(old)["dt:state"], props(old)["deprecated"], old["links"])
		}
		bad := itemDoc("v3")
		bad["links"] = []map[string]any{{"rel": "predecessor-version", "href": b.base + "/collections/tanks/items/missing"}}
		b.problem(b.do("POST", "/collections/tanks/items", bad), 400, "/links")

		// Archive: left out of listings unless asked for.
		arch := b.want(b.do("POST", "/collections/tanks/items/v1/lifecycle", map[string]any{"state": "archived"}), 200).json(t)
		if props(arch)["unpublished"] == nil {
			t.Fatalf("archived item lacks unpublished: %v", props(arch))
		}
		list := b.want(b.do("GET", "/collections/tanks/items", nil), 200).json(t)
		if ids := featureIDs(list); !slices.Equal(ids, []string{"v2"}) {
			t.Fatalf("default listing %v, want [v2]", ids)
		}
		list = b.want(b.do("GET", "/collections/tanks/items?dt:state=archived,published", nil), 200).json(t)
		if ids := featureIDs(list); len(ids) != 2 {
			t.Fatalf("listing archived+published gave %v", ids)
		}
		b.problem(b.do("GET", "/collections/tanks/items?dt:state=frozen", nil), 400, "query.dt:state")

		// Delete leaves a tombstone: 410, and the id is not reused.
		etag := b.want(b.do("GET", "/collections/tanks/items/v2", nil), 200).Header.Get("ETag")
		b.problem(b.do("DELETE", "/collections/tanks/items/v2", nil, "If-Match", `"stale"`), 412, "")
		b.want(b.do("DELETE", "/collections/tanks/items/v2", nil, "If-Match", etag), 204)
		b.problem(b.do("GET", "/collections/tanks/items/v2", nil), 410, "")
		b.problem(b.do("DELETE", "/collections/tanks/items/v2", nil), 410, "")
		b.problem(b.do("POST", "/collections/tanks/items", itemDoc("v2")), 409, "")
		b.want(b.do("POST", "/collections/tanks/items", itemDoc("d1")), 201)
		b.want(b.do("POST", "/collections/tanks/items/d1/lifecycle", map[string]any{"state": "deleted"}), 204)
		list = b.want(b.do("GET", "/collections/tanks/items?dt:state=deleted", nil), 200).json(t)
		if ids := featureIDs(list); !slices.Equal(ids, []string{"v2", "d1"}) && !slices.Equal(ids, []string{"d1", "v2"}) {
			t.Fatalf("listing deleted items gave %v, want the tombstones of v2 and d1", ids)
		}
		for _, f := range list["features"].([]any) {
			if p := props(f.(map[string]any)); p["dt:state"] != "deleted" || len(p) != 4 {
				t.Fatalf("a tombstone carries only its state and times, got %v", p)
			}
		}

		// Every change wrote an event.
		evs, err := b.store.ListEvents(t.Context(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		for _, want := range []string{catalog.EventCollectionCreated, catalog.EventItemCreated, catalog.EventItemStateChanged, catalog.EventItemDeleted} {
			if !slices.Contains(types, want) {
				t.Fatalf("no %s event among %v", want, types)
			}
		}
	})
}

func featureIDs(fc map[string]any) []string {
	var ids []string
	for _, f := range fc["features"].([]any) {
		ids = append(ids, f.(map[string]any)["id"].(string))
	}
	return ids
}
