package access

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ory/ladon"
	ladonmemory "github.com/ory/ladon/manager/memory"
)

// mixedPolicies makes n policies of the kinds a node holds: per-user read
// grants on collections and their items, group grants, editor rules with
// subject patterns, and denials.
func mixedPolicies(n int) []*Policy {
	out := make([]*Policy, 0, n)
	for i := range n {
		c := fmt.Sprintf("c%d", i%200)
		p := &Policy{ID: fmt.Sprintf("p%06d", i), Effect: Allow}
		switch i % 10 {
		case 0, 1, 2, 3:
			p.Subjects = []string{fmt.Sprintf("user:u%d", i%500)}
			p.Resources = []string{"collections:" + c, "items:" + c + "/<.*>"}
			p.Actions = []string{ActionRead}
		case 4, 5, 6:
			p.Subjects = []string{fmt.Sprintf("group:g%d", i%50)}
			p.Resources = []string{"items:" + c + "/<.*>"}
			p.Actions = []string{ActionRead, ActionExecute}
		case 7, 8:
			p.Subjects = []string{fmt.Sprintf("user:<u%d[0-9]*>", i%10)}
			p.Resources = []string{"items:" + c + "/<.*>"}
			p.Actions = []string{ActionUpdate, ActionPublish}
		case 9:
			p.Subjects = []string{fmt.Sprintf("user:u%d", i%500)}
			p.Resources = []string{"items:" + c + "/secret-<[0-9]+>"}
			p.Actions = []string{ActionDelete}
			p.Effect = Deny
		}
		out = append(out, p)
	}
	return out
}

type benchRequest struct {
	subjects         []string
	action, resource string
}

func benchRequests(n int) []benchRequest {
	r := rand.New(rand.NewPCG(1, 2))
	actions := []string{ActionRead, ActionUpdate, ActionExecute, ActionDelete}
	out := make([]benchRequest, n)
	for i := range out {
		u := r.IntN(500)
		out[i] = benchRequest{
			subjects: []string{fmt.Sprintf("user:u%d", u), fmt.Sprintf("group:g%d", u%50), fmt.Sprintf("token:t%d", u)},
			action:   actions[r.IntN(len(actions))],
			resource: fmt.Sprintf("items:c%d/i%d", r.IntN(200), r.IntN(1000)),
		}
	}
	return out
}

// BenchmarkWardenDecision measures one decision for a caller with three
// subjects against 10, 1,000 and 10,000 policies, and reports the p50
// and p99 of the individual decisions.
func BenchmarkWardenDecision(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			store := newMemStore()
			for _, p := range mixedPolicies(n) {
				if err := Validate(p); err != nil {
					b.Fatal(err)
				}
				store.byID[p.ID] = p
			}
			store.rev = 1
			m := NewManager(store)
			w := NewWarden(m)
			runtime.GC()
			reqs := benchRequests(4096)
			ctx := context.Background()
			lat := make([]time.Duration, 0, max(b.N, 1<<20))
			allowed := 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r := reqs[i%len(reqs)]
				start := time.Now()
				ok, err := w.Allowed(ctx, r.subjects, r.action, r.resource, nil)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if ok {
					allowed++
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
			b.ReportMetric(float64(allowed)/float64(len(lat)), "allowed-ratio")
		})
	}
}

// BenchmarkLadonMemoryManager is the reference: ladon's own memory
// manager and warden on the same policies, one subject per decision.
func BenchmarkLadonMemoryManager(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			mm := ladonmemory.NewMemoryManager()
			for _, p := range mixedPolicies(n) {
				lp, err := toLadon(p)
				if err != nil {
					b.Fatal(err)
				}
				if err := mm.Create(context.Background(), lp); err != nil {
					b.Fatal(err)
				}
			}
			w := &ladon.Ladon{Manager: mm}
			reqs := benchRequests(4096)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r := reqs[i%len(reqs)]
				_ = w.IsAllowed(context.Background(), &ladon.Request{Subject: r.subjects[0], Action: r.action, Resource: r.resource})
			}
		})
	}
}
