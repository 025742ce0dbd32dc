package openapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Accounting: what jobs consumed, added up by user, process and day.

// UsageRow is what a group of jobs consumed.
type UsageRow struct {
	User             string  `json:"user,omitempty" doc:"Who ran the jobs (when grouped by user)."`
	Process          string  `json:"process,omitempty" doc:"The process the jobs ran (when grouped by process)."`
	Day              string  `json:"day,omitempty" format:"date" doc:"The UTC day the jobs finished (when grouped by day)."`
	Jobs             int64   `json:"jobs" doc:"The jobs counted: those that finished with a usage record."`
	WallSeconds      float64 `json:"wallSeconds"`
	UserCPUSeconds   float64 `json:"userCpuSeconds"`
	SystemCPUSeconds float64 `json:"systemCpuSeconds"`
	MaxRSSBytes      int64   `json:"maxRssBytes" doc:"The largest peak memory of one job."`
	BytesWritten     int64   `json:"bytesWritten"`
}

// UsageReport is a page of usage rows and the totals of every row.
type UsageReport struct {
	Rows   []UsageRow   `json:"rows"`
	Totals UsageRow     `json:"totals" doc:"Every job the query selects, on every page."`
	Links  []LinkObject `json:"links"`
}

type usageInput struct {
	From    string   `query:"from" doc:"Only jobs that finished at or after this time: an RFC 3339 time, or a date (its start, UTC)." example:"2024-06-01"`
	To      string   `query:"to" doc:"Only jobs that finished before this time: an RFC 3339 time, or a date (included: up to its end, UTC)." example:"2024-06-30"`
	User    string   `query:"user" doc:"Only this user's jobs. Users other than admins see their own usage only; naming someone else is a 403."`
	Process string   `query:"process" doc:"Only jobs of this process." example:"twins:water-tank"`
	GroupBy []string `query:"groupBy,explode" enum:"user,process,day" doc:"What the rows are grouped by (all three when left out)."`
	Limit   int      `query:"limit" minimum:"1" maximum:"10000" default:"100"`
	Token   string   `query:"token" doc:"The page token of a next link."`
}

type usageOutput struct {
	Body UsageReport
}

func (s *Server) registerUsage() {
	op := s.operation("getUsage", http.MethodGet, "/usage", "Accounting", "Report usage",
		"What finished jobs consumed (wall time, user and system CPU, peak memory, bytes written), added up by user, process and UTC day of finishing. Admins see everyone's usage; other users their own.",
		http.StatusOK, 400, 403)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *usageInput) (*usageOutput, error) {
		return s.usage(ctx, in)
	})
}

// parseUsageTime reads a bound of a usage report: an RFC 3339 time, or
// a date, whose start it is (end: the start of the next day, so that
// the date is included).
func parseUsageTime(param, v string, end bool) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	if d, err := time.Parse(jobs.DayLayout, v); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return &d, nil
	}
	t, err := catalog.ParseTime(v)
	if err != nil {
		return nil, catalog.Invalid("query."+param, "%s must be an RFC 3339 time such as 2024-06-01T10:00:00Z or a date such as 2024-06-01, not %q", param, v)
	}
	return &t, nil
}

func (s *Server) usage(ctx context.Context, in *usageInput) (*usageOutput, error) {
	svc, c, err := s.jobCaller(ctx)
	if err != nil {
		return nil, err
	}
	q := jobs.UsageQuery{User: in.User, Process: in.Process, Limit: in.Limit}
	if !c.IsAdmin() {
		if q.User != "" && q.User != c.User {
			return nil, catalog.Errorf(catalog.EFORBIDDEN, "only node administrators see other users' usage")
		}
		q.User = c.User
	}
	if q.From, err = parseUsageTime("from", in.From, false); err != nil {
		return nil, err
	}
	if q.To, err = parseUsageTime("to", in.To, true); err != nil {
		return nil, err
	}
	groups := in.GroupBy
	if len(groups) == 0 {
		groups = []string{"user", "process", "day"}
	}
	for _, g := range groups {
		switch g {
		case "user":
			q.ByUser = true
		case "process":
			q.ByProcess = true
		case "day":
			q.ByDay = true
		default:
			return nil, catalog.Invalid("query.groupBy", "groupBy takes user, process and day, not %q", g)
		}
	}
	if in.Token != "" {
		var k jobs.UsageKey
		b, err := base64.RawURLEncoding.DecodeString(in.Token)
		if err != nil || json.Unmarshal(b, &k) != nil {
			return nil, catalog.Invalid("query.token", "the page token is not one this server made")
		}
		q.After = &k
	}
	rows, err := svc.Store.Usage(ctx, q)
	if err != nil {
		return nil, err
	}
	total := q
	total.ByUser, total.ByProcess, total.ByDay, total.After, total.Limit = false, false, false, nil, 1
	totals, err := svc.Store.Usage(ctx, total)
	if err != nil {
		return nil, err
	}
	out := UsageReport{Rows: make([]UsageRow, len(rows)), Links: []LinkObject{}}
	for i, r := range rows {
		out.Rows[i] = usageRow(r)
	}
	if len(totals) == 1 {
		out.Totals = usageRow(totals[0])
	}
	base := s.baseURL(requestOf(ctx)) + "/usage"
	v := url.Values{}
	for param, x := range map[string]string{"from": in.From, "to": in.To, "user": in.User, "process": in.Process} {
		if x != "" {
			v.Set(param, x)
		}
	}
	if len(in.GroupBy) > 0 {
		v["groupBy"] = slices.Clone(in.GroupBy)
	}
	v.Set("limit", itoa(in.Limit))
	out.Links = append(out.Links, LinkObject{Rel: "self", Href: base + "?" + withToken(v, in.Token), Type: mediaJSON})
	if len(rows) == in.Limit {
		b, _ := json.Marshal(rows[len(rows)-1].UsageKey)
		out.Links = append(out.Links, LinkObject{Rel: "next", Href: base + "?" + withToken(v, base64.RawURLEncoding.EncodeToString(b)), Type: mediaJSON})
	}
	return &usageOutput{Body: out}, nil
}

// withToken encodes v with a page token (none for "").
func withToken(v url.Values, token string) string {
	w := url.Values{}
	for k, x := range v {
		w[k] = x
	}
	if token != "" {
		w.Set("token", token)
	}
	return w.Encode()
}

func usageRow(r jobs.UsageRow) UsageRow {
	return UsageRow{User: r.User, Process: r.Process, Day: r.Day, Jobs: r.Jobs, WallSeconds: r.WallSeconds,
		UserCPUSeconds: r.UserCPUSeconds, SystemCPUSeconds: r.SystemCPUSeconds, MaxRSSBytes: r.MaxRSSBytes, BytesWritten: r.BytesWritten}
}
