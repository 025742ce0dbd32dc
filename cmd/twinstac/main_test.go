package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/internal/apitest"
)

// TestServeStartsWithNoSetup runs `twinstac serve` on a free port with
// only a data folder, and checks it answers and stops cleanly.
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
