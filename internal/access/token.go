package access

import (
	"context"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// Token is a node-issued API token as stored: never the secret itself,
// only its SHA-256 hash.
type Token struct {
	ID   string
	Name string
	// User is the user the token acts for (user:<User>); Groups are the
	// groups it carries (group:<name>).
	User   string
	Groups []string
	// Scopes narrow what the token may do (for example "read"); empty
	// means everything its user may do.
	Scopes []string
	// Hash is the SHA-256 of the secret.
	Hash [32]byte
	// CreatedBy is the user who minted it (an admin may mint for others).
	CreatedBy string
	Created   time.Time
	// Expires is zero for a token that does not expire.
	Expires time.Time
	// Revoked is zero until the token is revoked.
	Revoked time.Time
}

// TokenStore persists API tokens. The stores of internal/postgres and
// internal/sqlite implement it; internal/storetest holds its contract.
type TokenStore interface {
	// CreateToken stores a new token and, in the same transaction, the
	// audit event. Codes: ECONFLICT (the id or hash exists), EINVALID.
	CreateToken(ctx context.Context, t *Token, audit *catalog.Event) error
	// TokenByHash returns the token with this secret hash, revoked or
	// expired ones included (the caller decides). Codes: ENOTFOUND.
	TokenByHash(ctx context.Context, hash [32]byte) (*Token, error)
	// GetToken returns a token by id. Codes: ENOTFOUND.
	GetToken(ctx context.Context, id string) (*Token, error)
	// ListTokens returns the tokens of a user ("" for every user), not
	// revoked, ordered by id, up to limit with id > after.
	ListTokens(ctx context.Context, user, after string, limit int) ([]*Token, error)
	// RevokeToken marks a token revoked at the given time and writes the
	// audit event, in one transaction. Revoking a revoked token is a
	// no-op that writes nothing. Codes: ENOTFOUND, EINVALID (a zero time).
	RevokeToken(ctx context.Context, id string, at time.Time, audit *catalog.Event) error
}

// CheckStorable rejects, with EINVALID, a token a store could not keep
// usefully: no id (no ListTokens page could reach it), no user, no name,
// or an all-zero hash (the hash of no secret). Stores call it before
// writing.
func (t *Token) CheckStorable() error {
	switch {
	case t.ID == "":
		return catalog.Invalid("/id", "a token needs an id")
	case t.User == "":
		return catalog.Invalid("/user", "token %q needs a user", t.ID)
	case t.Name == "":
		return catalog.Invalid("/name", "token %q needs a name", t.ID)
	case t.Hash == [32]byte{}:
		return catalog.Errorf(catalog.EINVALID, "token %q needs the hash of its secret", t.ID)
	}
	return nil
}

// ErrTokenNotFound names no token: a lookup by hash must not echo the
// hash, and lookups by id answer alike.
func ErrTokenNotFound() error { return catalog.Errorf(catalog.ENOTFOUND, "token not found") }
