package postgres_test

import (
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
)

func TestJobContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunJobs(t, func(t *testing.T) storetest.JobStore { return openTestStore(t) })
}
