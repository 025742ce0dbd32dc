package server

import (
	"context"
	"log/slog"
	"sync"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/config"
)

// StartExpiry runs the expiry policy in the background every
// cfg.ExpiryInterval (0: never) and returns the function that stops it
// and waits for it. Every server of a node may run it: a pass moves only
// the version of an item it found expired.
func StartExpiry(ctx context.Context, cfg config.Server, st catalog.Store, svc *catalog.Service, log *slog.Logger) (stop func()) {
	es, ok := st.(catalog.ExpiryStore)
	if cfg.ExpiryInterval <= 0 || !ok {
		if cfg.ExpiryInterval > 0 {
			log.Warn("the store finds no expired items; the expiry policy is off")
		}
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	r := &catalog.ExpiryRunner{Service: svc, Store: es, Interval: cfg.ExpiryInterval, Logger: log}
	wg.Go(func() { r.Run(ctx) })
	log.Info("expiry policy on", "interval", cfg.ExpiryInterval.String())
	return func() {
		cancel()
		wg.Wait()
	}
}
