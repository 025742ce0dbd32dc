package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twinstac/twinstac/catalog"
)

// Store finds the expired items for the expiry policy too.
var _ catalog.ExpiryStore = (*Store)(nil)

// expiredItemsSQL reads the expired items by items_expires_idx
// (migration 0015): its expression, its WHERE clause and its order.
const expiredItemsSQL = `SELECT collection, id, state, etag, item_expires(content) FROM items
WHERE state IN ('draft', 'published', 'deprecated') AND item_expires(content) <= $1
AND (item_expires(content), collection, id) > ($2::timestamptz, $3::text COLLATE "C", $4::text COLLATE "C")
ORDER BY item_expires(content), collection, id LIMIT $5`

// ExpiredItems implements catalog.ExpiryStore.
func (s *Store) ExpiredItems(ctx context.Context, now time.Time, after *catalog.ExpiredItem, limit int) ([]catalog.ExpiredItem, error) {
	// -infinity sorts before every time: from the first.
	var from any = "-infinity"
	collection, id := "", ""
	if after != nil {
		from, collection, id = after.Expires, after.Collection, after.ID
	}
	rows, err := s.pool.Query(ctx, expiredItemsSQL, now, from, collection, id, min(max(limit, 1), catalog.MaxPageSize))
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.ExpiredItem, error) {
		var (
			it    catalog.ExpiredItem
			state string
		)
		err := r.Scan(&it.Collection, &it.ID, &state, &it.ETag, &it.Expires)
		it.State, it.Expires = catalog.State(state), it.Expires.UTC()
		return it, err
	})
	if err != nil {
		return nil, dbError(err)
	}
	return out, nil
}
