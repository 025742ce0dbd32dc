package access

import (
	"context"
	"fmt"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// JobLimitKind names a per-user job limit.
type JobLimitKind string

// The job limits. They are checked when jobs are submitted: a job counts
// against RunningJobs from the moment it is accepted, since any accepted
// job may start at once (no per-user scheduler holds jobs back), so
// RunningJobs bounds how many of a user's jobs run at the same time;
// QueuedJobs bounds how many wait for a worker (accepted).
const (
	RunningJobs JobLimitKind = "running"
	QueuedJobs  JobLimitKind = "queued"
)

// JobLimitKinds lists the job limits.
var JobLimitKinds = []JobLimitKind{RunningJobs, QueuedJobs}

// Valid reports whether k is a job limit.
func (k JobLimitKind) Valid() bool { return k == RunningJobs || k == QueuedJobs }

// JobLimits are the job limits that apply to a user; 0 is unlimited.
type JobLimits struct {
	Running, Queued int64
}

// Retry-After estimates of a refused submission: a queued job waits for
// a worker, which takes it within seconds; a slot of the running limit
// frees when a job ends, which takes longer.
const (
	retryQueued  = 10 * time.Second
	retryRunning = 30 * time.Second
)

// JobLimitError is the ETOOMANY of a submission over a job limit: which
// limit, the user's jobs that count against it, and the limit.
type JobLimitError struct {
	User  string
	Kind  JobLimitKind
	Count int64
	Limit int64
	// Jobs is how many jobs the refused submission would have added.
	Jobs int
	// RetryAfter is when a retry may pass.
	RetryAfter time.Duration
}

func (e *JobLimitError) Error() string {
	what := "queued or running"
	if e.Kind == QueuedJobs {
		what = "queued"
	}
	return fmt.Sprintf("too many jobs: %s has %d jobs %s and the limit of %s jobs is %d, so %d more cannot be accepted; retry in %d s",
		e.User, e.Count, what, e.Kind, e.Limit, e.Jobs, int(e.RetryAfter.Seconds()))
}

// Unwrap gives the error its code.
func (e *JobLimitError) Unwrap() error {
	return &catalog.Error{Code: catalog.ETOOMANY, Message: e.Error()}
}

// JobLimits returns the job limits that apply to user: the user's
// overrides, else the node's defaults.
func (q *Quotas) JobLimits(ctx context.Context, user string) (JobLimits, error) {
	if q == nil || user == "" {
		return JobLimits{}, nil
	}
	out := JobLimits{Running: q.DefaultRunningJobs, Queued: q.DefaultQueuedJobs}
	if q.Store == nil {
		return out, nil
	}
	over, err := q.Store.JobLimits(ctx, user)
	if err != nil {
		return JobLimits{}, err
	}
	if v, ok := over[RunningJobs]; ok {
		out.Running = v
	}
	if v, ok := over[QueuedJobs]; ok {
		out.Queued = v
	}
	return out, nil
}

// AdmitJobs checks that caller may submit n more jobs, given the jobs of
// theirs that are accepted and running now (count). Admins are exempt,
// and so is everyone while no job limit applies (count is then not
// called). Two submissions at the same moment may both pass: the limits
// are a bound on use, not a lock. Codes: ETOOMANY (*JobLimitError), those
// of count.
func (q *Quotas) AdmitJobs(ctx context.Context, caller *Caller, n int, count func(ctx context.Context, owner string) (accepted, running int, err error)) error {
	if caller == nil || caller.IsAdmin() || caller.IsAnonymous() || n <= 0 {
		return nil
	}
	limits, err := q.JobLimits(ctx, caller.User)
	if err != nil || (limits.Running == 0 && limits.Queued == 0) {
		return err
	}
	accepted, running, err := count(ctx, caller.User)
	if err != nil {
		return err
	}
	if active := int64(accepted + running); limits.Running > 0 && active+int64(n) > limits.Running {
		return &JobLimitError{User: caller.User, Kind: RunningJobs, Count: active, Limit: limits.Running, Jobs: n, RetryAfter: retryRunning}
	}
	if limits.Queued > 0 && int64(accepted)+int64(n) > limits.Queued {
		return &JobLimitError{User: caller.User, Kind: QueuedJobs, Count: int64(accepted), Limit: limits.Queued, Jobs: n, RetryAfter: retryQueued}
	}
	return nil
}

// SetJobLimits changes a user's job-limit overrides; admins only. Per
// kind, a limit >= 0 sets it and nil returns the user to the node
// default; kinds not in limits keep theirs. Codes: EUNAUTHENTICATED,
// EFORBIDDEN, EINVALID.
func (q *Quotas) SetJobLimits(ctx context.Context, by *Caller, user string, limits map[JobLimitKind]*int64) error {
	switch {
	case by.IsAnonymous():
		return catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in as a node administrator")
	case !by.IsAdmin():
		return catalog.Errorf(catalog.EFORBIDDEN, "only node administrators set quotas")
	}
	if err := checkName("path.user", user); err != nil {
		return err
	}
	change := map[JobLimitKind]int64{}
	for k, v := range limits {
		if !k.Valid() {
			return catalog.Invalid("/"+string(k)+"_jobs", "unknown job limit %q", k)
		}
		switch {
		case v == nil:
			change[k] = -1
		case *v < 0:
			return catalog.Invalid("/"+string(k)+"_jobs", "a limit is 0 (unlimited) or more jobs")
		default:
			change[k] = *v
		}
	}
	if len(change) == 0 {
		return nil
	}
	ev := catalog.NewEvent(EventQuotaChanged, "quotas/"+user, time.Now().UTC(), catalog.EventPayload{ID: user})
	return q.Store.SetJobLimits(ctx, user, change, ev)
}
