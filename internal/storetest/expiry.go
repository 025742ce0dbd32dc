package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/blob"
)

// expiringItem returns a sealed item of collection in state st whose
// expires property is expires ("" for none).
func expiringItem(t *testing.T, collection, id string, st catalog.State, expires string) *catalog.Item {
	t.Helper()
	exp := ""
	if expires != "" {
		exp = fmt.Sprintf(`,"expires":%q`, expires)
	}
	raw := fmt.Sprintf(`{"type":"Feature","stac_version":"1.0.0","id":%q,"geometry":null,
		"properties":{"datetime":%q%s},"links":[]}`, id, catalog.FormatTime(t0), exp)
	return sealed(t, collection, raw, st)
}

// insertPolicyCollection stores a collection with an expiry policy (""
// for none).
func insertPolicyCollection(t *testing.T, s catalog.Store, id, policy string) {
	t.Helper()
	c := NewCollection(t, id)
	if policy != "" {
		c.Doc.Set(catalog.PropExpiry, policy)
	}
	if _, err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx catalog.Tx) error { return tx.InsertCollection(ctx(t), c) })
}

func expiredRefs(items []catalog.ExpiredItem) string {
	var out []string
	for _, it := range items {
		out = append(out, it.Collection+"/"+it.ID)
	}
	return strings.Join(out, " ")
}

// states returns "id=state" of items of a collection.
func states(t *testing.T, s catalog.Store, collection string, ids ...string) string {
	t.Helper()
	var out []string
	for _, id := range ids {
		it, err := s.GetItem(ctx(t), collection, id)
		if err != nil {
			t.Fatalf("GetItem %s/%s: %v", collection, id, err)
		}
		out = append(out, id+"="+string(it.State))
	}
	return strings.Join(out, " ")
}

func testExpiry(t *testing.T, s catalog.Store) {
	es, ok := s.(catalog.ExpiryStore)
	if !ok {
		t.Fatalf("%T does not find expired items (catalog.ExpiryStore)", s)
	}
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		now = t0.Add(3 * time.Hour)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc := &catalog.Service{Store: s, Blobs: blobs, Now: clock}
	at := func(d time.Duration) string { return catalog.FormatTime(t0.Add(d)) }

	insertPolicyCollection(t, s, "arch", "")
	insertPolicyCollection(t, s, "del", catalog.ExpiryDelete)
	insertItems(t, s,
		expiringItem(t, "arch", "p1", catalog.StatePublished, at(time.Hour)),
		expiringItem(t, "arch", "p2", catalog.StateDeprecated, at(2*time.Hour)),
		// Another offset, lower case and a fraction: the same instants.
		expiringItem(t, "arch", "p3", catalog.StatePublished, "2024-06-01t12:30:00.5+02:00"),
		expiringItem(t, "arch", "d1", catalog.StateDraft, at(0)),
		expiringItem(t, "arch", "a1", catalog.StateArchived, at(0)),
		expiringItem(t, "arch", "later", catalog.StatePublished, at(10*time.Hour)),
		expiringItem(t, "arch", "never", catalog.StatePublished, ""),
		expiringItem(t, "del", "q1", catalog.StateDraft, at(time.Hour)),
		expiringItem(t, "del", "q2", catalog.StatePublished, at(time.Hour)),
		expiringItem(t, "del", "q3", catalog.StateArchived, at(0)),
		expiringItem(t, "del", "exact", catalog.StatePublished, at(3*time.Hour)),
	)

	// Expired by now, by expiry time, collection and id; in pages too.
	want := "arch/d1 arch/p3 arch/p1 del/q1 del/q2 arch/p2 del/exact"
	all, err := es.ExpiredItems(ctx(t), now, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := expiredRefs(all); got != want {
		t.Fatalf("expired items:\n got %s\nwant %s", got, want)
	}
	if p3 := all[1]; !p3.Expires.Equal(t0.Add(30*time.Minute+500*time.Millisecond)) || p3.State != catalog.StatePublished || p3.ETag == "" {
		t.Fatalf("expired item %+v", p3)
	}
	var paged []catalog.ExpiredItem
	var after *catalog.ExpiredItem
	for range 10 {
		page, err := es.ExpiredItems(ctx(t), now, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		after = &page[len(page)-1]
	}
	if got := expiredRefs(paged); got != want {
		t.Fatalf("expired items in pages of 2:\n got %s\nwant %s", got, want)
	}
	if early, err := es.ExpiredItems(ctx(t), t0.Add(-time.Second), nil, 100); err != nil || len(early) != 0 {
		t.Fatalf("expired before anything expires: %v, %v", expiredRefs(early), err)
	}

	res, err := svc.ApplyExpiry(ctx(t), es)
	if err != nil {
		t.Fatal(err)
	}
	if res != (catalog.ExpiryResult{Archived: 3, Deleted: 3, Skipped: 1}) {
		t.Fatalf("first pass: %+v, want 3 archived, 3 deleted, the draft of arch skipped", res)
	}
	if got := states(t, s, "arch", "p1", "p2", "p3", "d1", "a1", "later", "never"); got != "p1=archived p2=archived p3=archived d1=draft a1=archived later=published never=published" {
		t.Fatalf("arch after the pass: %s", got)
	}
	if got := states(t, s, "del", "q1", "q2", "q3", "exact"); got != "q1=deleted q2=deleted q3=archived exact=deleted" {
		t.Fatalf("del after the pass: %s", got)
	}
	p1, err := s.GetItem(ctx(t), "arch", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := p1.Props.String("", "dt:stateReason"); r != catalog.ReasonExpired {
		t.Fatalf("the archived item's reason: %q", r)
	}
	moves := func() int {
		n := 0
		for _, e := range outbox(t, s) {
			if (e.Type == catalog.EventItemStateChanged || e.Type == catalog.EventItemDeleted) && strings.Contains(string(e.Payload), `"expired"`) {
				n++
			}
		}
		return n
	}
	if n := moves(); n != 6 {
		t.Fatalf("%d events of expiry moves, want 6", n)
	}

	// A second pass finds nothing new; a later one the next item.
	if res, err := svc.ApplyExpiry(ctx(t), es); err != nil || res != (catalog.ExpiryResult{Skipped: 1}) {
		t.Fatalf("second pass: %+v, %v", res, err)
	}
	mu.Lock()
	now = t0.Add(11 * time.Hour)
	mu.Unlock()
	if res, err := svc.ApplyExpiry(ctx(t), es); err != nil || res != (catalog.ExpiryResult{Archived: 1, Skipped: 1}) {
		t.Fatalf("pass after later expired: %+v, %v", res, err)
	}

	// Passes of several servers at once move each item once.
	var batch []*catalog.Item
	var ids []string
	for i := range 12 {
		id := fmt.Sprintf("r%02d", i)
		ids = append(ids, id)
		batch = append(batch, expiringItem(t, "arch", id, catalog.StatePublished, at(5*time.Hour)))
	}
	insertItems(t, s, batch...)
	var (
		wg      sync.WaitGroup
		results = make([]catalog.ExpiryResult, 3)
		errs    = make([]error, 3)
	)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = svc.ApplyExpiry(ctx(t), es)
		}()
	}
	wg.Wait()
	archived := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("a concurrent pass failed: %v", errs[i])
		}
		archived += results[i].Archived
	}
	if archived != 12 {
		t.Fatalf("concurrent passes archived %d items, want each of the 12 once: %+v", archived, results)
	}
	want12 := make([]string, len(ids))
	for i, id := range ids {
		want12[i] = id + "=archived"
	}
	if got := states(t, s, "arch", ids...); got != strings.Join(want12, " ") {
		t.Fatalf("after concurrent passes: %s", got)
	}
	if n := moves(); n != 6+1+12 {
		t.Fatalf("%d events of expiry moves, want %d", n, 6+1+12)
	}
	if slices.ContainsFunc(results, func(r catalog.ExpiryResult) bool { return r.Deleted != 0 }) {
		t.Fatalf("concurrent passes deleted items of a collection that archives: %+v", results)
	}
}
