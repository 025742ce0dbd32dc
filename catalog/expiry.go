package catalog

import (
	"context"
	"log/slog"
	"time"
)

// The expiry policy: an item whose STAC timestamps `expires` has passed
// leaves circulation, by a periodic task (ExpiryRunner), as RS-Server
// does. The collection says how (member dt:expiry): "archive" (the
// default) moves its published and deprecated items to archived, which
// takes them out of default search and stops them running; a draft
// cannot be archived and stays. "delete" moves every expired item that
// is not archived to deleted. Items move through MoveItem with reason
// "expired", so the lifecycle rules apply and the moves are events.

// PropExpiry is the collection member that names its expiry policy.
const PropExpiry = "dt:expiry"

// The expiry policies of a collection.
const (
	ExpiryArchive = "archive"
	ExpiryDelete  = "delete"
)

// ReasonExpired is the reason of the moves the expiry policy makes.
const ReasonExpired = "expired"

// checkExpiryPolicy refuses a dt:expiry that names no policy.
func checkExpiryPolicy(doc Document) error {
	v, ok, err := doc.String("", PropExpiry)
	if err != nil {
		return err
	}
	if ok && v != ExpiryArchive && v != ExpiryDelete {
		return Invalid("/"+PropExpiry, "the expiry policy is %q or %q, not %q", ExpiryArchive, ExpiryDelete, v)
	}
	return nil
}

// ExpiryPolicy returns the collection's expiry policy (ExpiryArchive
// unless it says otherwise).
func (c *Collection) ExpiryPolicy() string {
	if v, _, _ := c.Doc.String("", PropExpiry); v == ExpiryDelete {
		return ExpiryDelete
	}
	return ExpiryArchive
}

// ExpiredItem is an item the expiry policy may act on.
type ExpiredItem struct {
	Collection, ID string
	State          State
	// ETag is the version found expired: the move applies to it only.
	ETag    string
	Expires time.Time
}

// ExpiryStore finds expired items. The stores of internal/postgres and
// internal/sqlite implement it, by an index on the items that can still
// expire.
type ExpiryStore interface {
	// ExpiredItems returns up to limit items in state draft, published
	// or deprecated whose expires property is at or before now, ordered
	// by expires, collection and id, after the item after (nil: from the
	// first). The limit is clamped to [1, MaxPageSize].
	ExpiredItems(ctx context.Context, now time.Time, after *ExpiredItem, limit int) ([]ExpiredItem, error)
}

// ExpiryResult counts what one pass of the expiry policy did.
type ExpiryResult struct {
	Archived, Deleted int
	// Skipped counts the expired items left as they are: drafts of
	// collections that archive, and items another server or client
	// changed first.
	Skipped int
}

// expiryPage is how many expired items a pass reads at a time.
const expiryPage = 200

// ApplyExpiry moves every item that has expired by now (the service's
// clock) as its collection's policy says. Several servers may run it at
// once: a move is made only from the version found expired, so an item
// another pass moved first is skipped, not moved twice.
// Codes: EUNAVAILABLE.
func (s *Service) ApplyExpiry(ctx context.Context, store ExpiryStore) (ExpiryResult, error) {
	var (
		res   ExpiryResult
		after *ExpiredItem
	)
	now := s.now()
	for {
		page, err := store.ExpiredItems(ctx, now, after, expiryPage)
		if err != nil {
			return res, err
		}
		for i := range page {
			it := &page[i]
			moved, err := s.expire(ctx, it)
			if err != nil {
				return res, err
			}
			switch moved {
			case StateArchived:
				res.Archived++
			case StateDeleted:
				res.Deleted++
			default:
				res.Skipped++
			}
		}
		if len(page) < expiryPage {
			return res, nil
		}
		after = &page[len(page)-1]
	}
}

// expire applies its collection's policy to one expired item and
// returns the state it moved to ("" when it stays).
func (s *Service) expire(ctx context.Context, it *ExpiredItem) (State, error) {
	c, err := s.CachedCollection(ctx, it.Collection)
	if ErrorCode(err) == ENOTFOUND {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	to := StateArchived
	if c.ExpiryPolicy() == ExpiryDelete {
		to = StateDeleted
	}
	if !it.State.CanMove(to) {
		return "", nil
	}
	_, err = s.MoveItem(ctx, it.Collection, it.ID, to, ReasonExpired, Preconditions{it.ETag})
	switch ErrorCode(err) {
	case "":
		return to, nil
	case EPRECONDITION, ECONFLICT, ENOTFOUND, EGONE:
		// Changed since it was found: moved by another pass, edited,
		// or gone. The next pass looks at it again if it still expires.
		return "", nil
	}
	return "", err
}

// ExpiryRunner applies the expiry policy every Interval until its
// context ends.
type ExpiryRunner struct {
	Service *Service
	Store   ExpiryStore
	// Interval is the time between passes; it must be positive.
	Interval time.Duration
	Logger   *slog.Logger
}

// Run makes a pass at once and then every Interval, until ctx ends. A
// failed pass is logged and the next one tries again.
func (r *ExpiryRunner) Run(ctx context.Context) {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		res, err := r.Service.ApplyExpiry(ctx, r.Store)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("applying the expiry policy failed; the next pass tries again", "err", err, "archived", res.Archived, "deleted", res.Deleted)
		case res.Archived+res.Deleted > 0:
			log.Info("expired items moved", "archived", res.Archived, "deleted", res.Deleted, "skipped", res.Skipped)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
