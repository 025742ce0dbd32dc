package sqlite

import (
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
)

func TestQuotaContract(t *testing.T) {
	t.Parallel()
	storetest.RunQuotas(t, func(t *testing.T) storetest.QuotaStore { return openTestStore(t) })
}
