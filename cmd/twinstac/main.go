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
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/server"
	"github.com/twinstac/twinstac/workers"
)

func main() {
	// The local executor starts this binary to launch a phase script
	// under its resource limits; in that role it never returns.
	workers.LaunchPhase()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		if ctx.Err() != nil {
			// Interrupted (Ctrl-C, SIGTERM): what the command was doing
			// failed because of that, not because of the server.
			fmt.Fprintln(os.Stderr, "twinstac: interrupted")
			os.Exit(exitInterrupted)
		}
		fmt.Fprintln(os.Stderr, "twinstac:", err)
		stop()
		os.Exit(exitCode(err))
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
	// The client commands, which talk to a server through the generated
	// client.
	c := &cli{stdout: stdout, stderr: stderr}
	for _, cmd := range []*cobra.Command{newLogin(c), newWhoami(c), newCollections(c), newItems(c), newSearch(c),
		newProcesses(c), newValidate(c), newRun(c), newJobs(c), newBatch(c),
		newAssets(c), newImport(c), newExport(c)} {
		if cmd.Name() != "login" {
			c.flags(cmd)
		}
		root.AddCommand(cmd)
	}
	for _, cmd := range root.Commands() {
		gatherExamples(cmd)
		refuseUnknownSubcommands(cmd)
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w; see %s --help", err, cmd.CommandPath())}
	})
	return root
}

// refuseUnknownSubcommands makes a command group (jobs, items, ...) and
// the groups below it answer a subcommand they do not have with a usage
// error: cobra would print the group's help and exit 0. The group alone
// prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	if !cmd.HasSubCommands() {
		return
	}
	if !cmd.Runnable() {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageError{fmt.Errorf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())}
		}
	}
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
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
			st, err := server.OpenStore(cmd.Context(), cfg, log)
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

func serve(ctx context.Context, cfg config.Server, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	app, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	adminSecret := app.AdminSecret

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           app.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(app.CloseStreams)
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

// gatherExamples gives a command group without examples of its own the
// first example of each of its commands.
func gatherExamples(cmd *cobra.Command) {
	if cmd.Example != "" || !cmd.HasSubCommands() {
		return
	}
	var lines []string
	for _, sub := range cmd.Commands() {
		gatherExamples(sub)
		if first, _, _ := strings.Cut(sub.Example, "\n"); first != "" {
			lines = append(lines, first)
		}
	}
	cmd.Example = strings.Join(lines, "\n")
}
