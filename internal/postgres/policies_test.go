package postgres_test

import (
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
)

func TestPolicyContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunPolicies(t, func(t *testing.T) storetest.PolicyStore { return openTestStore(t) })
}
