package sqlite

import (
	"context"
	"math"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// Store finds the expired items for the expiry policy too.
var _ catalog.ExpiryStore = (*Store)(nil)

// expiresExpr is the expression of items_expires_idx (migration 0011):
// the expires property in Unix seconds, to the millisecond.
const expiresExpr = `unixepoch(upper(json_extract(content, '$.properties.expires')), 'subsec')`

// expiredItemsSQL reads the expired items by items_expires_idx: its
// expression, its WHERE clause and its order.
const expiredItemsSQL = `SELECT collection, id, state, etag, ` + expiresExpr + ` FROM items
WHERE state IN ('draft', 'published', 'deprecated') AND content IS NOT NULL
AND json_type(content, '$.properties.expires') = 'text'
AND ` + expiresExpr + ` <= ?
AND (` + expiresExpr + `, collection, id) > (?, ?, ?)
ORDER BY ` + expiresExpr + `, collection, id LIMIT ?`

// ExpiredItems implements catalog.ExpiryStore.
func (s *Store) ExpiredItems(ctx context.Context, now time.Time, after *catalog.ExpiredItem, limit int) ([]catalog.ExpiredItem, error) {
	from, collection, id := math.Inf(-1), "", ""
	if after != nil {
		// The time came from the index to the millisecond, so this is
		// the value the index holds.
		from, collection, id = float64(after.Expires.UnixMilli())/1000, after.Collection, after.ID
	}
	return queryRows(ctx, s.r, func(r interface{ Scan(...any) error }) (catalog.ExpiredItem, error) {
		var (
			it    catalog.ExpiredItem
			state string
			secs  float64
		)
		err := r.Scan(&it.Collection, &it.ID, &state, &it.ETag, &secs)
		it.State, it.Expires = catalog.State(state), time.UnixMilli(int64(math.Round(secs*1000))).UTC()
		return it, err
	}, expiredItemsSQL, float64(now.UnixMicro())/1e6, from, collection, id, min(max(limit, 1), catalog.MaxPageSize))
}
