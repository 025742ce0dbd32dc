package openapi_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/workers"
)

// publishTwin publishes a twin made of scripts (phase → shell script) as
// the admin into collection coll, which it creates.
func publishTwin(t *testing.T, b *bundle, coll, id string, scripts map[string]string, props ...map[string]any) {
	t.Helper()
	b.want(b.do("POST", "/collections", collectionDoc(coll)), 201)
	doc := itemDoc(id)
	doc["properties"].(map[string]any)["dt:kind"] = "digital-twin"
	for _, p := range props {
		for k, v := range p {
			doc["properties"].(map[string]any)[k] = v
		}
	}
	b.want(b.do("POST", "/collections/"+coll+"/items", doc), 201)
	roles := map[string]any{}
	for phase, script := range scripts {
		b.want(b.do("PUT", "/collections/"+coll+"/items/"+id+"/assets/"+phase, script), 200)
		roles[phase] = map[string]any{"roles": []string{"lifecycle"}}
	}
	b.want(b.do("PATCH", "/collections/"+coll+"/items/"+id, map[string]any{"assets": roles}), 200)
	b.want(b.do("POST", "/collections/"+coll+"/items/"+id+"/lifecycle", map[string]any{"state": "published"}), 200)
}

// snapshotFiles downloads a snapshot's state archive and returns its
// files' contents by path.
func snapshotFiles(t *testing.T, b *bundle, ref string) map[string]string {
	t.Helper()
	coll, id, _ := strings.Cut(ref, "/")
	r := b.want(b.do("GET", "/collections/"+coll+"/items/"+id+"/assets/state", nil), 200)
	dir := t.TempDir()
	if _, err := workers.UnpackState(bytes.NewReader(r.body), dir); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return err
	})
	return out
}

func TestSaves(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		publishWaterTank(t, b)
		runner := &workers.Runner{Jobs: b.jobs.Store, Catalog: b.catalog, Worker: "w", Queue: b.queue, DismissPoll: 20 * time.Millisecond,
			Executor: &workers.Local{Root: t.TempDir(), PhaseTimeout: time.Minute}}

		// A job that has not started has nothing to save.
		st := b.want(b.do("POST", "/processes/twins:water-tank/execution", map[string]any{"inputs": map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 7}}), 201).json(t)
		id := st["jobID"].(string)
		b.problem(b.do("POST", "/jobs/"+id+"/save", nil), 409, "")
		if err := runner.Run(t.Context(), id, 1); err != nil {
			t.Fatal(err)
		}

		// A finished job is saved from the state it left: its save phase
		// runs in a fresh workspace, and the snapshot is published.
		r := b.want(b.do("POST", "/jobs/"+id+"/save", nil), 202)
		save := r.json(t)
		ref, _ := save["snapshot"].(string)
		if save["status"] != "accepted" || !strings.HasPrefix(ref, "twins-water-tank-snapshots/") || !strings.HasSuffix(r.Header.Get("Location"), "/collections/"+ref[:strings.Index(ref, "/")]+"/items/"+ref[strings.Index(ref, "/")+1:]) {
			t.Fatalf("save: %v (Location %q)", save, r.Header.Get("Location"))
		}
		item := b.want(b.do("GET", strings.TrimPrefix(r.Header.Get("Location"), b.base), nil), 200).json(t)
		if item["properties"].(map[string]any)["dt:state"] != "draft" {
			t.Fatalf("the snapshot before it is made: %v", item["properties"])
		}
		b.problem(b.do("POST", "/processes/twins:water-tank/execution", map[string]any{"restore": ref, "inputs": map[string]any{"inflow": 1, "outflow": 1}}), 400, "/restore")
		if len(b.queue.saves) != 1 || b.queue.saves[0] != [2]string{id, ref} {
			t.Fatalf("queued saves %v", b.queue.saves)
		}
		if err := runner.Save(t.Context(), id, ref); err != nil {
			t.Fatal(err)
		}
		item = b.want(b.do("GET", strings.TrimPrefix(r.Header.Get("Location"), b.base), nil), 200).json(t)
		props := item["properties"].(map[string]any)
		if props["dt:state"] != "published" || props["dt:kind"] != "snapshot" || props["dt:job"] != id || props["dt:saved"] == nil {
			t.Fatalf("the snapshot: %v", props)
		}
		files := snapshotFiles(t, b, ref)
		if !strings.HasPrefix(files["tank.state"], "7 ") || files["saved-at"] == "" {
			t.Fatalf("the snapshot's state: %v", files)
		}

		// A run restored from it continues where the saved one stopped.
		again := b.want(b.do("POST", "/processes/twins:water-tank/execution", map[string]any{"restore": ref, "inputs": map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 3}}), 201).json(t)
		if err := runner.Run(t.Context(), again["jobID"].(string), 1); err != nil {
			t.Fatal(err)
		}
		res := b.want(b.do("GET", "/jobs/"+again["jobID"].(string)+"/results", nil), 200).json(t)
		href := strings.TrimPrefix(res["result"].(map[string]any)["href"].(string), b.base)
		csv := string(b.want(b.do("GET", href+"/assets/level.csv", nil), 200).body)
		if lines := strings.Split(csv, "\n"); len(lines) < 2 || !strings.HasPrefix(lines[1], "8,") {
			t.Fatalf("the restored run's level.csv:\n%s", csv)
		}

		// A running job is saved by its worker, in its workspace, while it
		// runs.
		publishTwin(t, b, "loops", "counter", map[string]string{
			// The state file is replaced whole (written aside, then
			// renamed), so a save never finds it half written.
			"execute": "#!/bin/sh\nn=0\nwhile :; do n=$((n+1)); echo $n > \"$TWINSTAC_STATE/n.new\"; mv \"$TWINSTAC_STATE/n.new\" \"$TWINSTAC_STATE/n\"; echo tick $n; sleep 0.05; done\n",
			"save":    "#!/bin/sh\necho saved-while-running > \"$TWINSTAC_STATE/note\"\n",
		})
		loop := b.want(b.do("POST", "/processes/loops:counter/execution", map[string]any{}), 201).json(t)
		lid := loop["jobID"].(string)
		ran := make(chan error, 1)
		go func() { ran <- runner.Run(t.Context(), lid, 1) }()
		testdb.WaitFor(t, 30*time.Second, "the counter job to count", func() bool {
			logs := b.want(b.do("GET", "/jobs/"+lid+"/logs", nil), 200).json(t)
			for _, l := range logs["lines"].([]any) {
				if l.(map[string]any)["text"] == "tick 2" {
					return true
				}
			}
			return false
		})
		live := b.want(b.do("POST", "/jobs/"+lid+"/save", nil), 202).json(t)["snapshot"].(string)
		lc, li, _ := strings.Cut(live, "/")
		testdb.WaitFor(t, 30*time.Second, "the live snapshot to be published", func() bool {
			p := b.want(b.do("GET", "/collections/"+lc+"/items/"+li, nil), 200).json(t)["properties"].(map[string]any)
			if p["dt:save_error"] != nil {
				logs := b.want(b.do("GET", "/jobs/"+lid+"/logs?limit=1000", nil), 200)
				t.Fatalf("the live save failed: %v\nthe job's log: %s", p["dt:save_error"], logs.body)
			}
			return p["dt:state"] == "published"
		})
		if st := b.want(b.do("GET", "/jobs/"+lid, nil), 200).json(t); st["status"] != "running" {
			t.Fatalf("the job after a save: %v", st)
		}
		files = snapshotFiles(t, b, live)
		if files["note"] != "saved-while-running\n" || files["n"] == "" {
			t.Fatalf("the live snapshot's state: %v", files)
		}
		b.want(b.do("DELETE", "/jobs/"+lid, nil), 200)
		select {
		case err := <-ran:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the dismissed job did not end")
		}

		// A finished job that left no state, of a twin without a save
		// phase: the snapshot stays a draft and says why.
		b.want(b.do("POST", "/collections/loops/items", map[string]any{}), 400)
		publishTwin(t, b, "plain", "echo", map[string]string{"execute": "#!/bin/sh\necho hi\n"})
		e := b.want(b.do("POST", "/processes/plain:echo/execution", map[string]any{}), 201).json(t)["jobID"].(string)
		if err := runner.Run(t.Context(), e, 1); err != nil {
			t.Fatal(err)
		}
		empty := b.want(b.do("POST", "/jobs/"+e+"/save", nil), 202).json(t)["snapshot"].(string)
		if err := runner.Save(t.Context(), e, empty); err != nil {
			t.Fatal(err)
		}
		ec, ei, _ := strings.Cut(empty, "/")
		p := b.want(b.do("GET", "/collections/"+ec+"/items/"+ei, nil), 200).json(t)["properties"].(map[string]any)
		if p["dt:state"] != "draft" || !strings.Contains(p["dt:save_error"].(string), "left no state") {
			t.Fatalf("a save with nothing to save: %v", p)
		}
	})
}
