package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/twinstac/twinstac/internal/apitest"
	"github.com/twinstac/twinstac/internal/testdb"
)

// runTwin publishes a one-script twin through the API and runs it as a
// job to its end: the embedded queue and worker of a server started with
// no setup.
func runTwin(t *testing.T, c *http.Client, base, secret string) {
	t.Helper()
	do := func(method, path, ct, body string, want int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		if body != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d\n%s", method, path, resp.StatusCode, want, b)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	const js = "application/json"
	do("POST", "/collections", js, `{"type":"Collection","stac_version":"1.1.0","id":"twins","description":"d","license":"other",
		"extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}},"links":[]}`, 201)
	do("POST", "/collections/twins/items", js, `{"type":"Feature","stac_version":"1.1.0","id":"echo","geometry":null,"links":[],"assets":{},
		"properties":{"datetime":"2026-01-01T00:00:00Z","dt:kind":"digital-twin"}}`, 201)
	do("PUT", "/collections/twins/items/echo/assets/execute", "text/x-shellscript", "#!/bin/sh\necho hello > \"$TWINSTAC_OUTPUTS/hello.txt\"\n", 200)
	do("PATCH", "/collections/twins/items/echo", "application/merge-patch+json", `{"assets":{"execute":{"roles":["lifecycle"]}}}`, 200)
	do("POST", "/collections/twins/items/echo/lifecycle", js, `{"state":"published"}`, 200)
	job := do("POST", "/processes/twins:echo/execution", js, `{}`, 201)["jobID"].(string)
	testdb.WaitFor(t, 30*time.Second, "the job did not succeed", func() bool {
		st := do("GET", "/jobs/"+job, "", "", 200)
		if st["status"] != "accepted" && st["status"] != "running" && st["status"] != "successful" {
			t.Fatalf("job: %v", st)
		}
		return st["status"] == "successful"
	})
}

// TestServeStartsWithNoSetup runs `twinstac serve` on a free port with
// only a data folder, and checks it answers, runs a job and stops
// cleanly.
func TestServeStartsWithNoSetup(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRoot(pw, &stderr)
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--log-format", "json"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()

	lines := make(chan string, 2)
	go func() {
		rd := bufio.NewReader(pr)
		for range 2 {
			line, _ := rd.ReadString('\n')
			lines <- line
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	var line string
	select {
	case line = <-lines:
	case err := <-done:
		t.Fatalf("serve ended early: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve printed no address within 30 s")
	}
	const prefix = "twinstac listening on "
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("first line %q does not give the address", line)
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, prefix))
	c := apitest.Client(t, base)
	// The first start mints an admin token and prints it once.
	adminLine := <-lines
	const adminPrefix = "node admin token (shown only now; keep it safe): "
	if !strings.HasPrefix(adminLine, adminPrefix) {
		t.Fatalf("second line %q does not give the admin token", adminLine)
	}
	secret := strings.TrimSpace(strings.TrimPrefix(adminLine, adminPrefix))
	req, _ := http.NewRequest("GET", base+"/auth/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	who, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(who.Body)
	who.Body.Close()
	if who.StatusCode != 200 || !bytes.Contains(body, []byte(`"admin":true`)) {
		t.Fatalf("the printed admin token does not work: %d %s", who.StatusCode, body)
	}

	runTwin(t, c, base, secret)

	for _, path := range []string{"/healthz", "/readyz", "/"} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"go_sql_open_connections{db_name=\"sqlite_write\"}", "twinstac_http_requests_total", "process_resident_memory_bytes"} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "twinstac.db")); err != nil {
		t.Fatalf("no database in the data folder: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s")
	}
	if strings.Contains(stderr.String(), secret) {
		t.Fatal("the admin token was logged")
	}
	if !strings.Contains(stderr.String(), `"request_id"`) {
		t.Fatalf("log lines lack request ids:\n%s", stderr.String())
	}
}

func TestServeHelpListsEnvironment(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	root := newRoot(&out, &out)
	root.SetArgs([]string{"serve", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"TWINSTAC_ADDR", "TWINSTAC_DATA_DIR", "TWINSTAC_DATABASE_URL", "TWINSTAC_MAX_BODY_SIZE", "TWINSTAC_CORS_READ_ORIGINS"} {
		if !strings.Contains(out.String(), env) {
			t.Fatalf("serve --help does not mention %s:\n%s", env, out.String())
		}
	}
}

func TestMigrateCreatesTheDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out bytes.Buffer
	root := newRoot(&out, io.Discard)
	root.SetArgs([]string{"migrate", "--data-dir", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "twinstac.db")); err != nil || !strings.Contains(out.String(), "migrations applied") {
		t.Fatalf("migrate: %v, output %q", err, out.String())
	}
}

// TestWorkerRunsTheServersJobs runs a server that runs no jobs itself
// and a separate `twinstac worker` on the same database, blob folder and
// Redis: the worker runs the job the server accepted.
func TestWorkerRunsTheServersJobs(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	redisURL := "redis://" + mr.Addr() + "/0"
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pr, pw := io.Pipe()
	var serveErr, workerErr bytes.Buffer
	serve := newRoot(pw, &serveErr)
	serve.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--workers", "0", "--redis-url", redisURL, "--admin-token", "worker-test-secret"})
	served := make(chan error, 1)
	go func() { served <- serve.ExecuteContext(ctx); pw.Close() }()
	rd := bufio.NewReader(pr)
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, serveErr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, rd) }()
	base := strings.TrimSpace(strings.TrimPrefix(line, "twinstac listening on "))

	worker := newRoot(io.Discard, &workerErr)
	worker.SetArgs([]string{"worker", "--data-dir", dir, "--redis-url", redisURL, "--concurrency", "1"})
	worked := make(chan error, 1)
	go func() { worked <- worker.ExecuteContext(ctx) }()

	runTwin(t, apitest.Client(t, base), base, "worker-test-secret")
	cancel()
	for name, ch := range map[string]chan error{"serve": served, "worker": worked} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("%s returned %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop within 30 s", name)
		}
	}
	if !strings.Contains(workerErr.String(), "worker started") {
		t.Fatalf("the worker's log: %s", workerErr.String())
	}
}

func TestWorkerNeedsRedis(t *testing.T) {
	t.Parallel()
	root := newRoot(io.Discard, io.Discard)
	root.SetArgs([]string{"worker", "--data-dir", t.TempDir()})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--redis-url is required") {
		t.Fatalf("worker without Redis: %v", err)
	}
}
