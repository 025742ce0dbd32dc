package openapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// searchFixture stores collection eo with ten published items (t0..t9)
// of two platforms and rising cloud cover, one archived item and one
// draft.
func searchFixture(t *testing.T, b *bundle) {
	t.Helper()
	b.want(b.do("POST", "/collections", collectionDoc("eo")), 201)
	for i := range 12 {
		doc := itemDoc(fmt.Sprintf("t%d", i))
		p := doc["properties"].(map[string]any)
		p["datetime"] = fmt.Sprintf("2024-06-%02dT10:00:00Z", i+1)
		p["platform"] = []string{"sentinel-2a", "sentinel-2b"}[i%2]
		p["eo:cloud_cover"] = float64(i * 5)
		p["keywords"] = []string{"flood", "urban"}[:1+i%2]
		if title, ok := map[int]string{1: "Flood model of Zürich", 2: "flood-model, Zurich", 3: "Urban heat island"}[i]; ok {
			p["title"] = title
		}
		doc["geometry"] = map[string]any{"type": "Point", "coordinates": []float64{float64(i), 48}}
		doc["bbox"] = []float64{float64(i), 48, float64(i), 48}
		b.want(b.do("POST", "/collections/eo/items", doc), 201)
		switch {
		case i < 10:
			b.want(b.do("POST", "/collections/eo/items/"+doc["id"].(string)+"/lifecycle", map[string]any{"state": "published"}), 200)
		case i == 10:
			b.want(b.do("POST", "/collections/eo/items/t10/lifecycle", map[string]any{"state": "published"}), 200)
			b.want(b.do("POST", "/collections/eo/items/t10/lifecycle", map[string]any{"state": "archived"}), 200)
		}
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		searchFixture(t, b)
		get := func(query string) map[string]any {
			t.Helper()
			return b.want(b.do("GET", "/search?"+query, nil), 200).json(t)
		}

		// Default: newest first, drafts shown to the admin, archived left out.
		fc := get("limit=100")
		if got := featureIDs(fc); !slices.Equal(got, []string{"t11", "t9", "t8", "t7", "t6", "t5", "t4", "t3", "t2", "t1", "t0"}) {
			t.Fatalf("default search: %v", got)
		}
		if fc["numberMatched"] != float64(11) || fc["numberReturned"] != float64(11) {
			t.Fatalf("numberMatched %v numberReturned %v", fc["numberMatched"], fc["numberReturned"])
		}
		// A filter on dt:state opts into archived items.
		if got := featureIDs(get("filter=" + url.QueryEscape(`"dt:state" = 'archived'`))); !slices.Equal(got, []string{"t10"}) {
			t.Fatalf("archived: %v", got)
		}
		if got := featureIDs(get("dt:state=archived,published&limit=3")); !slices.Equal(got, []string{"t10", "t9", "t8"}) {
			t.Fatalf("dt:state parameter: %v", got)
		}

		// CQL2-Text in GET, sorted by a property, both spellings.
		fc = get("filter=" + url.QueryEscape("eo:cloud_cover < 30 AND platform = 'sentinel-2b'") + "&sortby=-properties.eo:cloud_cover")
		if got := featureIDs(fc); !slices.Equal(got, []string{"t5", "t3", "t1"}) {
			t.Fatalf("text filter sorted: %v", got)
		}
		// CQL2-JSON in POST.
		body := map[string]any{
			"collections": []string{"eo"},
			"filter-lang": "cql2-json",
			"filter": map[string]any{"op": "and", "args": []any{
				map[string]any{"op": "a_contains", "args": []any{map[string]any{"property": "keywords"}, []string{"urban"}}},
				map[string]any{"op": "s_intersects", "args": []any{map[string]any{"property": "geometry"},
					map[string]any{"bbox": []float64{2.5, 40, 7.5, 50}}}},
			}},
			"sortby": []map[string]any{{"field": "datetime", "direction": "asc"}},
		}
		fc = b.want(b.do("POST", "/search", body), 200).json(t)
		if got := featureIDs(fc); !slices.Equal(got, []string{"t3", "t5", "t7"}) {
			t.Fatalf("JSON filter: %v", got)
		}
		// A text filter in a POST body.
		fc = b.want(b.do("POST", "/search", map[string]any{"filter": "platform = 'sentinel-2a' AND eo:cloud_cover >= 40", "filter-lang": "cql2-text"}), 200).json(t)
		if got := featureIDs(fc); !slices.Equal(got, []string{"t8"}) {
			t.Fatalf("text filter in POST: %v", got)
		}
		// bbox, intersects, datetime, ids.
		if got := featureIDs(get("bbox=0.5,47,3.5,49")); !slices.Equal(got, []string{"t3", "t2", "t1"}) {
			t.Fatalf("bbox: %v", got)
		}
		fc = b.want(b.do("POST", "/search", map[string]any{"intersects": map[string]any{"type": "Polygon",
			"coordinates": [][][]float64{{{3.5, 47}, {5.5, 47}, {5.5, 49}, {3.5, 49}, {3.5, 47}}}}}), 200).json(t)
		if got := featureIDs(fc); !slices.Equal(got, []string{"t5", "t4"}) {
			t.Fatalf("intersects: %v", got)
		}
		if got := featureIDs(get("datetime=" + url.QueryEscape("2024-06-03T00:00:00Z/2024-06-05T00:00:00Z"))); !slices.Equal(got, []string{"t3", "t2"}) {
			t.Fatalf("datetime: %v", got)
		}
		if got := featureIDs(get("ids=t1,t7,nope&collections=eo")); !slices.Equal(got, []string{"t7", "t1"}) {
			t.Fatalf("ids: %v", got)
		}
		// The same parameters on a collection's items.
		fc = b.want(b.do("GET", "/collections/eo/items?filter="+url.QueryEscape("eo:cloud_cover BETWEEN 10 AND 20")+"&sortby=id", nil), 200).json(t)
		if got := featureIDs(fc); !slices.Equal(got, []string{"t2", "t3", "t4"}) {
			t.Fatalf("items filter: %v", got)
		}
		if linkHref(t, fc, "collection") == "" {
			t.Fatal("an item page has no collection link")
		}
	})
}

func TestSearchPagingLinks(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		searchFixture(t, b)
		want := []string{"t11", "t9", "t8", "t7", "t6", "t5", "t4", "t3", "t2", "t1", "t0"}

		// GET: next to the end, prev back to the start.
		var got []string
		var pages []map[string]any
		next := "/search?limit=3"
		for next != "" {
			page := b.want(b.do("GET", strings.TrimPrefix(next, b.base), nil), 200).json(t)
			pages = append(pages, page)
			got = append(got, featureIDs(page)...)
			next = linkHref(t, page, "next")
		}
		if !slices.Equal(got, want) {
			t.Fatalf("GET pages: %v", got)
		}
		prev := linkHref(t, pages[len(pages)-1], "prev")
		for i := len(pages) - 2; i >= 0; i-- {
			page := b.want(b.do("GET", strings.TrimPrefix(prev, b.base), nil), 200).json(t)
			if !slices.Equal(featureIDs(page), featureIDs(pages[i])) {
				t.Fatalf("prev page %d: %v, want %v", i, featureIDs(page), featureIDs(pages[i]))
			}
			prev = linkHref(t, page, "prev")
		}
		if prev != "" {
			t.Fatal("the first page has a prev link")
		}

		// POST: next links carry method, body and merge.
		body := map[string]any{"limit": 4, "filter": map[string]any{"op": "<>", "args": []any{map[string]any{"property": "platform"}, "x"}}}
		got = nil
		for n := 0; ; n++ {
			page := b.want(b.do("POST", "/search", body), 200).json(t)
			got = append(got, featureIDs(page)...)
			var nl map[string]any
			for _, l := range page["links"].([]any) {
				if m := l.(map[string]any); m["rel"] == "next" {
					nl = m
				}
			}
			if nl == nil {
				break
			}
			if nl["method"] != "POST" || nl["merge"] != true || nl["href"] != b.base+"/search" {
				t.Fatalf("next link %v", nl)
			}
			for k, v := range nl["body"].(map[string]any) {
				body[k] = v
			}
			if n > 5 {
				t.Fatal("paging does not end")
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("POST pages: %v", got)
		}
	})
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		searchFixture(t, b)
		for _, tc := range []struct {
			name    string
			method  string
			path    string
			body    any
			pointer string
			detail  string
		}{
			{"text syntax", "GET", "/search?filter=" + url.QueryEscape("platform = = 'x'"), nil, "query.filter:", "filter"},
			{"unknown function", "GET", "/search?filter=" + url.QueryEscape("Buffer(geometry, 3) = 1"), nil, "query.filter", "Buffer"},
			{"json type error", "POST", "/search", map[string]any{"filter": map[string]any{"op": "and", "args": []any{
				map[string]any{"op": "=", "args": []any{map[string]any{"property": "a"}, 1}},
				map[string]any{"op": "<", "args": []any{"a", 5}},
			}}}, "/filter/args/1", ""},
			{"string filter declared json", "POST", "/search", map[string]any{"filter": "a = 1", "filter-lang": "cql2-json"}, "/filter", "cql2-text"},
			{"filter-crs", "GET", "/search?filter=a%3D1&filter-crs=EPSG:4326", nil, "query.filter-crs", "CRS84"},
			{"limit", "GET", "/search?limit=10001", nil, "", ""},
			{"token", "GET", "/search?token=garbage", nil, "query.token", "token"},
			{"token of another sort", "GET", "/search?sortby=id&token=" + url.QueryEscape(firstNextToken(t, b)), nil, "query.token", "sort"},
			{"bbox", "GET", "/search?bbox=1,2,3", nil, "query.bbox", "4 or 6"},
			{"bbox south above north", "POST", "/search", map[string]any{"bbox": []float64{0, 10, 1, 5}}, "/bbox", "south"},
			{"intersects", "POST", "/search", map[string]any{"intersects": map[string]any{"type": "Point", "coordinates": []float64{500, 1}}}, "/intersects", "longitude"},
			{"sort by geometry", "GET", "/search?sortby=geometry", nil, "query.sortby", "geometry"},
			{"datetime", "GET", "/search?datetime=yesterday", nil, "query.datetime", "RFC 3339"},
			{"deep filter", "GET", "/search?filter=" + url.QueryEscape(strings.Repeat("(", 400)+"a=1"+strings.Repeat(")", 400)), nil, "query.filter", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := b.do(tc.method, tc.path, tc.body)
				if r.StatusCode != 400 {
					t.Fatalf("%d, want 400: %s", r.StatusCode, r.body)
				}
				var p map[string]any
				if err := json.Unmarshal(r.body, &p); err != nil {
					t.Fatal(err)
				}
				raw := string(r.body)
				if tc.pointer != "" && !strings.Contains(raw, `"`+tc.pointer) {
					t.Fatalf("problem does not point at %q: %s", tc.pointer, raw)
				}
				if tc.detail != "" && !strings.Contains(raw, tc.detail) {
					t.Fatalf("problem does not mention %q: %s", tc.detail, raw)
				}
			})
		}
	})
}

// firstNextToken returns the token of the next link of a default search.
func firstNextToken(t *testing.T, b *bundle) string {
	t.Helper()
	page := b.want(b.do("GET", "/search?limit=2", nil), 200).json(t)
	u, err := url.Parse(linkHref(t, page, "next"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func TestSearchFields(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		searchFixture(t, b)
		keys := func(m map[string]any) []string {
			var ks []string
			for k := range m {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			return ks
		}
		first := func(fc map[string]any) map[string]any { return fc["features"].([]any)[0].(map[string]any) }

		// Include only: exactly those (and the id), both property spellings.
		f := first(b.want(b.do("GET", "/search?limit=1&fields=eo:cloud_cover,properties.platform,links", nil), 200).json(t))
		if got := keys(f); !slices.Equal(got, []string{"id", "links", "properties", "type"}) {
			t.Fatalf("include: members %v", got)
		}
		if got := keys(props(f)); !slices.Equal(got, []string{"eo:cloud_cover", "platform"}) {
			t.Fatalf("include: properties %v", got)
		}
		// Exclude only (POST, include missing): everything else.
		f = first(b.want(b.do("POST", "/search", map[string]any{"limit": 1, "fields": map[string]any{"exclude": []string{"geometry", "properties.keywords"}}}), 200).json(t))
		if _, ok := f["geometry"]; ok {
			t.Fatal("geometry not excluded")
		}
		if _, ok := props(f)["keywords"]; ok || props(f)["platform"] == nil || f["assets"] == nil {
			t.Fatalf("exclude: %v", keys(props(f)))
		}
		// Empty: the default set of a valid item.
		f = first(b.want(b.do("POST", "/search", map[string]any{"limit": 1, "fields": map[string]any{}}), 200).json(t))
		if got := keys(f); !slices.Equal(got, []string{"assets", "bbox", "collection", "geometry", "id", "links", "properties", "stac_version", "type"}) {
			t.Fatalf("default: members %v", got)
		}
		if got := keys(props(f)); !slices.Equal(got, []string{"datetime"}) {
			t.Fatalf("default: properties %v", got)
		}
		// Include a field, exclude one inside it; include wins for the same path.
		f = first(b.want(b.do("POST", "/search", map[string]any{"limit": 1, "fields": map[string]any{
			"include": []string{"properties", "assets"}, "exclude": []string{"properties.platform", "assets"}}}), 200).json(t))
		if _, ok := props(f)["platform"]; ok || props(f)["eo:cloud_cover"] == nil || f["assets"] == nil {
			t.Fatalf("nested: %v", f)
		}
		// The same on a collection's items.
		f = first(b.want(b.do("GET", "/collections/eo/items?limit=1&fields=-assets,-links", nil), 200).json(t))
		if _, ok := f["assets"]; ok {
			t.Fatal("items listing: assets not excluded")
		}
	})
}

func TestAggregate(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		searchFixture(t, b)
		byName := func(ac map[string]any) map[string]map[string]any {
			out := map[string]map[string]any{}
			for _, a := range ac["aggregations"].([]any) {
				m := a.(map[string]any)
				out[m["name"].(string)] = m
			}
			return out
		}
		ac := b.want(b.do("GET", "/aggregate?aggregations=total_count,platform_frequency,keywords_frequency,datetime_frequency,cloud_cover_frequency,spatial_extent,datetime_min,datetime_max&filter="+
			url.QueryEscape("eo:cloud_cover < 40"), nil), 200).json(t)
		if ac["type"] != "AggregationCollection" {
			t.Fatalf("type %v", ac["type"])
		}
		a := byName(ac)
		// t0..t7 have cloud cover below 40 (t11 is a draft the admin sees: 55).
		if a["total_count"]["value"] != float64(8) {
			t.Fatalf("total_count %v", a["total_count"])
		}
		buckets := func(name string) map[string]float64 {
			out := map[string]float64{}
			for _, bk := range a[name]["buckets"].([]any) {
				m := bk.(map[string]any)
				out[m["key"].(string)] = m["frequency"].(float64)
			}
			return out
		}
		if got := buckets("platform_frequency"); got["sentinel-2a"] != 4 || got["sentinel-2b"] != 4 {
			t.Fatalf("platform_frequency %v", got)
		}
		if got := buckets("keywords_frequency"); got["flood"] != 8 || got["urban"] != 4 {
			t.Fatalf("keywords_frequency %v", got)
		}
		if got := buckets("datetime_frequency"); len(got) != 8 || a["datetime_frequency"]["data_type"] != "interval_day" {
			t.Fatalf("datetime_frequency %v", a["datetime_frequency"])
		}
		if got := buckets("cloud_cover_frequency"); got["0-10"] != 2 || got["30-40"] != 2 {
			t.Fatalf("cloud_cover_frequency %v", got)
		}
		if ext := a["spatial_extent"]["value"].([]any); ext[0] != float64(0) || ext[2] != float64(7) {
			t.Fatalf("spatial_extent %v", ext)
		}
		if a["datetime_min"]["value"] != "2024-06-01T10:00:00Z" || a["datetime_max"]["value"] != "2024-06-08T10:00:00Z" {
			t.Fatalf("datetime range %v %v", a["datetime_min"], a["datetime_max"])
		}
		// POST, a collection's aggregate, the lists, and errors.
		ac = b.want(b.do("POST", "/aggregate", map[string]any{"collections": []string{"eo"}, "aggregations": []string{"dt:state_frequency"},
			"dt:state": []string{"archived", "published"}}), 200).json(t)
		if got := byName(ac)["dt:state_frequency"]["buckets"].([]any); len(got) != 2 {
			t.Fatalf("dt:state_frequency %v", got)
		}
		ac = b.want(b.do("GET", "/collections/eo/aggregate?aggregations=datetime_frequency&datetime_frequency_interval=month", nil), 200).json(t)
		if got := byName(ac)["datetime_frequency"]["buckets"].([]any); len(got) != 1 {
			t.Fatalf("monthly %v", got)
		}
		list := b.want(b.do("GET", "/aggregations", nil), 200).json(t)
		if len(list["aggregations"].([]any)) < 8 {
			t.Fatalf("aggregations %v", list)
		}
		b.want(b.do("GET", "/collections/eo/aggregations", nil), 200)
		b.problem(b.do("GET", "/aggregate?aggregations=nonsense", nil), 400, "query.aggregations")
		b.problem(b.do("POST", "/aggregate", map[string]any{"aggregations": []string{"geometry_frequency"}}), 400, "/aggregations")
		b.problem(b.do("GET", "/collections/nope/aggregate", nil), 404, "")
	})
}

func TestFreeTextAndCollectionSearch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		searchFixture(t, b)
		get := func(q string) []string {
			t.Helper()
			ids := featureIDs(b.want(b.do("GET", "/search?q="+url.QueryEscape(q), nil), 200).json(t))
			slices.Sort(ids)
			return ids
		}
		if got := get("FLOOD MODEL"); !slices.Equal(got, []string{"t1", "t2"}) {
			t.Fatalf("phrase: %v", got)
		}
		if got := get("model zurich,heat"); !slices.Equal(got, []string{"t2", "t3"}) {
			t.Fatalf("two terms: %v", got)
		}
		// Keywords count too (t0..t11 have "flood"; "urban" the odd ones).
		if got := get("urban"); len(got) != 6 {
			t.Fatalf("keywords: %v", got)
		}
		fc := b.want(b.do("POST", "/search", map[string]any{"q": []string{"zürich"}}), 200).json(t)
		if got := featureIDs(fc); !slices.Equal(got, []string{"t1"}) {
			t.Fatalf("POST q: %v", got)
		}
		b.problem(b.do("GET", "/search?q=%21%21", nil), 400, "query.q")

		// Collection search.
		for _, c := range []map[string]any{
			{"id": "alps", "title": "Alpine glacier twins", "bbox": []float64{5, 45, 16, 48}, "from": "2020-01-01T00:00:00Z", "kw": "glacier"},
			{"id": "pacific", "title": "Pacific storm surge", "bbox": []float64{170, -30, -170, 10}, "from": "2023-01-01T00:00:00Z", "kw": "flood"},
		} {
			doc := collectionDoc(c["id"].(string))
			doc["title"] = c["title"]
			doc["keywords"] = []string{c["kw"].(string)}
			doc["extent"] = map[string]any{
				"spatial":  map[string]any{"bbox": [][]float64{c["bbox"].([]float64)}},
				"temporal": map[string]any{"interval": [][]any{{c["from"], nil}}},
			}
			b.want(b.do("POST", "/collections", doc), 201)
		}
		colls := func(q string) []string {
			t.Helper()
			page := b.want(b.do("GET", "/collections?"+q, nil), 200).json(t)
			var ids []string
			for _, c := range page["collections"].([]any) {
				ids = append(ids, c.(map[string]any)["id"].(string))
			}
			return ids
		}
		if got := colls("bbox=175,0,179,5"); !slices.Equal(got, []string{"eo", "pacific"}) {
			t.Fatalf("bbox across the antimeridian: %v", got)
		}
		if got := colls("q=glacier&datetime=2021-01-01T00:00:00Z/.."); !slices.Equal(got, []string{"alps"}) {
			t.Fatalf("q and datetime: %v", got)
		}
		if got := colls("datetime=../2021-06-01T00:00:00Z"); !slices.Equal(got, []string{"alps", "eo"}) {
			t.Fatalf("datetime: %v", got)
		}
		if got := colls("filter=" + url.QueryEscape("title LIKE '%storm%' OR id = 'eo'")); !slices.Equal(got, []string{"eo", "pacific"}) {
			t.Fatalf("filter: %v", got)
		}
		// Paging through a search.
		var all []string
		next := "/collections?limit=1&q=" + url.QueryEscape("flood,glacier,twins")
		for next != "" {
			page := b.want(b.do("GET", strings.TrimPrefix(next, b.base), nil), 200).json(t)
			for _, c := range page["collections"].([]any) {
				all = append(all, c.(map[string]any)["id"].(string))
			}
			next = linkHref(t, page, "next")
		}
		if !slices.Equal(all, []string{"alps", "eo", "pacific"}) { // eo: "Water-tank twins"
			t.Fatalf("paged collection search: %v", all)
		}
	})
}

// TestItemRenderingKeepsOddJSON: stored documents keep the client's
// spacing inside member values; pages built from them stay valid JSON.
func TestItemRenderingKeepsOddJSON(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		b.want(b.do("POST", "/collections", collectionDoc("odd")), 201)
		raw := `{"type":"Feature","stac_version":"1.0.0","id":"o1","geometry":null,"properties":{"datetime":"2024-01-01T00:00:00Z"},` +
			`"links": [ ],"assets": { }}`
		b.want(b.do("POST", "/collections/odd/items", raw), 201)
		raw = `{"type":"Feature","stac_version":"1.0.0","id":"o2","geometry":null,"properties":{"datetime":"2024-01-01T00:00:00Z"},` +
			`"links": [ {"rel" : "license", "href":"https://example.com/l"} ]}`
		b.want(b.do("POST", "/collections/odd/items", raw), 201)
		fc := b.want(b.do("GET", "/collections/odd/items", nil), 200).json(t)
		for _, f := range fc["features"].([]any) {
			links := f.(map[string]any)["links"].([]any)
			if n := len(links); n != 4 && n != 5 {
				t.Fatalf("links %v", links)
			}
		}
	})
}
