package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
)

// AdminGroup is the group of node administrators.
const AdminGroup = "admins"

// TokenPrefix starts every secret this node issues, so that leaked
// secrets are easy to recognise (and to scan for).
const TokenPrefix = "tst_"

// Audit event types of tokens.
const (
	EventTokenCreated = "token.created"
	EventTokenRevoked = "token.revoked"
)

// Caller is who makes a request.
type Caller struct {
	// User is the user id; empty for an anonymous caller.
	User   string
	Groups []string
	// TokenID is the API token used, if any.
	TokenID string
	// Scopes narrow the actions of a token; empty allows every action.
	Scopes []string
	// Via says how the caller was identified: "token", "oidc",
	// "admin-token", or "" for anonymous.
	Via string
}

// Anonymous is the caller without identity.
var Anonymous = &Caller{}

// IsAnonymous reports whether the caller has no identity.
func (c *Caller) IsAnonymous() bool { return c == nil || c.User == "" }

// IsAdmin reports whether the caller is a node administrator.
func (c *Caller) IsAdmin() bool { return !c.IsAnonymous() && slices.Contains(c.Groups, AdminGroup) }

// Subjects are the policy subjects the caller acts as.
func (c *Caller) Subjects() []string {
	if c.IsAnonymous() {
		return []string{"anonymous"}
	}
	out := []string{"user:" + c.User}
	for _, g := range c.Groups {
		out = append(out, "group:"+g)
	}
	if c.TokenID != "" {
		out = append(out, "token:"+c.TokenID)
	}
	return out
}

// InScope reports whether the caller's token scopes allow action.
func (c *Caller) InScope(action string) bool {
	return len(c.Scopes) == 0 || slices.Contains(c.Scopes, action)
}

// Scopes a token may be limited to: the actions.
var Scopes = []string{ActionRead, ActionCreate, ActionUpdate, ActionPublish, ActionDelete, ActionExecute, ActionShare, ActionAdmin}

// HashSecret returns the stored form of a token secret.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// newSecret returns a fresh token secret: the prefix and 32 random bytes.
func newSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("access: no randomness: " + err.Error())
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// MintRequest asks for a new API token.
type MintRequest struct {
	Name    string
	Expires time.Time
	Scopes  []string
	// User and Groups mint a token for another user or a service
	// account; admins only.
	User   string
	Groups []string
}

// Tokens issues, checks and revokes API tokens.
type Tokens struct {
	Store TokenStore
	// AdminSecretHash, when set, makes the secret with this hash a
	// node-admin token (TWINSTAC_ADMIN_TOKEN).
	AdminSecretHash *[32]byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Tokens) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Mint creates a token and returns it with its secret, which is shown
// only this once. Codes: EUNAUTHENTICATED, EFORBIDDEN, EINVALID.
func (s *Tokens) Mint(ctx context.Context, by *Caller, r MintRequest) (*Token, string, error) {
	if by.IsAnonymous() {
		return nil, "", catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in to create tokens")
	}
	if !by.InScope(ActionCreate) {
		return nil, "", catalog.Errorf(catalog.EFORBIDDEN, "this token's scopes do not allow creating tokens")
	}
	if strings.TrimSpace(r.Name) == "" {
		return nil, "", catalog.Invalid("/name", "a token needs a name")
	}
	now := s.now()
	if !r.Expires.IsZero() && !r.Expires.After(now) {
		return nil, "", catalog.Invalid("/expires", "the expiry %s is not in the future", catalog.FormatTime(r.Expires))
	}
	for i, sc := range r.Scopes {
		if !slices.Contains(Scopes, sc) {
			return nil, "", catalog.Invalid("/scopes/"+itoa(i), "unknown scope %q; scopes are the actions %s", sc, strings.Join(Scopes, ", "))
		}
	}
	user, groups := by.User, by.Groups
	if r.User != "" || r.Groups != nil {
		if !by.IsAdmin() {
			return nil, "", catalog.Errorf(catalog.EFORBIDDEN, "only node administrators mint tokens for other users or with chosen groups")
		}
		if r.User != "" {
			user = r.User
		}
		groups = r.Groups
	}
	if err := checkName("/user", user); err != nil {
		return nil, "", err
	}
	for i, g := range groups {
		if err := checkName("/groups/"+itoa(i), g); err != nil {
			return nil, "", err
		}
	}
	// A token never widens its minter's own token.
	scopes := r.Scopes
	if len(by.Scopes) > 0 {
		if len(scopes) == 0 {
			scopes = by.Scopes
		}
		for i, sc := range scopes {
			if !by.InScope(sc) {
				return nil, "", catalog.Invalid("/scopes/"+itoa(i), "scope %q is wider than the scopes of the token used to mint it", sc)
			}
		}
	}
	secret := newSecret()
	t := &Token{ID: uuid.Must(uuid.NewV7()).String(), Name: r.Name, User: user, Groups: groups, Scopes: scopes,
		Hash: HashSecret(secret), CreatedBy: by.User, Created: now, Expires: r.Expires}
	ev := catalog.NewEvent(EventTokenCreated, "tokens/"+t.ID, now, catalog.EventPayload{ID: t.ID})
	if err := s.Store.CreateToken(ctx, t, ev); err != nil {
		return nil, "", err
	}
	return t, secret, nil
}

// checkName checks a user or group name: a CheckID-like string without
// the separators subjects use.
func checkName(pointer, name string) error {
	if err := catalog.CheckID(pointer, name); err != nil {
		return err
	}
	if strings.ContainsAny(name, ":<>*, ") {
		return catalog.Invalid(pointer, "%q must not contain ':', '<', '>', '*', ',' or spaces", name)
	}
	return nil
}

// Authenticate returns the caller a bearer secret stands for.
// Codes: EUNAUTHENTICATED (unknown, revoked or expired).
func (s *Tokens) Authenticate(ctx context.Context, secret string) (*Caller, error) {
	h := HashSecret(secret)
	if s.AdminSecretHash != nil && subtle.ConstantTimeCompare(h[:], s.AdminSecretHash[:]) == 1 {
		return &Caller{User: "admin", Groups: []string{AdminGroup}, Via: "admin-token"}, nil
	}
	t, err := s.Store.TokenByHash(ctx, h)
	if catalog.ErrorCode(err) == catalog.ENOTFOUND {
		return nil, catalog.Errorf(catalog.EUNAUTHENTICATED, "the bearer token is not valid")
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	switch {
	case !t.Revoked.IsZero():
		return nil, catalog.Errorf(catalog.EUNAUTHENTICATED, "the bearer token was revoked")
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return nil, catalog.Errorf(catalog.EUNAUTHENTICATED, "the bearer token expired at %s", catalog.FormatTime(t.Expires))
	}
	return &Caller{User: t.User, Groups: t.Groups, TokenID: t.ID, Scopes: t.Scopes, Via: "token"}, nil
}

// List returns the caller's live tokens, or (admins) those of user, or
// of everyone with user "*". Codes: EUNAUTHENTICATED, EFORBIDDEN.
func (s *Tokens) List(ctx context.Context, by *Caller, user, after string, limit int) ([]*Token, error) {
	if by.IsAnonymous() {
		return nil, catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in to list tokens")
	}
	switch {
	case user == "" || user == by.User:
		user = by.User
	case !by.IsAdmin():
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "only node administrators list other users' tokens")
	case user == "*":
		user = ""
	}
	return s.Store.ListTokens(ctx, user, after, limit)
}

// Revoke revokes a token of the caller's (any token, for admins); it
// takes effect on the next request. Another user's token is reported as
// not found, so that token ids do not leak. Codes: EUNAUTHENTICATED,
// EFORBIDDEN (the token's scopes exclude delete), ENOTFOUND.
func (s *Tokens) Revoke(ctx context.Context, by *Caller, id string) error {
	if by.IsAnonymous() {
		return catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in to revoke tokens")
	}
	if !by.InScope(ActionDelete) {
		return catalog.Errorf(catalog.EFORBIDDEN, "this token's scopes do not allow revoking tokens")
	}
	t, err := s.Store.GetToken(ctx, id)
	if err == nil && t.User != by.User && t.CreatedBy != by.User && !by.IsAdmin() {
		err = catalog.Errorf(catalog.ENOTFOUND, "token %q not found", id)
	}
	if err != nil {
		return err
	}
	now := s.now()
	return s.Store.RevokeToken(ctx, id, now, catalog.NewEvent(EventTokenRevoked, "tokens/"+id, now, catalog.EventPayload{ID: id}))
}

// Bootstrap makes sure the node has an administrator: when no admin
// secret is configured and user "admin" has no live token, it mints one
// and returns its secret, to be printed once. Otherwise it returns "".
func (s *Tokens) Bootstrap(ctx context.Context) (string, error) {
	if s.AdminSecretHash != nil {
		return "", nil
	}
	live, err := s.Store.ListTokens(ctx, "admin", "", 1)
	if err != nil || len(live) > 0 {
		return "", err
	}
	system := &Caller{User: "admin", Groups: []string{AdminGroup}, Via: "bootstrap"}
	_, secret, err := s.Mint(ctx, system, MintRequest{Name: "bootstrap admin token", User: "admin", Groups: []string{AdminGroup}})
	return secret, err
}
