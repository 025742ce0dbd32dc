package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// Store keeps the access policies too, in the tables of migration 0002,
// so that a policy change commits with its audit event in the outbox.
var _ access.PolicyStore = (*Store)(nil)

const selectPolicySQL = "SELECT id, description, subjects, resources, actions, effect, conditions, meta, created FROM policies"

const insertPolicySQL = `INSERT INTO policies (id, description, subjects, resources, actions, effect, conditions, meta, created)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

func scanPolicy(row interface{ Scan(...any) error }) (*access.Policy, error) {
	var (
		p                            access.Policy
		subjects, resources, actions string
		conditions, meta             []byte
		created                      int64
	)
	err := row.Scan(&p.ID, &p.Description, &subjects, &resources, &actions, &p.Effect, &conditions, &meta, &created)
	if err != nil {
		return nil, err
	}
	for _, l := range []struct {
		raw string
		dst *[]string
	}{{subjects, &p.Subjects}, {resources, &p.Resources}, {actions, &p.Actions}} {
		if err := json.Unmarshal([]byte(l.raw), l.dst); err != nil {
			return nil, catalog.Internal(fmt.Errorf("sqlite: policy %q: %w", p.ID, err))
		}
	}
	p.Conditions, p.Meta = policyJSON(conditions), policyJSON(meta)
	p.Created = fromMicros(created)
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
	var lists [3]string
	for i, l := range [][]string{p.Subjects, p.Resources, p.Actions} {
		if l == nil {
			l = []string{}
		}
		b, err := json.Marshal(l)
		if err != nil {
			return catalog.Internal(err)
		}
		lists[i] = string(b)
	}
	return s.updatePolicies(ctx, func(t *Tx) error {
		_, err := t.tx.ExecContext(ctx, insertPolicySQL, p.ID, p.Description, lists[0], lists[1], lists[2], p.Effect,
			jsonText(p.Conditions), jsonText(p.Meta), micros(p.Created))
		if isUnique(err) {
			return &catalog.Error{Code: catalog.ECONFLICT, Message: fmt.Sprintf("policy %q already exists", p.ID), Err: err}
		}
		if err != nil {
			return dbError(err)
		}
		return t.policiesChanged(ctx, audit)
	})
}

// GetPolicy returns a policy. Codes: ENOTFOUND.
func (s *Store) GetPolicy(ctx context.Context, id string) (*access.Policy, error) {
	p, err := scanPolicy(s.r.QueryRowContext(ctx, selectPolicySQL+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
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
		res, err := t.tx.ExecContext(ctx, "DELETE FROM policies WHERE id = ?", id)
		if err != nil {
			return dbError(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbError(err)
		}
		if n == 0 {
			return catalog.Errorf(catalog.ENOTFOUND, "policy %q not found", id)
		}
		return t.policiesChanged(ctx, audit)
	})
}

// ListPolicies returns up to limit policies with id > after, ordered by
// id in byte order (SQLite's default BINARY collation). limit is clamped
// to [1, catalog.MaxPageSize]. The result is empty, not nil, past the end.
func (s *Store) ListPolicies(ctx context.Context, after string, limit int) ([]*access.Policy, error) {
	limit = min(max(limit, 1), catalog.MaxPageSize)
	return queryRows(ctx, s.r, scanPolicy, selectPolicySQL+" WHERE id > ? ORDER BY id LIMIT ?", after, limit)
}

// PolicyRevision returns the policy revision, which every committed
// CreatePolicy and DeletePolicy has bumped.
func (s *Store) PolicyRevision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.r.QueryRowContext(ctx, "SELECT rev FROM policy_revision").Scan(&rev); err != nil {
		return 0, dbError(err)
	}
	return rev, nil
}

// updatePolicies runs fn in a transaction of Update.
func (s *Store) updatePolicies(ctx context.Context, fn func(t *Tx) error) error {
	return s.Update(ctx, func(tx catalog.Tx) error { return fn(tx.(*Tx)) })
}

// policiesChanged bumps the policy revision and writes the audit event,
// if any.
func (t *Tx) policiesChanged(ctx context.Context, audit *catalog.Event) error {
	if _, err := t.tx.ExecContext(ctx, "UPDATE policy_revision SET rev = rev + 1"); err != nil {
		return dbError(err)
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

// jsonText is the column value of JSON: NULL when absent, text otherwise.
func jsonText(b json.RawMessage) any {
	if b = policyJSON(b); b == nil {
		return nil
	}
	return string(b)
}
