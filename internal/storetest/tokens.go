package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// TokenStore is what RunTokens tests: an access.TokenStore that is also
// the catalog.Store whose outbox receives the tokens' audit events.
type TokenStore interface {
	access.TokenStore
	catalog.Store
}

// RunTokens runs the contract suite of access.TokenStore. open must
// return a new empty, migrated store for each call; it is closed by the
// suite.
func RunTokens(t *testing.T, open func(t *testing.T) TokenStore) {
	t.Helper()
	runSuite(t, open, []suiteCase[TokenStore]{
		{"TokenRoundTrip", testTokenRoundTrip},
		{"TokenLookup", testTokenLookup},
		{"TokenNotFound", testTokenNotFound},
		{"TokenConflict", testTokenConflict},
		{"TokenInvalid", testTokenInvalid},
		{"TokenList", testTokenList},
		{"TokenListLimit", testTokenListLimit},
		{"TokenRevoke", testTokenRevoke},
		{"TokenAudit", testTokenAudit},
	})
}

// tokenHash returns the hash of a secret made from name.
func tokenHash(name string) [32]byte { return sha256.Sum256([]byte("secret of " + name)) }

// newToken returns a token of user, with a hash of its own, groups, a
// scope and no expiry.
func newToken(id, user string) *access.Token {
	return &access.Token{
		ID:        id,
		Name:      "token " + id,
		User:      user,
		Groups:    []string{"editors"},
		Scopes:    []string{"read"},
		Hash:      tokenHash(id),
		CreatedBy: "admin",
		Created:   t0,
	}
}

// tokenEvent returns an audit event about a token.
func tokenEvent(typ, id string) *catalog.Event {
	return &catalog.Event{
		ID:      uuid.NewString(),
		Type:    typ,
		Subject: "tokens/" + id,
		Time:    t0,
		Payload: json.RawMessage(fmt.Sprintf(`{"id":%q}`, id)),
	}
}

func createToken(t *testing.T, s TokenStore, tok *access.Token) {
	t.Helper()
	if err := s.CreateToken(ctx(t), tok, nil); err != nil {
		t.Fatalf("CreateToken %s: %v", tok.ID, err)
	}
}

func getToken(t *testing.T, s TokenStore, id string) *access.Token {
	t.Helper()
	tok, err := s.GetToken(ctx(t), id)
	if err != nil {
		t.Fatalf("GetToken %s: %v", id, err)
	}
	return tok
}

func tokenByHash(t *testing.T, s TokenStore, hash [32]byte) *access.Token {
	t.Helper()
	tok, err := s.TokenByHash(ctx(t), hash)
	if err != nil {
		t.Fatalf("TokenByHash %x: %v", hash, err)
	}
	return tok
}

func listTokens(t *testing.T, s TokenStore, user, after string, limit int) []*access.Token {
	t.Helper()
	toks, err := s.ListTokens(ctx(t), user, after, limit)
	if err != nil {
		t.Fatalf("ListTokens(%q, %q, %d): %v", user, after, limit, err)
	}
	return toks
}

func tokenIDs(toks []*access.Token) []string {
	ids := make([]string, len(toks))
	for i, tok := range toks {
		ids[i] = tok.ID
	}
	return ids
}

// outbox returns the whole outbox.
func outbox(t *testing.T, s catalog.Store) []*catalog.Event {
	t.Helper()
	evs, err := s.ListEvents(ctx(t), 0, catalog.MaxPageSize)
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	return evs
}

// storedTime is t as a store returns it: to the microsecond, in UTC, and
// zero when zero.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// sameToken fails unless got is want as stored: empty lists as nil, times
// to the microsecond in UTC.
func sameToken(t *testing.T, got, want *access.Token) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.User != want.User || got.CreatedBy != want.CreatedBy ||
		got.Hash != want.Hash {
		t.Fatalf("token = %+v, want %+v", got, want)
	}
	for _, l := range []struct {
		name      string
		got, want []string
	}{{"groups", got.Groups, want.Groups}, {"scopes", got.Scopes, want.Scopes}} {
		if len(l.want) == 0 && l.got != nil {
			t.Fatalf("%s of %s = %#v, want nil", l.name, want.ID, l.got)
		}
		if !slices.Equal(l.got, l.want) {
			t.Fatalf("%s of %s = %q, want %q", l.name, want.ID, l.got, l.want)
		}
	}
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{{"created", got.Created, want.Created}, {"expires", got.Expires, want.Expires}, {"revoked", got.Revoked, want.Revoked}} {
		w := storedTime(tm.want)
		if w.IsZero() {
			if !tm.got.IsZero() {
				t.Fatalf("%s of %s = %v, want zero", tm.name, want.ID, tm.got)
			}
			continue
		}
		if !tm.got.Equal(w) || tm.got.Location() != time.UTC {
			t.Fatalf("%s of %s = %v, want %v", tm.name, want.ID, tm.got, w)
		}
	}
}

func testTokenRoundTrip(t *testing.T, s TokenStore) {
	// Nanoseconds the store drops, in zones it does not keep.
	cest := time.FixedZone("CEST", 2*3600)
	full := newToken("full", "zoë")
	full.Name = "CI pipeline, 🚀"
	full.Groups = []string{"editors", "team-ü", "admins"}
	full.Scopes = []string{"read", "write"}
	full.CreatedBy = "root"
	full.Created = time.Date(2024, 6, 1, 12, 30, 0, 123456789, cest)
	full.Expires = time.Date(2025, 6, 1, 12, 30, 0, 987654321, time.FixedZone("PST", -8*3600))

	bare := newToken("bare", "bob")
	bare.Groups, bare.Scopes, bare.CreatedBy = nil, []string{}, ""

	for _, tok := range []*access.Token{full, bare} {
		createToken(t, s, tok)
	}
	sameToken(t, getToken(t, s, "full"), full)
	sameToken(t, tokenByHash(t, s, full.Hash), full)
	got := getToken(t, s, "bare")
	if got.Groups != nil || got.Scopes != nil || !got.Expires.IsZero() || !got.Revoked.IsZero() {
		t.Fatalf("bare token: groups %#v, scopes %#v, expires %v, revoked %v; want nil, nil, zero, zero",
			got.Groups, got.Scopes, got.Expires, got.Revoked)
	}
	sameToken(t, got, bare)

	// Listing returns what getting does.
	list := listTokens(t, s, "", "", 10)
	if len(list) != 2 {
		t.Fatalf("ListTokens = %q, want 2 tokens", tokenIDs(list))
	}
	sameToken(t, list[0], bare)
	sameToken(t, list[1], full)
}

func testTokenLookup(t *testing.T, s TokenStore) {
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		createToken(t, s, newToken(id, "alice"))
	}
	// An expired and a revoked token are found too: the caller decides.
	expired := newToken("expired", "alice")
	expired.Expires = t0.Add(-time.Hour)
	createToken(t, s, expired)
	createToken(t, s, newToken("revoked", "alice"))
	if err := s.RevokeToken(ctx(t), "revoked", t0.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(ids, "expired", "revoked") {
		if got := tokenByHash(t, s, tokenHash(id)); got.ID != id {
			t.Fatalf("TokenByHash(hash of %s) = %s", id, got.ID)
		}
		if got := getToken(t, s, id); got.ID != id || got.Hash != tokenHash(id) {
			t.Fatalf("GetToken(%s) = %s with hash %x", id, got.ID, got.Hash)
		}
	}
	sameToken(t, tokenByHash(t, s, expired.Hash), expired)
	if got := tokenByHash(t, s, tokenHash("revoked")); !got.Revoked.Equal(t0.Add(time.Minute)) {
		t.Fatalf("revoked token found with revoked = %v", got.Revoked)
	}
}

func testTokenNotFound(t *testing.T, s TokenStore) {
	createToken(t, s, newToken("a", "alice"))
	missing := tokenHash("missing")
	_, err := s.TokenByHash(ctx(t), missing)
	wantCode(t, err, catalog.ENOTFOUND)
	// The message must not give the hash away, in any spelling.
	msg := catalog.ErrorMessage(err)
	if msg != "token not found" || strings.Contains(strings.ToLower(err.Error()), hex.EncodeToString(missing[:])) {
		t.Fatalf("TokenByHash not found: message %q, error %q", msg, err)
	}
	// A hash differing in one byte does not match.
	near := tokenHash("a")
	near[31] ^= 1
	_, err = s.TokenByHash(ctx(t), near)
	wantCode(t, err, catalog.ENOTFOUND)

	_, err = s.GetToken(ctx(t), "missing")
	wantCode(t, err, catalog.ENOTFOUND)
	if msg := catalog.ErrorMessage(err); msg != "token not found" {
		t.Fatalf("GetToken not found message = %q", msg)
	}
	wantCode(t, s.RevokeToken(ctx(t), "missing", t0, tokenEvent("token.revoked", "missing")), catalog.ENOTFOUND)
	if evs := outbox(t, s); len(evs) != 0 {
		t.Fatalf("failed lookups and revocations wrote %d events", len(evs))
	}
}

func testTokenConflict(t *testing.T, s TokenStore) {
	createToken(t, s, newToken("a", "alice"))

	sameID := newToken("a", "bob")
	sameID.Hash = tokenHash("another secret")
	err := s.CreateToken(ctx(t), sameID, tokenEvent("token.created", "a"))
	wantCode(t, err, catalog.ECONFLICT)
	if msg := catalog.ErrorMessage(err); msg != `token "a" already exists` {
		t.Fatalf("conflict message = %q", msg)
	}
	_, err = s.TokenByHash(ctx(t), sameID.Hash)
	wantCode(t, err, catalog.ENOTFOUND)

	sameHash := newToken("b", "bob")
	sameHash.Hash = tokenHash("a")
	err = s.CreateToken(ctx(t), sameHash, tokenEvent("token.created", "b"))
	wantCode(t, err, catalog.ECONFLICT)
	if msg := catalog.ErrorMessage(err); msg != `token "b" already exists` {
		t.Fatalf("conflict message = %q", msg)
	}
	_, err = s.GetToken(ctx(t), "b")
	wantCode(t, err, catalog.ENOTFOUND)

	sameToken(t, getToken(t, s, "a"), newToken("a", "alice"))
	sameToken(t, tokenByHash(t, s, tokenHash("a")), newToken("a", "alice"))
	// A revoked token keeps its id and hash taken.
	if err := s.RevokeToken(ctx(t), "a", t0, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CreateToken(ctx(t), newToken("a", "alice"), nil), catalog.ECONFLICT)
	if evs := outbox(t, s); len(evs) != 0 {
		t.Fatalf("conflicting creates wrote %d events", len(evs))
	}
}

func testTokenInvalid(t *testing.T, s TokenStore) {
	tests := []struct {
		name   string
		change func(tok *access.Token)
	}{
		{"NoID", func(tok *access.Token) { tok.ID = "" }},
		{"NoUser", func(tok *access.Token) { tok.User = "" }},
		{"NoName", func(tok *access.Token) { tok.Name = "" }},
		{"ZeroHash", func(tok *access.Token) { tok.Hash = [32]byte{} }},
	}
	for _, tc := range tests {
		tok := newToken("bad", "alice")
		tc.change(tok)
		err := s.CreateToken(ctx(t), tok, tokenEvent("token.created", "bad"))
		if code := catalog.ErrorCode(err); code != catalog.EINVALID {
			t.Fatalf("%s: CreateToken error code = %q (%v), want %q", tc.name, code, err, catalog.EINVALID)
		}
	}
	if evs := outbox(t, s); len(evs) != 0 {
		t.Fatalf("rejected tokens wrote %d events", len(evs))
	}
	if _, err := s.GetToken(ctx(t), "bad"); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("a rejected token was stored: %v", err)
	}
	if _, err := s.TokenByHash(ctx(t), [32]byte{}); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("a token with a zero hash was stored: %v", err)
	}
}

// pageTokens collects every page of ListTokens(user) by limit.
func pageTokens(t *testing.T, s TokenStore, user string, limit, most int) []string {
	t.Helper()
	var got []string
	after := ""
	for range most + 1 {
		page := listTokens(t, s, user, after, limit)
		if len(page) > limit {
			t.Fatalf("ListTokens(%q, %q, %d) = %d tokens", user, after, limit, len(page))
		}
		if len(page) == 0 {
			return got
		}
		for _, tok := range page {
			if user != "" && tok.User != user {
				t.Fatalf("ListTokens(%q) returned token %s of %q", user, tok.ID, tok.User)
			}
			got = append(got, tok.ID)
		}
		after = page[len(page)-1].ID
	}
	t.Fatalf("paging ListTokens(%q) by %d does not end", user, limit)
	return nil
}

func testTokenList(t *testing.T, s TokenStore) {
	// Ids whose byte order differs from a locale's: upper case before
	// lower case, punctuation by code point, non-ASCII last.
	alice := []string{"b", "a", "B", "Z", "a-1", "a_1", "a.1", "é", "z", "A", "ä", "a1", "_", "~"}
	bob := []string{"bob-1", "C", "ö", "0"}
	revoked := []string{"a0", "bob-2", "zz"}
	for _, id := range alice {
		createToken(t, s, newToken(id, "alice"))
	}
	for _, id := range bob {
		createToken(t, s, newToken(id, "bob"))
	}
	for i, id := range revoked {
		user := "alice"
		if i == 1 {
			user = "bob"
		}
		createToken(t, s, newToken(id, user))
		if err := s.RevokeToken(ctx(t), id, t0, nil); err != nil {
			t.Fatal(err)
		}
	}
	// An expired token is listed: only revoked ones are left out.
	expired := newToken("expired", "bob")
	expired.Expires = t0.Add(-time.Hour)
	createToken(t, s, expired)
	bob = append(bob, "expired")

	wantAlice, wantBob := slices.Sorted(slices.Values(alice)), slices.Sorted(slices.Values(bob))
	wantAll := slices.Sorted(slices.Values(append(slices.Clone(alice), bob...)))
	for _, c := range []struct {
		user string
		want []string
	}{{"alice", wantAlice}, {"bob", wantBob}, {"", wantAll}, {"nobody", nil}} {
		for _, limit := range []int{1, 2, 3, 5, len(c.want), len(c.want) + 1} {
			if got := pageTokens(t, s, c.user, max(limit, 1), len(wantAll)); !slices.Equal(got, c.want) {
				t.Fatalf("paging ListTokens(%q) by %d = %q, want %q", c.user, limit, got, c.want)
			}
		}
	}

	// after need not be an id that exists.
	if got := tokenIDs(listTokens(t, s, "alice", "a0", 3)); !slices.Equal(got, []string{"a1", "a_1", "b"}) {
		t.Fatalf("ListTokens(alice, a0, 3) = %q", got)
	}
	if got := tokenIDs(listTokens(t, s, "", "a0", 3)); !slices.Equal(got, []string{"a1", "a_1", "b"}) {
		t.Fatalf("ListTokens(\"\", a0, 3) = %q", got)
	}
	if got := tokenIDs(listTokens(t, s, "bob", "Z", 10)); !slices.Equal(got, []string{"bob-1", "expired", "ö"}) {
		t.Fatalf("ListTokens(bob, Z, 10) = %q", got)
	}
	// Past the end: an empty page, not nil.
	for _, user := range []string{"", "alice", "nobody"} {
		page, err := s.ListTokens(ctx(t), user, "\U0010FFFF", 10)
		if err != nil || page == nil || len(page) != 0 {
			t.Fatalf("ListTokens(%q) past the end = %#v, %v; want an empty page", user, page, err)
		}
	}
	// A limit below 1 is 1.
	for _, limit := range []int{0, -5} {
		page := listTokens(t, s, "alice", "", limit)
		if len(page) != 1 || page[0].ID != wantAlice[0] {
			t.Fatalf("ListTokens(alice, \"\", %d) = %q; want [%q]", limit, tokenIDs(page), wantAlice[0])
		}
	}
	// Listed tokens are whole.
	for _, tok := range listTokens(t, s, "bob", "", 10) {
		want := newToken(tok.ID, "bob")
		if tok.ID == "expired" {
			want = expired
		}
		sameToken(t, tok, want)
	}
}

// testTokenListLimit checks that ListTokens returns at most 1000 tokens,
// whatever the limit asked for.
func testTokenListLimit(t *testing.T, s TokenStore) {
	const most = 1000
	for i := range most + 1 {
		createToken(t, s, newToken(fmt.Sprintf("t%04d", i), "alice"))
	}
	for _, user := range []string{"", "alice"} {
		for _, limit := range []int{most + 1, catalog.MaxPageSize + 1} {
			page := listTokens(t, s, user, "", limit)
			if len(page) != most || page[0].ID != "t0000" || page[most-1].ID != fmt.Sprintf("t%04d", most-1) {
				t.Fatalf("ListTokens(%q, \"\", %d) = %d tokens, want the first %d", user, limit, len(page), most)
			}
		}
		if page := listTokens(t, s, user, "t0999", most); len(page) != 1 || page[0].ID != "t1000" {
			t.Fatalf("ListTokens(%q, t0999) = %q, want [t1000]", user, tokenIDs(page))
		}
	}
}

func testTokenRevoke(t *testing.T, s TokenStore) {
	createToken(t, s, newToken("a", "alice"))
	createToken(t, s, newToken("b", "alice"))
	// Nanoseconds the store drops, in a zone it does not keep.
	first := time.Date(2024, 7, 1, 9, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	revoked := tokenEvent("token.revoked", "a")
	if err := s.RevokeToken(ctx(t), "a", first, revoked); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	// Revoking again succeeds, changes nothing and writes no event.
	if err := s.RevokeToken(ctx(t), "a", first.Add(time.Hour), tokenEvent("token.revoked", "a")); err != nil {
		t.Fatalf("RevokeToken again: %v", err)
	}
	want := newToken("a", "alice")
	want.Revoked = first
	sameToken(t, getToken(t, s, "a"), want)
	sameToken(t, tokenByHash(t, s, want.Hash), want)
	sameToken(t, getToken(t, s, "b"), newToken("b", "alice"))
	if got := tokenIDs(listTokens(t, s, "alice", "", 10)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("ListTokens after revoking a = %q, want [b]", got)
	}
	evs := outbox(t, s)
	if len(evs) != 1 || evs[0].ID != revoked.ID {
		t.Fatalf("outbox after revoking twice holds %d events, want the first revocation's", len(evs))
	}
	// A zero time would read back as not revoked.
	err := s.RevokeToken(ctx(t), "b", time.Time{}, tokenEvent("token.revoked", "b"))
	wantCode(t, err, catalog.EINVALID)
	sameToken(t, getToken(t, s, "b"), newToken("b", "alice"))
}

func testTokenAudit(t *testing.T, s TokenStore) {
	created := tokenEvent("token.created", "a")
	if err := s.CreateToken(ctx(t), newToken("a", "alice"), created); err != nil {
		t.Fatal(err)
	}
	// A nil audit event writes none.
	createToken(t, s, newToken("quiet", "alice"))
	// Failed changes write none.
	wantCode(t, s.CreateToken(ctx(t), newToken("a", "bob"), tokenEvent("token.created", "a")), catalog.ECONFLICT)
	wantCode(t, s.RevokeToken(ctx(t), "missing", t0, tokenEvent("token.revoked", "missing")), catalog.ENOTFOUND)
	revoked := tokenEvent("token.revoked", "a")
	if err := s.RevokeToken(ctx(t), "a", t0, revoked); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx(t), "quiet", t0, nil); err != nil {
		t.Fatal(err)
	}

	got := outbox(t, s)
	if len(got) != 2 {
		t.Fatalf("outbox holds %d events, want the 2 audit events: %+v", len(got), got)
	}
	for i, want := range []*catalog.Event{created, revoked} {
		ev := got[i]
		if ev.ID != want.ID || ev.Type != want.Type || ev.Subject != want.Subject || !ev.Time.Equal(want.Time) {
			t.Fatalf("event %d = %+v, want %+v", i, ev, want)
		}
		if canonical(t, ev.Payload) != canonical(t, want.Payload) {
			t.Fatalf("event %d payload = %s, want %s", i, ev.Payload, want.Payload)
		}
		if ev.Seq != want.Seq {
			t.Fatalf("event %d has seq %d, but the store set %d on it", i, ev.Seq, want.Seq)
		}
	}
	if got[0].Seq >= got[1].Seq {
		t.Fatalf("event seqs %d, %d do not increase", got[0].Seq, got[1].Seq)
	}
}
