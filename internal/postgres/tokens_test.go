package postgres_test

import (
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
)

func TestTokenContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunTokens(t, func(t *testing.T) storetest.TokenStore { return openTestStore(t) })
}
