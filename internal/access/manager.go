package access

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/ladon"

	"github.com/twinstac/twinstac/catalog"
)

// Event types of policy changes (audit).
const (
	EventPolicyCreated = "policy.created"
	EventPolicyDeleted = "policy.deleted"
)

// Manager is the ladon.Manager over a PolicyStore. It keeps an indexed
// copy of all policies in memory, rebuilt when the store's revision
// changes; other processes' changes are seen within MaxAge.
type Manager struct {
	store PolicyStore
	// MaxAge bounds how stale the in-memory policies may be: the store's
	// revision is checked at most this often. Zero checks on every use.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	idx     atomic.Pointer[index]
	mu      sync.Mutex   // serialises refreshes
	rev     atomic.Int64 // the revision idx holds; -1 before the first load
	checked atomic.Int64 // unix nanoseconds of the last revision check
}

var _ ladon.Manager = (*Manager)(nil)

// NewManager returns a manager over store that checks for changes at
// most once a second.
func NewManager(store PolicyStore) *Manager {
	m := &Manager{store: store, MaxAge: time.Second}
	m.idx.Store(newIndex(nil))
	m.rev.Store(-1)
	return m
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// current returns an index no older than MaxAge.
func (m *Manager) current(ctx context.Context) (*index, error) {
	now := m.now()
	if last := m.checked.Load(); m.rev.Load() >= 0 && now.UnixNano()-last < int64(m.MaxAge) {
		return m.idx.Load(), nil
	}
	return m.refresh(ctx, false)
}

// refresh reloads the policies when the store's revision moved (or
// always, with force).
func (m *Manager) refresh(ctx context.Context, force bool) (*index, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rev, err := m.store.PolicyRevision(ctx)
	if err != nil {
		return nil, err
	}
	m.checked.Store(m.now().UnixNano())
	if rev == m.rev.Load() && !force {
		return m.idx.Load(), nil
	}
	var all []*ladon.DefaultPolicy
	after := ""
	for {
		page, err := m.store.ListPolicies(ctx, after, 10000)
		if err != nil {
			return nil, err
		}
		for _, p := range page {
			lp, err := toLadon(p)
			if err != nil {
				return nil, catalog.Internal(err)
			}
			all = append(all, lp)
		}
		if len(page) < 10000 {
			break
		}
		after = page[len(page)-1].ID
	}
	x := newIndex(all)
	m.idx.Store(x)
	m.rev.Store(rev)
	return x, nil
}

// toLadon converts a stored policy to ladon's.
func toLadon(p *Policy) (*ladon.DefaultPolicy, error) {
	lp := &ladon.DefaultPolicy{ID: p.ID, Description: p.Description, Subjects: p.Subjects, Resources: p.Resources,
		Actions: p.Actions, Effect: p.Effect, Meta: p.Meta, Conditions: ladon.Conditions{}}
	if len(p.Conditions) > 0 && string(p.Conditions) != "null" {
		if err := json.Unmarshal(p.Conditions, &lp.Conditions); err != nil {
			return nil, err
		}
	}
	return lp, nil
}

// fromLadon converts ladon's policy to ours.
func fromLadon(lp ladon.Policy) (*Policy, error) {
	p := &Policy{ID: lp.GetID(), Description: lp.GetDescription(), Subjects: lp.GetSubjects(), Resources: lp.GetResources(),
		Actions: lp.GetActions(), Effect: lp.GetEffect(), Meta: lp.GetMeta()}
	if c := lp.GetConditions(); len(c) > 0 {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, catalog.Invalid("/conditions", "the conditions cannot be encoded: %s", err)
		}
		p.Conditions = b
	}
	return p, nil
}

// Validate checks a policy before it is stored: an id, an effect, at
// least one subject, resource and action, patterns that compile, and for
// policies that grant or deny read, the form that search pushes into SQL.
// Codes: EINVALID.
func Validate(p *Policy) error {
	if err := catalog.CheckID("/id", p.ID); err != nil {
		return err
	}
	if p.Effect != Allow && p.Effect != Deny {
		return catalog.Invalid("/effect", "the effect is %q or %q, not %q", Allow, Deny, p.Effect)
	}
	for _, f := range []struct {
		name string
		vals []string
	}{{"subjects", p.Subjects}, {"resources", p.Resources}, {"actions", p.Actions}} {
		if len(f.vals) == 0 {
			return catalog.Invalid("/"+f.name, "a policy needs at least one of its %s", f.name)
		}
		for i, v := range f.vals {
			if v == "" {
				return catalog.Invalid("/"+f.name+"/"+itoa(i), "must not be empty")
			}
			if strings.ContainsRune(v, '<') {
				if _, err := compilePattern(v); err != nil {
					return catalog.Invalid("/"+f.name+"/"+itoa(i), "the pattern %q does not compile: %s", v, err)
				}
			}
		}
	}
	if len(p.Conditions) > 0 && string(p.Conditions) != "null" {
		c := ladon.Conditions{} // ladon decodes into an existing map only
		if err := json.Unmarshal(p.Conditions, &c); err != nil {
			return catalog.Invalid("/conditions", "not ladon conditions: %s", err)
		}
	}
	return checkReadForm(p)
}

// checkReadForm enforces the form of read policies: search turns them
// into SQL, so subjects are exact, resources are exact or end in one
// trailing wildcard (<.*>), and there are no conditions.
func checkReadForm(p *Policy) error {
	if !grantsRead(p.Actions) {
		return nil
	}
	why := "read policies are what search pushes into SQL, so they keep a simple form"
	if p.Effect == Deny {
		return catalog.Invalid("/effect", "%s: they only grant; to keep something from a reader, do not grant it (listings could not leave out what a read denial hides)", why)
	}
	for i, s := range p.Subjects {
		if strings.ContainsRune(s, '<') {
			return catalog.Invalid("/subjects/"+itoa(i), "the subject %q is a pattern; %s: exact subjects (user:ana, group:eo)", s, why)
		}
	}
	for i, r := range p.Resources {
		prefix, isPattern := literalPrefix(r)
		if isPattern && (r != prefix+"<.*>" || strings.ContainsAny(prefix, "<>")) {
			return catalog.Invalid("/resources/"+itoa(i), "the resource %q is not allowed; %s: exact ids or one trailing wildcard (items:c1/<.*>)", r, why)
		}
	}
	if len(p.Conditions) > 0 && string(p.Conditions) != "null" && string(p.Conditions) != "{}" {
		return catalog.Invalid("/conditions", "%s: no conditions", why)
	}
	return nil
}

// grantsRead reports whether an action list matches the read action.
func grantsRead(actions []string) bool {
	var m matcher
	ok, _ := m.Matches(nil, actions, ActionRead)
	return ok
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// Create implements ladon.Manager.
func (m *Manager) Create(ctx context.Context, lp ladon.Policy) error {
	p, err := fromLadon(lp)
	if err != nil {
		return err
	}
	_, err = m.CreatePolicy(ctx, p)
	return err
}

// CreatePolicy validates and stores a policy, with its audit event.
// Codes: EINVALID, ECONFLICT.
func (m *Manager) CreatePolicy(ctx context.Context, p *Policy) (*Policy, error) {
	if err := Validate(p); err != nil {
		return nil, err
	}
	p.Created = m.now().UTC().Truncate(time.Microsecond)
	ev := catalog.NewEvent(EventPolicyCreated, "policies/"+p.ID, p.Created, catalog.EventPayload{ID: p.ID})
	if err := m.store.CreatePolicy(ctx, p, ev); err != nil {
		return nil, err
	}
	_, err := m.refresh(ctx, false)
	return p, err
}

// Update implements ladon.Manager. Policies are immutable here: replace
// one by deleting it and creating another.
func (m *Manager) Update(context.Context, ladon.Policy) error {
	return catalog.Errorf(catalog.EINVALID, "policies are not updated in place; delete the policy and create a new one")
}

// Get implements ladon.Manager. Codes: ENOTFOUND.
func (m *Manager) Get(ctx context.Context, id string) (ladon.Policy, error) {
	x, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := x.byID[id]; ok {
		return p, nil
	}
	return nil, catalog.Errorf(catalog.ENOTFOUND, "policy %q not found", id)
}

// Delete implements ladon.Manager. Codes: ENOTFOUND.
func (m *Manager) Delete(ctx context.Context, id string) error {
	ev := catalog.NewEvent(EventPolicyDeleted, "policies/"+id, m.now().UTC(), catalog.EventPayload{ID: id})
	if err := m.store.DeletePolicy(ctx, id, ev); err != nil {
		return err
	}
	_, err := m.refresh(ctx, false)
	return err
}

// GetAll implements ladon.Manager: policies ordered by id.
func (m *Manager) GetAll(ctx context.Context, limit, offset int64) (ladon.Policies, error) {
	x, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	n := int64(len(x.all))
	if offset > n {
		offset = n
	}
	end := n
	if limit >= 0 && offset+limit < n {
		end = offset + limit
	}
	return policies(x.all[offset:end]), nil
}

// FindRequestCandidates implements ladon.Manager by index.
func (m *Manager) FindRequestCandidates(ctx context.Context, r *ladon.Request) (ladon.Policies, error) {
	x, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	return policies(x.candidates(r.Subject, r.Resource, m.now())), nil
}

// FindPoliciesForSubject implements ladon.Manager.
func (m *Manager) FindPoliciesForSubject(ctx context.Context, subject string) (ladon.Policies, error) {
	x, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	return policies(x.subjects.lookup(subject)), nil
}

// FindPoliciesForResource implements ladon.Manager.
func (m *Manager) FindPoliciesForResource(ctx context.Context, resource string) (ladon.Policies, error) {
	x, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	return policies(x.resources.lookup(resource)), nil
}

// Warden decides over the manager's candidates with ladon's semantics:
// ladon's policies, pattern language and conditions, deny overriding
// allow. A caller acts as several subjects at once (user:ana, group:eo,
// token:t1): a request is allowed when some subject is allowed and no
// subject is denied explicitly. The decision loop is ladon's
// (Ladon.DoPoliciesAllow) without its per-decision goroutines for
// metrics, which made the slowest decisions ten times slower than the
// median; Ladon returns a plain ladon warden over the same manager, and
// tests hold the two to the same answers.
type Warden struct {
	m *Manager
	l *ladon.Ladon
}

// NewWarden returns a warden over m.
func NewWarden(m *Manager) *Warden {
	return &Warden{m: m, l: &ladon.Ladon{Manager: m, Matcher: &matcher{}, Metric: quietMetric{}}}
}

// Ladon returns ladon's own warden over the same manager.
func (w *Warden) Ladon() *ladon.Ladon { return w.l }

// Allowed decides whether subjects may do action on resource.
func (w *Warden) Allowed(ctx context.Context, subjects []string, action, resource string, rc ladon.Context) (bool, error) {
	x, err := w.m.current(ctx)
	if err != nil {
		return false, err
	}
	m := w.l.Matcher.(*matcher)
	now := w.m.now()
	allowed := false
	for _, s := range subjects {
		r := &ladon.Request{Subject: s, Action: action, Resource: resource, Context: rc}
		for _, p := range x.candidates(s, resource, now) {
			ok, err := applies(ctx, m, p, r)
			if err != nil {
				return false, catalog.Internal(err)
			}
			if !ok {
				continue
			}
			if !p.AllowAccess() {
				return false, nil
			}
			allowed = true
		}
	}
	return allowed, nil
}

// applies reports whether policy p matches request r, in ladon's order:
// action, subject, resource, then every condition on its context value.
func applies(ctx context.Context, m *matcher, p *ladon.DefaultPolicy, r *ladon.Request) (bool, error) {
	for _, f := range []struct {
		haystack []string
		needle   string
	}{{p.Actions, r.Action}, {p.Subjects, r.Subject}, {p.Resources, r.Resource}} {
		ok, err := m.Matches(p, f.haystack, f.needle)
		if err != nil || !ok {
			return false, err
		}
	}
	for key, c := range p.Conditions {
		if !c.Fulfills(ctx, r.Context[key], r) {
			return false, nil
		}
	}
	return true, nil
}

// quietMetric discards ladon's decision metrics; twinstac counts denials
// in its own request metrics.
type quietMetric struct{}

func (quietMetric) RequestDeniedBy(ladon.Request, ladon.Policy)               {}
func (quietMetric) RequestAllowedBy(ladon.Request, ladon.Policies)            {}
func (quietMetric) RequestNoMatch(ladon.Request)                              {}
func (quietMetric) RequestProcessingError(ladon.Request, ladon.Policy, error) {}

// ListPolicies returns up to limit policies with id > after, by id.
func (m *Manager) ListPolicies(ctx context.Context, after string, limit int) ([]*Policy, error) {
	return m.store.ListPolicies(ctx, after, limit)
}

// LiteralPrefix returns the part of a policy value before its first
// <regex>, and whether it has one.
func LiteralPrefix(v string) (prefix string, isPattern bool) { return literalPrefix(v) }
