package jobs

import (
	"fmt"
	"time"
)

// DefaultMaxLogBytes is how much text a job's log keeps by default.
const DefaultMaxLogBytes = 1 << 20

// FitLog decides what of entries a log holding used bytes (cut already
// when truncated) keeps under max: the entries that fit in order, and,
// the first time one does not, a line that says the log was cut. Stores
// call it inside the transaction that appends.
func FitLog(used int64, truncated bool, entries []LogEntry, max int64) (keep []LogEntry, marker *LogEntry, newUsed int64) {
	newUsed = used
	if truncated {
		return nil, nil, used
	}
	for i, e := range entries {
		n := int64(len(e.Text))
		if newUsed+n > max {
			m := LogEntry{Attempt: e.Attempt, Phase: e.Phase, Stream: StreamSystem, Time: e.Time,
				Text: fmt.Sprintf("[the log is cut here: it reached its limit of %d bytes; later lines are not kept]", max)}
			if m.Time.IsZero() {
				m.Time = time.Now().UTC()
			}
			return entries[:i], &m, newUsed
		}
		newUsed += n
	}
	return entries, nil, newUsed
}
