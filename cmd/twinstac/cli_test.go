package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/server/servertest"
	"github.com/twinstac/twinstac/internal/testdb"
)

// cliRun runs a twinstac command line and returns its output, error
// output and exit status.
func cliRun(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errs bytes.Buffer
	root := newRoot(&out, &errs)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	if err := root.ExecuteContext(t.Context()); err != nil {
		fmt.Fprintln(&errs, "twinstac:", err)
		code = exitCode(err)
	}
	return out.String(), errs.String(), code
}

// cliOK runs a command that must succeed.
func cliOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := cliRun(t, "", args...)
	if code != 0 {
		t.Fatalf("twinstac %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// TestCLICatalog: login stores the connection (readable by its owner
// only); collections, items and search work on it; failures print one
// line and exit with their own status.
func TestCLICatalog(t *testing.T) {
	srv := servertest.Start(t, nil)
	cfg := filepath.Join(t.TempDir(), "config.json")
	t.Setenv("TWINSTAC_CONFIG", cfg)
	t.Setenv("TWINSTAC_URL", "")
	t.Setenv("TWINSTAC_TOKEN", "")

	if _, _, code := cliRun(t, "", "whoami"); code != exitUsage {
		t.Fatalf("whoami before login: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := cliRun(t, "", "login", "--url", srv.URL, "--token", "wrong-token"); code != exitAuth {
		t.Fatalf("login with a wrong token: exit %d, want %d", code, exitAuth)
	}
	if _, err := os.Stat(cfg); err == nil {
		t.Fatal("a refused login was stored")
	}
	out := cliOK(t, "login", "--url", srv.URL, "--token", servertest.AdminToken)
	if !strings.Contains(out, "(admin)") {
		t.Fatalf("login: %s", out)
	}
	if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the stored login: %v, %v", fi, err)
	}
	var who map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, "whoami")), &who); err != nil || who["admin"] != true {
		t.Fatalf("whoami -o json (the default off a terminal): %v, %v", who, err)
	}
	// The environment overrides the stored token.
	t.Setenv("TWINSTAC_TOKEN", "wrong-token")
	if _, _, code := cliRun(t, "", "whoami"); code != exitAuth {
		t.Fatalf("whoami with TWINSTAC_TOKEN wrong: exit %d", code)
	}
	t.Setenv("TWINSTAC_TOKEN", "")

	dir := t.TempDir()
	coll := filepath.Join(dir, "coll.yaml")
	if err := os.WriteFile(coll, []byte(`type: Collection
stac_version: 1.1.0
id: sensors
title: Sensors
description: Sensor data of the plant
license: CC-BY-4.0
extent:
  spatial: {bbox: [[-180, -90, 180, 90]]}
  temporal: {interval: [[null, null]]}
links: []
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cliOK(t, "collections", "create", coll)
	if out := cliOK(t, "collections", "list", "-o", "table"); !strings.Contains(out, "sensors") || !strings.Contains(out, "Sensors") {
		t.Fatalf("collections list -o table:\n%s", out)
	}
	// Signing in elsewhere without a token sends no stored token.
	if _, _, code := cliRun(t, "", "login", "--url", srv.URL); code != 0 {
		t.Fatalf("an anonymous login: exit %d", code)
	}
	cliOK(t, "login", "--url", srv.URL, "--token", servertest.AdminToken)
	if out := cliOK(t, "collections", "list", "-o", "table"); !strings.Contains(out, "sensors") {
		t.Fatalf("collections list -o table:\n%s", out)
	}
	for i := range 12 {
		doc := fmt.Sprintf(`{"type":"Feature","stac_version":"1.1.0","id":"s%02d","geometry":{"type":"Point","coordinates":[%d,45]},
			"links":[],"assets":{},"properties":{"datetime":"2026-01-01T00:%02d:00Z","level":%d}}`, i, i, i, i)
		if _, errs, code := cliRun(t, doc, "items", "create", "sensors", "-"); code != 0 {
			t.Fatalf("items create: %d %s", code, errs)
		}
	}
	cliOK(t, "items", "publish", "sensors", "s03", "--reason", "checked")
	if out := cliOK(t, "items", "get", "sensors", "s03", "-o", "table"); !strings.Contains(out, "published") || !strings.Contains(out, "2026-01-01T00:03:00Z") {
		t.Fatalf("items get -o table:\n%s", out)
	}
	var it map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, "items", "get", "sensors", "s03")), &it); err != nil || it["properties"].(map[string]any)["dt:state"] != "published" {
		t.Fatalf("items get after publish: %v, %v", it, err)
	}
	lines := strings.Split(strings.TrimSpace(cliOK(t, "items", "list", "sensors", "--limit", "5", "--all", "-o", "ndjson")), "\n")
	if len(lines) != 12 {
		t.Fatalf("items list --all: %d lines", len(lines))
	}
	out = cliOK(t, "search", "--collections", "sensors", "--filter", "level >= 8", "--sortby", "-level", "--limit", "2", "--all", "-o", "ndjson")
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var x struct{ ID string }
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("search output %q: %v", l, err)
		}
		ids = append(ids, x.ID)
	}
	if strings.Join(ids, ",") != "s11,s10,s09,s08" {
		t.Fatalf("search by filter, sorted: %v", ids)
	}
	if out := cliOK(t, "search", "--bbox", "2.5,40,4.5,50", "-o", "yaml"); !strings.Contains(out, "id: s03") || !strings.Contains(out, "id: s04") || strings.Contains(out, "id: s05") {
		t.Fatalf("search --bbox -o yaml:\n%s", out)
	}

	// Failures: one line, their own exit status.
	_, errs, code := cliRun(t, "", "items", "get", "sensors", "nope")
	if code != exitNotFound || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "404") {
		t.Fatalf("a missing item: exit %d, %q", code, errs)
	}
	if _, errs, code := cliRun(t, "", "search", "--filter", "level >>> 3"); code != exitUsage || !strings.Contains(errs, "400") {
		t.Fatalf("a malformed filter: exit %d, %q", code, errs)
	}
	if _, _, code := cliRun(t, "", "search", "--bbox", "1,2,3"); code != exitUsage {
		t.Fatalf("a bbox of three numbers: exit %d", code)
	}
	for _, line := range [][]string{{"jobs", "foo"}, {"items", "lsit", "sensors"}, {"bench", "serch"}} {
		if _, errs, code := cliRun(t, "", line...); code != exitUsage || !strings.Contains(errs, "unknown command") {
			t.Fatalf("twinstac %s: exit %d, %s; want a usage error", strings.Join(line, " "), code, errs)
		}
	}
	if out, _, code := cliRun(t, "", "jobs"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Fatalf("twinstac jobs: exit %d, %s; want its help", code, out)
	}
	if _, _, code := cliRun(t, "", "itmes", "list", "sensors"); code != exitUsage {
		t.Fatalf("a misspelt command: exit %d", code)
	}
	if _, _, code := cliRun(t, "", "items", "get", "sensors"); code != exitUsage {
		t.Fatalf("a missing argument: exit %d", code)
	}
	cliOK(t, "items", "delete", "sensors", "s00")
	cliOK(t, "collections", "delete", "sensors")
	if _, _, code := cliRun(t, "", "collections", "get", "sensors"); code != exitNotFound {
		t.Fatalf("a deleted collection: exit %d", code)
	}
}

// TestCLIRun: a twin is described, its configuration validated, run with
// its log followed, and its job listed and shown.
func TestCLIRun(t *testing.T) {
	srv := servertest.Start(t, nil)
	servertest.PublishTwin(t, srv.URL, "twins", "water-tank", "../../examples/water-tank")
	t.Setenv("TWINSTAC_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	t.Setenv("TWINSTAC_URL", srv.URL)
	t.Setenv("TWINSTAC_TOKEN", servertest.AdminToken)

	if out := cliOK(t, "processes", "list", "-o", "table"); !strings.Contains(out, "twins:water-tank") {
		t.Fatalf("processes list:\n%s", out)
	}
	if out := cliOK(t, "processes", "describe", "twins:water-tank", "-o", "table"); !strings.Contains(out, "inflow") || !strings.Contains(out, "steps") {
		t.Fatalf("processes describe:\n%s", out)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("inflow: 0.5\noutflow: 0.2\nsteps: 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cliOK(t, "validate", "twins:water-tank", cfg, "-o", "table"); strings.TrimSpace(out) != "valid" {
		t.Fatalf("validate: %q", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"inputs": {"inflow": -1, "steps": "many"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := cliRun(t, "", "validate", "twins:water-tank", bad, "-o", "table")
	if code != exitUsage || !strings.Contains(out, "/inflow") || !strings.Contains(out, "/steps") || !strings.Contains(out, "/outflow") {
		t.Fatalf("validate of a bad configuration: exit %d\n%s", code, out)
	}

	out, errs, code := cliRun(t, "", "run", "twins:water-tank", "-f", cfg, "--input", "steps=20", "--follow")
	if code != 0 || !strings.Contains(out, "[execute stdout] after 20 steps") || !strings.Contains(errs, "successful") {
		t.Fatalf("run --follow: exit %d\n%s%s", code, out, errs)
	}
	job := strings.Fields(strings.TrimPrefix(errs, "job "))[0]
	var st map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, "jobs", "status", job)), &st); err != nil || st["status"] != "successful" {
		t.Fatalf("jobs status: %v, %v", st, err)
	}
	if out := cliOK(t, "jobs", "list", "-o", "table"); !strings.Contains(out, job) || !strings.Contains(out, "successful") {
		t.Fatalf("jobs list:\n%s", out)
	}
	if out := cliOK(t, "jobs", "results", job, "-o", "table"); !strings.Contains(out, "/collections/twins-water-tank-results/items/"+job) {
		t.Fatalf("jobs results:\n%s", out)
	}
	if out := cliOK(t, "jobs", "logs", job); !strings.Contains(out, "after 20 steps") {
		t.Fatalf("jobs logs:\n%s", out)
	}
	// --wait shows the job as it ended; a failed run exits 1.
	out = cliOK(t, "run", "twins:water-tank", "--input", "inflow=0.1", "--input", "outflow=0.3", "--wait")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st["status"] != "successful" {
		t.Fatalf("run --wait: %s", out)
	}
	if _, _, code := cliRun(t, "", "run", "twins:water-tank", "--input", "inflow=oops"); code != exitUsage {
		t.Fatalf("run with a bad input: exit %d", code)
	}
	if _, _, code := cliRun(t, "", "run", "twins:nope"); code != exitNotFound {
		t.Fatalf("run of a missing process: exit %d", code)
	}

	// A batch of 20 jobs: the progress ends at 20/20 and the summary
	// counts them all successful.
	sweep := filepath.Join(t.TempDir(), "sweep.yaml")
	if err := os.WriteFile(sweep, []byte(`process: twins:water-tank
inputs: {outflow: 0.2}
sweep:
  inflow: [0.1, 0.2, 0.3, 0.4]
  steps: [1, 2, 3, 4, 5]
mode: product
maxParallel: 4
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = cliRun(t, "", "batch", "submit", sweep, "--poll", "50ms", "-o", "table")
	if code != 0 {
		t.Fatalf("batch submit: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "20 jobs of twins:water-tank") || !strings.Contains(errs, "20/20") {
		t.Fatalf("batch progress:\n%s", errs)
	}
	summary := strings.Fields(out)
	i := slices.Index(summary, "QUEUED")
	if i < 0 || len(summary) < i+7 || strings.Join(summary[i+1:i+7], " ") != "20 20 0 0 0 0" || !slices.Contains(summary, "successful") {
		t.Fatalf("batch summary:\n%s", out)
	}
	batch := summary[slices.Index(summary, "BATCH")+1]
	var b map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, "batch", "status", batch)), &b); err != nil || b["total"] != 20.0 {
		t.Fatalf("batch status: %v, %v", b, err)
	}
}

// writeFiles writes files (path → content) under root.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.Contains(p, "lifecycle/") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// summaryRow returns the numbers of a collection's row of an import
// summary table.
func summaryRow(t *testing.T, out, coll string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == coll {
			return strings.Join(f[1:], " ")
		}
	}
	t.Fatalf("no row of %s in:\n%s", coll, out)
	return ""
}

// TestCLILibrary: a DTaaS-shaped library is imported (its twin then
// runs), imported again with nothing to do, changed, exported back as it
// was; assets go up and down.
func TestCLILibrary(t *testing.T) {
	srv := servertest.Start(t, nil)
	t.Setenv("TWINSTAC_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	t.Setenv("TWINSTAC_URL", srv.URL)
	t.Setenv("TWINSTAC_TOKEN", servertest.AdminToken)

	lib := t.TempDir()
	files := map[string]string{
		"models/tank-model/README.md":   "# Tank model\n\nA lumped model of a draining tank.\n\n## Use\n\nSee the twin.\n",
		"models/tank-model/model.py":    "def level(h, inflow, outflow):\n    return h + inflow - outflow * h ** 0.5\n",
		"models/tank-model/config.yaml": "outflow: 0.2\n",
		"data/readings.csv":             "t,level\n0,1.0\n1,1.3\n",
		"tools/plot":                    "#!/bin/sh\necho plotting\n",
		"common/functions/convert.py":   "print('convert')\n",
		"digital_twins/.cache/x":        "ignored",
	}
	for _, name := range []string{"parameters.json", "description.md", "lifecycle/create", "lifecycle/execute", "lifecycle/terminate", "lifecycle/clean"} {
		b, err := os.ReadFile(filepath.Join("../../examples/water-tank", filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		files["digital_twins/water-tank/"+name] = string(b)
	}
	writeFiles(t, lib, files)

	out, errs, code := cliRun(t, "", "import", lib, "--publish", "-o", "table")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	for coll, want := range map[string]string{"digital-twins": "1 0 0 0 6", "models": "1 0 0 0 3", "data": "1 0 0 0 1", "tools": "1 0 0 0 1", "common-functions": "1 0 0 0 1"} {
		if got := summaryRow(t, out, coll); !strings.HasPrefix(got, want+" ") {
			t.Fatalf("import summary of %s: %q, want %q …\n%s", coll, got, want, out)
		}
	}
	if !strings.Contains(errs, "5/5") || !strings.Contains(errs, "imported 5 items") {
		t.Fatalf("import progress:\n%s", errs)
	}
	var model map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, "items", "get", "models", "tank-model")), &model); err != nil {
		t.Fatal(err)
	}
	props, assets := model["properties"].(map[string]any), model["assets"].(map[string]any)
	if props["title"] != "Tank model" || props["description"] != "A lumped model of a draining tank." || props["dt:kind"] != "model" || props["dt:state"] != "published" {
		t.Fatalf("the model's properties: %v", props)
	}
	for key, role := range map[string]string{"README.md": "description", "model.py": "data", "config.yaml": "config"} {
		a, _ := assets[key].(map[string]any)
		if a == nil || fmt.Sprint(a["roles"]) != "["+role+"]" || a["file:checksum"] == nil {
			t.Fatalf("asset %s of the model: %v", key, a)
		}
	}
	var tool map[string]any
	_ = json.Unmarshal([]byte(cliOK(t, "items", "get", "tools", "plot")), &tool)
	if a, _ := tool["assets"].(map[string]any)["plot"].(map[string]any); a == nil || fmt.Sprint(a["roles"]) != "[lifecycle]" {
		t.Fatalf("a file without an extension: %v", tool["assets"])
	}
	// The imported twin runs.
	out, errs, code = cliRun(t, "", "run", "digital-twins:water-tank", "--input", "inflow=0.5", "--input", "outflow=0.2", "--input", "steps=5", "--follow")
	if code != 0 || !strings.Contains(out, "after 5 steps") {
		t.Fatalf("running the imported twin: exit %d\n%s%s", code, out, errs)
	}

	// Again: nothing to do.
	out = cliOK(t, "import", lib, "--publish", "-o", "table")
	for _, coll := range []string{"digital-twins", "models", "data", "tools", "common-functions"} {
		if got := summaryRow(t, out, coll); got != "0 0 1 0 0 0" {
			t.Fatalf("import again, %s: %q\n%s", coll, got, out)
		}
	}
	// A published item that changed is left alone and said so.
	writeFiles(t, lib, map[string]string{"data/readings.csv": "t,level\n0,1.0\n1,1.3\n2,1.5\n"})
	out, errs, _ = cliRun(t, "", "import", lib, "-o", "table")
	if got := summaryRow(t, out, "data"); got != "0 0 0 1 0 0" || !strings.Contains(errs, "data/readings.csv is published") {
		t.Fatalf("a published item changed: %q\n%s%s", got, out, errs)
	}
	// A draft is brought up to date: the changed file only, the removed
	// one gone.
	lib2 := t.TempDir()
	writeFiles(t, lib2, map[string]string{"models/m2/a.txt": "a", "models/m2/b.txt": "b", "models/m2/c.txt": "c"})
	cliOK(t, "import", lib2, "--collection", "models=drafts")
	writeFiles(t, lib2, map[string]string{"models/m2/b.txt": "B!"})
	if err := os.Remove(filepath.Join(lib2, "models/m2/c.txt")); err != nil {
		t.Fatal(err)
	}
	out = cliOK(t, "import", lib2, "--collection", "models=drafts", "-o", "table")
	if got := summaryRow(t, out, "drafts"); got != "0 1 0 0 1 2" {
		t.Fatalf("a draft changed: %q\n%s", got, out)
	}
	var m2 map[string]any
	_ = json.Unmarshal([]byte(cliOK(t, "items", "get", "drafts", "m2")), &m2)
	if as := m2["assets"].(map[string]any); len(as) != 2 || as["c.txt"] != nil {
		t.Fatalf("the draft's assets: %v", as)
	}

	// Export writes the library back as it was.
	back := t.TempDir()
	for _, coll := range []string{"digital-twins", "models", "tools", "common-functions"} {
		cliOK(t, "export", coll, back)
	}
	for p, content := range files {
		if strings.Contains(p, ".cache") || strings.HasPrefix(p, "data/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(back, filepath.FromSlash(p)))
		if err != nil || string(b) != content {
			t.Fatalf("exported %s: %q, %v", p, b, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(back, "digital_twins/water-tank/lifecycle/execute")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("an exported lifecycle script is not executable: %v, %v", fi, err)
	}

	// Assets up and down, 3 MB.
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	src := filepath.Join(t.TempDir(), "mesh.bin")
	if err := os.WriteFile(src, big, 0o600); err != nil {
		t.Fatal(err)
	}
	cliOK(t, "assets", "upload", "drafts", "m2", "mesh", src)
	dst := filepath.Join(t.TempDir(), "got.bin")
	if _, errs, code := cliRun(t, "", "assets", "download", "drafts", "m2", "mesh", "--to", dst); code != 0 || !strings.Contains(errs, "downloaded 3145728 bytes") {
		t.Fatalf("assets download: exit %d\n%s", code, errs)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("the downloaded file differs (%d bytes, %v)", len(got), err)
	}
	if _, _, code := cliRun(t, "", "assets", "upload", "models", "tank-model", "mesh", src); code != exitUsage {
		t.Fatalf("an upload to a published item: exit %d", code)
	}
}

// TestEveryCommandHasHelp: every command (but cobra's own) says what it
// does and shows an example in its --help.
func TestEveryCommandHasHelp(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if sub.Short == "" || sub.Example == "" {
				t.Errorf("%s: Short %q, Example %q", sub.CommandPath(), sub.Short, sub.Example)
			}
			walk(sub)
		}
	}
	walk(root)
	out, _, code := cliRun(t, "", "run", "--help")
	if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--follow") {
		t.Fatalf("run --help: exit %d\n%s", code, out)
	}
}

// TestCLIDismissAndSave: a running job is saved and dismissed, a batch
// dismissed, an item deprecated and archived, through the CLI.
func TestCLIDismissAndSave(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Server) { c.Workers = 3 })
	servertest.PublishTwin(t, srv.URL, "twins", "heartbeat", "../../examples/heartbeat")
	t.Setenv("TWINSTAC_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	t.Setenv("TWINSTAC_URL", srv.URL)
	t.Setenv("TWINSTAC_TOKEN", servertest.AdminToken)

	var st map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, "run", "twins:heartbeat", "--input", "interval=0.05")), &st); err != nil {
		t.Fatal(err)
	}
	job, _ := st["jobID"].(string)
	status := func(id string) string {
		var s map[string]any
		_ = json.Unmarshal([]byte(cliOK(t, "jobs", "status", id)), &s)
		return fmt.Sprint(s["status"])
	}
	testdb.WaitFor(t, 30*time.Second, "the job to run", func() bool { return status(job) == "running" })
	var save map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, "jobs", "save", job)), &save); err != nil || save["snapshot"] == nil {
		t.Fatalf("jobs save: %v, %v", save, err)
	}
	cliOK(t, "jobs", "dismiss", job)
	testdb.WaitFor(t, 30*time.Second, "the job to end dismissed", func() bool { return status(job) == "dismissed" })
	if out := cliOK(t, "jobs", "logs", job); !strings.Contains(out, "beat 1") {
		t.Fatalf("the dismissed job's log:\n%s", out)
	}
	// run --wait of a job that ends dismissed exits 1.
	type result struct {
		errs string
		code int
	}
	waited := make(chan result, 1)
	go func() {
		var out, errs bytes.Buffer
		root := newRoot(&out, &errs)
		root.SetArgs([]string{"run", "twins:heartbeat", "--input", "interval=0.05", "--wait"})
		r := result{}
		if err := root.ExecuteContext(t.Context()); err != nil {
			r = result{err.Error(), exitCode(err)}
		}
		waited <- r
	}()
	testdb.WaitFor(t, 30*time.Second, "a second running job", func() bool {
		var list []map[string]any
		_ = json.Unmarshal([]byte(cliOK(t, "jobs", "list", "--status", "running")), &list)
		for _, j := range list {
			if id := j["jobID"].(string); id != job {
				cliOK(t, "jobs", "dismiss", id)
				return true
			}
		}
		return false
	})
	if r := <-waited; r.code != exitFailure || !strings.Contains(r.errs, "dismissed") {
		t.Fatalf("run --wait of a dismissed job: exit %d, %s", r.code, r.errs)
	}

	sweep := filepath.Join(t.TempDir(), "sweep.json")
	if err := os.WriteFile(sweep, []byte(`{"process": "twins:heartbeat", "sweep": {"interval": [0.05, 0.06, 0.07, 0.08]}, "maxParallel": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, "batch", "submit", sweep, "--no-wait")), &b); err != nil {
		t.Fatal(err)
	}
	id, _ := b["id"].(string)
	cliOK(t, "batch", "dismiss", id)
	testdb.WaitFor(t, 30*time.Second, "the batch to end", func() bool {
		_ = json.Unmarshal([]byte(cliOK(t, "batch", "status", id)), &b)
		c, _ := b["counts"].(map[string]any)
		return c["dismissed"] == 4.0
	})

	cliOK(t, "items", "deprecate", "twins", "heartbeat", "--reason", "replaced")
	cliOK(t, "items", "archive", "twins", "heartbeat")
	var it map[string]any
	_ = json.Unmarshal([]byte(cliOK(t, "items", "get", "twins", "heartbeat")), &it)
	if p := it["properties"].(map[string]any); p["dt:state"] != "archived" {
		t.Fatalf("after deprecate and archive: %v", p["dt:state"])
	}
}

// A command stopped by Ctrl-C exits 130 and says it was interrupted,
// not that the server could not be reached.
func TestCLIInterrupted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		// A server that takes the request and never answers.
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "collections", "list")
	cmd.Env = append(os.Environ(), asBinaryEnv+"=1", "TWINSTAC_URL=http://"+ln.Addr().String(), "TWINSTAC_TOKEN=tst_x",
		"TWINSTAC_CONFIG="+filepath.Join(t.TempDir(), "config.json"))
	var errs bytes.Buffer
	cmd.Stderr = &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the command never called the server: %s", errs.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || !strings.Contains(errs.String(), "interrupted") {
		t.Fatalf("interrupted command: %v, %s; want exit %d", err, errs.String(), exitInterrupted)
	}
}

// Files without an extension are lifecycle scripts only when they can be
// run; LICENSE and the like are metadata. Two folders mapped to one
// collection may not make two items of one id.
func TestScanLibraryRolesAndClashes(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"digital_twins/tank/LICENSE":          "license",
		"digital_twins/tank/Makefile":         "all:",
		"digital_twins/tank/run":              "run",
		"digital_twins/tank/plot":             "#!/bin/sh\necho plot\n",
		"digital_twins/tank/lifecycle/create": "create",
		"digital_twins/tank/model.fmu":        "fmu",
		"models/tank/model.fmu":               "fmu",
	})
	// run is executable; the script under lifecycle/ is not.
	for rel, mode := range map[string]os.FileMode{"digital_twins/tank/run": 0o755, "digital_twins/tank/lifecycle/create": 0o644} {
		if err := os.Chmod(filepath.Join(root, filepath.FromSlash(rel)), mode); err != nil {
			t.Fatal(err)
		}
	}
	items, err := scanLibrary(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, it := range items {
		for _, f := range it.files {
			roles[it.collection+":"+f.rel] = f.role + "@" + f.key
		}
	}
	want := map[string]string{
		"digital-twins:LICENSE":          "metadata@LICENSE",
		"digital-twins:Makefile":         "data@Makefile",
		"digital-twins:run":              "lifecycle@run",
		"digital-twins:plot":             "lifecycle@plot",
		"digital-twins:lifecycle/create": "lifecycle@create",
		"digital-twins:model.fmu":        "data@model.fmu",
		"models:model.fmu":               "data@model.fmu",
	}
	if !maps.Equal(roles, want) {
		t.Fatalf("roles and keys %v, want %v", roles, want)
	}
	_, err = scanLibrary(root, map[string]string{"digital_twins": "all", "models": "all"})
	if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), `item "tank" of collection "all"`) {
		t.Fatalf("two folders into one collection with one item id: %v", err)
	}
}

// bench search --as compares callers query by query: a line per caller,
// each with its own pages, and its p50 against the first caller's.
func TestBenchSearchCompareCallers(t *testing.T) {
	srv := servertest.Start(t, nil)
	t.Setenv("TWINSTAC_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	t.Setenv("TWINSTAC_URL", srv.URL)
	t.Setenv("TWINSTAC_TOKEN", servertest.AdminToken)
	dir := t.TempDir()
	coll := filepath.Join(dir, "coll.json")
	if err := os.WriteFile(coll, []byte(`{"type":"Collection","stac_version":"1.1.0","id":"bench","description":"d","license":"CC-BY-4.0",
		"dt:visibility":"public","extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}},"links":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cliOK(t, "collections", "create", coll)
	for i := range 4 {
		doc := fmt.Sprintf(`{"type":"Feature","stac_version":"1.1.0","id":"b%d","geometry":null,"links":[],"assets":{},
			"properties":{"datetime":"2026-01-01T00:0%d:00Z"}}`, i, i)
		if _, errs, code := cliRun(t, doc, "items", "create", "bench", "-"); code != 0 {
			t.Fatalf("items create: %d %s", code, errs)
		}
		if i < 3 { // the anonymous caller sees three, the administrator four
			cliOK(t, "items", "publish", "bench", fmt.Sprintf("b%d", i))
		}
	}
	queries := filepath.Join(dir, "queries.json")
	if err := os.WriteFile(queries, []byte(`{"queries":[{"name":"q1","title":"t","body":{"collections":["bench"],"limit":1}}],
		"paging":{"queries":["q1"],"page":3}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := cliOK(t, "bench", "search", "--url", srv.URL, "--queries", queries, "--clients", "1", "--runs", "2",
		"--requests", "3", "--warmup", "1", "--as", "admin="+servertest.AdminToken, "--as", "anon=")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "p50/ref") {
		t.Fatalf("bench search --as:\n%s", out)
	}
	for i, want := range [][2]string{{"q1", "admin"}, {"q1", "anon"}, {"q1-page3", "admin"}, {"q1-page3", "anon"}} {
		f := strings.Fields(lines[i+1])
		if f[0] != want[0] || f[1] != want[1] || f[3] != "1" {
			t.Fatalf("line %d: %q, want %s as %s returning 1\n%s", i+1, lines[i+1], want[0], want[1], out)
		}
		if want[1] == "admin" && f[len(f)-2] != "1.00" {
			t.Fatalf("the reference caller's ratio: %q", lines[i+1])
		}
	}
	if _, errs, code := cliRun(t, "", "bench", "search", "--url", srv.URL, "--queries", queries, "--as", "nobody"); code != exitUsage {
		t.Fatalf("--as without a token: exit %d, %s", code, errs)
	}
}
