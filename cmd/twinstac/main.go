// Command twinstac is the one binary of twinstac: the server (serve,
// migrate) and, later, the client commands. It wires the adapters to the
// domain; no business rule lives here.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/sqlite"
	"github.com/twinstac/twinstac/openapi"
	"github.com/twinstac/twinstac/workers"
)

func main() {
	// The local executor starts this binary to launch a phase script
	// under its resource limits; in that role it never returns.
	workers.LaunchPhase()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "twinstac:", err)
		os.Exit(1)
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "twinstac",
		Short:         "twinstac: a Digital-Twin-as-a-Service backend with a STAC API catalog",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServe(stdout, stderr), newWorker(stdout, stderr), newMigrate(stdout, stderr), newBench(stdout, stderr))
	return root
}

func newServe(stdout, stderr io.Writer) *cobra.Command {
	cfg := config.Defaults()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API server",
		Long: `Run the twinstac API server.

With no flags it needs no setup: data goes under ./twinstac-data (an
embedded SQLite database and the blob files). --database-url points it at
PostgreSQL 15+ with PostGIS instead; migrations are applied on start-up.`,
		Example: "  twinstac serve\n  twinstac serve --addr :8080 --database-url postgres://twinstac@db/twinstac",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags()); err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, stdout, stderr)
		},
	}
	cfg.ServeFlags(cmd.Flags())
	config.AnnotateEnv(cmd.Flags())
	return cmd
}

func newMigrate(stdout, stderr io.Writer) *cobra.Command {
	cfg := config.Defaults()
	cmd := &cobra.Command{
		Use:     "migrate",
		Short:   "Apply the database migrations and exit",
		Example: "  twinstac migrate --database-url postgres://twinstac@db/twinstac",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags()); err != nil {
				return err
			}
			log := newLogger(cfg, stderr)
			st, err := openStore(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintln(stdout, "migrations applied")
			return nil
		},
	}
	cfg.StoreFlags(cmd.Flags())
	config.AnnotateEnv(cmd.Flags())
	return cmd
}

func newLogger(cfg config.Server, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// store is what serve needs of either database.
type store interface {
	catalog.Store
}

// openStore opens and migrates the configured database.
func openStore(ctx context.Context, cfg config.Server, log *slog.Logger) (store, error) {
	if cfg.DatabaseURL != "" {
		st, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("opening PostgreSQL: %w", err)
		}
		if err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, fmt.Errorf("migrating PostgreSQL: %w", err)
		}
		log.Info("store ready", "store", "postgres")
		return st, nil
	}
	path := filepath.Join(cfg.DataDir, "twinstac.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("opening SQLite at %s: %w", path, err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrating SQLite: %w", err)
	}
	log.Info("store ready", "store", "sqlite", "path", path)
	return st, nil
}

func serve(ctx context.Context, cfg config.Server, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	blobs, err := blob.NewDir(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return fmt.Errorf("opening the blob folder: %w", err)
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
		return fmt.Errorf("the store keeps no API tokens")
	}
	tokens := &access.Tokens{Store: tokenStore}
	policyStore, ok := st.(access.PolicyStore)
	if !ok {
		return fmt.Errorf("the store keeps no access policies")
	}
	authz := access.NewAuthorizer(access.NewManager(policyStore))
	quotaStore, ok := st.(access.QuotaStore)
	if !ok {
		return fmt.Errorf("the store keeps no quotas")
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
			return fmt.Errorf("OIDC: %w", err)
		}
		log.Info("OIDC tokens accepted", "issuer", cfg.OIDCIssuer, "audience", cfg.OIDCAudience)
	}
	callbackAllow, err := workers.ParseCallbackAllow(cfg.CallbackAllow)
	if err != nil {
		return fmt.Errorf("--callback-allow: %w", err)
	}
	jobRT, err := startJobs(ctx, cfg, st, svc, log)
	if err != nil {
		return err
	}
	defer jobRT.Close()
	defer startExpiry(ctx, cfg, st, svc, log)()
	evRT, err := startEvents(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	defer evRT.Close()
	adminSecret, err := tokens.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("creating the first admin token: %w", err)
	}
	api := openapi.New(openapi.Config{
		PublicURL:          cfg.PublicURL,
		MaxBodyBytes:       int64(cfg.MaxBodyBytes),
		CORS:               openapi.CORS{ReadOrigins: cfg.CORSReadOrigins, WriteOrigins: cfg.CORSWriteOrigins},
		RateLimit:          openapi.RateLimit{Rate: cfg.RateLimit, Burst: cfg.RateBurst},
		CollectionCreators: cfg.CollectionGroup,
		PrivateMetrics:     cfg.PrivateMetrics,
		CountBudget:        countBudget(cfg.CountBudget),
		SyncWait:           cfg.SyncWait,
		Callbacks:          workers.CallbackPolicy{Allow: callbackAllow},
	}, openapi.Deps{Catalog: svc, Tokens: tokens, Authz: authz, Quotas: quotas, OIDC: oidcAuth, Jobs: jobRT.service, Events: evRT.hub, Ready: func(ctx context.Context) error {
		if err := st.Ping(ctx); err != nil {
			return err
		}
		return blobs.Ping(ctx)
	}, Registry: reg, Logger: log})

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(evRT.closeStreams)
	fmt.Fprintf(stdout, "twinstac listening on %s\n", displayURL(ln.Addr()))
	if adminSecret != "" {
		// Shown this once, on the terminal; never logged.
		fmt.Fprintf(stdout, "node admin token (shown only now; keep it safe): %s\n", adminSecret)
	}
	log.Info("listening", "addr", ln.Addr().String())
	if cfg.PprofAddr != "" {
		if err := servePprof(cfg.PprofAddr, log); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// displayURL turns a listen address into a URL a person can open.
func displayURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "http://" + host + ":" + port
}

// countBudget maps the server setting (0: off) to the API's (negative: off).
func countBudget(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// servePprof serves the Go runtime profiles (net/http/pprof) on their
// own address, which must be on this machine: they expose the process.
func servePprof(addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return fmt.Errorf("--pprof-addr must be a loopback address, not %q", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	log.Info("profiles served", "addr", ln.Addr().String())
	go func() { _ = http.Serve(ln, mux) }()
	return nil
}
