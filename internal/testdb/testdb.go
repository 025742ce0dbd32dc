// Package testdb opens fresh, migrated stores for tests: SQLite in a
// temporary folder always, PostgreSQL in a schema of its own when
// TWINSTAC_TEST_POSTGRES_URL is set. Without the URL the PostgreSQL
// variants skip with a message, unless TWINSTAC_TEST_REQUIRE_SERVICES=1,
// when they fail.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/sqlite"
)

// ServiceURL returns the URL of a test service from the environment. When
// it is unset the test skips, or fails when services are required.
func ServiceURL(t testing.TB, env string) string {
	t.Helper()
	u := os.Getenv(env)
	if u != "" {
		return u
	}
	if os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is not set, and TWINSTAC_TEST_REQUIRE_SERVICES=1 requires it", env)
	}
	t.Skipf("set %s to run this test against a real server", env)
	return ""
}

// SQLite opens a new SQLite store in a temporary folder.
func SQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "twinstac.db"))
	if err != nil {
		t.Fatalf("opening SQLite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrating SQLite: %v", err)
	}
	return st
}

// Postgres opens a new PostgreSQL store in a schema of its own, dropped
// when the test ends.
func Postgres(t testing.TB) *postgres.Store {
	t.Helper()
	url := ServiceURL(t, "TWINSTAC_TEST_POSTGRES_URL")
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	st, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("opening PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = st.Pool().Exec(dctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		_ = st.Close()
	})
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrating PostgreSQL: %v", err)
	}
	return st
}

// Kinds names the stores tests run against, with their openers.
var Kinds = []struct {
	Name string
	Open func(t testing.TB) catalog.Store
}{
	{"sqlite", func(t testing.TB) catalog.Store { return SQLite(t) }},
	{"postgres", func(t testing.TB) catalog.Store { return Postgres(t) }},
}

// WaitFor waits until done reports true, checking it every few
// milliseconds, and fails the test with what when within passes first.
func WaitFor(t testing.TB, within time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-deadline.C:
			t.Fatalf("%s within %s", what, within)
		case <-tick.C:
		}
	}
}
