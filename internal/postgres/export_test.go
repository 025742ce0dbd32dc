package postgres

import "time"

// SetCountCostLimit sets the plan cost above which a search within a
// budget leaves its count out (0: the default, from the budget).
func SetCountCostLimit(s *Store, c float64) { s.countCostOverride = c }

// ForgetSharedRows drops the store's estimate of the rows of
// shared_items (see sharedRows), as its time to live would.
func ForgetSharedRows(s *Store) {
	s.sharedMu.Lock()
	s.sharedAt = time.Time{}
	s.sharedMu.Unlock()
}
