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
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/client"
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

// PublishTwin publishes a twin of examples/ (dir holds its
// parameters.json and lifecycle/ scripts) as collection/id through the
// client, as the node admin; the collection is made first.
func PublishTwin(t testing.TB, url, collection, id, dir string) {
	t.Helper()
	api, err := client.New(url, client.Token(AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(client.Check(api.CreateCollectionWithBodyWithResponse(ctx, "application/json", strings.NewReader(fmt.Sprintf(`{"type":"Collection",
		"stac_version":"1.1.0","id":%q,"description":"twins","license":"CC-BY-4.0",
		"extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}},"links":[]}`, collection)))))
	params, err := os.ReadFile(filepath.Join(dir, "parameters.json"))
	if err != nil {
		t.Fatal(err)
	}
	must(client.Check(api.CreateItemWithBodyWithResponse(ctx, collection, "application/json", strings.NewReader(fmt.Sprintf(`{"type":"Feature",
		"stac_version":"1.1.0","id":%q,"geometry":null,"links":[],"assets":{},"properties":{"datetime":"2026-01-01T00:00:00Z",
		"dt:kind":"digital-twin","dt:parameters":%s}}`, id, params)))))
	phases, err := os.ReadDir(filepath.Join(dir, "lifecycle"))
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, p := range phases {
		f, err := os.Open(filepath.Join(dir, "lifecycle", p.Name()))
		if err != nil {
			t.Fatal(err)
		}
		must(client.Check(api.PutAssetWithBodyWithResponse(ctx, collection, id, p.Name(), nil, "text/x-shellscript", f)))
		_ = f.Close()
		roles = append(roles, fmt.Sprintf(`%q:{"roles":["lifecycle"]}`, p.Name()))
	}
	must(client.Check(api.UpdateItemWithBodyWithResponse(ctx, collection, id, nil, "application/merge-patch+json",
		strings.NewReader(`{"assets":{`+strings.Join(roles, ",")+`}}`))))
	must(client.Check(api.MoveItemWithResponse(ctx, collection, id, nil, client.LifecycleRequest{State: "published"})))
}
