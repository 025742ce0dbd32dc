package postgres

// SetCountCostLimit sets the plan cost above which a search within a
// budget leaves its count out (0: the default, from the budget).
func SetCountCostLimit(s *Store, c float64) { s.countCostOverride = c }

// SetProbeRows sets the rows a spatial page's probe reads (0: the default).
func SetProbeRows(s *Store, n int) { s.probeRows = n }
