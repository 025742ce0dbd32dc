package openapi_test

import (
	"context"
	"slices"
	"testing"

	"github.com/twinstac/twinstac/internal/access"
)

func TestQueryables(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		searchFixture(t, b)
		q := b.want(b.do("GET", "/collections/eo/queryables", nil), 200)
		if ct := q.Header.Get("Content-Type"); ct != "application/schema+json" {
			t.Fatalf("content type %q", ct)
		}
		doc := q.json(t)
		props := doc["properties"].(map[string]any)
		typeOf := func(name string) any {
			p, _ := props[name].(map[string]any)
			return p["type"]
		}
		if typeOf("platform") != "string" || typeOf("eo:cloud_cover") != "number" || typeOf("keywords") != "array" || typeOf("id") != "string" {
			t.Fatalf("derived queryables: %v", props)
		}
		if props["datetime"].(map[string]any)["format"] != "date-time" || doc["$id"] != b.base+"/collections/eo/queryables" {
			t.Fatalf("queryables document: %v", doc)
		}
		if items, _ := props["keywords"].(map[string]any)["items"].(map[string]any); items["type"] != "string" {
			t.Fatalf("array element type: %v", props["keywords"])
		}
		all := b.want(b.do("GET", "/queryables", nil), 200).json(t)
		if _, ok := all["properties"].(map[string]any)["platform"]; !ok || all["additionalProperties"] != true {
			t.Fatalf("catalog queryables: %v", all)
		}

		// Refined by an administrator, with an index.
		refined := map[string]any{"title": "Earth observation", "properties": map[string]any{
			"platform":       map[string]any{"type": "string", "title": "Platform", "enum": []string{"sentinel-2a", "sentinel-2b"}, "x-twinstac-index": true},
			"eo:cloud_cover": map[string]any{"type": "number", "minimum": 0, "maximum": 100, "x-twinstac-index": true},
		}}
		doc = b.want(b.do("PUT", "/collections/eo/queryables", refined), 200).json(t)
		p := doc["properties"].(map[string]any)["platform"].(map[string]any)
		if p["title"] != "Platform" || p["x-twinstac-index"] != true || doc["title"] != "Earth observation" {
			t.Fatalf("refined: %v", doc)
		}
		if _, ok := doc["properties"].(map[string]any)["keywords"]; !ok {
			t.Fatal("refining dropped a derived queryable")
		}
		fc := b.want(b.do("GET", "/search?filter=platform%3D%27sentinel-2b%27%20AND%20eo%3Acloud_cover%3C30&sortby=eo:cloud_cover", nil), 200).json(t)
		if got := featureIDs(fc); !slices.Equal(got, []string{"t1", "t3", "t5"}) {
			t.Fatalf("search after indexing: %v", got)
		}

		// Bad documents.
		b.problem(b.do("PUT", "/collections/eo/queryables", map[string]any{"properties": map[string]any{"x": 3}}), 400, "/properties/x")
		b.problem(b.do("PUT", "/collections/eo/queryables", map[string]any{"properties": map[string]any{
			"x": map[string]any{"type": "object", "x-twinstac-index": true}}}), 400, "/properties/x/type")
		b.problem(b.do("PUT", "/collections/eo/queryables", map[string]any{"properties": map[string]any{
			"id": map[string]any{"type": "string", "x-twinstac-index": true}}}), 400, "/properties/id/x-twinstac-index")
		b.problem(b.do("PUT", "/collections/nope/queryables", refined), 404, "")

		// Only administrators refine.
		system := &access.Caller{User: "admin", Groups: []string{access.AdminGroup}}
		_, secret, err := b.tokens.Mint(context.Background(), system, access.MintRequest{Name: "u", User: "ursula"})
		if err != nil {
			t.Fatal(err)
		}
		col := collectionDoc("mine")
		b.want(b.do("POST", "/collections", col, bearer(secret)...), 201)
		b.problem(b.do("PUT", "/collections/mine/queryables", refined, bearer(secret)...), 403, "")
		b.want(b.do("GET", "/collections/mine/queryables", nil, bearer(secret)...), 200)
	})
}
