package openapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/internal/access"
)

// pagedCollectionIDs walks every page of GET /collections as the caller.
func pagedCollectionIDs(t *testing.T, b *bundle, auth []string) []string {
	t.Helper()
	var ids []string
	next := "/collections?limit=3"
	for pages := 0; next != ""; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		page := b.want(b.do("GET", strings.TrimPrefix(next, b.base), nil, auth...), 200).json(t)
		cols := page["collections"].([]any)
		if next != "/collections?limit=3" && len(cols) == 0 {
			t.Fatal("an empty page in the middle of a listing")
		}
		for _, c := range cols {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
		next = linkHref(t, page, "next")
	}
	return ids
}

// TestListingsShowWhatTheWardenAllows is the property: for random
// collections (owners, visibilities) and random read grants to users and
// groups, the collections each caller gets from paged listings are
// exactly those the authorizer lets it read one by one.
func TestListingsShowWhatTheWardenAllows(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		r := rand.New(rand.NewPCG(3, 4))
		users := []string{"u0", "u1", "u2", "u3", "u4"}
		groups := []string{"g0", "g1"}
		system := &access.Caller{User: "admin", Groups: []string{access.AdminGroup}}
		secrets := map[string]string{}
		for i, u := range users {
			_, secret, err := b.tokens.Mint(ctx, system, access.MintRequest{Name: u, User: u, Groups: []string{groups[i%2]}})
			if err != nil {
				t.Fatal(err)
			}
			secrets[u] = secret
		}
		visibilities := []string{"private", "private", "node", "public"}
		var ids []string
		for i := range 24 {
			id := fmt.Sprintf("col-%02d", i)
			if i%5 == 0 {
				id = fmt.Sprintf("eo-%02d", i)
			}
			ids = append(ids, id)
			doc := collectionDoc(id)
			doc["dt:visibility"] = visibilities[r.IntN(len(visibilities))]
			owner := bearer(secrets[users[r.IntN(len(users))]])
			b.want(b.do("POST", "/collections", doc, owner...), 201)
			for j := range 3 {
				b.want(b.do("POST", "/collections/"+id+"/items", itemDoc(fmt.Sprintf("it-%d", j)), owner...), 201)
			}
			b.want(b.do("POST", "/collections/"+id+"/items/it-0/lifecycle", map[string]any{"state": "published"}, owner...), 200)
		}
		for i := range 12 {
			subject := "user:" + users[r.IntN(len(users))]
			if r.IntN(3) == 0 {
				subject = "group:" + groups[r.IntN(len(groups))]
			}
			resource := "collections:" + ids[r.IntN(len(ids))]
			if i == 0 {
				resource = "collections:eo-<.*>"
			}
			actions := []string{"read"}
			if i%4 == 1 {
				// An editor of the collection's items sees its drafts.
				actions = []string{"read", "update"}
				resource = strings.Replace(resource, "collections:", "items:", 1) + "/<.*>"
				if _, err := b.policies.CreatePolicy(ctx, &access.Policy{ID: fmt.Sprintf("grant-%d-c", i), Subjects: []string{subject},
					Resources: []string{"collections:" + strings.TrimSuffix(strings.TrimPrefix(resource, "items:"), "/<.*>")}, Actions: []string{"read"}, Effect: access.Allow}); err != nil {
					t.Fatal(err)
				}
			}
			p := &access.Policy{ID: fmt.Sprintf("grant-%d", i), Subjects: []string{subject}, Resources: []string{resource}, Actions: actions, Effect: access.Allow}
			if _, err := b.policies.CreatePolicy(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		// Items shared one by one, some from collections the user may not
		// read otherwise.
		for i := range 6 {
			p := &access.Policy{ID: fmt.Sprintf("item-grant-%d", i), Subjects: []string{"user:" + users[r.IntN(len(users))]},
				Resources: []string{"items:" + ids[r.IntN(len(ids))] + "/it-" + strconv.Itoa(r.IntN(3))}, Actions: []string{"read"}, Effect: access.Allow}
			if _, err := b.policies.CreatePolicy(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		callers := map[string][]string{"anonymous": anonymous}
		for _, u := range users {
			callers[u] = bearer(secrets[u])
		}
		for name, auth := range callers {
			got := pagedCollectionIDs(t, b, auth)
			var want []string
			for _, id := range ids {
				if r := b.do("GET", "/collections/"+id, nil, auth...); r.StatusCode == 200 {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s lists %v but may read %v", name, got, want)
			}
			// Items: a listing shows exactly the items the caller may get.
			for _, id := range want {
				page := b.want(b.do("GET", "/collections/"+id+"/items?limit=100", nil, auth...), 200).json(t)
				listed := featureIDs(page)
				slices.Sort(listed)
				var readable []string
				for j := range 3 {
					item := fmt.Sprintf("it-%d", j)
					if r := b.do("GET", "/collections/"+id+"/items/"+item, nil, auth...); r.StatusCode == 200 {
						readable = append(readable, item)
					}
				}
				if !slices.Equal(listed, readable) {
					t.Errorf("%s lists items %v of %s but may read %v", name, listed, id, readable)
				}
			}
		}
		// Search: every page of /search together shows exactly the items
		// the caller may get one by one, in any collection.
		for name, auth := range callers {
			got := pagedSearchIDs(t, b, "/search?limit=7", auth)
			var want []string
			for _, id := range ids {
				for j := range 3 {
					item := fmt.Sprintf("it-%d", j)
					if r := b.do("GET", "/collections/"+id+"/items/"+item, nil, auth...); r.StatusCode == 200 {
						want = append(want, id+"/"+item)
					}
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s finds %v but may read %v", name, got, want)
			}
		}
		if all := pagedCollectionIDs(t, b, nil); len(all) != len(ids) {
			t.Errorf("the admin lists %d of %d collections", len(all), len(ids))
		}
	})
}

// pagedSearchIDs follows the next links of a GET search from first and
// returns collection/id of every item found.
func pagedSearchIDs(t *testing.T, b *bundle, first string, auth []string) []string {
	t.Helper()
	var out []string
	next := first
	for pages := 0; next != ""; pages++ {
		if pages > 200 {
			t.Fatal("paging does not end")
		}
		page := b.want(b.do("GET", strings.TrimPrefix(next, b.base), nil, auth...), 200).json(t)
		for _, f := range page["features"].([]any) {
			m := f.(map[string]any)
			out = append(out, m["collection"].(string)+"/"+m["id"].(string))
		}
		next = linkHref(t, page, "next")
	}
	return out
}

// TestSearchSeesCollectionChangesAtOnce: a search resolves the caller's
// readable collections from a short-lived cache; a change of visibility
// and a new collection made through this server show in the next search.
func TestSearchSeesCollectionChangesAtOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		found := func() []string {
			ids := pagedSearchIDs(t, b, "/search?limit=50", anonymous)
			slices.Sort(ids)
			return ids
		}
		doc := collectionDoc("hidden")
		doc["dt:visibility"] = "private"
		b.want(b.do("POST", "/collections", doc), 201)
		b.want(b.do("POST", "/collections/hidden/items", itemDoc("a")), 201)
		b.want(b.do("POST", "/collections/hidden/items/a/lifecycle", map[string]any{"state": "published"}), 200)
		if got := found(); len(got) != 0 {
			t.Fatalf("anonymous finds %v in a private collection", got)
		}
		b.want(b.do("PATCH", "/collections/hidden", map[string]any{"dt:visibility": "public"}), 200)
		if got := found(); !slices.Equal(got, []string{"hidden/a"}) {
			t.Fatalf("after the collection was made public anonymous finds %v, want [hidden/a]", got)
		}
		doc = collectionDoc("fresh")
		doc["dt:visibility"] = "public"
		b.want(b.do("POST", "/collections", doc), 201)
		b.want(b.do("POST", "/collections/fresh/items", itemDoc("b")), 201)
		b.want(b.do("POST", "/collections/fresh/items/b/lifecycle", map[string]any{"state": "published"}), 200)
		if got := found(); !slices.Equal(got, []string{"fresh/b", "hidden/a"}) {
			t.Fatalf("after a new public collection anonymous finds %v, want [fresh/b hidden/a]", got)
		}
		b.want(b.do("PATCH", "/collections/hidden", map[string]any{"dt:visibility": "private"}), 200)
		if got := found(); !slices.Equal(got, []string{"fresh/b"}) {
			t.Fatalf("after the collection was made private again anonymous finds %v, want [fresh/b]", got)
		}
	})
}
