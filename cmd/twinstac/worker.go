package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/server"
)

func newWorker(stdout, stderr io.Writer) *cobra.Command {
	cfg := config.Defaults()
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run jobs from the queue of the servers",
		Long: `Run a worker: it takes jobs from the asynq queue on --redis-url and runs
them with the local executor, as many at once as --concurrency says. It
needs the servers' database (--database-url) and their blob folder
(--data-dir, shared), and it runs the reconciler too.

Stopping it (SIGINT, SIGTERM) stops taking jobs and waits up to 10 s for
the running ones; those still running go back to the queue and run again
as their next attempt.`,
		Example: "  twinstac worker --database-url postgres://twinstac@db/twinstac --redis-url redis://redis:6379/0 --data-dir /srv/twinstac --concurrency 8",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags()); err != nil {
				return err
			}
			return runWorker(cmd.Context(), cfg, stdout, stderr)
		},
	}
	cfg.WorkerFlags(cmd.Flags())
	config.AnnotateEnv(cmd.Flags())
	return cmd
}

func runWorker(ctx context.Context, cfg config.Server, stdout, stderr io.Writer) error {
	if cfg.RedisURL == "" {
		return errors.New("--redis-url is required: a worker takes its jobs from the queue the servers use")
	}
	if cfg.Workers < 1 {
		return errors.New("--concurrency must be at least 1")
	}
	log := newLogger(cfg, stderr)
	st, err := server.OpenStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	blobs, err := blob.NewDir(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return fmt.Errorf("opening the blob folder: %w", err)
	}
	svc := &catalog.Service{Store: st, Blobs: blobs, MaxAssetBytes: int64(cfg.MaxAssetBytes), CollectionCacheTTL: time.Second}
	rt, err := server.StartJobs(ctx, cfg, st, svc, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "twinstac worker running %d jobs at once\n", cfg.Workers)
	<-ctx.Done()
	log.Info("stopping the worker")
	rt.Close()
	return nil
}
