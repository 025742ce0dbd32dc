// Package servertest serves a whole twinstac server on httptest for the
// tests of its clients: the embedded defaults (SQLite, an in-process
// Redis, an embedded NATS server, an in-process worker with the local
// executor), all under a temporary folder.
//
// A test binary that runs jobs must call workers.LaunchPhase first in its
// TestMain: the local executor starts it to launch phase scripts.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/server"
)

// AdminToken is the node admin token of the servers served here.
const AdminToken = "servertest-admin-token-0123456789"

// Server is a running test server.
type Server struct {
	// URL is its base URL, also its public URL (the links it writes).
	URL string
	App *server.App

	http *httptest.Server
	dir  string
}

// New serves a server with its data in a new temporary folder, logging
// warnings to logs (nil: nowhere). configure, if not nil, changes the
// settings first. Close stops it and removes the folder.
func New(configure func(*config.Server), logs io.Writer) (*Server, error) {
	dir, err := os.MkdirTemp("", "twinstac-servertest-")
	if err != nil {
		return nil, err
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.PublicURL = "http://" + srv.Listener.Addr().String()
	cfg.AdminToken = AdminToken
	cfg.ReconcileInterval = time.Second
	cfg.ExpiryInterval = 0
	if configure != nil {
		configure(&cfg)
	}
	log := slog.New(slog.DiscardHandler)
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	app, err := server.New(context.Background(), cfg, log)
	if err != nil {
		srv.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	srv.Config.Handler = app.Handler
	srv.Config.RegisterOnShutdown(app.CloseStreams)
	srv.Start()
	return &Server{URL: srv.URL, App: app, http: srv, dir: dir}, nil
}

// Close stops the server and removes its data.
func (s *Server) Close() {
	s.App.CloseStreams()
	s.http.Close()
	s.App.Close()
	_ = os.RemoveAll(s.dir)
}

// Start serves a server until the test ends.
func Start(t testing.TB, configure func(*config.Server)) *Server {
	t.Helper()
	var logs io.Writer
	if testing.Verbose() {
		logs = t.Output()
	}
	s, err := New(configure, logs)
	if err != nil {
		t.Fatalf("starting the server: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
