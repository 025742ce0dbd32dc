package server_test

import (
	"log/slog"
	"testing"

	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/server"
)

// TestNewFailsCleanly: a setting that cannot work is an error from New,
// after what was started is stopped; no panic.
func TestNewFailsCleanly(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Node = "" // the events need a node name
	app, err := server.New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || app != nil {
		t.Fatalf("New with no node name: %v, %v", app, err)
	}
	cfg.DatabaseURL = "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	if _, err := server.New(t.Context(), cfg, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New with an unreachable database succeeded")
	}
}
