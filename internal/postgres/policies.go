package postgres

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// Store keeps the access policies too, in the tables of migration 0002,
// so that a policy change commits with its audit event in the outbox.
var _ access.PolicyStore = (*Store)(nil)

const selectPolicySQL = `SELECT id, description, subjects, resources, actions, effect, conditions, meta, created FROM policies`

// insertPolicySQL skips a taken id instead of failing, so that the
// conflict does not abort the transaction and CreatePolicy can name it.
const insertPolicySQL = `INSERT INTO policies (id, description, subjects, resources, actions, effect, conditions, meta, created)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`

func scanPolicy(row pgx.Row) (*access.Policy, error) {
	var (
		p                access.Policy
		conditions, meta []byte
	)
	err := row.Scan(&p.ID, &p.Description, &p.Subjects, &p.Resources, &p.Actions, &p.Effect, &conditions, &meta, &p.Created)
	if err != nil {
		return nil, err
	}
	p.Conditions, p.Meta = policyJSON(conditions), policyJSON(meta)
	p.Created = p.Created.UTC()
	return &p, nil
}

// CreatePolicy stores a new policy, bumps the policy revision and writes
// the audit event (none when audit is nil), all in one transaction.
// Created is kept to the microsecond. Codes: ECONFLICT (the id exists),
// EINVALID (no id, an unknown effect, conditions or meta that are not
// JSON), EUNAVAILABLE.
func (s *Store) CreatePolicy(ctx context.Context, p *access.Policy, audit *catalog.Event) error {
	if err := p.CheckStorable(); err != nil {
		return err
	}
	return s.updatePolicies(ctx, func(t *Tx) error {
		tag, err := t.tx.Exec(ctx, insertPolicySQL, p.ID, p.Description,
			orEmpty(p.Subjects), orEmpty(p.Resources), orEmpty(p.Actions), p.Effect,
			policyJSON(p.Conditions), policyJSON(p.Meta), p.Created)
		if err != nil {
			return t.fail(err)
		}
		if tag.RowsAffected() == 0 {
			return catalog.Errorf(catalog.ECONFLICT, "policy %q already exists", p.ID)
		}
		if err := t.grantItems(ctx, p); err != nil {
			return err
		}
		return t.policiesChanged(ctx, audit)
	})
}

// GetPolicy returns a policy. Codes: ENOTFOUND.
func (s *Store) GetPolicy(ctx context.Context, id string) (*access.Policy, error) {
	p, err := scanPolicy(s.pool.QueryRow(ctx, selectPolicySQL+` WHERE id = $1`, id))
	if isNoRows(err) {
		return nil, catalog.Errorf(catalog.ENOTFOUND, "policy %q not found", id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	return p, nil
}

// DeletePolicy removes a policy, bumps the policy revision and writes the
// audit event (none when audit is nil), all in one transaction.
// Codes: ENOTFOUND, EUNAVAILABLE.
func (s *Store) DeletePolicy(ctx context.Context, id string, audit *catalog.Event) error {
	return s.updatePolicies(ctx, func(t *Tx) error {
		if err := t.revokeItems(ctx, id); err != nil {
			return err
		}
		tag, err := t.tx.Exec(ctx, `DELETE FROM policies WHERE id = $1`, id)
		if err != nil {
			return t.fail(err)
		}
		if tag.RowsAffected() == 0 {
			return catalog.Errorf(catalog.ENOTFOUND, "policy %q not found", id)
		}
		return t.policiesChanged(ctx, audit)
	})
}

// ListPolicies returns up to limit policies with id > after, ordered by
// id in byte order (the column's "C" collation). limit is clamped to
// [1, catalog.MaxPageSize]. The result is empty, not nil, past the end.
func (s *Store) ListPolicies(ctx context.Context, after string, limit int) ([]*access.Policy, error) {
	limit = min(max(limit, 1), catalog.MaxPageSize)
	rows, err := s.pool.Query(ctx, selectPolicySQL+` WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, dbError(err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*access.Policy, error) { return scanPolicy(r) })
	if err != nil {
		return nil, dbError(err)
	}
	if ps == nil {
		ps = []*access.Policy{}
	}
	return ps, nil
}

// PolicyRevision returns the policy revision, which every committed
// CreatePolicy and DeletePolicy has bumped.
func (s *Store) PolicyRevision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.pool.QueryRow(ctx, `SELECT rev FROM policy_revision`).Scan(&rev); err != nil {
		return 0, dbError(err)
	}
	return rev, nil
}

// updatePolicies runs fn in a transaction of Update, and so with its
// retries on serialization failures and deadlocks.
func (s *Store) updatePolicies(ctx context.Context, fn func(t *Tx) error) error {
	return s.Update(ctx, func(tx catalog.Tx) error { return fn(tx.(*Tx)) })
}

// policiesChanged bumps the policy revision and writes the audit event,
// if any. The UPDATE locks the revision row until the transaction ends,
// which orders concurrent policy changes; it comes after the change
// itself so that the lock is held briefly.
func (t *Tx) policiesChanged(ctx context.Context, audit *catalog.Event) error {
	if _, err := t.tx.Exec(ctx, `UPDATE policy_revision SET rev = rev + 1`); err != nil {
		return t.fail(err)
	}
	if audit == nil {
		return nil
	}
	return t.AppendEvents(ctx, audit)
}

// policyJSON returns nil for absent JSON (empty, blank or null), which
// the table stores as NULL, and the JSON otherwise.
func policyJSON(b []byte) json.RawMessage {
	if t := bytes.TrimSpace(b); len(t) == 0 || string(t) == "null" {
		return nil
	}
	return b
}

// orEmpty turns a nil list into an empty one, for NOT NULL array columns.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
