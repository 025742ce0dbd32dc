package sqlite

import (
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
)

func TestPolicyContract(t *testing.T) {
	t.Parallel()
	storetest.RunPolicies(t, func(t *testing.T) storetest.PolicyStore { return openTestStore(t) })
}
