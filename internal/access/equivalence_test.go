package access

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/ory/ladon"
	ladonmemory "github.com/ory/ladon/manager/memory"
)

var patternPart = regexp.MustCompile(`<[^>]*>`)

// TestWardenAgreesWithLadon holds the indexed warden to ladon's own
// warden and memory manager on random requests, many of them made to
// match some policy.
func TestWardenAgreesWithLadon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ps := mixedPolicies(600)
	store := newMemStore()
	mm := ladonmemory.NewMemoryManager()
	for _, p := range ps {
		store.byID[p.ID] = p
		lp, err := toLadon(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := mm.Create(ctx, lp); err != nil {
			t.Fatal(err)
		}
	}
	store.rev = 1
	w := NewWarden(NewManager(store))
	ref := &ladon.Ladon{Manager: mm}
	r := rand.New(rand.NewPCG(7, 9))
	actions := []string{ActionRead, ActionUpdate, ActionExecute, ActionDelete, ActionPublish}
	fill := func(s string) string {
		return patternPart.ReplaceAllStringFunc(s, func(string) string { return fmt.Sprint(r.IntN(30)) })
	}
	allowedSeen, deniedSeen := 0, 0
	for i := range 3000 {
		// Half the requests are built from one policy, so that they match it.
		p := ps[r.IntN(len(ps))]
		subjects := []string{fill(p.Subjects[0])}
		for range r.IntN(3) {
			subjects = append(subjects, fill(ps[r.IntN(len(ps))].Subjects[0]))
		}
		resource := fill(p.Resources[r.IntN(len(p.Resources))])
		action := p.Actions[r.IntN(len(p.Actions))]
		if r.IntN(2) == 0 {
			resource = fill(ps[r.IntN(len(ps))].Resources[0])
			action = actions[r.IntN(len(actions))]
		}
		got, err := w.Allowed(ctx, subjects, action, resource, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, forced := false, false
		for _, s := range subjects {
			err := ref.IsAllowed(ctx, &ladon.Request{Subject: s, Action: action, Resource: resource})
			switch {
			case err == nil:
				want = true
			case errors.Is(err, ladon.ErrRequestForcefullyDenied):
				forced = true
			}
		}
		want = want && !forced
		if got != want {
			t.Fatalf("request %d: %v %s %s: indexed warden says %v, ladon says %v", i, subjects, action, resource, got, want)
		}
		if got {
			allowedSeen++
		} else {
			deniedSeen++
		}
	}
	if allowedSeen < 100 || deniedSeen < 100 {
		t.Fatalf("too few of each answer to compare: %d allowed, %d denied", allowedSeen, deniedSeen)
	}
}
