package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// memStore is a PolicyStore in memory, for the manager's own tests; the
// database stores are held to the same contract by internal/storetest.
type memStore struct {
	mu     sync.Mutex
	byID   map[string]*Policy
	rev    int64
	events []*catalog.Event
}

func newMemStore() *memStore { return &memStore{byID: map[string]*Policy{}} }

func (s *memStore) CreatePolicy(_ context.Context, p *Policy, ev *catalog.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[p.ID]; ok {
		return catalog.Errorf(catalog.ECONFLICT, "policy %q already exists", p.ID)
	}
	s.byID[p.ID] = p
	s.rev++
	s.events = append(s.events, ev)
	return nil
}

func (s *memStore) GetPolicy(_ context.Context, id string) (*Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.byID[id]; ok {
		return p, nil
	}
	return nil, catalog.Errorf(catalog.ENOTFOUND, "policy %q not found", id)
}

func (s *memStore) DeletePolicy(_ context.Context, id string, ev *catalog.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; !ok {
		return catalog.Errorf(catalog.ENOTFOUND, "policy %q not found", id)
	}
	delete(s.byID, id)
	s.rev++
	s.events = append(s.events, ev)
	return nil
}

func (s *memStore) ListPolicies(_ context.Context, after string, limit int) ([]*Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Policy
	for _, p := range s.byID {
		if p.ID > after {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *Policy) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *memStore) PolicyRevision(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev, nil
}

func mustCreate(t testing.TB, m *Manager, p *Policy) {
	t.Helper()
	if _, err := m.CreatePolicy(context.Background(), p); err != nil {
		t.Fatalf("CreatePolicy(%s): %v", p.ID, err)
	}
}

func TestWardenDecisions(t *testing.T) {
	t.Parallel()
	m := NewManager(newMemStore())
	m.MaxAge = 0
	w := NewWarden(m)
	mustCreate(t, m, &Policy{ID: "admins", Subjects: []string{"group:admins"}, Resources: []string{"<.*>"}, Actions: []string{"<.*>"}, Effect: Allow})
	mustCreate(t, m, &Policy{ID: "c1-viewers", Subjects: []string{"user:ana", "group:eo"}, Resources: []string{"collections:c1", "items:c1/<.*>"}, Actions: []string{"read"}, Effect: Allow})
	mustCreate(t, m, &Policy{ID: "c1-edit", Subjects: []string{"user:bob"}, Resources: []string{"items:c1/<.*>"}, Actions: []string{"read", "update"}, Effect: Allow})
	mustCreate(t, m, &Policy{ID: "no-secret", Subjects: []string{"group:eo"}, Resources: []string{"items:c1/secret"}, Actions: []string{"update"}, Effect: Deny})
	mustCreate(t, m, &Policy{ID: "exec", Subjects: []string{"group:runners"}, Resources: []string{"processes:<c[0-9]+>:<.*>"}, Actions: []string{"execute"}, Effect: Allow})
	cases := []struct {
		subjects         []string
		action, resource string
		want             bool
	}{
		{[]string{"user:zoe", "group:admins"}, "delete", "items:c9/x", true},
		{[]string{"user:ana"}, "read", "items:c1/a", true},
		{[]string{"user:ana"}, "read", "collections:c1", true},
		{[]string{"user:ana"}, "update", "items:c1/a", false},
		{[]string{"user:ana"}, "read", "items:c2/a", false},
		{[]string{"user:ana"}, "read", "items:c10/a", false},
		{[]string{"user:bob"}, "update", "items:c1/a", true},
		{[]string{"user:eve", "group:eo"}, "read", "items:c1/a", true},
		{[]string{"user:eve", "group:eo"}, "update", "items:c1/secret", false},
		{[]string{"user:bob", "group:eo"}, "update", "items:c1/secret", false}, // deny overrides allow
		{[]string{"user:bob", "group:eo"}, "update", "items:c1/other", true},
		{[]string{"user:x", "group:runners"}, "execute", "processes:c42:twin", true},
		{[]string{"user:x", "group:runners"}, "execute", "processes:cx:twin", false},
		{[]string{"anonymous"}, "read", "items:c1/a", false},
		{nil, "read", "items:c1/a", false},
	}
	for _, tc := range cases {
		got, err := w.Allowed(context.Background(), tc.subjects, tc.action, tc.resource, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%v %s %s = %v, want %v", tc.subjects, tc.action, tc.resource, got, tc.want)
		}
	}
	// Deleting a policy takes effect at once in this process.
	if err := m.Delete(context.Background(), "no-secret"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := w.Allowed(context.Background(), []string{"user:bob", "group:eo"}, "update", "items:c1/secret", nil); !ok {
		t.Fatal("the deleted deny policy still applies")
	}
}

func TestOtherProcessesChangesAreSeen(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	a, b := NewManager(store), NewManager(store)
	a.MaxAge, b.MaxAge = 0, 0
	wb := NewWarden(b)
	if ok, _ := wb.Allowed(context.Background(), []string{"user:ana"}, "read", "collections:c1", nil); ok {
		t.Fatal("allowed before any policy")
	}
	mustCreate(t, a, &Policy{ID: "p", Subjects: []string{"user:ana"}, Resources: []string{"collections:c1"}, Actions: []string{"read"}, Effect: Allow})
	if ok, _ := wb.Allowed(context.Background(), []string{"user:ana"}, "read", "collections:c1", nil); !ok {
		t.Fatal("a policy created through another manager is not seen")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func() *Policy {
		return &Policy{ID: "p", Subjects: []string{"user:ana"}, Resources: []string{"items:c1/<.*>"}, Actions: []string{"read"}, Effect: Allow}
	}
	cases := []struct {
		name    string
		edit    func(*Policy)
		pointer string
	}{
		{"valid read", func(*Policy) {}, ""},
		{"no id", func(p *Policy) { p.ID = "" }, "/id"},
		{"bad effect", func(p *Policy) { p.Effect = "maybe" }, "/effect"},
		{"no subjects", func(p *Policy) { p.Subjects = nil }, "/subjects"},
		{"broken pattern", func(p *Policy) { p.Actions = []string{"<(>"}; p.Subjects = []string{"user:a"} }, "/actions/0"},
		{"unbalanced", func(p *Policy) { p.Resources = []string{"items:<.*"} }, "/resources/0"},
		{"read with subject pattern", func(p *Policy) { p.Subjects = []string{"user:<.*>"} }, "/subjects/0"},
		{"read with inner wildcard", func(p *Policy) { p.Resources = []string{"items:<.*>/x"} }, "/resources/0"},
		{"read with other regex", func(p *Policy) { p.Resources = []string{"items:c1/<[a-z]+>"} }, "/resources/0"},
		{"deny read", func(p *Policy) { p.Effect = Deny }, "/effect"},
		{"read with conditions", func(p *Policy) {
			p.Conditions = []byte(`{"ip":{"type":"CIDRCondition","options":{"cidr":"10.0.0.0/8"}}}`)
		}, "/conditions"},
		{"read via pattern action", func(p *Policy) { p.Actions = []string{"<.*>"}; p.Subjects = []string{"user:<.*>"} }, "/subjects/0"},
		{"update may use patterns", func(p *Policy) {
			p.Actions = []string{"update"}
			p.Subjects = []string{"user:<.*>"}
			p.Resources = []string{"items:<c[0-9]>/<.*>"}
			p.Conditions = []byte(`{"ip":{"type":"CIDRCondition","options":{"cidr":"10.0.0.0/8"}}}`)
		}, ""},
	}
	for _, tc := range cases {
		p := ok()
		tc.edit(p)
		err := Validate(p)
		if tc.pointer == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var ce *catalog.Error
		if err == nil || !asError(err, &ce) || ce.Pointer != tc.pointer {
			t.Errorf("%s: got %v, want an error at %s", tc.name, err, tc.pointer)
		}
	}
}

func asError(err error, target **catalog.Error) bool {
	e, ok := err.(*catalog.Error)
	*target = e
	return ok
}

func TestAuditEvents(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	m := NewManager(store)
	mustCreate(t, m, &Policy{ID: "p1", Subjects: []string{"user:a"}, Resources: []string{"collections:c"}, Actions: []string{"read"}, Effect: Allow})
	if err := m.Delete(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range store.events {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != fmt.Sprint([]string{EventPolicyCreated, EventPolicyDeleted}) {
		t.Fatalf("audit events %v", types)
	}
	if _, err := m.CreatePolicy(context.Background(), &Policy{ID: "bad", Effect: "x"}); catalog.ErrorCode(err) != catalog.EINVALID {
		t.Fatalf("invalid policy: %v", err)
	}
	if len(store.events) != 2 {
		t.Fatal("an invalid policy wrote an event")
	}
}

func TestShareExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewManager(newMemStore())
	m.MaxAge, m.Now = 0, func() time.Time { return now }
	sh, err := m.CreateShare(ctx, &Caller{User: "owen"}, CollectionShare("c"), "user:zed", []string{ActionRead}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w := NewWarden(m)
	a := NewAuthorizer(m)
	if ok, _ := w.Allowed(ctx, []string{"user:zed"}, ActionRead, "items:c/x", nil); !ok {
		t.Fatal("the share does not grant read")
	}
	if f, _ := a.ReadFilter(ctx, &Caller{User: "zed"}); !slices.Equal(f.IDs, []string{"c"}) {
		t.Fatalf("read filter %+v", f)
	}
	now = now.Add(2 * time.Hour)
	if ok, _ := w.Allowed(ctx, []string{"user:zed"}, ActionRead, "items:c/x", nil); ok {
		t.Fatal("an expired share still grants read")
	}
	if f, _ := a.ReadFilter(ctx, &Caller{User: "zed"}); len(f.IDs) != 0 {
		t.Fatalf("an expired share is in the read filter: %+v", f)
	}
	shares, err := m.Shares(ctx, CollectionShare("c"))
	if err != nil || len(shares) != 1 || shares[0].ID != sh.ID || !shares[0].Expires.Equal(now.Add(-time.Hour)) {
		t.Fatalf("shares %+v, %v", shares, err)
	}
	if err := m.DeleteShare(ctx, CollectionShare("other"), sh.ID); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("deleting a share through another collection: %v", err)
	}
}

func TestJobSharesGrantReadByID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewManager(newMemStore())
	m.MaxAge, m.Now = 0, func() time.Time { return now }
	a := NewAuthorizer(m)
	owen := &Caller{User: "owen"}
	for _, tc := range []struct {
		name, subject string
		actions       []string
		pointer       string
	}{
		{"anonymous", "anonymous", []string{ActionRead}, "/subject"},
		{"execute", "user:zed", []string{ActionRead, ActionExecute}, "/actions/1"},
		{"share", "user:zed", []string{ActionShare}, "/actions/0"},
	} {
		_, err := m.CreateShare(ctx, owen, JobShare("j1"), tc.subject, tc.actions, time.Time{})
		if catalog.ErrorCode(err) != catalog.EINVALID || !strings.Contains(err.Error(), tc.pointer) {
			t.Errorf("%s: %v, want EINVALID at %s", tc.name, err, tc.pointer)
		}
	}
	js, err := m.CreateShare(ctx, owen, JobShare("j1"), "user:zed", []string{ActionRead}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateShare(ctx, owen, BatchShare("b1"), "group:team", []string{ActionRead}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Patterns do not grant jobs: listings could not hold them.
	if _, err := m.CreatePolicy(ctx, &Policy{ID: "wide", Subjects: []string{"user:zed"}, Resources: []string{"jobs:<.*>", "batches:b<.*>"},
		Actions: []string{ActionRead}, Effect: Allow}); err != nil {
		t.Fatal(err)
	}
	zed := &Caller{User: "zed", Groups: []string{"team"}}
	g, err := a.SharedJobs(ctx, zed)
	if err != nil || !slices.Equal(g.Jobs, []string{"j1"}) || !slices.Equal(g.Batches, []string{"b1"}) {
		t.Fatalf("SharedJobs = %+v, %v", g, err)
	}
	if g, _ := a.SharedJobs(ctx, &Caller{User: "zed", Scopes: []string{ActionExecute}}); len(g.Jobs)+len(g.Batches) != 0 {
		t.Fatalf("a token without the read scope gets %+v", g)
	}
	if g, _ := a.SharedJobs(ctx, &Caller{User: "olga"}); len(g.Jobs)+len(g.Batches) != 0 {
		t.Fatalf("olga gets %+v", g)
	}
	shares, err := m.Shares(ctx, JobShare("j1"))
	if err != nil || len(shares) != 1 || shares[0].ID != js.ID {
		t.Fatalf("the job's shares: %+v, %v", shares, err)
	}
	if shares, _ := m.Shares(ctx, BatchShare("j1")); len(shares) != 0 {
		t.Fatalf("a batch of the job's id has its shares: %+v", shares)
	}
	if err := m.DeleteShare(ctx, BatchShare("b1"), js.ID); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("deleting a job's share through a batch: %v", err)
	}
	// Who may share: the job's owner, the twin's owner, admins, and those
	// granted share.
	if _, err := m.CreatePolicy(ctx, &Policy{ID: "resharer", Subjects: []string{"user:rita"}, Resources: []string{JobResource("j1")},
		Actions: []string{ActionShare}, Effect: Allow}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    *Caller
		want bool
	}{
		{owen, true}, {&Caller{User: "tom"}, true}, {&Caller{User: "root", Groups: []string{AdminGroup}}, true},
		{&Caller{User: "rita"}, true}, {zed, false}, {Anonymous, false}, {&Caller{User: "owen", Scopes: []string{ActionRead}}, false},
	} {
		if ok, err := a.CanShareJob(ctx, tc.c, "owen", "tom", JobResource("j1")); ok != tc.want || err != nil {
			t.Errorf("CanShareJob(%+v) = %v, %v; want %v", tc.c, ok, err, tc.want)
		}
	}
	// An expired share grants nothing.
	now = now.Add(2 * time.Hour)
	if g, _ := a.SharedJobs(ctx, zed); len(g.Jobs) != 0 || !slices.Equal(g.Batches, []string{"b1"}) {
		t.Fatalf("after the job's share expired: %+v", g)
	}
}
