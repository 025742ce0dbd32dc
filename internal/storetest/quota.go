package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// QuotaStore is what RunQuotas tests: an access.QuotaStore that is also
// the catalog.Store whose outbox receives the overrides' audit events.
type QuotaStore interface {
	access.QuotaStore
	catalog.Store
}

// RunQuotas runs the contract suite of access.QuotaStore. open must
// return a new empty, migrated store for each call; it is closed by the
// suite.
func RunQuotas(t *testing.T, open func(t *testing.T) QuotaStore) {
	t.Helper()
	runSuite(t, open, []suiteCase[QuotaStore]{
		{"QuotaRoundTrip", testQuotaRoundTrip},
		{"QuotaInvalid", testQuotaInvalid},
		{"QuotaAudit", testQuotaAudit},
		{"QuotaJobLimits", testQuotaJobLimits},
	})
}

// insertOwnedCollection stores a new collection owned by owner.
func insertOwnedCollection(t *testing.T, s catalog.Store, id, owner string) {
	t.Helper()
	c := NewCollection(t, id)
	c.SetOwner(owner)
	if _, err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertCollection(ctx(t), c) })
}

// setAssetBytes records an asset size in a transaction of its own.
func setAssetBytes(t *testing.T, s catalog.Store, collection, item, key string, size int64) {
	t.Helper()
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.SetAssetBytes(ctx(t), collection, item, key, size) })
}

// wantStoredBytes fails unless the stored bytes of each owner are as
// given.
func wantStoredBytes(t *testing.T, s catalog.Store, want map[string]int64) {
	t.Helper()
	for owner, w := range want {
		got, err := s.StoredBytes(ctx(t), owner)
		if err != nil {
			t.Fatalf("StoredBytes(%q): %v", owner, err)
		}
		if got != w {
			t.Fatalf("StoredBytes(%q) = %d, want %d", owner, got, w)
		}
	}
}

// testAssetBytes checks the asset sizes a store keeps for quotas: how
// they add up per owner and when they are forgotten.
func testAssetBytes(t *testing.T, s catalog.Store) {
	insertOwnedCollection(t, s, "a1", "alice")
	insertOwnedCollection(t, s, "a2", "alice")
	insertOwnedCollection(t, s, "b1", "bob")
	insertItems(t, s,
		NewItem(t, "a1", "i", t0, "null", catalog.StateDraft),
		NewItem(t, "a1", "j", t0, "null", catalog.StateDraft),
		NewItem(t, "a2", "i", t0, "null", catalog.StateDraft),
		NewItem(t, "b1", "i", t0, "null", catalog.StateDraft))
	wantStoredBytes(t, s, map[string]int64{"alice": 0, "bob": 0, "nobody": 0, "": 0})

	// Sizes add up per owner, across collections, items and keys; the
	// same item and key in another collection is another file.
	setAssetBytes(t, s, "a1", "i", "data", 100)
	setAssetBytes(t, s, "a1", "i", "thumb", 20)
	setAssetBytes(t, s, "a1", "j", "data", 3)
	setAssetBytes(t, s, "a2", "i", "data", 1000)
	setAssetBytes(t, s, "b1", "i", "data", 7)
	wantStoredBytes(t, s, map[string]int64{"alice": 1123, "bob": 7, "nobody": 0})

	// A new file under a key replaces the old one's size.
	setAssetBytes(t, s, "a1", "i", "data", 50)
	wantStoredBytes(t, s, map[string]int64{"alice": 1073, "bob": 7})

	// Size 0 forgets a key; forgetting a key with no size is no error.
	setAssetBytes(t, s, "a1", "i", "thumb", 0)
	setAssetBytes(t, s, "a1", "i", "never", 0)
	wantStoredBytes(t, s, map[string]int64{"alice": 1053, "bob": 7})

	// No collection, no size; a negative size is refused.
	for _, size := range []int64{5, 0} {
		err := s.Update(ctx(t), func(tx catalog.Tx) error { return tx.SetAssetBytes(ctx(t), "missing", "i", "data", size) })
		wantCode(t, err, catalog.ENOTFOUND)
	}
	if err := s.Update(ctx(t), func(tx catalog.Tx) error { return tx.SetAssetBytes(ctx(t), "a1", "i", "data", -1) }); err == nil {
		t.Fatal("SetAssetBytes accepted a negative size")
	}
	wantStoredBytes(t, s, map[string]int64{"alice": 1053, "bob": 7})

	// Inside a transaction the sum counts the transaction's own writes,
	// which others do not see before it commits; a transaction that
	// fails leaves the sums as they were.
	boom := errors.New("boom")
	err := s.Update(ctx(t), func(tx catalog.Tx) error {
		for _, w := range []struct {
			collection, item, key string
			size                  int64
		}{{"a2", "i", "data", 2000}, {"a2", "i", "extra", 5}, {"a1", "j", "data", 0}, {"b1", "i", "data", 70}} {
			if err := tx.SetAssetBytes(ctx(t), w.collection, w.item, w.key, w.size); err != nil {
				return err
			}
		}
		for owner, want := range map[string]int64{"alice": 2055, "bob": 70, "nobody": 0} {
			got, err := tx.StoredBytes(ctx(t), owner)
			if err != nil {
				return err
			}
			if got != want {
				t.Errorf("Tx.StoredBytes(%q) = %d, want %d (the transaction's own writes)", owner, got, want)
			}
		}
		wantStoredBytes(t, s, map[string]int64{"alice": 1053, "bob": 7})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the error of fn", err)
	}
	wantStoredBytes(t, s, map[string]int64{"alice": 1053, "bob": 7})

	// The bytes count against the collection's owner of the moment: they
	// move with the collection.
	c, err := s.GetCollection(ctx(t), "b1")
	if err != nil {
		t.Fatal(err)
	}
	old := c.ETag
	c.SetOwner("carol")
	c.Updated = t0.Add(time.Hour)
	if _, err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateCollection(ctx(t), c, old) })
	wantStoredBytes(t, s, map[string]int64{"alice": 1053, "bob": 0, "carol": 7})

	// A tombstone forgets its item's sizes, and only its item's.
	it, err := s.GetItem(ctx(t), "a1", "i")
	if err != nil {
		t.Fatal(err)
	}
	tomb := &catalog.Item{Collection: "a1", ID: "i", State: catalog.StateDeleted, Start: it.Start, End: it.End,
		Created: it.Created, Updated: t0.Add(time.Hour)}
	if _, err := tomb.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.UpdateItem(ctx(t), tomb, it.ETag) })
	wantStoredBytes(t, s, map[string]int64{"alice": 1003, "carol": 7})

	// Deleting a collection forgets its sizes; a new collection of the
	// same id starts from none.
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.DeleteCollection(ctx(t), "a2") })
	wantStoredBytes(t, s, map[string]int64{"alice": 3, "carol": 7})
	insertOwnedCollection(t, s, "a2", "alice")
	wantStoredBytes(t, s, map[string]int64{"alice": 3, "carol": 7})
	setAssetBytes(t, s, "a2", "i", "data", 40)
	wantStoredBytes(t, s, map[string]int64{"alice": 43, "carol": 7})
}

// storedBytesLimit returns a user's override; ok is false without one.
func storedBytesLimit(t *testing.T, s QuotaStore, user string) (int64, bool) {
	t.Helper()
	limit, ok, err := s.StoredBytesLimit(ctx(t), user)
	if err != nil {
		t.Fatalf("StoredBytesLimit(%q): %v", user, err)
	}
	return limit, ok
}

// wantLimit fails unless user's override is limit (ok) or absent (!ok).
func wantLimit(t *testing.T, s QuotaStore, user string, limit int64, ok bool) {
	t.Helper()
	if got, gotOK := storedBytesLimit(t, s, user); got != limit || gotOK != ok {
		t.Fatalf("StoredBytesLimit(%q) = %d, %v; want %d, %v", user, got, gotOK, limit, ok)
	}
}

func setLimit(t *testing.T, s QuotaStore, user string, limit int64, audit *catalog.Event) {
	t.Helper()
	if err := s.SetStoredBytesLimit(ctx(t), user, limit, audit); err != nil {
		t.Fatalf("SetStoredBytesLimit(%q, %d): %v", user, limit, err)
	}
}

// quotaEvent returns an audit event about a user's quota.
func quotaEvent(user string) *catalog.Event {
	return catalog.NewEvent(access.EventQuotaChanged, "quotas/"+user, t0, catalog.EventPayload{ID: user})
}

func testQuotaRoundTrip(t *testing.T, s QuotaStore) {
	wantLimit(t, s, "alice", 0, false)
	setLimit(t, s, "alice", 1<<40, nil)
	// 0 (unlimited) is an override like any other, not its absence.
	setLimit(t, s, "bob", 0, nil)
	wantLimit(t, s, "alice", 1<<40, true)
	wantLimit(t, s, "bob", 0, true)
	wantLimit(t, s, "carol", 0, false)

	// Setting again overrides.
	setLimit(t, s, "alice", 5000, nil)
	wantLimit(t, s, "alice", 5000, true)
	wantLimit(t, s, "bob", 0, true)

	// A negative limit removes the override, and removing none is no
	// error.
	setLimit(t, s, "alice", -1, nil)
	wantLimit(t, s, "alice", 0, false)
	setLimit(t, s, "alice", -1, nil)
	setLimit(t, s, "carol", -5, nil)
	wantLimit(t, s, "alice", 0, false)
	wantLimit(t, s, "bob", 0, true)

	// Users are told apart by bytes.
	setLimit(t, s, "Zoë", 1, nil)
	wantLimit(t, s, "Zoë", 1, true)
	wantLimit(t, s, "zoë", 0, false)
	wantLimit(t, s, "Zoe", 0, false)
}

func testQuotaInvalid(t *testing.T, s QuotaStore) {
	for _, limit := range []int64{10, 0, -1} {
		wantCode(t, s.SetStoredBytesLimit(ctx(t), "", limit, quotaEvent("")), catalog.EINVALID)
	}
	wantLimit(t, s, "", 0, false)
	if evs := outbox(t, s); len(evs) != 0 {
		t.Fatalf("refused changes wrote %d events", len(evs))
	}
}

func testQuotaAudit(t *testing.T, s QuotaStore) {
	set := quotaEvent("alice")
	setLimit(t, s, "alice", 100, set)
	// The same limit again changes nothing and writes no event.
	setLimit(t, s, "alice", 100, quotaEvent("alice"))
	raised := quotaEvent("alice")
	setLimit(t, s, "alice", 200, raised)
	removed := quotaEvent("alice")
	setLimit(t, s, "alice", -1, removed)
	// Removing an override that is not there writes no event.
	setLimit(t, s, "alice", -1, quotaEvent("alice"))
	// A nil audit event writes none.
	setLimit(t, s, "bob", 300, nil)
	setLimit(t, s, "bob", -1, nil)
	// Failed changes write none.
	wantCode(t, s.SetStoredBytesLimit(ctx(t), "", 100, quotaEvent("")), catalog.EINVALID)
	cancelled, cancel := context.WithCancel(ctx(t))
	cancel()
	if err := s.SetStoredBytesLimit(cancelled, "carol", 100, quotaEvent("carol")); err == nil {
		t.Fatal("SetStoredBytesLimit with a cancelled context succeeded")
	}
	wantLimit(t, s, "carol", 0, false)

	got := outbox(t, s)
	want := []*catalog.Event{set, raised, removed}
	if len(got) != len(want) {
		t.Fatalf("outbox holds %d events, want the %d audit events: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		ev := got[i]
		if ev.ID != w.ID || ev.Type != w.Type || ev.Subject != w.Subject || !ev.Time.Equal(w.Time) {
			t.Fatalf("event %d = %+v, want %+v", i, ev, w)
		}
		if canonical(t, ev.Payload) != canonical(t, w.Payload) {
			t.Fatalf("event %d payload = %s, want %s", i, ev.Payload, w.Payload)
		}
		if ev.Seq != w.Seq {
			t.Fatalf("event %d has seq %d, but the store set %d on it", i, ev.Seq, w.Seq)
		}
	}
}
