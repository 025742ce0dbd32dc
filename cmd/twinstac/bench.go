package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/sqlite"
)

// benchIngest holds the settings of `twinstac bench ingest`.
type benchIngest struct {
	file        string
	collections string
	databaseURL string
	via         string
	runs        int
	batch       int
	preload     int
	limit       int
	keep        bool
	published   bool
	cpuProfile  string
}

func newBench(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure the server on a benchmark workload"}
	b := benchIngest{via: "http", runs: 3, batch: 10000}
	ingest := &cobra.Command{
		Use:   "ingest",
		Short: "Measure bulk ingest of an NDJSON file of items",
		Long: `Measure bulk ingest: each run loads the file into a new, empty database
and reports items/s; the summary gives the median and the spread.

--via http starts a twinstac server (this binary) per run and streams the
items to POST /collections/{id}/bulk_items in batches, and reports the
server's peak resident memory; --via store calls the store directly.
--preload N loads the first N items untimed, so that the timed part
measures appending to a store that already holds them.
Without --database-url the runs use SQLite in a temporary folder.`,
		Example: `  go run ./gen -n 1000000 -seed 42 -out items-1m.ndjson -collections collections.json   (in ../shared/bench)
  twinstac bench ingest --file items-1m.ndjson --collections collections.json --limit 100000 \
      --database-url 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'`,
		RunE: func(cmd *cobra.Command, _ []string) error { return b.run(cmd.Context(), stdout, stderr) },
	}
	f := ingest.Flags()
	f.StringVar(&b.file, "file", "", "NDJSON file of items (required)")
	f.StringVar(&b.collections, "collections", "", "JSON array of the collections the items belong to (required)")
	f.StringVar(&b.databaseURL, "database-url", "", "PostgreSQL URL of a database to create the run databases from; empty: SQLite")
	f.StringVar(&b.via, "via", b.via, "http (through a server) or store (the store directly)")
	f.IntVar(&b.runs, "runs", b.runs, "number of runs")
	f.IntVar(&b.batch, "batch", b.batch, "items per bulk request")
	f.IntVar(&b.preload, "preload", 0, "items loaded untimed before the timed load")
	f.IntVar(&b.limit, "limit", 0, "items of the file to use (0: all)")
	f.BoolVar(&b.keep, "keep", false, "keep the run databases")
	f.BoolVar(&b.published, "published", false, "make the collections public and load the items published (for anonymous read benchmarks)")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of this process to the file (with --via store it covers the store path)")
	cmd.AddCommand(ingest, newBenchGet(stdout), newBenchSearch(stdout), newBenchExplain(stdout), newBenchJobs(stdout, stderr))
	return cmd
}

type runResult struct {
	items   int
	seconds float64
	peakRSS int64 // bytes; 0 when not measured
	// copyItems and copyOutbox are the server's time in COPY statements
	// into items and into the outbox (PostgreSQL through HTTP only).
	copyItems, copyOutbox float64
}

func (b *benchIngest) run(ctx context.Context, stdout, stderr io.Writer) error {
	if b.file == "" || b.collections == "" {
		return errors.New("--file and --collections are required")
	}
	if b.via != "http" && b.via != "store" {
		return fmt.Errorf("--via is http or store, not %q", b.via)
	}
	cols, err := os.ReadFile(b.collections)
	if err != nil {
		return err
	}
	var collections []json.RawMessage
	if err := json.Unmarshal(cols, &collections); err != nil {
		return fmt.Errorf("%s: %w", b.collections, err)
	}
	if b.cpuProfile != "" {
		pf, err := os.Create(b.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var results []runResult
	for i := range b.runs {
		r, err := b.once(ctx, i, collections, stderr)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Fprintf(stdout, "run %d: %d items in %.2f s = %.0f items/s", i+1, r.items, r.seconds, float64(r.items)/r.seconds)
		if r.peakRSS > 0 {
			fmt.Fprintf(stdout, ", server peak RSS %d MiB", r.peakRSS>>20)
		}
		if r.copyOutbox > 0 {
			fmt.Fprintf(stdout, "; COPY items %.2f s, COPY outbox %.2f s (%.1f%% of the run)", r.copyItems, r.copyOutbox, 100*r.copyOutbox/r.seconds)
		}
		fmt.Fprintln(stdout)
		results = append(results, r)
	}
	rates := make([]float64, len(results))
	for i, r := range results {
		rates[i] = float64(r.items) / r.seconds
	}
	slices.Sort(rates)
	fmt.Fprintf(stdout, "ingest via %s, %d runs: median %.0f items/s (min %.0f, max %.0f)\n", b.via, len(rates), median(rates), rates[0], rates[len(rates)-1])
	return nil
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// target is where one run loads into: a fresh database (PostgreSQL) or
// data folder (SQLite).
type target struct {
	databaseURL string
	dataDir     string
	cleanup     func()
}

func (b *benchIngest) newTarget(ctx context.Context, run int) (*target, error) {
	dir, err := os.MkdirTemp("", "twinstac-bench-")
	if err != nil {
		return nil, err
	}
	t := &target{dataDir: dir, cleanup: func() { os.RemoveAll(dir) }}
	if b.databaseURL == "" {
		if b.keep {
			// The SQLite database lives in the data folder.
			t.cleanup = func() { fmt.Fprintf(os.Stderr, "kept the data folder %s\n", dir) }
		}
		return t, nil
	}
	name := fmt.Sprintf("twinstac_bench_%d_%d", os.Getpid(), run)
	conn, err := pgx.Connect(ctx, b.databaseURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, err
	}
	u, err := url.Parse(b.databaseURL)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	t.databaseURL = u.String()
	t.cleanup = func() {
		os.RemoveAll(dir)
		if b.keep {
			return
		}
		c, err := pgx.Connect(context.Background(), b.databaseURL)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	return t, nil
}

func (b *benchIngest) once(ctx context.Context, run int, collections []json.RawMessage, stderr io.Writer) (runResult, error) {
	t, err := b.newTarget(ctx, run)
	if err != nil {
		return runResult{}, err
	}
	defer t.cleanup()
	var load loader
	var stop func() int64
	if b.via == "http" {
		srv, err := startServer(ctx, t, stderr)
		if err != nil {
			return runResult{}, err
		}
		stop = srv.stop
		load = &httpLoader{base: srv.url, token: srv.token, client: &http.Client{}, published: b.published}
	} else {
		sl, err := openStoreLoader(ctx, t)
		if err != nil {
			return runResult{}, err
		}
		defer sl.close()
		sl.published = b.published
		load = sl
	}
	for _, c := range collections {
		if b.published {
			c = publicCollection(c)
		}
		if err := load.createCollection(ctx, c); err != nil {
			return runResult{}, err
		}
	}
	f, err := os.Open(b.file)
	if err != nil {
		return runResult{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	batches := map[string]*bytes.Buffer{}
	counts := map[string]int{}
	flush := func(coll string) error {
		if counts[coll] == 0 {
			return nil
		}
		err := load.bulk(ctx, coll, batches[coll].Bytes())
		batches[coll].Reset()
		counts[coll] = 0
		return err
	}
	flushAll := func() error {
		for c := range batches {
			if err := flush(c); err != nil {
				return err
			}
		}
		return nil
	}
	n, timed := 0, 0
	var before [2]float64
	var start time.Time
	if b.preload == 0 {
		start = time.Now()
	}
	for sc.Scan() {
		if b.limit > 0 && n == b.limit {
			break
		}
		line := sc.Bytes()
		coll := collectionOf(line)
		if batches[coll] == nil {
			batches[coll] = &bytes.Buffer{}
		}
		batches[coll].Write(line)
		batches[coll].WriteByte('\n')
		counts[coll]++
		n++
		if n > b.preload {
			timed++
		}
		if counts[coll] == b.batch {
			if err := flush(coll); err != nil {
				return runResult{}, err
			}
		}
		if n == b.preload {
			if err := flushAll(); err != nil {
				return runResult{}, err
			}
			fmt.Fprintf(stderr, "preloaded %d items\n", n)
			if h, ok := load.(*httpLoader); ok && t.databaseURL != "" {
				before[0], before[1] = h.copySeconds(ctx)
			}
			start = time.Now()
		}
	}
	if err := sc.Err(); err != nil {
		return runResult{}, err
	}
	if err := flushAll(); err != nil {
		return runResult{}, err
	}
	r := runResult{items: timed, seconds: time.Since(start).Seconds()}
	if h, ok := load.(*httpLoader); ok && t.databaseURL != "" {
		r.copyItems, r.copyOutbox = h.copySeconds(ctx)
		r.copyItems -= before[0]
		r.copyOutbox -= before[1]
	}
	if stop != nil {
		r.peakRSS = stop()
	}
	return r, nil
}

// collectionOf reads the "collection" member of an item line.
func collectionOf(line []byte) string {
	var head struct {
		Collection string `json:"collection"`
	}
	_ = json.Unmarshal(line, &head)
	return head.Collection
}

type loader interface {
	createCollection(ctx context.Context, doc []byte) error
	bulk(ctx context.Context, collection string, ndjson []byte) error
}

type httpLoader struct {
	base      string
	token     string
	client    *http.Client
	published bool
}

func (h *httpLoader) post(ctx context.Context, path, ct string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// copySeconds reads the server's cumulative COPY time into items and into
// the outbox from its metrics.
func (h *httpLoader) copySeconds(ctx context.Context) (items, outbox float64) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/metrics", nil)
	if err != nil {
		return 0, 0
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "twinstac_postgres_query_duration_seconds_sum{") || !strings.Contains(line, `outcome="ok"`) {
			continue
		}
		fields := strings.Fields(line)
		v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
		switch {
		case strings.Contains(line, `statement="COPY items"`):
			items += v
		case strings.Contains(line, `statement="COPY outbox"`):
			outbox += v
		}
	}
	return items, outbox
}

func (h *httpLoader) createCollection(ctx context.Context, doc []byte) error {
	return h.post(ctx, "/collections", "application/json", doc)
}

func (h *httpLoader) bulk(ctx context.Context, collection string, ndjson []byte) error {
	path := "/collections/" + url.PathEscape(collection) + "/bulk_items"
	if h.published {
		path += "?state=published"
	}
	return h.post(ctx, path, "application/x-ndjson", ndjson)
}

type storeLoader struct {
	svc       *catalog.Service
	close     func()
	published bool
}

func openStoreLoader(ctx context.Context, t *target) (*storeLoader, error) {
	var st catalog.Store
	if t.databaseURL != "" {
		pg, err := postgres.Open(ctx, t.databaseURL, postgres.Options{})
		if err != nil {
			return nil, err
		}
		if err := pg.Migrate(ctx); err != nil {
			return nil, err
		}
		st = pg
	} else {
		sq, err := sqlite.Open(ctx, filepath.Join(t.dataDir, "twinstac.db"))
		if err != nil {
			return nil, err
		}
		if err := sq.Migrate(ctx); err != nil {
			return nil, err
		}
		st = sq
	}
	blobs, err := blob.NewDir(filepath.Join(t.dataDir, "blobs"))
	if err != nil {
		return nil, err
	}
	return &storeLoader{svc: &catalog.Service{Store: st, Blobs: blobs}, close: func() { st.Close() }}, nil
}

func (s *storeLoader) createCollection(ctx context.Context, doc []byte) error {
	_, err := s.svc.CreateCollection(ctx, doc, "bench")
	return err
}

func (s *storeLoader) bulk(ctx context.Context, collection string, ndjson []byte) error {
	lines := bytes.Split(bytes.TrimSpace(ndjson), []byte("\n"))
	i := 0
	_, err := s.svc.BulkLoad(ctx, collection, catalog.BulkInsert, func() (*catalog.Item, error) {
		if i == len(lines) {
			return nil, io.EOF
		}
		i++
		state := catalog.StateDraft
		if s.published {
			state = catalog.StatePublished
		}
		return s.svc.PrepareBulkItem(collection, lines[i-1], state, catalog.CreateOptions{})
	})
	return err
}

// childServer is a twinstac serve child process.
type childServer struct {
	url   string
	token string // the node-admin token the server was started with
	stop  func() int64
}

// startServer runs this binary's serve command on a free port and waits
// until it prints its address.
func startServer(ctx context.Context, t *target, stderr io.Writer) (*childServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(secret)
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.dataDir, "--log-level", "warn"}
	if t.databaseURL != "" {
		args = append(args, "--database-url", t.databaseURL)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	// The token goes in the environment, not the command line that other
	// users of the machine can read.
	cmd.Env = append(os.Environ(), "TWINSTAC_ADMIN_TOKEN="+token)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("the server did not start: %w", err)
	}
	fields := strings.Fields(line)
	u := fields[len(fields)-1]
	pid := cmd.Process.Pid
	return &childServer{url: u, token: token, stop: func() int64 {
		rss := peakRSS(pid)
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		return rss
	}}, nil
}

// peakRSS reads a process's peak resident set size (VmHWM) on Linux.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// publicCollection sets dt:visibility public on a collection document.
func publicCollection(doc []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(doc, &m) != nil {
		return doc
	}
	m["dt:visibility"] = json.RawMessage(`"public"`)
	out, err := json.Marshal(m)
	if err != nil {
		return doc
	}
	return out
}
