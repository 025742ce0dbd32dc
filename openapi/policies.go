package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// PolicyBody is an access policy in ladon's model.
type PolicyBody struct {
	ID          string         `json:"id,omitempty" doc:"The policy id; one is made when left out." example:"eo-editors"`
	Description string         `json:"description,omitempty"`
	Subjects    []string       `json:"subjects" minItems:"1" doc:"Who: user:<id>, group:<name>, node:<peer>, token:<id>, anonymous; ladon <regex> parts allowed except in read policies." example:"[\"group:eo\"]"`
	Resources   []string       `json:"resources" minItems:"1" doc:"What: collections:<id>, items:<collection>/<id>, ...; read policies allow exact ids or one trailing <.*>." example:"[\"items:sentinel-2/<.*>\"]"`
	Actions     []string       `json:"actions" minItems:"1" doc:"read, create, update, publish, delete, execute, share, admin." example:"[\"read\",\"update\"]"`
	Effect      string         `json:"effect" enum:"allow,deny"`
	Conditions  map[string]any `json:"conditions,omitempty" doc:"ladon conditions (not on read policies)."`
	Meta        map[string]any `json:"meta,omitempty" doc:"Free data kept with the policy."`
	Created     *time.Time     `json:"created,omitempty" readOnly:"true"`
}

// PolicyList is a page of policies.
type PolicyList struct {
	Policies []PolicyBody `json:"policies"`
}

type createPolicyInput struct {
	Body PolicyBody
}

type policyOutput struct {
	Body PolicyBody
}

type listPoliciesInput struct {
	After string `query:"after" doc:"Return policies with ids after this one (paging)."`
	Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

type policyListOutput struct {
	Body PolicyList
}

type policyPath struct {
	ID string `path:"policyId" doc:"The policy id."`
}

func policyBody(p *access.Policy) PolicyBody {
	b := PolicyBody{ID: p.ID, Description: p.Description, Subjects: p.Subjects, Resources: p.Resources, Actions: p.Actions, Effect: p.Effect}
	if len(p.Conditions) > 0 {
		_ = json.Unmarshal(p.Conditions, &b.Conditions)
	}
	if len(p.Meta) > 0 {
		_ = json.Unmarshal(p.Meta, &b.Meta)
	}
	if !p.Created.IsZero() {
		c := p.Created
		b.Created = &c
	}
	return b
}

// requireAdmin lets node administrators through.
func requireAdmin(ctx context.Context) error {
	c := CallerOf(ctx)
	switch {
	case c.IsAnonymous():
		return catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in as a node administrator")
	case !c.IsAdmin() || !c.InScope(access.ActionAdmin) && len(c.Scopes) > 0:
		return catalog.Errorf(catalog.EFORBIDDEN, "only node administrators may do this")
	}
	return nil
}

func (s *Server) registerPolicies() {
	op := s.operation("listPolicies", http.MethodGet, "/policies", "Access", "List access policies",
		"Lists the node's access policies (admins only), ordered by id.", http.StatusOK, 403)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *listPoliciesInput) (*policyListOutput, error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		m, err := s.policyManager()
		if err != nil {
			return nil, err
		}
		ps, err := m.ListPolicies(ctx, in.After, in.Limit)
		if err != nil {
			return nil, err
		}
		out := PolicyList{Policies: make([]PolicyBody, 0, len(ps))}
		for _, p := range ps {
			out.Policies = append(out.Policies, policyBody(p))
		}
		return &policyListOutput{Body: out}, nil
	})

	op = s.operation("createPolicy", http.MethodPost, "/policies", "Access", "Create an access policy",
		"Creates an access policy (admins only). Read policies must keep the form search pushes into SQL: exact subjects, exact resources or one trailing <.*>, no conditions; other policies may use all of ladon.",
		http.StatusCreated, 400, 403, 409)
	op.Security = requiredAuth
	op.SkipValidateBody = false
	huma.Register(s.api, op, func(ctx context.Context, in *createPolicyInput) (*policyOutput, error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		m, err := s.policyManager()
		if err != nil {
			return nil, err
		}
		b := in.Body
		p := &access.Policy{ID: b.ID, Description: b.Description, Subjects: b.Subjects, Resources: b.Resources, Actions: b.Actions, Effect: b.Effect}
		if p.ID == "" {
			p.ID = uuid.Must(uuid.NewV7()).String()
		}
		if len(b.Conditions) > 0 {
			p.Conditions, _ = json.Marshal(b.Conditions)
		}
		if len(b.Meta) > 0 {
			p.Meta, _ = json.Marshal(b.Meta)
		}
		for i, subj := range p.Subjects {
			if _, isPattern := access.LiteralPrefix(subj); !isPattern {
				if err := access.CheckSubject("/subjects/"+itoa(i), subj); err != nil {
					return nil, err
				}
			}
		}
		created, err := m.CreatePolicy(ctx, p)
		if err != nil {
			return nil, err
		}
		return &policyOutput{Body: policyBody(created)}, nil
	})

	op = s.operation("deletePolicy", http.MethodDelete, "/policies/{policyId}", "Access", "Delete an access policy",
		"Deletes an access policy (admins only); it stops applying on the next request.", http.StatusNoContent, 403, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *policyPath) (*emptyOutput, error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		m, err := s.policyManager()
		if err != nil {
			return nil, err
		}
		return nil, m.Delete(ctx, in.ID)
	})
}
