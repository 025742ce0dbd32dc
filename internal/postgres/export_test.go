package postgres

// SetCountCostLimit sets the plan cost above which a search within a
// budget leaves its count out (0: the default, from the budget).
func SetCountCostLimit(s *Store, c float64) { s.countCostOverride = c }
