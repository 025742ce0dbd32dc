package storetest

import (
	"fmt"
	"testing"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// jobLimits returns a user's job-limit overrides as text, kinds in
// order: "running=3 queued=-" (- for none).
func jobLimits(t *testing.T, s QuotaStore, user string) string {
	t.Helper()
	m, err := s.JobLimits(ctx(t), user)
	if err != nil {
		t.Fatalf("JobLimits(%q): %v", user, err)
	}
	out := ""
	for _, k := range access.JobLimitKinds {
		v, ok := m[k]
		if out != "" {
			out += " "
		}
		if ok {
			out += fmt.Sprintf("%s=%d", k, v)
		} else {
			out += string(k) + "=-"
		}
	}
	if len(m) > len(access.JobLimitKinds) {
		t.Fatalf("JobLimits(%q) = %v: unknown kinds", user, m)
	}
	return out
}

func testQuotaJobLimits(t *testing.T, s QuotaStore) {
	set := func(user string, limits map[access.JobLimitKind]int64, audit *catalog.Event) {
		t.Helper()
		if err := s.SetJobLimits(ctx(t), user, limits, audit); err != nil {
			t.Fatalf("SetJobLimits(%q, %v): %v", user, limits, err)
		}
	}
	want := func(user, limits string) {
		t.Helper()
		if got := jobLimits(t, s, user); got != limits {
			t.Fatalf("job limits of %q: %s, want %s", user, got, limits)
		}
	}
	want("alice", "running=- queued=-")
	first := quotaEvent("alice")
	set("alice", map[access.JobLimitKind]int64{access.RunningJobs: 3, access.QueuedJobs: 0}, first)
	want("alice", "running=3 queued=0")
	want("bob", "running=- queued=-")
	// A kind left out keeps its override; the same values again change
	// nothing and write no event.
	set("alice", map[access.JobLimitKind]int64{access.QueuedJobs: 10}, nil)
	want("alice", "running=3 queued=10")
	set("alice", map[access.JobLimitKind]int64{access.RunningJobs: 3, access.QueuedJobs: 10}, quotaEvent("alice"))
	set("alice", map[access.JobLimitKind]int64{}, quotaEvent("alice"))
	removed := quotaEvent("alice")
	set("alice", map[access.JobLimitKind]int64{access.RunningJobs: -1}, removed)
	want("alice", "running=- queued=10")
	set("alice", map[access.JobLimitKind]int64{access.RunningJobs: -1}, quotaEvent("alice"))

	// The job limits are apart from the stored-bytes limit.
	setLimit(t, s, "alice", 500, nil)
	want("alice", "running=- queued=10")
	wantLimit(t, s, "alice", 500, true)
	setLimit(t, s, "alice", -1, nil)
	want("alice", "running=- queued=10")

	wantCode(t, s.SetJobLimits(ctx(t), "", map[access.JobLimitKind]int64{access.RunningJobs: 1}, quotaEvent("")), catalog.EINVALID)
	wantCode(t, s.SetJobLimits(ctx(t), "bob", map[access.JobLimitKind]int64{"stored": 1, access.RunningJobs: 1}, quotaEvent("bob")), catalog.EINVALID)
	want("bob", "running=- queued=-")

	got := outbox(t, s)
	if len(got) != 2 || got[0].ID != first.ID || got[1].ID != removed.ID {
		t.Fatalf("outbox %+v, want the events of the two changes", got)
	}
}
