package access_test

import (
	"context"
	"testing"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/testdb"
)

// TestManagerOnStores runs the manager and warden over the real stores:
// policies written through one manager decide at once, and another
// manager over the same database sees them.
func TestManagerOnStores(t *testing.T) {
	t.Parallel()
	for _, k := range testdb.Kinds {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			st := k.Open(t)
			ps, ok := st.(access.PolicyStore)
			if !ok {
				t.Fatalf("the %s store does not keep policies", k.Name)
			}
			ctx := context.Background()
			a, b := access.NewManager(ps), access.NewManager(ps)
			b.MaxAge = 0
			p := &access.Policy{ID: "viewers", Subjects: []string{"group:eo"}, Resources: []string{"items:c1/<.*>"},
				Actions: []string{access.ActionRead}, Effect: access.Allow, Meta: []byte(`{"role":"viewer"}`)}
			if _, err := a.CreatePolicy(ctx, p); err != nil {
				t.Fatal(err)
			}
			for name, m := range map[string]*access.Manager{"writer": a, "other": b} {
				ok, err := access.NewWarden(m).Allowed(ctx, []string{"user:ana", "group:eo"}, access.ActionRead, "items:c1/x", nil)
				if err != nil || !ok {
					t.Fatalf("%s manager: allowed %v, %v", name, ok, err)
				}
			}
			if _, err := a.CreatePolicy(ctx, p); catalog.ErrorCode(err) != catalog.ECONFLICT {
				t.Fatalf("duplicate policy: %v", err)
			}
			if err := a.Delete(ctx, "viewers"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := access.NewWarden(b).Allowed(ctx, []string{"group:eo"}, access.ActionRead, "items:c1/x", nil); ok {
				t.Fatal("a deleted policy still allows")
			}
			evs, err := st.ListEvents(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, e := range evs {
				types = append(types, e.Type)
			}
			if len(types) != 2 || types[0] != access.EventPolicyCreated || types[1] != access.EventPolicyDeleted {
				t.Fatalf("audit events %v", types)
			}
		})
	}
}
