package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// finishJob runs a stored job's first attempt to status st at end, with
// usage (none when usage is "").
func finishJob(t *testing.T, s JobStore, id string, st jobs.Status, end time.Time, usage string) {
	t.Helper()
	if _, err := s.ClaimJob(ctx(t), id, 1, "w", end.Add(-time.Minute), nil); err != nil {
		t.Fatalf("ClaimJob %s: %v", id, err)
	}
	f := jobs.Finish{Status: st}
	if usage != "" {
		f.Usage = json.RawMessage(usage)
	}
	if _, err := s.FinishJob(ctx(t), id, 1, f, end, nil); err != nil {
		t.Fatalf("FinishJob %s: %v", id, err)
	}
}

func testJobCountActive(t *testing.T, s JobStore) {
	count := func(owner string) string {
		t.Helper()
		a, r, err := s.CountActiveJobs(ctx(t), owner)
		if err != nil {
			t.Fatalf("CountActiveJobs(%q): %v", owner, err)
		}
		return fmt.Sprintf("%d accepted, %d running", a, r)
	}
	if got := count("ana"); got != "0 accepted, 0 running" {
		t.Fatalf("no jobs: %s", got)
	}
	for i := 1; i <= 7; i++ {
		createJob(t, s, newJob(i, "ana"))
	}
	createJob(t, s, newJob(8, "bob"))
	now := t0.Add(time.Hour)
	for _, i := range []int{1, 2, 3} {
		if _, err := s.ClaimJob(ctx(t), jobID(i), 1, "w", now, nil); err != nil {
			t.Fatal(err)
		}
	}
	// 3 finishes; 4 is dismissed before it runs; 2 is being dismissed,
	// and runs until its worker stops it.
	if _, err := s.FinishJob(ctx(t), jobID(3), 1, jobs.Finish{Status: jobs.StatusSuccessful}, now, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DismissJob(ctx(t), jobID(4), now, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DismissJob(ctx(t), jobID(2), now, nil); err != nil {
		t.Fatal(err)
	}
	if got := count("ana"); got != "3 accepted, 2 running" {
		t.Fatalf("ana: %s, want 3 accepted (5, 6, 7), 2 running (1, 2)", got)
	}
	if got := count("bob"); got != "1 accepted, 0 running" {
		t.Fatalf("bob: %s", got)
	}
	if got := count("olga"); got != "0 accepted, 0 running" {
		t.Fatalf("olga, who owns the twin but ran nothing: %s", got)
	}
}

func testJobUsage(t *testing.T, s JobStore) {
	day1 := time.Date(2024, 6, 1, 23, 59, 59, 0, time.UTC)
	day2 := time.Date(2024, 6, 2, 0, 0, 0, 0, time.UTC)
	type run struct {
		owner, process string
		st             jobs.Status
		end            time.Time
		usage          string
	}
	runs := []run{
		{"ana", "twins:tank", jobs.StatusSuccessful, day1, `{"wallSeconds":1.5,"userCpuSeconds":1,"systemCpuSeconds":0.25,"maxRssBytes":1000,"bytesWritten":10}`},
		{"ana", "twins:tank", jobs.StatusFailed, day1.Add(-time.Hour), `{"wallSeconds":2,"userCpuSeconds":0.5,"systemCpuSeconds":0.25,"maxRssBytes":3000,"bytesWritten":5}`},
		{"ana", "twins:tank", jobs.StatusSuccessful, day2, `{"wallSeconds":4,"userCpuSeconds":2,"systemCpuSeconds":1,"maxRssBytes":500,"bytesWritten":1}`},
		{"ana", "twins:pump", jobs.StatusSuccessful, day2.Add(time.Hour), `{"wallSeconds":8,"userCpuSeconds":4,"systemCpuSeconds":2,"maxRssBytes":8000,"bytesWritten":5000000000}`},
		{"bob", "twins:tank", jobs.StatusDismissed, day2.Add(2 * time.Hour), `{"wallSeconds":16,"maxRssBytes":100}`},
		// A record with members that are not numbers counts as a job
		// that used nothing of those.
		{"bob", "twins:tank", jobs.StatusSuccessful, day2.Add(3 * time.Hour), `{"wallSeconds":"x","bytesWritten":null}`},
		// A job that finished without a usage record is not counted.
		{"bob", "twins:tank", jobs.StatusFailed, day2, ""},
	}
	for i, r := range runs {
		j := newJob(i+1, r.owner)
		j.Process = r.process
		createJob(t, s, j)
		finishJob(t, s, j.ID, r.st, r.end, r.usage)
	}
	// Jobs that have not finished are not counted.
	createJob(t, s, newJob(20, "ana"))
	createJob(t, s, newJob(21, "ana"))
	if _, err := s.ClaimJob(ctx(t), jobID(21), 1, "w", day2, nil); err != nil {
		t.Fatal(err)
	}

	type row = jobs.UsageRow
	key := func(u, p, d string) jobs.UsageKey { return jobs.UsageKey{User: u, Process: p, Day: d} }
	from, to := day2, day2.Add(2*time.Hour)
	for _, tc := range []struct {
		name string
		q    jobs.UsageQuery
		want []row
	}{
		{"by user, process and day", jobs.UsageQuery{ByUser: true, ByProcess: true, ByDay: true}, []row{
			{UsageKey: key("ana", "twins:pump", "2024-06-02"), Jobs: 1, WallSeconds: 8, UserCPUSeconds: 4, SystemCPUSeconds: 2, MaxRSSBytes: 8000, BytesWritten: 5000000000},
			{UsageKey: key("ana", "twins:tank", "2024-06-01"), Jobs: 2, WallSeconds: 3.5, UserCPUSeconds: 1.5, SystemCPUSeconds: 0.5, MaxRSSBytes: 3000, BytesWritten: 15},
			{UsageKey: key("ana", "twins:tank", "2024-06-02"), Jobs: 1, WallSeconds: 4, UserCPUSeconds: 2, SystemCPUSeconds: 1, MaxRSSBytes: 500, BytesWritten: 1},
			{UsageKey: key("bob", "twins:tank", "2024-06-02"), Jobs: 2, WallSeconds: 16, MaxRSSBytes: 100},
		}},
		{"total", jobs.UsageQuery{}, []row{
			{Jobs: 6, WallSeconds: 31.5, UserCPUSeconds: 7.5, SystemCPUSeconds: 3.5, MaxRSSBytes: 8000, BytesWritten: 5000000016},
		}},
		{"by day", jobs.UsageQuery{ByDay: true}, []row{
			{UsageKey: key("", "", "2024-06-01"), Jobs: 2, WallSeconds: 3.5, UserCPUSeconds: 1.5, SystemCPUSeconds: 0.5, MaxRSSBytes: 3000, BytesWritten: 15},
			{UsageKey: key("", "", "2024-06-02"), Jobs: 4, WallSeconds: 28, UserCPUSeconds: 6, SystemCPUSeconds: 3, MaxRSSBytes: 8000, BytesWritten: 5000000001},
		}},
		{"one user by process", jobs.UsageQuery{User: "ana", ByProcess: true}, []row{
			{UsageKey: key("", "twins:pump", ""), Jobs: 1, WallSeconds: 8, UserCPUSeconds: 4, SystemCPUSeconds: 2, MaxRSSBytes: 8000, BytesWritten: 5000000000},
			{UsageKey: key("", "twins:tank", ""), Jobs: 3, WallSeconds: 7.5, UserCPUSeconds: 3.5, SystemCPUSeconds: 1.5, MaxRSSBytes: 3000, BytesWritten: 16},
		}},
		{"one process by user, finished in [from, to)", jobs.UsageQuery{Process: "twins:tank", From: &from, To: &to, ByUser: true}, []row{
			{UsageKey: key("ana", "", ""), Jobs: 1, WallSeconds: 4, UserCPUSeconds: 2, SystemCPUSeconds: 1, MaxRSSBytes: 500, BytesWritten: 1},
		}},
		{"page after a key", jobs.UsageQuery{ByUser: true, ByProcess: true, ByDay: true, After: &jobs.UsageKey{User: "ana", Process: "twins:tank", Day: "2024-06-01"}, Limit: 1}, []row{
			{UsageKey: key("ana", "twins:tank", "2024-06-02"), Jobs: 1, WallSeconds: 4, UserCPUSeconds: 2, SystemCPUSeconds: 1, MaxRSSBytes: 500, BytesWritten: 1},
		}},
		{"nobody", jobs.UsageQuery{User: "eve", ByUser: true}, []row{}},
		{"no total of nothing", jobs.UsageQuery{User: "eve"}, []row{}},
	} {
		if tc.q.Limit == 0 {
			tc.q.Limit = 100
		}
		got, err := s.Usage(ctx(t), tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	bad := jobs.UsageQuery{From: &to, To: &from}
	if _, err := s.Usage(ctx(t), bad); catalog.ErrorCode(err) != catalog.EINVALID {
		t.Fatalf("from after to: %v, want EINVALID", err)
	}
}
