package access

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/twinstac/twinstac/catalog"
)

// OIDCConfig says which OpenID Connect issuer (GitLab, Keycloak, any)
// this node trusts and how its tokens name users and groups.
type OIDCConfig struct {
	// Issuer is the issuer URL; its discovery document gives the keys.
	Issuer string
	// Audience is the audience ("aud") tokens must carry.
	Audience string
	// UserClaim names the user (default "sub"; GitLab users often
	// prefer "nickname", Keycloak "preferred_username").
	UserClaim string
	// GroupsClaim holds the groups, a list or a single string
	// (default "groups").
	GroupsClaim string
}

// OIDC verifies OIDC access and ID tokens (JWTs) with the issuer's keys,
// which go-oidc fetches from the JWKS, caches, and fetches again when a
// token names a key it does not know (key rotation).
type OIDC struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
}

// NewOIDC discovers the issuer. Codes: EUNAVAILABLE (discovery failed).
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.UserClaim == "" {
		cfg.UserClaim = "sub"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.Audience == "" {
		return nil, catalog.Errorf(catalog.EINVALID, "an OIDC audience is required, so that tokens issued for other applications are refused")
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, &catalog.Error{Code: catalog.EUNAVAILABLE, Message: fmt.Sprintf("the OIDC issuer %s cannot be discovered", cfg.Issuer), Err: err}
	}
	// The key set is fetched with a context of its own, not the start-up
	// one, which ends.
	v := p.VerifierContext(context.WithoutCancel(ctx), &oidc.Config{ClientID: cfg.Audience})
	return &OIDC{cfg: cfg, verifier: v}, nil
}

// LooksLikeJWT reports whether a bearer secret has the shape of a JWT
// (three base64url parts), as opposed to a node-issued token.
func LooksLikeJWT(s string) bool {
	return strings.Count(s, ".") == 2 && !strings.HasPrefix(s, TokenPrefix)
}

// Authenticate verifies a JWT (signature, issuer, audience, expiry) and
// returns its caller. Codes: EUNAUTHENTICATED.
func (o *OIDC) Authenticate(ctx context.Context, raw string) (*Caller, error) {
	tok, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, &catalog.Error{Code: catalog.EUNAUTHENTICATED, Message: "the OIDC token is not valid: " + oidcReason(err), Err: err}
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, &catalog.Error{Code: catalog.EUNAUTHENTICATED, Message: "the OIDC token's claims cannot be read", Err: err}
	}
	user, _ := claims[o.cfg.UserClaim].(string)
	if err := checkName("", user); err != nil {
		return nil, catalog.Errorf(catalog.EUNAUTHENTICATED, "the OIDC token's %q claim does not name a user", o.cfg.UserClaim)
	}
	var groups []string
	switch g := claims[o.cfg.GroupsClaim].(type) {
	case string:
		groups = []string{g}
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok {
				groups = append(groups, s)
			}
		}
	}
	// GitLab names subgroups with slashes (org/team); keep only names a
	// subject can carry.
	kept := groups[:0]
	for _, g := range groups {
		if checkName("", g) == nil {
			kept = append(kept, g)
		}
	}
	return &Caller{User: user, Groups: kept, Via: "oidc"}, nil
}

// oidcReason turns a verification error into a short reason without
// echoing token contents.
func oidcReason(err error) string {
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		return "it expired at " + catalog.FormatTime(expired.Expiry)
	case strings.Contains(err.Error(), "audience"):
		return "it was issued for another audience"
	case strings.Contains(err.Error(), "issuer"):
		return "it was issued by another issuer"
	case strings.Contains(err.Error(), "signature"):
		return "its signature does not verify"
	}
	return "it cannot be verified"
}
