package openapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/workers"
)

func TestBatches(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		publishWaterTank(t, b)

		// Wrong values are found in every job before anything is queued,
		// and pointed at where the request says them.
		bad := b.problem(b.do("POST", "/batches", map[string]any{"process": "twins:water-tank",
			"inputs": map[string]any{"outflow": 0.2}, "sweep": map[string]any{"inflow": []any{0.5, -1, 2}, "steps": []any{5, 0}}}), 400, "")
		var where []string
		for _, e := range bad["errors"].([]any) {
			where = append(where, e.(map[string]any)["location"].(string))
		}
		if strings.Join(where, " ") != "/sweep/steps/1 /sweep/inflow/1" {
			t.Fatalf("errors of a bad sweep at %v: %v", where, bad)
		}
		bad = b.problem(b.do("POST", "/batches", map[string]any{"process": "twins:water-tank",
			"inputSets": []any{map[string]any{"inflow": 1, "outflow": 0.2}, map[string]any{"inflow": 1}}}), 400, "")
		if e := bad["errors"].([]any); len(e) != 1 || e[0].(map[string]any)["location"] != "/inputSets/1/outflow" {
			t.Fatalf("errors of bad input sets: %v", bad)
		}
		for _, body := range []map[string]any{
			{"process": "twins:water-tank"},
			{"process": "twins:water-tank", "sweep": map[string]any{"inflow": []any{1}}, "inputSets": []any{map[string]any{}}},
			{"process": "twins:water-tank", "sweep": map[string]any{"inflow": []any{1, 2}, "outflow": []any{1}}, "mode": "zip"},
			{"process": "twins:water-tank", "sweep": map[string]any{"inflow": []any{}}},
			{"process": "twins:water-tank", "inputs": map[string]any{"inflow": 1}, "sweep": map[string]any{"inflow": []any{2}}},
			{"process": "twins:water-tank", "inputSets": []any{map[string]any{"inflow": 1, "outflow": 1}}, "mode": "zip"},
		} {
			b.problem(b.do("POST", "/batches", body), 400, "")
		}
		b.problem(b.do("POST", "/batches", map[string]any{"process": "twins:nope", "sweep": map[string]any{"inflow": []any{1}}}), 404, "")
		if len(b.queue.queued) != 0 {
			t.Fatalf("refused batches queued %v", b.queue.queued)
		}

		// A product sweep of 2×3 jobs, two at a time.
		r := b.want(b.do("POST", "/batches", map[string]any{"process": "twins:water-tank", "inputs": map[string]any{"steps": 3},
			"sweep": map[string]any{"inflow": []any{0.5, 1}, "outflow": []any{0.1, 0.2, 0.3}}, "maxParallel": 2}), 201)
		batch := r.json(t)
		id, _ := batch["id"].(string)
		if batch["total"] != 6.0 || batch["status"] != "accepted" || !strings.HasSuffix(r.Header.Get("Location"), "/batches/"+id) {
			t.Fatalf("submitted batch: %v (Location %q)", batch, r.Header.Get("Location"))
		}
		if len(b.queue.queued) != 2 {
			t.Fatalf("queued %d jobs of a batch of maxParallel 2", len(b.queue.queued))
		}
		runner := &workers.Runner{Jobs: b.jobs.Store, Catalog: b.catalog, Worker: "w", Queue: b.queue,
			Executor: &workers.Local{Root: t.TempDir(), PhaseTimeout: time.Minute}}
		// Each job that ends queues the next held one; never more than
		// two wait or run at once.
		for ran := 0; ran < len(b.queue.queued); ran++ {
			if err := runner.Run(t.Context(), b.queue.queued[ran], 1); err != nil {
				t.Fatal(err)
			}
			if waiting := len(b.queue.queued) - ran - 1; waiting > 2 {
				t.Fatalf("%d jobs of the batch queued at once", waiting)
			}
		}
		if len(b.queue.queued) != 6 {
			t.Fatalf("ran %d jobs of the batch, want 6", len(b.queue.queued))
		}
		st := b.want(b.do("GET", "/batches/"+id, nil), 200).json(t)
		counts, _ := st["counts"].(map[string]any)
		if st["status"] != "successful" || st["progress"] != 100.0 || counts["successful"] != 6.0 || counts["accepted"] != 0.0 {
			t.Fatalf("finished batch: %v", st)
		}
		jl := b.want(b.do("GET", "/batches/"+id+"/jobs?limit=4", nil), 200).json(t)
		if js, _ := jl["jobs"].([]any); len(js) != 4 {
			t.Fatalf("a page of the batch's jobs: %v", jl)
		}
		// Every combination ran once, and the results say which: they are
		// found by a filter on the batch and on their inputs.
		var results string
		for _, l := range st["links"].([]any) {
			if l.(map[string]any)["rel"] == "results" {
				results = strings.TrimPrefix(l.(map[string]any)["href"].(string), b.base)
			}
		}
		items := b.want(b.do("GET", results, nil), 200).json(t)
		feats, _ := items["features"].([]any)
		seen := map[string]bool{}
		for _, f := range feats {
			in := f.(map[string]any)["properties"].(map[string]any)["dt:inputs"].(map[string]any)
			seen[strings.Join([]string{jsonOf(t, in["inflow"]), jsonOf(t, in["outflow"]), jsonOf(t, in["steps"])}, ",")] = true
		}
		if len(feats) != 6 || len(seen) != 6 || !seen["1,0.3,3"] || !seen["0.5,0.1,3"] {
			t.Fatalf("the batch's results (%s): %d items, inputs %v", results, len(feats), seen)
		}
		one := b.want(b.do("POST", "/search", map[string]any{"filter-lang": "cql2-text",
			"filter": `"dt:batch" = '` + id + `' AND "dt:input:outflow" = 0.3`}), 200).json(t)
		if f, _ := one["features"].([]any); len(f) != 2 {
			t.Fatalf("results of the batch with outflow 0.3: %d", len(f))
		}

		// A zip batch of one at a time, dismissed with one job queued:
		// that one and the held ones end dismissed, nothing runs.
		queuedBefore := len(b.queue.queued)
		z := b.want(b.do("POST", "/batches", map[string]any{"process": "twins:water-tank", "mode": "zip", "maxParallel": 1,
			"sweep": map[string]any{"inflow": []any{1, 2, 3}, "outflow": []any{0.1, 0.2, 0.3}}}), 201).json(t)
		if len(b.queue.queued) != queuedBefore+1 {
			t.Fatalf("queued %d jobs of a zip batch of maxParallel 1", len(b.queue.queued)-queuedBefore)
		}
		d := b.want(b.do("DELETE", "/batches/"+z["id"].(string), nil), 200).json(t)
		if c := d["counts"].(map[string]any); c["dismissed"] != 3.0 || d["status"] != "dismissed" {
			t.Fatalf("dismissed batch: %v", d)
		}
		if err := runner.Run(t.Context(), b.queue.queued[queuedBefore], 1); err != nil {
			t.Fatal(err)
		}
		if len(b.queue.queued) != queuedBefore+1 {
			t.Fatalf("a dismissed batch queued more jobs")
		}
		list := b.want(b.do("GET", "/batches", nil), 200).json(t)
		if bs, _ := list["batches"].([]any); len(bs) != 2 || bs[0].(map[string]any)["id"] != z["id"] {
			t.Fatalf("batches, newest first: %v", list)
		}
		b.problem(b.do("GET", "/batches/nope", nil), 404, "")
	})
}

// jsonOf is a value as JSON text.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
