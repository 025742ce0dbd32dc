package access

import (
	"context"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// QuotaStore keeps per-user overrides of the node's limits. The stores
// of internal/postgres and internal/sqlite implement it.
type QuotaStore interface {
	// StoredBytesLimit returns a user's override of the stored-bytes
	// limit; ok is false when the user has none (the node default
	// applies). A limit of 0 means unlimited.
	StoredBytesLimit(ctx context.Context, user string) (limit int64, ok bool, err error)
	// SetStoredBytesLimit sets (limit >= 0) or removes (limit < 0) a
	// user's override, with its audit event, in one transaction.
	// Codes: EINVALID (empty user).
	SetStoredBytesLimit(ctx context.Context, user string, limit int64, audit *catalog.Event) error
	// JobLimits returns a user's overrides of the job limits, by kind;
	// a kind the user has no override of is absent. A limit of 0 means
	// unlimited.
	JobLimits(ctx context.Context, user string) (map[JobLimitKind]int64, error)
	// SetJobLimits changes a user's job-limit overrides: per kind, a
	// limit >= 0 sets it and a limit < 0 removes it; the kinds not in
	// limits keep theirs. The audit event is written, in the same
	// transaction, when anything changed. Codes: EINVALID (empty user,
	// unknown kind).
	SetJobLimits(ctx context.Context, user string, limits map[JobLimitKind]int64, audit *catalog.Event) error
}

// EventQuotaChanged is the audit event of a quota override.
const EventQuotaChanged = "quota.changed"

// Quotas are the node's limits per user: a default and admin overrides.
// Every limit is off (0) unless configured; admins are exempt.
type Quotas struct {
	Store QuotaStore
	// DefaultStoredBytes limits the asset bytes a user's collections
	// hold; 0 is unlimited.
	DefaultStoredBytes int64
	// DefaultRunningJobs and DefaultQueuedJobs limit a user's jobs (see
	// RunningJobs and QueuedJobs); 0 is unlimited.
	DefaultRunningJobs, DefaultQueuedJobs int64
}

// StoredBytesLimit returns the limit that applies to user (0: none).
func (q *Quotas) StoredBytesLimit(ctx context.Context, user string) (int64, error) {
	if q == nil || user == "" {
		return 0, nil
	}
	if q.Store != nil {
		limit, ok, err := q.Store.StoredBytesLimit(ctx, user)
		if err != nil || ok {
			return limit, err
		}
	}
	return q.DefaultStoredBytes, nil
}

// For returns the quota an upload by caller into a collection owned by
// owner counts against. Admins are exempt.
func (q *Quotas) For(ctx context.Context, caller *Caller, owner string) (catalog.Quota, error) {
	if caller.IsAdmin() || owner == "" {
		return catalog.Quota{Owner: owner}, nil
	}
	limit, err := q.StoredBytesLimit(ctx, owner)
	return catalog.Quota{Owner: owner, StoredBytes: limit}, err
}

// SetStoredBytesLimit sets (limit >= 0) or removes (nil) a user's
// override; admins only. Codes: EUNAUTHENTICATED, EFORBIDDEN, EINVALID.
func (q *Quotas) SetStoredBytesLimit(ctx context.Context, by *Caller, user string, limit *int64) error {
	switch {
	case by.IsAnonymous():
		return catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in as a node administrator")
	case !by.IsAdmin():
		return catalog.Errorf(catalog.EFORBIDDEN, "only node administrators set quotas")
	}
	if err := checkName("path.user", user); err != nil {
		return err
	}
	v := int64(-1)
	if limit != nil {
		if *limit < 0 {
			return catalog.Invalid("/stored_bytes", "a limit is 0 (unlimited) or more bytes")
		}
		v = *limit
	}
	ev := catalog.NewEvent(EventQuotaChanged, "quotas/"+user, time.Now().UTC(), catalog.EventPayload{ID: user})
	return q.Store.SetStoredBytesLimit(ctx, user, v, ev)
}
