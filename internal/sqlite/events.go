package sqlite

import (
	"context"

	"github.com/twinstac/twinstac/catalog"
)

const insertEventSQL = "INSERT INTO outbox (id, type, subject, time, payload) VALUES (?, ?, ?, ?, ?)"

func eventArgs(ev *catalog.Event) []any {
	return []any{ev.ID, ev.Type, ev.Subject, micros(ev.Time), string(ev.Payload)}
}

func appendEvent(ctx context.Context, q querier, ev *catalog.Event) error {
	res, err := q.ExecContext(ctx, insertEventSQL, eventArgs(ev)...)
	if err != nil {
		return dbError(err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return dbError(err)
	}
	ev.Seq = seq
	return nil
}

// ListEvents returns up to limit outbox events with Seq > after, in Seq
// order; a limit of zero or less means catalog.DefaultPageSize. Event
// times come back truncated to microseconds.
func (s *Store) ListEvents(ctx context.Context, after int64, limit int) ([]*catalog.Event, error) {
	if limit <= 0 {
		limit = catalog.DefaultPageSize
	}
	rows, err := s.r.QueryContext(ctx, "SELECT seq, id, type, subject, time, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return nil, dbError(err)
	}
	defer func() { _ = rows.Close() }()
	events := []*catalog.Event{}
	for rows.Next() {
		var (
			ev      catalog.Event
			us      int64
			payload []byte
		)
		if err := rows.Scan(&ev.Seq, &ev.ID, &ev.Type, &ev.Subject, &us, &payload); err != nil {
			return nil, dbError(err)
		}
		ev.Time, ev.Payload = fromMicros(us), payload
		events = append(events, &ev)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	return events, nil
}
