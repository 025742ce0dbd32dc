// Package jobs owns the runs of digital twins: the Job and its statuses
// (accepted, running, successful, failed, dismissed), the rules of moving
// between them, and the jobs.Store and jobs.Queue interfaces that stores
// and queues implement.
//
// The job row in the store is the truth about a job. A queued task
// carries only the job id; a worker claims the job by a conditional
// status change before it runs it, so a task for a job that is not
// claimable (finished, dismissed, or taken by a newer attempt) does
// nothing.
//
// It must not import any adapter: no database driver, no queue client,
// no HTTP framework.
package jobs
