package openapi_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/oidctest"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/openapi"
)

func bearer(secret string) []string { return []string{"Authorization", "Bearer " + secret} }

// minter returns what mints a token of a user (in groups) as the admin
// and gives its Authorization header.
func (b *bundle) minter(t *testing.T) func(user string, groups ...string) []string {
	system := &access.Caller{User: "admin", Groups: []string{access.AdminGroup}}
	return func(user string, groups ...string) []string {
		t.Helper()
		_, secret, err := b.tokens.Mint(t.Context(), system, access.MintRequest{Name: user, User: user, Groups: groups})
		if err != nil {
			t.Fatal(err)
		}
		return bearer(secret)
	}
}

// anonymous sends a request without a token.
var anonymous = []string{"Authorization", ""}

func TestTokensAndWhoami(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		anon := b.want(b.do("GET", "/auth/whoami", nil, anonymous...), 200).json(t)
		if anon["anonymous"] != true || anon["admin"] != false {
			t.Fatalf("anonymous whoami: %v", anon)
		}
		admin := bearer(adminSecret)
		me := b.want(b.do("GET", "/auth/whoami", nil, admin...), 200).json(t)
		if me["user"] != "admin" || me["admin"] != true || me["via"] != "admin-token" {
			t.Fatalf("admin whoami: %v", me)
		}
		// An admin mints a token for a user; the secret is shown once.
		r := b.want(b.do("POST", "/auth/tokens", map[string]any{"name": "ana's laptop", "user": "ana", "groups": []string{"eo"}}, admin...), 201)
		tok := r.json(t)
		secret, _ := tok["token"].(string)
		if !strings.HasPrefix(secret, "tst_") || tok["user"] != "ana" || r.Header.Get("Location") == "" {
			t.Fatalf("minted token: %v", tok)
		}
		ana := bearer(secret)
		who := b.want(b.do("GET", "/auth/whoami", nil, ana...), 200).json(t)
		subjects := toStrings(who["subjects"])
		if who["user"] != "ana" || who["admin"] != false || !slices.Contains(subjects, "group:eo") || !slices.Contains(subjects, "token:"+tok["id"].(string)) {
			t.Fatalf("ana's whoami: %v", who)
		}
		// Ana mints a read-only, expiring token of her own.
		exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		ro := b.want(b.do("POST", "/auth/tokens", map[string]any{"name": "ci", "scopes": []string{"read"}, "expires": exp}, ana...), 201).json(t)
		roAuth := bearer(ro["token"].(string))
		if w := b.want(b.do("GET", "/auth/whoami", nil, roAuth...), 200).json(t); !slices.Equal(toStrings(w["scopes"]), []string{"read"}) {
			t.Fatalf("read-only token scopes: %v", w["scopes"])
		}
		b.problem(b.do("POST", "/auth/tokens", map[string]any{"name": "wider"}, roAuth...), 403, "")
		b.problem(b.do("POST", "/auth/tokens", map[string]any{"name": "x", "user": "bob"}, ana...), 403, "")
		b.problem(b.do("POST", "/auth/tokens", map[string]any{"name": ""}, ana...), 400, "")
		b.problem(b.do("POST", "/auth/tokens", map[string]any{"name": "x", "scopes": []string{"everything"}}, ana...), 400, "")
		b.problem(b.do("POST", "/auth/tokens", map[string]any{"name": "x"}, anonymous...), 401, "")

		// Listing shows tokens without secrets.
		list := b.want(b.do("GET", "/auth/tokens", nil, ana...), 200)
		if strings.Contains(string(list.body), "tst_") || len(list.json(t)["tokens"].([]any)) != 2 {
			t.Fatalf("ana's token list: %s", list.body)
		}
		b.problem(b.do("GET", "/auth/tokens?user=admin", nil, ana...), 403, "")
		if all := b.want(b.do("GET", "/auth/tokens?user=*", nil, admin...), 200).json(t); len(all["tokens"].([]any)) < 2 {
			t.Fatalf("admin's list of all tokens: %v", all)
		}
		b.problem(b.do("GET", "/auth/tokens", nil, anonymous...), 401, "")

		// Revocation takes effect on the next request; other users' tokens look missing.
		bob := b.want(b.do("POST", "/auth/tokens", map[string]any{"name": "bob's", "user": "bob"}, admin...), 201).json(t)
		b.problem(b.do("DELETE", "/auth/tokens/"+bob["id"].(string), nil, ana...), 404, "")
		b.problem(b.do("DELETE", "/auth/tokens/"+tok["id"].(string), nil, roAuth...), 403, "")
		b.want(b.do("DELETE", "/auth/tokens/"+ro["id"].(string), nil, ana...), 204)
		p := b.problem(b.do("GET", "/auth/whoami", nil, roAuth...), 401, "")
		if !strings.Contains(p["detail"].(string), "revoked") {
			t.Fatalf("revoked token: %v", p["detail"])
		}
		// A bad token is a 401 everywhere, never anonymous access.
		for _, path := range []string{"/", "/collections", "/auth/whoami"} {
			r := b.do("GET", path, nil, bearer("tst_not-a-token")...)
			b.problem(r, 401, "")
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("401 on %s without WWW-Authenticate", path)
			}
		}
		b.problem(b.do("GET", "/", nil, "Authorization", "Basic abc"), 401, "")

		// Audit: token creation and revocation are events, without secrets.
		evs, err := b.store.ListEvents(t.Context(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var created, revoked int
		for _, e := range evs {
			if strings.Contains(string(e.Payload), "tst_") {
				t.Fatalf("an event carries a secret: %s", e.Payload)
			}
			switch e.Type {
			case "token.created":
				created++
			case "token.revoked":
				revoked++
			}
		}
		if created != 3 || revoked != 1 {
			t.Fatalf("%d token.created and %d token.revoked events, want 3 and 1", created, revoked)
		}
	})
}

func TestOIDCBearer(t *testing.T) {
	t.Parallel()
	is := oidctest.New(t)
	o, err := access.NewOIDC(t.Context(), access.OIDCConfig{Issuer: is.Srv.URL, Audience: "twinstac", UserClaim: "preferred_username"})
	if err != nil {
		t.Fatal(err)
	}
	b := setupWith(t, func(tb testing.TB) catalog.Store { return testdb.SQLite(tb) }, o)
	jwt := is.Sign(t, is.Claims("ana", []string{"eo"}, "twinstac", time.Hour))
	who := b.want(b.do("GET", "/auth/whoami", nil, bearer(jwt)...), 200).json(t)
	if who["user"] != "ana" || who["via"] != "oidc" || !slices.Equal(toStrings(who["groups"]), []string{"eo"}) {
		t.Fatalf("OIDC whoami: %v", who)
	}
	// An OIDC user mints an API token for scripts.
	tok := b.want(b.do("POST", "/auth/tokens", map[string]any{"name": "script"}, bearer(jwt)...), 201).json(t)
	if tok["user"] != "ana" {
		t.Fatalf("token minted by an OIDC user: %v", tok)
	}
	expired := is.Sign(t, is.Claims("ana", nil, "twinstac", -time.Minute))
	p := b.problem(b.do("GET", "/auth/whoami", nil, bearer(expired)...), 401, "")
	if !strings.Contains(p["detail"].(string), "expired") {
		t.Fatalf("expired OIDC token: %v", p["detail"])
	}
	b.problem(b.do("GET", "/auth/whoami", nil, bearer(is.Sign(t, is.Claims("ana", nil, "other", time.Hour)))...), 401, "")
}

func TestShares(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		mint := b.minter(t)
		owen, zed, team := mint("owen"), mint("zed"), mint("tess", "team")
		b.want(b.do("POST", "/collections", collectionDoc("twins"), owen...), 201)
		b.want(b.do("POST", "/collections/twins/items", itemDoc("tank"), owen...), 201)
		b.want(b.do("POST", "/collections/twins/items/tank/lifecycle", map[string]any{"state": "published"}, owen...), 200)
		b.problem(b.do("GET", "/collections/twins/items/tank", nil, zed...), 404, "")

		// An item share makes that item readable, not the collection.
		ish := b.want(b.do("POST", "/collections/twins/items/tank/shares", map[string]any{"subject": "user:zed", "actions": []string{"read"}}, owen...), 201).json(t)
		b.want(b.do("GET", "/collections/twins/items/tank", nil, zed...), 200)
		b.problem(b.do("GET", "/collections/twins", nil, zed...), 404, "")

		// A collection share to a group: members read it and list it.
		b.want(b.do("POST", "/collections/twins/shares", map[string]any{"subject": "group:team", "actions": []string{"read"}}, owen...), 201)
		b.want(b.do("GET", "/collections/twins", nil, team...), 200)
		if ids := pagedCollectionIDs(t, b, team); !slices.Equal(ids, []string{"twins"}) {
			t.Fatalf("team lists %v", ids)
		}
		list := b.want(b.do("GET", "/collections/twins/shares", nil, owen...), 200).json(t)
		if n := len(list["shares"].([]any)); n != 1 {
			t.Fatalf("collection shares: %d, want 1 (the item share is listed on the item)", n)
		}
		b.problem(b.do("POST", "/collections/twins/shares", map[string]any{"subject": "someone", "actions": []string{"read"}}, owen...), 400, "")
		b.problem(b.do("POST", "/collections/twins/shares", map[string]any{"subject": "user:zed", "actions": []string{"admin"}}, owen...), 400, "")
		b.problem(b.do("POST", "/collections/twins/shares", map[string]any{"subject": "user:zed", "actions": []string{"read"}}, zed...), 404, "")
		b.problem(b.do("POST", "/collections/twins/shares", map[string]any{"subject": "user:zed", "role": "editor", "actions": []string{"read"}}, owen...), 400, "/role")

		// A role: the editor may add drafts and see them.
		ed := mint("edna")
		b.want(b.do("POST", "/collections/twins/shares", map[string]any{"subject": "user:edna", "role": "editor"}, owen...), 201)
		b.want(b.do("POST", "/collections/twins/items", itemDoc("draft-by-edna"), ed...), 201)
		b.want(b.do("GET", "/collections/twins/items/draft-by-edna", nil, ed...), 200)
		b.problem(b.do("GET", "/collections/twins/items/draft-by-edna", nil, team...), 404, "")

		// Ending a share takes effect on the next request.
		b.want(b.do("DELETE", "/collections/twins/items/tank/shares/"+ish["id"].(string), nil, owen...), 204)
		b.problem(b.do("GET", "/collections/twins/items/tank", nil, zed...), 404, "")
		b.problem(b.do("DELETE", "/collections/twins/shares/"+ish["id"].(string), nil, owen...), 404, "")
	})
}

func TestRateLimitCreatorsAndAudit(t *testing.T) {
	t.Parallel()
	b := setupConfig(t, func(tb testing.TB) catalog.Store { return testdb.SQLite(tb) }, nil,
		openapi.Config{RateLimit: openapi.RateLimit{Rate: 0.5, Burst: 3}, CollectionCreators: "curators", PrivateMetrics: true})
	ctx := t.Context()
	mint := b.minter(t)
	ana, cora := mint("ana"), mint("cora", "curators")
	// Only curators (and admins) create collections; the refusal is audited.
	p := b.problem(b.do("POST", "/collections", collectionDoc("a"), ana...), 403, "")
	if !strings.Contains(p["detail"].(string), "curators") {
		t.Fatalf("403 does not name the group: %v", p["detail"])
	}
	b.want(b.do("POST", "/collections", collectionDoc("b"), cora...), 201)
	b.want(b.do("POST", "/collections", collectionDoc("c")), 201) // the admin
	// Ana's token has a burst of 3 (one already used above).
	b.want(b.do("GET", "/", nil, ana...), 200)
	b.want(b.do("GET", "/", nil, ana...), 200)
	r := b.do("GET", "/", nil, ana...)
	b.problem(r, 429, "")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("429 without a useful Retry-After: %q", ra)
	}
	// Other tokens and the admin have buckets of their own.
	b.want(b.do("GET", "/", nil, cora...), 200)
	// Private metrics: admins only.
	if r := b.do("GET", "/metrics", nil, cora...); r.StatusCode != 403 {
		t.Fatalf("metrics for a non-admin: %d", r.StatusCode)
	}
	if r := b.do("GET", "/metrics", nil, anonymous...); r.StatusCode != 401 {
		t.Fatalf("metrics for anonymous: %d", r.StatusCode)
	}
	b.want(b.do("GET", "/metrics", nil), 200)
	for range 5 {
		b.want(b.do("GET", "/", nil), 200)
	}
	evs, err := b.store.ListEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range evs {
		if e.Type == openapi.EventAccessDenied {
			denied++
			if !strings.Contains(string(e.Payload), "user:ana") {
				t.Fatalf("denial event lacks the subject: %s", e.Payload)
			}
		}
	}
	if denied != 1 {
		t.Fatalf("%d access.denied events, want 1", denied)
	}
}

func TestStoredBytesQuota(t *testing.T) {
	t.Parallel()
	eachStoreFull(t, 10000, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		system := &access.Caller{User: "admin", Groups: []string{access.AdminGroup}}
		_, secret, err := b.tokens.Mint(ctx, system, access.MintRequest{Name: "owen", User: "owen"})
		if err != nil {
			t.Fatal(err)
		}
		owen := bearer(secret)
		b.want(b.do("POST", "/collections", collectionDoc("c"), owen...), 201)
		b.want(b.do("POST", "/collections/c/items", itemDoc("a"), owen...), 201)
		b.want(b.do("POST", "/collections/c/items", itemDoc("b"), owen...), 201)
		six := strings.Repeat("x", 6000)
		b.want(b.do("PUT", "/collections/c/items/a/assets/data", six, owen...), 200)
		// Replacing a file frees its old size first.
		b.want(b.do("PUT", "/collections/c/items/a/assets/data", six, owen...), 200)
		p := b.problem(b.do("PUT", "/collections/c/items/b/assets/data", six, owen...), 413, "")
		if !strings.Contains(p["detail"].(string), "10000") || !strings.Contains(p["detail"].(string), "6000") {
			t.Fatalf("413 does not give the limit and the use: %v", p["detail"])
		}
		q := b.want(b.do("GET", "/quotas/owen", nil, owen...), 200).json(t)["stored_bytes"].(map[string]any)
		if q["limit"] != 10000.0 || q["used"] != 6000.0 {
			t.Fatalf("quota %v", q)
		}
		// Admins are exempt, and may raise a user's limit.
		b.want(b.do("PUT", "/collections/c/items/b/assets/admin", six), 200)
		b.want(b.do("PUT", "/quotas/owen", map[string]any{"stored_bytes": 100000}), 200)
		b.want(b.do("PUT", "/collections/c/items/b/assets/data", six, owen...), 200)
		b.problem(b.do("PUT", "/quotas/owen", map[string]any{"stored_bytes": 1}, owen...), 403, "")
		// Deleting an item frees what it stored.
		b.want(b.do("DELETE", "/collections/c/items/a", nil, owen...), 204)
		q = b.want(b.do("GET", "/quotas/owen", nil, owen...), 200).json(t)["stored_bytes"].(map[string]any)
		if q["used"] != 12000.0 || q["limit"] != 100000.0 {
			t.Fatalf("after delete: %v", q)
		}
		// null returns to the node default.
		b.want(b.do("PUT", "/quotas/owen", map[string]any{"stored_bytes": nil}), 200)
		if q := b.want(b.do("GET", "/quotas/owen", nil), 200).json(t)["stored_bytes"].(map[string]any); q["limit"] != 10000.0 {
			t.Fatalf("after reset: %v", q)
		}
	})
}

// TestItemsOwnedByTheirMaker: an item may carry its own owner (results
// and snapshots belong to who ran the job), who reads and edits it in a
// collection they cannot otherwise read; only admins (and the server)
// name such an owner.
func TestItemsOwnedByTheirMaker(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		system := &access.Caller{User: "admin", Groups: []string{access.AdminGroup}}
		_, secret, err := b.tokens.Mint(ctx, system, access.MintRequest{Name: "rita", User: "rita"})
		if err != nil {
			t.Fatal(err)
		}
		rita := bearer(secret)
		b.want(b.do("POST", "/collections", collectionDoc("results")), 201)
		mine := itemDoc("run-1")
		props(mine)["dt:owner"] = "rita"
		b.want(b.do("POST", "/collections/results/items", mine), 201)
		b.want(b.do("POST", "/collections/results/items", itemDoc("run-2")), 201)
		b.want(b.do("GET", "/collections/results/items/run-1", nil, rita...), 200)
		b.problem(b.do("GET", "/collections/results/items/run-2", nil, rita...), 404, "")
		b.problem(b.do("GET", "/collections/results", nil, rita...), 404, "")
		b.want(b.do("PATCH", "/collections/results/items/run-1", map[string]any{"properties": map[string]any{"note": "ok"}}, rita...), 200)
		// The owner cannot be changed by an edit, nor named by others.
		got := b.want(b.do("PATCH", "/collections/results/items/run-1", map[string]any{"properties": map[string]any{"dt:owner": "zed"}}), 200).json(t)
		if props(got)["dt:owner"] != "rita" {
			t.Fatalf("owner after edit: %v", props(got)["dt:owner"])
		}
		b.want(b.do("POST", "/collections", collectionDoc("own"), rita...), 201)
		theirs := itemDoc("x")
		props(theirs)["dt:owner"] = "zed"
		b.problem(b.do("POST", "/collections/own/items", theirs, rita...), 400, "/properties/dt:owner")
	})
}
