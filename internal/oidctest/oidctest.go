// Package oidctest runs an OpenID Connect issuer on loopback for tests:
// discovery, a JWKS with keys the test makes, token signing and key
// rotation.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Issuer is an OIDC issuer on loopback that signs tokens with keys
// the test makes, and can rotate them.
type Issuer struct {
	Srv     *httptest.Server
	mu      sync.Mutex
	key     *rsa.PrivateKey
	kid     string
	jwks    jose.JSONWebKeySet
	fetches int // JWKS fetches
}

// New starts an issuer with a first key, k1.
func New(t testing.TB) *Issuer {
	t.Helper()
	is := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.Srv.URL, "jwks_uri": is.Srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"authorization_endpoint":                is.Srv.URL + "/auth", "token_endpoint": is.Srv.URL + "/token",
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		is.fetches++
		_ = json.NewEncoder(w).Encode(is.jwks)
	})
	is.Srv = httptest.NewServer(mux)
	t.Cleanup(is.Srv.Close)
	is.Rotate(t, "k1")
	return is
}

// Rotate makes a new signing key and publishes only it.
func (is *Issuer) Rotate(t testing.TB, kid string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	is.key, is.kid = key, kid
	is.jwks = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}}}
}

// Sign signs claims with the current key.
func (is *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	key, kid := is.key, is.kid
	is.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Claims returns the claims of a token for user, valid for exp.
func (is *Issuer) Claims(user string, groups any, aud string, exp time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{"iss": is.Srv.URL, "sub": "id-" + user, "preferred_username": user, "groups": groups,
		"aud": aud, "iat": now.Unix(), "exp": now.Add(exp).Unix()}
}

// Fetches returns how often the JWKS was fetched.
func (is *Issuer) Fetches() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.fetches
}
