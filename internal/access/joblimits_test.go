package access

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// memJobQuotas is a QuotaStore in memory that keeps job-limit overrides
// only; the database stores are held to the contract by
// internal/storetest.
type memJobQuotas struct {
	jobs map[string]map[JobLimitKind]int64
}

func (m *memJobQuotas) StoredBytesLimit(context.Context, string) (int64, bool, error) {
	return 0, false, nil
}

func (m *memJobQuotas) SetStoredBytesLimit(context.Context, string, int64, *catalog.Event) error {
	return nil
}

func (m *memJobQuotas) JobLimits(_ context.Context, user string) (map[JobLimitKind]int64, error) {
	out := map[JobLimitKind]int64{}
	for k, v := range m.jobs[user] {
		out[k] = v
	}
	return out, nil
}

func (m *memJobQuotas) SetJobLimits(_ context.Context, user string, limits map[JobLimitKind]int64, _ *catalog.Event) error {
	if m.jobs[user] == nil {
		m.jobs[user] = map[JobLimitKind]int64{}
	}
	for k, v := range limits {
		if v < 0 {
			delete(m.jobs[user], k)
		} else {
			m.jobs[user][k] = v
		}
	}
	return nil
}

func TestAdmitJobs(t *testing.T) {
	t.Parallel()
	store := &memJobQuotas{jobs: map[string]map[JobLimitKind]int64{}}
	q := &Quotas{Store: store, DefaultRunningJobs: 4, DefaultQueuedJobs: 2}
	admin := &Caller{User: "root", Groups: []string{AdminGroup}}
	ana, bob := &Caller{User: "ana"}, &Caller{User: "bob"}
	if err := q.SetJobLimits(t.Context(), admin, "bob", map[JobLimitKind]*int64{RunningJobs: new(int64(0)), QueuedJobs: new(int64(5))}); err != nil {
		t.Fatal(err)
	}
	active := map[string][2]int{"ana": {1, 2}, "bob": {5, 50}, "root": {100, 100}}
	counted := 0
	count := func(_ context.Context, owner string) (int, int, error) {
		counted++
		return active[owner][0], active[owner][1], nil
	}
	for _, tc := range []struct {
		name   string
		caller *Caller
		n      int
		kind   JobLimitKind // "" admits
	}{
		{"one more fits both defaults", ana, 1, ""},
		{"two more go over the running default (3 active + 2 > 4)", ana, 2, RunningJobs},
		{"admins are exempt", admin, 10, ""},
		{"bob's override lifts the running limit, and his queued limit is 5", bob, 1, QueuedJobs},
		{"nothing to admit", bob, 0, ""},
	} {
		err := q.AdmitJobs(t.Context(), tc.caller, tc.n, count)
		var le *JobLimitError
		switch {
		case tc.kind == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.kind != "" && (!errors.As(err, &le) || le.Kind != tc.kind || catalog.ErrorCode(err) != catalog.ETOOMANY || le.RetryAfter < time.Second):
			t.Errorf("%s: %v, want ETOOMANY of the %s limit", tc.name, err, tc.kind)
		}
	}
	if counted != 3 {
		t.Fatalf("counted jobs %d times, want 3 (not for admins, nor for nothing)", counted)
	}
	// No limits: nothing is counted.
	off := &Quotas{Store: &memJobQuotas{jobs: map[string]map[JobLimitKind]int64{}}}
	if err := off.AdmitJobs(t.Context(), ana, 1000, count); err != nil || counted != 3 {
		t.Fatalf("without limits: %v, counted %d", err, counted)
	}
	// Only admins set limits; negative ones are refused.
	if err := q.SetJobLimits(t.Context(), ana, "ana", map[JobLimitKind]*int64{QueuedJobs: new(int64(9))}); catalog.ErrorCode(err) != catalog.EFORBIDDEN {
		t.Fatalf("ana sets her limit: %v", err)
	}
	if err := q.SetJobLimits(t.Context(), admin, "ana", map[JobLimitKind]*int64{QueuedJobs: new(int64(-1))}); catalog.ErrorCode(err) != catalog.EINVALID {
		t.Fatalf("a negative limit: %v", err)
	}
	if l, err := q.JobLimits(t.Context(), "ana"); err != nil || l != (JobLimits{Running: 4, Queued: 2}) {
		t.Fatalf("ana's limits: %+v, %v", l, err)
	}
}
