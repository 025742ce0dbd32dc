package access

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
)

// A share is a policy made by the share operations: it grants a subject
// some actions on a collection (and its items), on one item, on a job or
// on a batch (and its jobs), until an optional expiry. Its Meta records
// what it shares, so that shares can be listed per object, and the
// expiry, which the manager enforces.

// ShareMeta is the Meta of a share's policy.
type ShareMeta struct {
	Share      bool      `json:"share"`
	Collection string    `json:"collection,omitempty"`
	Item       string    `json:"item,omitempty"`
	Job        string    `json:"job,omitempty"`
	Batch      string    `json:"batch,omitempty"`
	Expires    time.Time `json:"expires,omitzero"`
	CreatedBy  string    `json:"created_by,omitempty"`
}

// ShareTarget is what a share is of: a collection (Item ""), an item of
// a collection, a job, or a batch. Exactly one kind is set.
type ShareTarget struct {
	Collection, Item string
	Job, Batch       string
}

// CollectionShare is the target of a share of a collection and its items.
func CollectionShare(collection string) ShareTarget { return ShareTarget{Collection: collection} }

// ItemShare is the target of a share of one item.
func ItemShare(collection, item string) ShareTarget {
	return ShareTarget{Collection: collection, Item: item}
}

// JobShare is the target of a share of one job.
func JobShare(job string) ShareTarget { return ShareTarget{Job: job} }

// BatchShare is the target of a share of a batch and its jobs.
func BatchShare(batch string) ShareTarget { return ShareTarget{Batch: batch} }

// resources are the policy resources a share of t grants on: a
// collection's share covers its items too; a batch's covers its jobs by
// the batch id (SharedJobs), not by a pattern.
func (t ShareTarget) resources() []string {
	switch {
	case t.Job != "":
		return []string{JobResource(t.Job)}
	case t.Batch != "":
		return []string{BatchResource(t.Batch)}
	case t.Item != "":
		return []string{ItemResource(t.Collection, t.Item)}
	}
	return []string{CollectionResource(t.Collection), ItemResource(t.Collection, "<.*>")}
}

// actions are the actions a share of t may grant: jobs and batches are
// only seen (dismissing and saving stay with who ran them, the twin's
// owner and admins).
func (t ShareTarget) actions() []string {
	if t.Job != "" || t.Batch != "" {
		return JobShareActions
	}
	return ShareActions
}

func (t ShareTarget) of(m ShareMeta) bool {
	return m.Collection == t.Collection && m.Item == t.Item && m.Job == t.Job && m.Batch == t.Batch
}

// Share is a grant as the API shows it.
type Share struct {
	ID      string
	Subject string
	Actions []string
	Expires time.Time
	Created time.Time
}

// ShareActions are the actions a share may grant.
var ShareActions = []string{ActionRead, ActionCreate, ActionUpdate, ActionPublish, ActionDelete, ActionExecute, ActionShare}

// JobShareActions are the actions a share of a job or a batch may grant.
var JobShareActions = []string{ActionRead}

// Roles are policy templates: the actions a share with a role grants.
// The owner and node admin roles are not granted by shares: ownership is
// recorded on the collection, admins are the admins group.
var Roles = map[string][]string{
	"viewer":   {ActionRead},
	"executor": {ActionRead, ActionExecute},
	"editor":   {ActionRead, ActionCreate, ActionUpdate, ActionPublish, ActionDelete},
}

// RoleActions returns the actions of a role. Codes: EINVALID.
func RoleActions(role string) ([]string, error) {
	actions, ok := Roles[role]
	if !ok {
		return nil, catalog.Invalid("/role", "the roles are viewer, executor and editor, not %q", role)
	}
	return slices.Clone(actions), nil
}

// CheckSubject checks a policy subject: user:<id>, group:<name>,
// node:<peer> or anonymous. Codes: EINVALID.
func CheckSubject(pointer, s string) error {
	if s == "anonymous" {
		return nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || (kind != "user" && kind != "group" && kind != "node" && kind != "token") {
		return catalog.Invalid(pointer, "a subject is user:<id>, group:<name>, node:<peer>, token:<id> or anonymous, not %q", s)
	}
	return checkName(pointer, name)
}

// CreateShare grants subject actions on a collection, an item, a job or
// a batch. Jobs are seen by signed-in callers only, so a job or batch is
// not shared with anonymous. Codes: EINVALID.
func (m *Manager) CreateShare(ctx context.Context, by *Caller, on ShareTarget, subject string, actions []string, expires time.Time) (*Share, error) {
	if err := CheckSubject("/subject", subject); err != nil {
		return nil, err
	}
	if subject == "anonymous" && (on.Job != "" || on.Batch != "") {
		return nil, catalog.Invalid("/subject", "jobs and batches are seen by signed-in callers only: share with user:<id>, group:<name>, node:<peer> or token:<id>")
	}
	if len(actions) == 0 {
		return nil, catalog.Invalid("/actions", "a share grants at least one action")
	}
	allowed := on.actions()
	for i, a := range actions {
		if !slices.Contains(allowed, a) {
			return nil, catalog.Invalid("/actions/"+itoa(i), "a share grants %s, not %q", strings.Join(allowed, ", "), a)
		}
	}
	if !expires.IsZero() && !expires.After(m.now()) {
		return nil, catalog.Invalid("/expires", "the expiry is not in the future")
	}
	meta, _ := json.Marshal(ShareMeta{Share: true, Collection: on.Collection, Item: on.Item, Job: on.Job, Batch: on.Batch,
		Expires: expires.UTC(), CreatedBy: by.User})
	p := &Policy{ID: "share-" + uuid.Must(uuid.NewV7()).String(), Description: "share", Subjects: []string{subject},
		Resources: on.resources(), Actions: slices.Clone(actions), Effect: Allow, Meta: meta}
	if _, err := m.CreatePolicy(ctx, p); err != nil {
		return nil, err
	}
	return shareOf(p, expires), nil
}

func shareOf(p *Policy, expires time.Time) *Share {
	return &Share{ID: p.ID, Subject: p.Subjects[0], Actions: p.Actions, Expires: expires, Created: p.Created}
}

// Shares lists the shares of a collection, an item, a job or a batch.
func (m *Manager) Shares(ctx context.Context, of ShareTarget) ([]*Share, error) {
	x, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Share
	for _, lp := range x.all {
		meta, ok := shareMeta(lp.Meta)
		if !ok || !of.of(meta) {
			continue
		}
		p, err := m.store.GetPolicy(ctx, lp.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, shareOf(p, meta.Expires))
	}
	return out, nil
}

// DeleteShare removes a share of the collection, item, job or batch.
// Codes: ENOTFOUND.
func (m *Manager) DeleteShare(ctx context.Context, of ShareTarget, id string) error {
	x, err := m.current(ctx)
	if err != nil {
		return err
	}
	lp, ok := x.byID[id]
	meta, isShare := shareMeta(lpMeta(lp, ok))
	if !ok || !isShare || !of.of(meta) {
		return catalog.Errorf(catalog.ENOTFOUND, "share %q not found", id)
	}
	return m.Delete(ctx, id)
}

func lpMeta(p interface{ GetMeta() []byte }, ok bool) []byte {
	if !ok {
		return nil
	}
	return p.GetMeta()
}

func shareMeta(b []byte) (ShareMeta, bool) {
	var m ShareMeta
	if len(b) == 0 || json.Unmarshal(b, &m) != nil || !m.Share {
		return m, false
	}
	return m, true
}

// expiresAt returns the expiry a policy's Meta records (shares), or zero.
func expiresAt(meta []byte) time.Time {
	var m struct {
		Expires time.Time `json:"expires"`
	}
	if len(meta) == 0 || json.Unmarshal(meta, &m) != nil {
		return time.Time{}
	}
	return m.Expires
}
