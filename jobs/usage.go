package jobs

import (
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// UsageQuery selects the usage records to add up: those of the jobs
// that finished with one (a job dismissed before it ran has none),
// counted on the UTC day they finished.
type UsageQuery struct {
	// User and Process, when set, keep only the jobs of that owner and
	// process.
	User, Process string
	// From and To, when set, bound the finish time: From <= finished <
	// To.
	From, To *time.Time
	// ByUser, ByProcess and ByDay name the columns the rows are grouped
	// by; with none, the one row is the total (no row when no job
	// matches).
	ByUser, ByProcess, ByDay bool
	// After is the cursor of the next page: the key of the last row of
	// the previous page (its grouped members).
	After *UsageKey
	// Limit is the page size, 1 to catalog.MaxPageSize.
	Limit int
}

// UsageKey identifies a row of a usage report: the members the rows are
// grouped by; the others are "".
type UsageKey struct {
	User    string `json:"user,omitempty"`
	Process string `json:"process,omitempty"`
	// Day is the UTC day the jobs finished, YYYY-MM-DD.
	Day string `json:"day,omitempty"`
}

// UsageRow is what a group of jobs consumed. Rows come ordered by their
// key: user, process and day, byte-wise.
type UsageRow struct {
	UsageKey
	// Jobs counts the usage records added up.
	Jobs             int64
	WallSeconds      float64
	UserCPUSeconds   float64
	SystemCPUSeconds float64
	// MaxRSSBytes is the largest peak memory of one job of the group.
	MaxRSSBytes int64
	// BytesWritten adds up the bytes the jobs wrote.
	BytesWritten int64
}

// DayLayout formats UsageKey.Day.
const DayLayout = "2006-01-02"

// CheckUsageQuery refuses a query a store cannot run. Codes: EINVALID.
func CheckUsageQuery(q UsageQuery) error {
	if q.From != nil && q.To != nil && !q.From.Before(*q.To) {
		return catalog.Invalid("query.to", "to (%s) must come after from (%s)", catalog.FormatTime(*q.To), catalog.FormatTime(*q.From))
	}
	if q.After != nil && q.After.Day != "" {
		if _, err := time.Parse(DayLayout, q.After.Day); err != nil {
			return catalog.Invalid("query.token", "the page token names no day")
		}
	}
	return nil
}

// Key returns the key of a row grouped as q says: the grouped members of
// k, the others empty.
func (q UsageQuery) Key(k UsageKey) UsageKey {
	var out UsageKey
	if q.ByUser {
		out.User = k.User
	}
	if q.ByProcess {
		out.Process = k.Process
	}
	if q.ByDay {
		out.Day = k.Day
	}
	return out
}
