package sqlite

import (
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
)

func TestJobContract(t *testing.T) {
	t.Parallel()
	storetest.RunJobs(t, func(t *testing.T) storetest.JobStore { return openTestStore(t) })
}
