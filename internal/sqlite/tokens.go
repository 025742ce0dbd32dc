package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// Store keeps the API tokens too, in the table of migration 0003, so
// that minting or revoking a token commits with its audit event in the
// outbox.
var _ access.TokenStore = (*Store)(nil)

// maxTokenPage is the most tokens one ListTokens call returns.
const maxTokenPage = 1000

const selectTokenSQL = "SELECT id, name, user_id, groups, scopes, hash, created_by, created, expires, revoked FROM tokens"

const insertTokenSQL = `INSERT INTO tokens (id, name, user_id, groups, scopes, hash, created_by, created, expires, revoked)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func scanToken(row interface{ Scan(...any) error }) (*access.Token, error) {
	var (
		tok              access.Token
		groups, scopes   string
		hash             []byte
		created          int64
		expires, revoked sql.NullInt64
	)
	err := row.Scan(&tok.ID, &tok.Name, &tok.User, &groups, &scopes, &hash, &tok.CreatedBy, &created, &expires, &revoked)
	if err != nil {
		return nil, err
	}
	for _, l := range []struct {
		raw string
		dst *[]string
	}{{groups, &tok.Groups}, {scopes, &tok.Scopes}} {
		if err := json.Unmarshal([]byte(l.raw), l.dst); err != nil {
			return nil, catalog.Internal(fmt.Errorf("sqlite: token %q: %w", tok.ID, err))
		}
		if len(*l.dst) == 0 {
			*l.dst = nil
		}
	}
	if len(hash) != len(tok.Hash) {
		return nil, catalog.Internal(fmt.Errorf("sqlite: token %q: a hash of %d bytes", tok.ID, len(hash)))
	}
	copy(tok.Hash[:], hash)
	tok.Created = fromMicros(created)
	if expires.Valid {
		tok.Expires = fromMicros(expires.Int64)
	}
	if revoked.Valid {
		tok.Revoked = fromMicros(revoked.Int64)
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
	var lists [2]string
	for i, l := range [][]string{tok.Groups, tok.Scopes} {
		if l == nil {
			l = []string{}
		}
		b, err := json.Marshal(l)
		if err != nil {
			return catalog.Internal(err)
		}
		lists[i] = string(b)
	}
	return s.Update(ctx, func(tx catalog.Tx) error {
		t := tx.(*Tx)
		_, err := t.tx.ExecContext(ctx, insertTokenSQL, tok.ID, tok.Name, tok.User, lists[0], lists[1], tok.Hash[:],
			tok.CreatedBy, micros(tok.Created), nullMicros(tok.Expires), nullMicros(tok.Revoked))
		if isUnique(err) {
			return &catalog.Error{Code: catalog.ECONFLICT, Message: fmt.Sprintf("token %q already exists", tok.ID), Err: err}
		}
		if err != nil {
			return dbError(err)
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
	return s.getToken(ctx, selectTokenSQL+" WHERE hash = ?", hash[:])
}

// GetToken returns a token by id. Codes: ENOTFOUND.
func (s *Store) GetToken(ctx context.Context, id string) (*access.Token, error) {
	return s.getToken(ctx, selectTokenSQL+" WHERE id = ?", id)
}

func (s *Store) getToken(ctx context.Context, query string, arg any) (*access.Token, error) {
	tok, err := scanToken(s.r.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, access.ErrTokenNotFound()
	}
	if err != nil {
		return nil, dbError(err)
	}
	return tok, nil
}

// ListTokens returns up to limit tokens that are not revoked, of user
// ("" for every user), with id > after, ordered by id in byte order
// (SQLite's default BINARY collation). limit is clamped to [1, 1000].
// The result is empty, not nil, past the end.
func (s *Store) ListTokens(ctx context.Context, user, after string, limit int) ([]*access.Token, error) {
	limit = min(max(limit, 1), maxTokenPage)
	// Two statements rather than one with "? = '' OR user_id = ?", so
	// that each gets the plan of its index: tokens_user_idx for a user,
	// the primary key for everyone.
	var (
		rows *sql.Rows
		err  error
	)
	if user == "" {
		rows, err = s.r.QueryContext(ctx, selectTokenSQL+" WHERE revoked IS NULL AND id > ? ORDER BY id LIMIT ?", after, limit)
	} else {
		rows, err = s.r.QueryContext(ctx, selectTokenSQL+" WHERE revoked IS NULL AND user_id = ? AND id > ? ORDER BY id LIMIT ?", user, after, limit)
	}
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = rows.Close() }()
	toks := []*access.Token{}
	for rows.Next() {
		tok, err := scanToken(rows)
		if err != nil {
			return nil, dbError(err)
		}
		toks = append(toks, tok)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
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
		res, err := t.tx.ExecContext(ctx, "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", micros(at), id)
		if err != nil {
			return dbError(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbError(err)
		}
		if n == 0 {
			var exists bool
			if err := t.tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?)", id).Scan(&exists); err != nil {
				return dbError(err)
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

// nullMicros is the column value of a time that may be absent: NULL for
// the zero time, microseconds otherwise.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}
