package postgres_test

import (
	"encoding/json"
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
	"github.com/twinstac/twinstac/jobs"
)

func TestJobContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunJobs(t, func(t *testing.T) storetest.JobStore { return openTestStore(t) })
}

// TestJobLogsGoWithTheirJob checks that deleting a job deletes its log
// lines (migration 0017 keeps the cascade as a trigger).
func TestJobLogsGoWithTheirJob(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	for _, id := range []string{"j1", "j2"} {
		j := &jobs.Job{ID: id, Process: "c:t", TwinCollection: "c", TwinItem: "t", Owner: "u", TwinOwner: "u",
			Inputs: json.RawMessage(`{}`), MaxAttempts: 1, Created: t0, Updated: t0}
		if _, _, err := s.CreateJob(ctx, j, nil); err != nil {
			t.Fatal(err)
		}
		line := jobs.LogEntry{Attempt: 1, Stream: "stdout", Time: t0, Text: "line of " + id}
		if _, err := s.AppendLog(ctx, id, []jobs.LogEntry{line, line}, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `DELETE FROM jobs WHERE id = 'j1'`); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM job_logs WHERE job = 'j1'`); n != 0 {
		t.Fatalf("%d lines of the deleted job are left", n)
	}
	if n := count(t, s, `SELECT count(*) FROM job_logs WHERE job = 'j2'`); n != 2 {
		t.Fatalf("the other job has %d lines, want 2", n)
	}
}
