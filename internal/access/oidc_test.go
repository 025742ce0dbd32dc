package access

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/oidctest"
)

func TestOIDC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	is := oidctest.New(t)
	o, err := NewOIDC(ctx, OIDCConfig{Issuer: is.Srv.URL, Audience: "twinstac", UserClaim: "preferred_username"})
	if err != nil {
		t.Fatal(err)
	}
	raw := is.Sign(t, is.Claims("ana", []string{"eo", "org/sub-team", "admins"}, "twinstac", time.Hour))
	if !LooksLikeJWT(raw) || LooksLikeJWT("tst_abc") {
		t.Fatal("LooksLikeJWT misjudges")
	}
	c, err := o.Authenticate(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "ana" || !slices.Equal(c.Groups, []string{"eo", "admins"}) || c.Via != "oidc" || !c.IsAdmin() {
		t.Fatalf("caller %+v", c)
	}
	// A single-string groups claim.
	if c, err := o.Authenticate(ctx, is.Sign(t, is.Claims("bob", "eo", "twinstac", time.Hour))); err != nil || !slices.Equal(c.Groups, []string{"eo"}) {
		t.Fatalf("string groups: %+v, %v", c, err)
	}
	bad := []struct {
		name, token, reason string
	}{
		{"expired", is.Sign(t, is.Claims("ana", nil, "twinstac", -time.Minute)), "expired"},
		{"other audience", is.Sign(t, is.Claims("ana", nil, "other-app", time.Hour)), "audience"},
		{"tampered", raw[:len(raw)-4] + "AAAA", "signature"},
		{"no user", is.Sign(t, map[string]any{"iss": is.Srv.URL, "aud": "twinstac", "exp": time.Now().Add(time.Hour).Unix()}), "user"},
	}
	for _, tc := range bad {
		_, err := o.Authenticate(ctx, tc.token)
		if catalog.ErrorCode(err) != catalog.EUNAUTHENTICATED || !strings.Contains(catalog.ErrorMessage(err), tc.reason) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Key rotation: a token signed with a new key verifies after the
	// keys are fetched again; the old key is no longer trusted.
	before := is.Fetches()
	is.Rotate(t, "k2")
	rotated := is.Sign(t, is.Claims("ana", nil, "twinstac", time.Hour))
	if _, err := o.Authenticate(ctx, rotated); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if is.Fetches() <= before {
		t.Fatal("the keys were not fetched again on rotation")
	}
	if _, err := o.Authenticate(ctx, raw); catalog.ErrorCode(err) != catalog.EUNAUTHENTICATED {
		t.Fatalf("token signed with the retired key: %v", err)
	}
	if _, err := NewOIDC(ctx, OIDCConfig{Issuer: is.Srv.URL}); catalog.ErrorCode(err) != catalog.EINVALID {
		t.Fatalf("no audience: %v", err)
	}
	if _, err := NewOIDC(ctx, OIDCConfig{Issuer: "http://127.0.0.1:1", Audience: "x"}); catalog.ErrorCode(err) != catalog.EUNAVAILABLE {
		t.Fatalf("unreachable issuer: %v", err)
	}
}
