package postgres

// SetCountEstimateLimit changes the estimate above which a search within
// a budget is not counted.
func SetCountEstimateLimit(s *Store, n float64) { s.countEstimateLimit = n }
