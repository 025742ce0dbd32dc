package access

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// memTokens is a TokenStore in memory for these unit tests; the database
// stores are held to the contract by internal/storetest.
type memTokens struct {
	mu     sync.Mutex
	byID   map[string]*Token
	events []*catalog.Event
}

func newMemTokens() *memTokens { return &memTokens{byID: map[string]*Token{}} }

func (m *memTokens) CreateToken(_ context.Context, t *Token, ev *catalog.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[t.ID] = t
	m.events = append(m.events, ev)
	return nil
}

func (m *memTokens) TokenByHash(_ context.Context, h [32]byte) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.byID {
		if t.Hash == h {
			c := *t
			return &c, nil
		}
	}
	return nil, catalog.Errorf(catalog.ENOTFOUND, "token not found")
}

func (m *memTokens) GetToken(_ context.Context, id string) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.byID[id]; ok {
		c := *t
		return &c, nil
	}
	return nil, catalog.Errorf(catalog.ENOTFOUND, "token %q not found", id)
}

func (m *memTokens) ListTokens(_ context.Context, user, after string, limit int) ([]*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Token
	for _, t := range m.byID {
		if t.Revoked.IsZero() && (user == "" || t.User == user) && t.ID > after {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *Token) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), limit)], nil
}

func (m *memTokens) RevokeToken(_ context.Context, id string, at time.Time, ev *catalog.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.byID[id]
	if !ok {
		return catalog.Errorf(catalog.ENOTFOUND, "token %q not found", id)
	}
	if t.Revoked.IsZero() {
		t.Revoked = at
		m.events = append(m.events, ev)
	}
	return nil
}

func TestTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := newMemTokens()
	s := &Tokens{Store: store, Now: func() time.Time { return now }}
	ana := &Caller{User: "ana", Groups: []string{"eo"}}
	admin := &Caller{User: "root", Groups: []string{AdminGroup}}

	tok, secret, err := s.Mint(ctx, ana, MintRequest{Name: "laptop", Expires: now.Add(time.Hour), Scopes: []string{ActionRead}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, TokenPrefix) || tok.Hash != HashSecret(secret) || tok.User != "ana" || !slices.Equal(tok.Groups, []string{"eo"}) {
		t.Fatalf("minted %+v with secret %q", tok, secret)
	}
	c, err := s.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "ana" || c.TokenID != tok.ID || c.InScope(ActionUpdate) || !c.InScope(ActionRead) {
		t.Fatalf("caller %+v", c)
	}
	if got := c.Subjects(); !slices.Equal(got, []string{"user:ana", "group:eo", "token:" + tok.ID}) {
		t.Fatalf("subjects %v", got)
	}
	// A read-only token cannot mint tokens; no one anonymous can.
	if _, _, err := s.Mint(ctx, c, MintRequest{Name: "x"}); catalog.ErrorCode(err) != catalog.EFORBIDDEN {
		t.Fatalf("mint with a read-only token: %v", err)
	}
	if _, _, err := s.Mint(ctx, Anonymous, MintRequest{Name: "x"}); catalog.ErrorCode(err) != catalog.EUNAUTHENTICATED {
		t.Fatalf("anonymous mint: %v", err)
	}
	// Only admins mint for others.
	if _, _, err := s.Mint(ctx, ana, MintRequest{Name: "x", User: "bob"}); catalog.ErrorCode(err) != catalog.EFORBIDDEN {
		t.Fatalf("mint for another user: %v", err)
	}
	svc, svcSecret, err := s.Mint(ctx, admin, MintRequest{Name: "ingest", User: "svc-ingest", Groups: []string{"loaders"}})
	if err != nil || svc.User != "svc-ingest" || svc.CreatedBy != "root" {
		t.Fatalf("admin mint: %+v %v", svc, err)
	}
	for name, r := range map[string]MintRequest{
		"no name":      {},
		"past expiry":  {Name: "x", Expires: now.Add(-time.Second)},
		"bad scope":    {Name: "x", Scopes: []string{"everything"}},
		"bad group":    {Name: "x", User: "u", Groups: []string{"a:b"}},
		"bad username": {Name: "x", User: "a b"},
	} {
		if _, _, err := s.Mint(ctx, admin, r); catalog.ErrorCode(err) != catalog.EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Revocation and expiry take effect on the next use.
	if err := s.Revoke(ctx, &Caller{User: "bob"}, svc.ID); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("someone else's revoke: %v", err)
	}
	if err := s.Revoke(ctx, admin, svc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, svcSecret); catalog.ErrorCode(err) != catalog.EUNAUTHENTICATED || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := s.Authenticate(ctx, secret); catalog.ErrorCode(err) != catalog.EUNAUTHENTICATED || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	if _, err := s.Authenticate(ctx, "tst_nonsense"); catalog.ErrorCode(err) != catalog.EUNAUTHENTICATED {
		t.Fatalf("unknown token: %v", err)
	}
	// Listing: own tokens; others' only for admins.
	if l, err := s.List(ctx, ana, "", "", 10); err != nil || len(l) != 1 {
		t.Fatalf("ana's tokens: %d, %v", len(l), err)
	}
	if _, err := s.List(ctx, ana, "svc-ingest", "", 10); catalog.ErrorCode(err) != catalog.EFORBIDDEN {
		t.Fatalf("listing another user's tokens: %v", err)
	}
	// Audit events never carry the secret.
	for _, e := range store.events {
		if strings.Contains(string(e.Payload), TokenPrefix) {
			t.Fatalf("an event carries a secret: %s", e.Payload)
		}
	}
}

func TestBootstrapAndAdminSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &Tokens{Store: newMemTokens()}
	secret, err := s.Bootstrap(ctx)
	if err != nil || secret == "" {
		t.Fatalf("first bootstrap: %q, %v", secret, err)
	}
	c, err := s.Authenticate(ctx, secret)
	if err != nil || !c.IsAdmin() {
		t.Fatalf("bootstrap token: %+v, %v", c, err)
	}
	if again, err := s.Bootstrap(ctx); err != nil || again != "" {
		t.Fatalf("second bootstrap minted again: %q, %v", again, err)
	}
	h := HashSecret("configured-secret")
	s2 := &Tokens{Store: newMemTokens(), AdminSecretHash: &h}
	if again, _ := s2.Bootstrap(ctx); again != "" {
		t.Fatal("bootstrap minted although an admin secret is configured")
	}
	if c, err := s2.Authenticate(ctx, "configured-secret"); err != nil || !c.IsAdmin() || c.Via != "admin-token" {
		t.Fatalf("configured admin secret: %+v, %v", c, err)
	}
}
