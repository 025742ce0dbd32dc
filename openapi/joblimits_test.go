package openapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/jobs"
)

// anaRunsWaterTank publishes the example twin, lets ana run it and
// returns ana's credentials.
func anaRunsWaterTank(t *testing.T, b *bundle) []string {
	t.Helper()
	publishWaterTank(t, b)
	b.want(b.do("POST", "/collections/twins/shares", map[string]any{"subject": "user:ana", "actions": []string{"read", "execute"}}), 201)
	system := &access.Caller{User: "admin", Groups: []string{access.AdminGroup}}
	_, secret, err := b.tokens.Mint(t.Context(), system, access.MintRequest{Name: "ana", User: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	return bearer(secret)
}

var tankRun = map[string]any{"inputs": map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 3}}

func TestJobLimits(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		ana := anaRunsWaterTank(t, b)
		quota := func() map[string]any {
			t.Helper()
			return b.want(b.do("GET", "/quotas/ana", nil, ana...), 200).json(t)
		}
		b.want(b.do("PUT", "/quotas/ana", map[string]any{"stored_bytes": 5000}), 200)
		// The job limits are set apart; stored_bytes left out stays.
		b.want(b.do("PUT", "/quotas/ana", map[string]any{"running_jobs": 2}), 200)
		q := quota()
		if fmt.Sprint(q["running_jobs"], q["queued_jobs"], q["stored_bytes"].(map[string]any)["limit"]) != "map[limit:2 used:0] map[limit:0 used:0] 5000" {
			t.Fatalf("quota after setting running_jobs: %v", q)
		}
		var ids []string
		for range 2 {
			ids = append(ids, b.want(b.do("POST", "/processes/twins:water-tank/execution", tankRun, ana...), 201).json(t)["jobID"].(string))
		}
		r := b.do("POST", "/processes/twins:water-tank/execution", tankRun, ana...)
		p := b.problem(r, 429, "")
		if ra := r.Header.Get("Retry-After"); ra != "30" {
			t.Fatalf("Retry-After %q, want 30", ra)
		}
		if d := p["detail"].(string); p["code"] != "too_many_requests" || !strings.Contains(d, "ana has 2 jobs queued or running") || !strings.Contains(d, "limit of running jobs is 2") {
			t.Fatalf("429: %v", p)
		}
		if len(b.queue.queued) != 2 {
			t.Fatalf("queued %d jobs, want the 2 accepted", len(b.queue.queued))
		}
		// Admins are exempt from their own limits.
		b.want(b.do("PUT", "/quotas/admin", map[string]any{"running_jobs": 1, "queued_jobs": 1}), 200)
		for range 2 {
			b.want(b.do("POST", "/processes/twins:water-tank/execution", tankRun), 201)
		}

		// The queued limit counts the accepted jobs; null returns the
		// running limit to the default (none).
		b.want(b.do("PUT", "/quotas/ana", map[string]any{"running_jobs": nil, "queued_jobs": 1}), 200)
		q = quota()
		if fmt.Sprint(q["running_jobs"], q["queued_jobs"]) != "map[limit:0 used:2] map[limit:1 used:2]" {
			t.Fatalf("quota: %v", q)
		}
		r = b.do("POST", "/processes/twins:water-tank/execution", tankRun, ana...)
		p = b.problem(r, 429, "")
		if r.Header.Get("Retry-After") != "10" || !strings.Contains(p["detail"].(string), "limit of queued jobs is 1") {
			t.Fatalf("429 of the queued limit: %v, Retry-After %q", p, r.Header.Get("Retry-After"))
		}
		// A job that ends frees its place.
		b.want(b.do("DELETE", "/jobs/"+ids[0], nil, ana...), 200)
		b.want(b.do("DELETE", "/jobs/"+ids[1], nil, ana...), 200)
		b.want(b.do("POST", "/processes/twins:water-tank/execution", tankRun, ana...), 201)

		// A batch counts all its jobs at once.
		b.want(b.do("PUT", "/quotas/ana", map[string]any{"queued_jobs": 3}), 200)
		before := len(b.queue.queued)
		sweep := func(n int) map[string]any {
			vals := make([]any, n)
			for i := range vals {
				vals[i] = i + 1
			}
			return map[string]any{"process": "twins:water-tank", "inputs": map[string]any{"outflow": 0.2}, "sweep": map[string]any{"inflow": vals}}
		}
		if p := b.problem(b.do("POST", "/batches", sweep(3), ana...), 429, ""); !strings.Contains(p["detail"].(string), "limit of queued jobs is 3") {
			t.Fatalf("429 of a batch: %v", p)
		}
		if len(b.queue.queued) != before {
			t.Fatalf("a refused batch queued %d jobs", len(b.queue.queued)-before)
		}
		b.want(b.do("POST", "/batches", sweep(2), ana...), 201)
		b.want(b.do("PUT", "/quotas/ana", map[string]any{"queued_jobs": 1}), 200)

		// Bad limits change nothing; users do not set their own.
		b.problem(b.do("PUT", "/quotas/ana", map[string]any{"queued_jobs": -1, "stored_bytes": 1}), 400, "")
		b.problem(b.do("PUT", "/quotas/ana", map[string]any{"queued_jobs": "many"}), 400, "")
		b.problem(b.do("PUT", "/quotas/ana", map[string]any{"queued_jobs": 100}, ana...), 403, "")
		q = quota()
		if fmt.Sprint(q["queued_jobs"].(map[string]any)["limit"], q["stored_bytes"].(map[string]any)["limit"]) != "1 5000" {
			t.Fatalf("quota after refused changes: %v", q)
		}
	})
}

func TestUsage(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		ana := anaRunsWaterTank(t, b)
		// ana's two runs and the admin's one finish with usage records,
		// on two days.
		day := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
		for i, who := range [][]string{ana, ana, nil} {
			id := b.want(b.do("POST", "/processes/twins:water-tank/execution", tankRun, who...), 201).json(t)["jobID"].(string)
			if _, err := b.jobs.Store.ClaimJob(t.Context(), id, 1, "w", day, nil); err != nil {
				t.Fatal(err)
			}
			usage, _ := json.Marshal(jobs.Usage{WallSeconds: float64(i + 1), UserCPU: 0.5, MaxRSSBytes: int64(1000 * (i + 1)), BytesWritten: 10})
			end := day.Add(time.Duration(i) * 24 * time.Hour)
			if _, err := b.jobs.Store.FinishJob(t.Context(), id, 1, jobs.Finish{Status: jobs.StatusSuccessful, Usage: usage}, end, nil); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				st := b.want(b.do("GET", "/jobs/"+id, nil, ana...), 200).json(t)
				if u, _ := st["dt:usage"].(map[string]any); u["wallSeconds"] != 1.0 || u["maxRssBytes"] != 1000.0 {
					t.Fatalf("the job's status shows usage %v", st["dt:usage"])
				}
			}
		}
		report := func(query string, who ...string) map[string]any {
			t.Helper()
			return b.want(b.do("GET", "/usage"+query, nil, who...), 200).json(t)
		}
		rows := func(rep map[string]any) string {
			var out []string
			for _, r := range rep["rows"].([]any) {
				m := r.(map[string]any)
				out = append(out, fmt.Sprintf("%v/%v/%v:%v:%v", m["user"], m["process"], m["day"], m["jobs"], m["wallSeconds"]))
			}
			return strings.Join(out, " ")
		}
		// ana sees her own usage only.
		rep := report("", ana...)
		if got := rows(rep); got != "ana/twins:water-tank/2024-06-01:1:1 ana/twins:water-tank/2024-06-02:1:2" {
			t.Fatalf("ana's usage: %s", got)
		}
		if tot := rep["totals"].(map[string]any); tot["jobs"] != 2.0 || tot["wallSeconds"] != 3.0 || tot["maxRssBytes"] != 2000.0 || tot["userCpuSeconds"] != 1.0 {
			t.Fatalf("ana's totals: %v", tot)
		}
		b.problem(b.do("GET", "/usage?user=admin", nil, ana...), 403, "")
		b.problem(b.do("GET", "/usage", nil, anonymous...), 401, "")
		// Admins see everyone's, grouped as asked, in pages.
		if got := rows(report("?groupBy=user")); got != "admin/<nil>/<nil>:1:3 ana/<nil>/<nil>:2:3" {
			t.Fatalf("usage by user: %s", got)
		}
		if got := rows(report("?groupBy=day&from=2024-06-02&to=2024-06-03")); got != "<nil>/<nil>/2024-06-02:1:2 <nil>/<nil>/2024-06-03:1:3" {
			t.Fatalf("usage by day from a date to a date: %s", got)
		}
		if got := rows(report("?groupBy=day&to=2024-06-02T00:00:00Z")); got != "<nil>/<nil>/2024-06-01:1:1" {
			t.Fatalf("usage before a time: %s", got)
		}
		var pages []string
		next := "?limit=2"
		for next != "" {
			rep := report(next)
			pages = append(pages, rows(rep))
			next = ""
			for _, l := range rep["links"].([]any) {
				if l := l.(map[string]any); l["rel"] == "next" {
					u, _ := url.Parse(l["href"].(string))
					next = "?" + u.RawQuery
				}
			}
			if tot := rep["totals"].(map[string]any); tot["jobs"] != 3.0 {
				t.Fatalf("totals on a page: %v", tot)
			}
		}
		if strings.Join(pages, " | ") != "admin/twins:water-tank/2024-06-03:1:3 ana/twins:water-tank/2024-06-01:1:1 | ana/twins:water-tank/2024-06-02:1:2" {
			t.Fatalf("pages: %v", pages)
		}
		for _, bad := range []string{"?from=yesterday", "?to=2024-13-01", "?groupBy=week", "?from=2024-06-02&to=2024-06-01", "?token=%21"} {
			b.problem(b.do("GET", "/usage"+bad, nil), 400, "")
		}
	})
}
