package openapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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
			owner := users[r.IntN(len(users))]
			b.want(b.do("POST", "/collections", doc, bearer(secrets[owner])...), 201)
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
			p := &access.Policy{ID: fmt.Sprintf("grant-%d", i), Subjects: []string{subject}, Resources: []string{resource}, Actions: []string{"read"}, Effect: access.Allow}
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
		}
		if all := pagedCollectionIDs(t, b, nil); len(all) != len(ids) {
			t.Errorf("the admin lists %d of %d collections", len(all), len(ids))
		}
	})
}
