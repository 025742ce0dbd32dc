package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/sqlite"
)

// Store is what a server needs of either database.
type Store interface {
	catalog.Store
}

// OpenStore opens and migrates the configured database.
func OpenStore(ctx context.Context, cfg config.Server, log *slog.Logger) (Store, error) {
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
