// Package server assembles a twinstac server from its configuration:
// the store, the blob folder, access control, the job runtime (queue,
// in-process worker, reconciler), the expiry policy, the event runtime
// and the HTTP API. `twinstac serve` listens with it; tests serve it on
// httptest.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/sqlite"
	"github.com/twinstac/twinstac/openapi"
	"github.com/twinstac/twinstac/workers"
)

// App is an assembled server.
type App struct {
	// Handler serves the API.
	Handler http.Handler
	// AdminSecret is the node admin token made on the first start of an
	// empty store (shown once); empty otherwise.
	AdminSecret string
	Store       Store

	events *EventRuntime
	close  []func()
}

// New assembles a server from cfg. Close releases what it started.
func New(ctx context.Context, cfg config.Server, log *slog.Logger) (_ *App, err error) {
	app := &App{}
	defer func() {
		if err != nil {
			app.Close() // what was started before the failure
		}
	}()
	st, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	app.Store = st
	app.close = append(app.close, func() { _ = st.Close() })
	blobs, err := blob.NewDir(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return nil, fmt.Errorf("opening the blob folder: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	switch st := st.(type) {
	case *postgres.Store:
		reg.MustRegister(postgres.NewCollector(st))
	case *sqlite.Store:
		w, r := st.DBs()
		reg.MustRegister(collectors.NewDBStatsCollector(w, "sqlite_write"), collectors.NewDBStatsCollector(r, "sqlite_read"))
	}
	svc := &catalog.Service{Store: st, Blobs: blobs, MaxAssetBytes: int64(cfg.MaxAssetBytes), CollectionCacheTTL: time.Second}
	tokenStore, ok := st.(access.TokenStore)
	if !ok {
		return nil, fmt.Errorf("the store keeps no API tokens")
	}
	tokens := &access.Tokens{Store: tokenStore}
	policyStore, ok := st.(access.PolicyStore)
	if !ok {
		return nil, fmt.Errorf("the store keeps no access policies")
	}
	authz := access.NewAuthorizer(access.NewManager(policyStore))
	quotaStore, ok := st.(access.QuotaStore)
	if !ok {
		return nil, fmt.Errorf("the store keeps no quotas")
	}
	quotas := &access.Quotas{Store: quotaStore, DefaultStoredBytes: int64(cfg.QuotaStored),
		DefaultRunningJobs: int64(cfg.QuotaRunningJobs), DefaultQueuedJobs: int64(cfg.QuotaQueuedJobs)}
	if cfg.AdminToken != "" {
		h := access.HashSecret(cfg.AdminToken)
		tokens.AdminSecretHash = &h
	}
	var oidcAuth *access.OIDC
	if cfg.OIDCIssuer != "" {
		oidcAuth, err = access.NewOIDC(ctx, access.OIDCConfig{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience,
			UserClaim: cfg.OIDCUserClaim, GroupsClaim: cfg.OIDCGroupsClaim})
		if err != nil {
			return nil, fmt.Errorf("OIDC: %w", err)
		}
		log.Info("OIDC tokens accepted", "issuer", cfg.OIDCIssuer, "audience", cfg.OIDCAudience)
	}
	callbackAllow, err := workers.ParseCallbackAllow(cfg.CallbackAllow)
	if err != nil {
		return nil, fmt.Errorf("--callback-allow: %w", err)
	}
	jobRT, err := StartJobs(ctx, cfg, st, svc, log)
	if err != nil {
		return nil, err
	}
	app.close = append(app.close, jobRT.Close, StartExpiry(ctx, cfg, st, svc, log))
	evRT, err := StartEvents(ctx, cfg, st, log)
	if err != nil {
		return nil, err
	}
	app.events = evRT
	app.close = append(app.close, evRT.Close)
	if app.AdminSecret, err = tokens.Bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("creating the first admin token: %w", err)
	}
	app.Handler = openapi.New(openapi.Config{
		PublicURL:          cfg.PublicURL,
		MaxBodyBytes:       int64(cfg.MaxBodyBytes),
		CORS:               openapi.CORS{ReadOrigins: cfg.CORSReadOrigins, WriteOrigins: cfg.CORSWriteOrigins},
		RateLimit:          openapi.RateLimit{Rate: cfg.RateLimit, Burst: cfg.RateBurst},
		CollectionCreators: cfg.CollectionGroup,
		PrivateMetrics:     cfg.PrivateMetrics,
		CountBudget:        countBudget(cfg.CountBudget),
		SyncWait:           cfg.SyncWait,
		Callbacks:          workers.CallbackPolicy{Allow: callbackAllow},
	}, openapi.Deps{Catalog: svc, Tokens: tokens, Authz: authz, Quotas: quotas, OIDC: oidcAuth, Jobs: jobRT.Service, Events: evRT.Hub, Ready: func(ctx context.Context) error {
		if err := st.Ping(ctx); err != nil {
			return err
		}
		return blobs.Ping(ctx)
	}, Registry: reg, Logger: log})
	return app, nil
}

// CloseStreams ends the clients' event streams, which an HTTP server
// shutting down waits for.
func (a *App) CloseStreams() {
	if a.events != nil {
		a.events.CloseStreams()
	}
}

// Close stops what New started, in reverse order.
func (a *App) Close() {
	for i := len(a.close) - 1; i >= 0; i-- {
		a.close[i]()
	}
	a.close = nil
}

// countBudget maps the server setting (0: off) to the API's (negative: off).
func countBudget(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
