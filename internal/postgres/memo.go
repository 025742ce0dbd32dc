package postgres

import "sync"

// memoLimit bounds a memo: past it, the memo starts anew.
const memoLimit = 10000

// memo is a map from string keys, safe for concurrent use and bounded by
// memoLimit, that the store keeps what it read of the database in (see
// partitions, knownOwned, spatialStats). The zero memo is empty.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func (c *memo[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *memo[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= memoLimit {
		c.m = map[string]V{}
	}
	c.m[k] = v
}

// reset empties the memo.
func (c *memo[V]) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
