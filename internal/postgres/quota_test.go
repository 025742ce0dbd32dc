package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/storetest"
)

func TestQuotaContract(t *testing.T) {
	t.Parallel()
	testURL(t)
	storetest.RunQuotas(t, func(t *testing.T) storetest.QuotaStore { return openTestStore(t) })
}

// TestStoredBytesWaitsForConcurrentUpload runs two uploads into two
// collections of one owner at once, each recording its size and then
// reading the owner's sum, as an upload checks its quota. The second to
// read must wait for the first to commit and count its size: under READ
// COMMITTED alone each would count only its own file, and together they
// could pass a limit that each one alone stays under.
func TestStoredBytesWaitsForConcurrentUpload(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	for _, id := range []string{"a", "b"} {
		c := storetest.NewCollection(t, id)
		c.SetOwner("alice")
		if _, err := c.Seal(); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.InsertCollection(t.Context(), c) }); err != nil {
			t.Fatal(err)
		}
	}
	// The key of the owner's quota lock, split as pg_locks shows it.
	var key int64
	err := s.Pool().QueryRow(t.Context(), `SELECT hashtextextended('twinstac.quota.' || current_schema() || '.alice', 0)`).Scan(&key)
	if err != nil {
		t.Fatal(err)
	}
	classid, objid := int64(uint64(key)>>32), int64(uint32(key))

	upload := func(collection string, size int64, sum *int64, hold func()) error {
		return s.Update(t.Context(), func(tx catalog.Tx) error {
			if err := tx.SetAssetBytes(t.Context(), collection, "i", "data", size); err != nil {
				return err
			}
			n, err := tx.StoredBytes(t.Context(), "alice")
			if err != nil {
				return err
			}
			*sum = n
			hold()
			return nil
		})
	}
	var (
		sumA, sumB int64
		counted    = make(chan struct{})
		commit     = make(chan struct{})
		once       sync.Once
		errA       = make(chan error, 1)
		errB       = make(chan error, 1)
	)
	go func() {
		errA <- upload("a", 100, &sumA, func() {
			once.Do(func() { close(counted) })
			<-commit
		})
	}()
	<-counted
	go func() { errB <- upload("b", 50, &sumB, func() {}) }()

	// Wait until B waits for the lock A holds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		err := s.Pool().QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1)`,
			classid, objid).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-errB:
			close(commit)
			t.Fatalf("the second upload finished (%v, sum %d) while the first had not committed", err, sumB)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			close(commit)
			t.Fatal("the second upload never waited for the first")
		}
	}
	close(commit)
	if err := <-errA; err != nil {
		t.Fatalf("first upload: %v", err)
	}
	if err := <-errB; err != nil {
		t.Fatalf("second upload: %v", err)
	}
	if sumA != 100 || sumB != 150 {
		t.Fatalf("the uploads counted %d and %d bytes, want 100 and 150", sumA, sumB)
	}
}
