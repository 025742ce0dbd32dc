package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// PolicyStore is what RunPolicies tests: an access.PolicyStore that is
// also the catalog.Store whose outbox receives the policies' audit
// events.
type PolicyStore interface {
	access.PolicyStore
	catalog.Store
}

// RunPolicies runs the contract suite of access.PolicyStore. open must
// return a new empty, migrated store for each call; it is closed by the
// suite.
func RunPolicies(t *testing.T, open func(t *testing.T) PolicyStore) {
	t.Helper()
	runSuite(t, open, []suiteCase[PolicyStore]{
		{"PolicyRoundTrip", testPolicyRoundTrip},
		{"PolicyConflict", testPolicyConflict},
		{"PolicyNotFound", testPolicyNotFound},
		{"PolicyDelete", testPolicyDelete},
		{"PolicyPaging", testPolicyPaging},
		{"PolicyRevision", testPolicyRevision},
		{"PolicyAudit", testPolicyAudit},
		{"PolicyInvalid", testPolicyInvalid},
	})
}

// newPolicy returns a policy with the lists and no conditions or meta.
func newPolicy(id string) *access.Policy {
	return &access.Policy{
		ID:          id,
		Description: "test policy " + id,
		Subjects:    []string{"users:alice", "groups:<[a-z]+>-editors"},
		Resources:   []string{"collections/<.*>"},
		Actions:     []string{access.ActionRead, access.ActionUpdate},
		Effect:      access.Allow,
		Created:     t0,
	}
}

// policyEvent returns an audit event about a policy.
func policyEvent(typ, id string) *catalog.Event {
	return &catalog.Event{
		ID:      uuid.NewString(),
		Type:    typ,
		Subject: "policies/" + id,
		Time:    t0,
		Payload: json.RawMessage(fmt.Sprintf(`{"id":%q}`, id)),
	}
}

func createPolicy(t *testing.T, s PolicyStore, p *access.Policy) {
	t.Helper()
	if err := s.CreatePolicy(ctx(t), p, nil); err != nil {
		t.Fatalf("CreatePolicy %s: %v", p.ID, err)
	}
}

func getPolicy(t *testing.T, s PolicyStore, id string) *access.Policy {
	t.Helper()
	p, err := s.GetPolicy(ctx(t), id)
	if err != nil {
		t.Fatalf("GetPolicy %s: %v", id, err)
	}
	return p
}

func revision(t *testing.T, s PolicyStore) int64 {
	t.Helper()
	rev, err := s.PolicyRevision(ctx(t))
	if err != nil {
		t.Fatalf("PolicyRevision: %v", err)
	}
	return rev
}

// allEvents returns the whole outbox.
func allEvents(t *testing.T, s PolicyStore) []*catalog.Event {
	t.Helper()
	evs, err := s.ListEvents(ctx(t), 0, catalog.MaxPageSize)
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	return evs
}

// samePolicy fails unless got is want as stored: JSON compared by
// meaning, absent JSON as nil, Created to the microsecond in UTC.
func samePolicy(t *testing.T, got, want *access.Policy) {
	t.Helper()
	if got.ID != want.ID || got.Description != want.Description || got.Effect != want.Effect ||
		!slices.Equal(got.Subjects, want.Subjects) || !slices.Equal(got.Resources, want.Resources) ||
		!slices.Equal(got.Actions, want.Actions) {
		t.Fatalf("policy = %+v, want %+v", got, want)
	}
	for _, j := range []struct {
		name      string
		got, want json.RawMessage
	}{{"conditions", got.Conditions, want.Conditions}, {"meta", got.Meta, want.Meta}} {
		switch {
		case j.want == nil && j.got != nil:
			t.Fatalf("%s of %s = %s, want nil", j.name, want.ID, j.got)
		case j.want != nil && (j.got == nil || canonical(t, j.got) != canonical(t, j.want)):
			t.Fatalf("%s of %s = %s, want %s", j.name, want.ID, j.got, j.want)
		}
	}
	wantCreated := want.Created.Truncate(time.Microsecond).UTC()
	if !got.Created.Equal(wantCreated) || got.Created.Location() != time.UTC {
		t.Fatalf("created of %s = %v, want %v", want.ID, got.Created, wantCreated)
	}
}

func testPolicyRoundTrip(t *testing.T, s PolicyStore) {
	full := newPolicy("full")
	full.Effect = access.Deny
	full.Conditions = json.RawMessage(`{
		"owner": {"type": "EqualsSubjectCondition", "options": {}},
		"ip":    {"type": "CIDRCondition", "options": {"cidr": "10.0.0.0/8"}}
	}`)
	full.Meta = json.RawMessage(`{"share": "s-1", "template": "viewer", "n": [1, 2.5, null]}`)
	// Nanoseconds the store drops, in a zone it does not keep.
	full.Created = time.Date(2024, 6, 1, 12, 30, 0, 123456789, time.FixedZone("CEST", 2*3600))
	full.Subjects = []string{"users:zoë", "<.*>"}

	bare := newPolicy("bare")
	bare.Description = ""
	bare.Meta = json.RawMessage(`null`)
	bare.Conditions = json.RawMessage{}

	empty := newPolicy("empty-lists")
	empty.Subjects, empty.Resources, empty.Actions = nil, []string{}, nil

	for _, p := range []*access.Policy{full, bare, empty} {
		createPolicy(t, s, p)
	}
	samePolicy(t, getPolicy(t, s, "full"), full)
	got := getPolicy(t, s, "bare")
	if got.Conditions != nil || got.Meta != nil {
		t.Fatalf("bare policy: conditions %q, meta %q; want both nil", got.Conditions, got.Meta)
	}
	bare.Meta, bare.Conditions = nil, nil
	samePolicy(t, got, bare)
	samePolicy(t, getPolicy(t, s, "empty-lists"), empty)

	// Listing returns what getting does.
	list, err := s.ListPolicies(ctx(t), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("ListPolicies = %d policies, want 3", len(list))
	}
	samePolicy(t, list[0], bare)
	samePolicy(t, list[1], empty)
	samePolicy(t, list[2], full)
}

func testPolicyConflict(t *testing.T, s PolicyStore) {
	createPolicy(t, s, newPolicy("p"))
	dup := newPolicy("p")
	dup.Effect = access.Deny
	dup.Description = "the second one"
	err := s.CreatePolicy(ctx(t), dup, policyEvent("policy.created", "p"))
	wantCode(t, err, catalog.ECONFLICT)
	if msg := catalog.ErrorMessage(err); msg != `policy "p" already exists` {
		t.Fatalf("conflict message = %q", msg)
	}
	samePolicy(t, getPolicy(t, s, "p"), newPolicy("p"))
}

func testPolicyNotFound(t *testing.T, s PolicyStore) {
	_, err := s.GetPolicy(ctx(t), "missing")
	wantCode(t, err, catalog.ENOTFOUND)
	if msg := catalog.ErrorMessage(err); msg != `policy "missing" not found` {
		t.Fatalf("not found message = %q", msg)
	}
	err = s.DeletePolicy(ctx(t), "missing", policyEvent("policy.deleted", "missing"))
	wantCode(t, err, catalog.ENOTFOUND)
	if msg := catalog.ErrorMessage(err); msg != `policy "missing" not found` {
		t.Fatalf("not found message = %q", msg)
	}
}

func testPolicyDelete(t *testing.T, s PolicyStore) {
	createPolicy(t, s, newPolicy("a"))
	createPolicy(t, s, newPolicy("b"))
	if err := s.DeletePolicy(ctx(t), "a", nil); err != nil {
		t.Fatalf("DeletePolicy: %v", err)
	}
	_, err := s.GetPolicy(ctx(t), "a")
	wantCode(t, err, catalog.ENOTFOUND)
	wantCode(t, s.DeletePolicy(ctx(t), "a", nil), catalog.ENOTFOUND)
	getPolicy(t, s, "b")
	// The id of a deleted policy may be taken again.
	again := newPolicy("a")
	again.Effect = access.Deny
	createPolicy(t, s, again)
	samePolicy(t, getPolicy(t, s, "a"), again)
}

func testPolicyPaging(t *testing.T, s PolicyStore) {
	// Ids whose byte order differs from a locale's: upper case before
	// lower case, punctuation by code point, non-ASCII last.
	ids := []string{"b", "a", "B", "Z", "a-1", "a_1", "a.1", "é", "z", "A", "ä", "a1", "_", "~"}
	for _, id := range ids {
		createPolicy(t, s, newPolicy(id))
	}
	want := slices.Clone(ids)
	slices.Sort(want)

	for _, limit := range []int{1, 2, 3, 5, len(ids), len(ids) + 1} {
		var got []string
		after := ""
		for range len(ids) + 1 {
			page, err := s.ListPolicies(ctx(t), after, limit)
			if err != nil {
				t.Fatalf("ListPolicies(%q, %d): %v", after, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("ListPolicies(%q, %d) = %d policies", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, p := range page {
				got = append(got, p.ID)
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paging by %d = %q, want %q", limit, got, want)
		}
	}

	// after need not be an id that exists.
	page, err := s.ListPolicies(ctx(t), "a0", 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := policyIDs(page); !slices.Equal(got, []string{"a1", "a_1", "b"}) {
		t.Fatalf("ListPolicies(a0, 3) = %q", got)
	}
	// Past the end: an empty page.
	page, err = s.ListPolicies(ctx(t), "\U0010FFFF", 10)
	if err != nil || len(page) != 0 {
		t.Fatalf("ListPolicies past the end = %q, %v; want none", policyIDs(page), err)
	}
	// A limit below 1 is 1; one above the maximum is the maximum.
	for _, limit := range []int{0, -5} {
		page, err = s.ListPolicies(ctx(t), "", limit)
		if err != nil || len(page) != 1 || page[0].ID != want[0] {
			t.Fatalf("ListPolicies(\"\", %d) = %q, %v; want [%q]", limit, policyIDs(page), err, want[0])
		}
	}
	page, err = s.ListPolicies(ctx(t), "", catalog.MaxPageSize+1)
	if err != nil || len(page) != len(ids) {
		t.Fatalf("ListPolicies(\"\", max+1) = %d policies, %v; want %d", len(page), err, len(ids))
	}
}

func policyIDs(ps []*access.Policy) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

func testPolicyRevision(t *testing.T, s PolicyStore) {
	r0 := revision(t, s)
	if r0 != 0 {
		t.Fatalf("revision of a new store = %d, want 0", r0)
	}
	createPolicy(t, s, newPolicy("p"))
	r1 := revision(t, s)
	if r1 <= r0 {
		t.Fatalf("revision after a create = %d, want more than %d", r1, r0)
	}
	wantCode(t, s.CreatePolicy(ctx(t), newPolicy("p"), nil), catalog.ECONFLICT)
	wantCode(t, s.DeletePolicy(ctx(t), "missing", nil), catalog.ENOTFOUND)
	invalid := newPolicy("q")
	invalid.Effect = "maybe"
	if err := s.CreatePolicy(ctx(t), invalid, nil); err == nil {
		t.Fatal("CreatePolicy with an unknown effect succeeded")
	}
	if r := revision(t, s); r != r1 {
		t.Fatalf("revision after failed changes = %d, want %d", r, r1)
	}
	if err := s.DeletePolicy(ctx(t), "p", nil); err != nil {
		t.Fatal(err)
	}
	r2 := revision(t, s)
	if r2 <= r1 {
		t.Fatalf("revision after a delete = %d, want more than %d", r2, r1)
	}
	createPolicy(t, s, newPolicy("p"))
	if r3 := revision(t, s); r3 <= r2 {
		t.Fatalf("revision after creating a deleted id again = %d, want more than %d", r3, r2)
	}
}

func testPolicyAudit(t *testing.T, s PolicyStore) {
	created := policyEvent("policy.created", "p")
	if err := s.CreatePolicy(ctx(t), newPolicy("p"), created); err != nil {
		t.Fatal(err)
	}
	// A nil audit event writes none.
	createPolicy(t, s, newPolicy("quiet"))
	// Failed changes write none.
	wantCode(t, s.CreatePolicy(ctx(t), newPolicy("p"), policyEvent("policy.created", "p")), catalog.ECONFLICT)
	wantCode(t, s.DeletePolicy(ctx(t), "missing", policyEvent("policy.deleted", "missing")), catalog.ENOTFOUND)
	deleted := policyEvent("policy.deleted", "p")
	if err := s.DeletePolicy(ctx(t), "p", deleted); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePolicy(ctx(t), "quiet", nil); err != nil {
		t.Fatal(err)
	}

	got := allEvents(t, s)
	if len(got) != 2 {
		t.Fatalf("outbox holds %d events, want the 2 audit events: %+v", len(got), got)
	}
	for i, want := range []*catalog.Event{created, deleted} {
		ev := got[i]
		if ev.ID != want.ID || ev.Type != want.Type || ev.Subject != want.Subject || !ev.Time.Equal(want.Time) {
			t.Fatalf("event %d = %+v, want %+v", i, ev, want)
		}
		if canonical(t, ev.Payload) != canonical(t, want.Payload) {
			t.Fatalf("event %d payload = %s, want %s", i, ev.Payload, want.Payload)
		}
	}
	if got[0].Seq >= got[1].Seq {
		t.Fatalf("event seqs %d, %d do not increase", got[0].Seq, got[1].Seq)
	}
}

func testPolicyInvalid(t *testing.T, s PolicyStore) {
	tests := []struct {
		name   string
		change func(p *access.Policy)
	}{
		{"NoID", func(p *access.Policy) { p.ID = "" }},
		{"UnknownEffect", func(p *access.Policy) { p.Effect = "Allow" }},
		{"ConditionsNotJSON", func(p *access.Policy) { p.Conditions = json.RawMessage(`{"ip":`) }},
		{"MetaNotJSON", func(p *access.Policy) { p.Meta = json.RawMessage(`not json`) }},
	}
	for _, tc := range tests {
		p := newPolicy("bad")
		tc.change(p)
		err := s.CreatePolicy(ctx(t), p, policyEvent("policy.created", "bad"))
		if code := catalog.ErrorCode(err); code != catalog.EINVALID {
			t.Fatalf("%s: CreatePolicy error code = %q (%v), want %q", tc.name, code, err, catalog.EINVALID)
		}
	}
	if evs := allEvents(t, s); len(evs) != 0 {
		t.Fatalf("rejected policies wrote %d events", len(evs))
	}
	if _, err := s.GetPolicy(ctx(t), "bad"); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("a rejected policy was stored: %v", err)
	}
}
