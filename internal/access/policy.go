package access

import (
	"context"
	"encoding/json"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// Effects of a policy.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Actions a policy grants or denies.
const (
	ActionRead    = "read"
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionPublish = "publish"
	ActionDelete  = "delete"
	ActionExecute = "execute"
	ActionShare   = "share"
	ActionAdmin   = "admin"
)

// Policy is an access policy as stored: ladon's model (subjects,
// resources and actions, which may hold <regex> parts; an effect; ladon
// conditions as JSON) plus bookkeeping.
type Policy struct {
	ID          string
	Description string
	Subjects    []string
	Resources   []string
	Actions     []string
	Effect      string
	// Conditions is ladon's JSON form: {"name": {"type": "...", "options": {...}}}.
	Conditions json.RawMessage
	// Meta is free JSON kept with the policy (for example which share or
	// role template made it).
	Meta    json.RawMessage
	Created time.Time
}

// PolicyStore persists policies. The stores of internal/postgres and
// internal/sqlite implement it; internal/storetest holds its contract.
type PolicyStore interface {
	// CreatePolicy stores a new policy and, in the same transaction, the
	// audit event. Codes: ECONFLICT (the id exists), EINVALID (no id, an
	// unknown effect, conditions or meta that are not JSON).
	CreatePolicy(ctx context.Context, p *Policy, audit *catalog.Event) error
	// GetPolicy returns a policy. Codes: ENOTFOUND.
	GetPolicy(ctx context.Context, id string) (*Policy, error)
	// DeletePolicy removes a policy and writes the audit event in the same
	// transaction. Codes: ENOTFOUND.
	DeletePolicy(ctx context.Context, id string, audit *catalog.Event) error
	// ListPolicies returns up to limit policies with id > after, ordered
	// by id (byte order).
	ListPolicies(ctx context.Context, after string, limit int) ([]*Policy, error)
	// PolicyRevision returns a number that grows whenever a policy is
	// created or deleted, so that a process can tell cheaply whether its
	// in-memory index is current.
	PolicyRevision(ctx context.Context) (int64, error)
}

// CheckStorable rejects, with EINVALID, a policy a store would refuse
// with a driver error or keep as something else: no id, an effect that
// is neither allow nor deny, conditions or meta that are not JSON. It is
// the floor stores hold; Validate is the full rule set of the API.
func (p *Policy) CheckStorable() error {
	switch {
	case p.ID == "":
		return catalog.Invalid("/id", "a policy needs an id")
	case p.Effect != Allow && p.Effect != Deny:
		return catalog.Invalid("/effect", "the effect of a policy is %q or %q, not %q", Allow, Deny, p.Effect)
	case len(p.Conditions) > 0 && !json.Valid(p.Conditions):
		return catalog.Invalid("/conditions", "the conditions of policy %q are not valid JSON", p.ID)
	case len(p.Meta) > 0 && !json.Valid(p.Meta):
		return catalog.Invalid("/meta", "the meta of policy %q is not valid JSON", p.ID)
	}
	return nil
}
