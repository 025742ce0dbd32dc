package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/workers"
)

// asBinaryEnv makes the test binary act as the twinstac binary, for
// commands that start it as a child process (bench ingest --via http
// runs `twinstac serve`).
const asBinaryEnv = "TWINSTAC_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	// The in-process worker starts this test binary as the launcher of
	// phase scripts, as it starts twinstac.
	workers.LaunchPhase()
	if os.Getenv(asBinaryEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// bench ingest --via http starts a server and loads through its API as
// a node administrator.
func TestBenchIngestThroughHTTP(t *testing.T) {
	t.Setenv(asBinaryEnv, "1")
	dir := t.TempDir()
	colls := `[{"type":"Collection","stac_version":"1.0.0","id":"c1","description":"bench test","license":"CC-BY-4.0",
		"extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[["2024-01-01T00:00:00Z",null]]}},"links":[]}]`
	var items strings.Builder
	for i := range 50 {
		fmt.Fprintf(&items, `{"type":"Feature","stac_version":"1.0.0","id":"i%02d","collection":"c1","geometry":{"type":"Point","coordinates":[11,48]},"bbox":[11,48,11,48],"properties":{"datetime":"2024-01-01T00:%02d:00Z"},"assets":{},"links":[]}`+"\n", i, i)
	}
	cf, itf := filepath.Join(dir, "collections.json"), filepath.Join(dir, "items.ndjson")
	if err := os.WriteFile(cf, []byte(colls), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(itf, []byte(items.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	root := newRoot(&out, io.Discard)
	root.SetArgs([]string{"bench", "ingest", "--file", itf, "--collections", cf, "--via", "http", "--runs", "1"})
	if err := root.Execute(); err != nil {
		t.Fatalf("bench ingest --via http: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "run 1: 50 items") {
		t.Fatalf("the output does not report 50 items loaded:\n%s", out.String())
	}
}

// bench jobs runs end to end on the embedded defaults (SQLite, an
// in-process Redis): every job of the batch succeeds, and the latency
// jobs run through the local executor.
func TestBenchJobsEmbedded(t *testing.T) {
	var out, errs bytes.Buffer
	root := newRoot(&out, &errs)
	root.SetArgs([]string{"bench", "jobs", "--jobs", "300", "--concurrency", "50", "--runs", "1", "--latency", "5"})
	if err := root.Execute(); err != nil {
		t.Fatalf("bench jobs: %v\n%s%s", err, out.String(), errs.String())
	}
	for _, want := range []string{"throughput, 1 runs of 300 jobs, concurrency 50: median", "latency, 5 single jobs: submit → running p50"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("the output lacks %q:\n%s", want, out.String())
		}
	}
}
