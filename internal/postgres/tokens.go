package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// Store keeps the API tokens too, in the table of migration 0003, so
// that minting or revoking a token commits with its audit event in the
// outbox.
var _ access.TokenStore = (*Store)(nil)

// maxTokenPage is the most tokens one ListTokens call returns.
const maxTokenPage = 1000

const selectTokenSQL = `SELECT id, name, user_id, groups, scopes, hash, created_by, created, expires, revoked FROM tokens`

// insertTokenSQL skips a taken id or hash instead of failing, so that the
// conflict does not abort the transaction and CreateToken can name it.
const insertTokenSQL = `INSERT INTO tokens (id, name, user_id, groups, scopes, hash, created_by, created, expires, revoked)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`

func scanToken(row pgx.Row) (*access.Token, error) {
	var (
		tok              access.Token
		hash             []byte
		expires, revoked *time.Time
	)
	err := row.Scan(&tok.ID, &tok.Name, &tok.User, &tok.Groups, &tok.Scopes, &hash, &tok.CreatedBy, &tok.Created, &expires, &revoked)
	if err != nil {
		return nil, err
	}
	if len(hash) != len(tok.Hash) {
		return nil, catalog.Internal(fmt.Errorf("postgres: token %q: a hash of %d bytes", tok.ID, len(hash)))
	}
	copy(tok.Hash[:], hash)
	tok.Groups, tok.Scopes = orNil(tok.Groups), orNil(tok.Scopes)
	tok.Created = tok.Created.UTC()
	if expires != nil {
		tok.Expires = expires.UTC()
	}
	if revoked != nil {
		tok.Revoked = revoked.UTC()
	}
	return &tok, nil
}

// CreateToken stores a new token and writes the audit event (none when
// audit is nil) in one transaction. Times are kept to the microsecond.
// Codes: ECONFLICT (the id or the hash exists), EINVALID (no id, user or
// name, or an all-zero hash), EUNAVAILABLE.
func (s *Store) CreateToken(ctx context.Context, tok *access.Token, audit *catalog.Event) error {
	if err := tok.CheckStorable(); err != nil {
		return err
	}
	return s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		tag, err := t.tx.Exec(ctx, insertTokenSQL, tok.ID, tok.Name, tok.User, orEmpty(tok.Groups), orEmpty(tok.Scopes),
			tok.Hash[:], tok.CreatedBy, tok.Created, nullTime(tok.Expires), nullTime(tok.Revoked))
		if err != nil {
			return t.fail(err)
		}
		if tag.RowsAffected() == 0 {
			return catalog.Errorf(catalog.ECONFLICT, "token %q already exists", tok.ID)
		}
		if audit == nil {
			return nil
		}
		return t.AppendEvents(ctx, audit)
	})
}

// TokenByHash returns the token with this secret hash, revoked and
// expired ones included. The error never names the hash: it is as good
// as the secret for guessing. Codes: ENOTFOUND.
func (s *Store) TokenByHash(ctx context.Context, hash [32]byte) (*access.Token, error) {
	return s.getToken(ctx, selectTokenSQL+` WHERE hash = $1`, hash[:])
}

// GetToken returns a token by id. Codes: ENOTFOUND.
func (s *Store) GetToken(ctx context.Context, id string) (*access.Token, error) {
	return s.getToken(ctx, selectTokenSQL+` WHERE id = $1`, id)
}

func (s *Store) getToken(ctx context.Context, query string, arg any) (*access.Token, error) {
	tok, err := scanToken(s.pool.QueryRow(ctx, query, arg))
	if isNoRows(err) {
		return nil, access.ErrTokenNotFound()
	}
	if err != nil {
		return nil, dbError(err)
	}
	return tok, nil
}

// ListTokens returns up to limit tokens that are not revoked, of user
// ("" for every user), with id > after, ordered by id in byte order (the
// column's "C" collation). limit is clamped to [1, 1000]. The result is
// empty, not nil, past the end.
func (s *Store) ListTokens(ctx context.Context, user, after string, limit int) ([]*access.Token, error) {
	limit = min(max(limit, 1), maxTokenPage)
	// Two statements rather than one with "$1 = '' OR user_id = $1", so
	// that each gets the plan of its index: tokens_user_idx for a user,
	// the primary key for everyone.
	var (
		rows pgx.Rows
		err  error
	)
	if user == "" {
		rows, err = s.pool.Query(ctx, selectTokenSQL+` WHERE revoked IS NULL AND id > $1 ORDER BY id LIMIT $2`, after, limit)
	} else {
		rows, err = s.pool.Query(ctx, selectTokenSQL+` WHERE revoked IS NULL AND user_id = $1 AND id > $2 ORDER BY id LIMIT $3`, user, after, limit)
	}
	if err != nil {
		return nil, dbError(err)
	}
	toks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*access.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, dbError(err)
	}
	if toks == nil {
		toks = []*access.Token{}
	}
	return toks, nil
}

// RevokeToken marks a token revoked at the given time, to the
// microsecond, and writes the audit event (none when audit is nil), in
// one transaction. Revoking a revoked token changes nothing, keeps the
// first revocation time and writes no event. Codes: ENOTFOUND, EINVALID
// (a zero time, which would read back as not revoked), EUNAVAILABLE.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, audit *catalog.Event) error {
	if at.IsZero() {
		return catalog.Invalid("/revoked", "a token is revoked at a time, not the zero time")
	}
	return s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		// Of two concurrent revocations, the second waits for the first's
		// row lock, then finds revoked set and updates nothing.
		tag, err := t.tx.Exec(ctx, `UPDATE tokens SET revoked = $2 WHERE id = $1 AND revoked IS NULL`, id, at)
		if err != nil {
			return t.fail(err)
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1)`, id).Scan(&exists); err != nil {
				return t.fail(err)
			}
			if !exists {
				return access.ErrTokenNotFound()
			}
			return nil
		}
		if audit == nil {
			return nil
		}
		return t.AppendEvents(ctx, audit)
	})
}

// nullTime is the column value of a time that may be absent: NULL for
// the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// orNil turns an empty list into nil, as tokens return empty lists.
func orNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
