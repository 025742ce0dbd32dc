package postgres_test

import (
	"testing"

	"github.com/twinstac/twinstac/internal/storetest"
)

func TestSearchContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunSearch(t, func(t *testing.T) storetest.SearchStore { return openTestStore(t) })
}
