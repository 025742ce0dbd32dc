package sqlite

import (
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
)

func TestTokenContract(t *testing.T) {
	t.Parallel()
	storetest.RunTokens(t, func(t *testing.T) storetest.TokenStore { return openTestStore(t) })
}
