package openapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/workers"
)

func TestMain(m *testing.M) {
	// The local executor of the job tests starts this test binary as
	// the launcher of phase scripts, as it starts twinstac.
	workers.LaunchPhase()
	os.Exit(m.Run())
}

// publishWaterTank uploads the example twin through the API as the
// admin into collection twins.
func publishWaterTank(t *testing.T, b *bundle) {
	t.Helper()
	b.want(b.do("POST", "/collections", collectionDoc("twins")), 201)
	params, err := os.ReadFile("../examples/water-tank/parameters.json")
	if err != nil {
		t.Fatal(err)
	}
	doc := itemDoc("water-tank")
	props := doc["properties"].(map[string]any)
	props["dt:kind"], props["dt:parameters"], props["title"] = "digital-twin", json.RawMessage(params), "Water tank"
	b.want(b.do("POST", "/collections/twins/items", doc), 201)
	roles := map[string]any{}
	for _, phase := range []string{"create", "execute", "save", "terminate", "clean"} {
		script, err := os.ReadFile(filepath.Join("../examples/water-tank/lifecycle", phase))
		if err != nil {
			t.Fatal(err)
		}
		b.want(b.do("PUT", "/collections/twins/items/water-tank/assets/"+phase, string(script)), 200)
		roles[phase] = map[string]any{"roles": []string{"lifecycle"}}
	}
	b.want(b.do("PATCH", "/collections/twins/items/water-tank", map[string]any{"assets": roles}), 200)
	b.want(b.do("POST", "/collections/twins/items/water-tank/lifecycle", map[string]any{"state": "published"}), 200)
}

func TestProcessesAndJobs(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		publishWaterTank(t, b)
		list := b.want(b.do("GET", "/processes", nil), 200).json(t)
		procs, _ := list["processes"].([]any)
		if len(procs) != 1 || procs[0].(map[string]any)["id"] != "twins:water-tank" {
			t.Fatalf("processes: %v", list)
		}
		desc := b.want(b.do("GET", "/processes/twins:water-tank", nil), 200).json(t)
		inputs, _ := desc["inputs"].(map[string]any)
		if inflow, _ := inputs["inflow"].(map[string]any); inflow == nil || inflow["minOccurs"] != 1.0 || len(inputs) != 5 {
			t.Fatalf("the description's inputs: %v", inputs)
		}
		b.want(b.do("GET", "/processes/twins:nope", nil), 404)
		b.want(b.do("GET", "/processes/no-colon", nil), 400)

		// Wrong inputs: every error, nothing queued.
		bad := b.problem(b.do("POST", "/processes/twins:water-tank/execution", map[string]any{"inputs": map[string]any{"inflow": -1, "outflow": "x", "colour": 1}}), 400, "")
		if errs, _ := bad["errors"].([]any); len(errs) != 3 {
			t.Fatalf("errors of wrong inputs: %v", bad)
		}
		// Callbacks to internal addresses are refused before anything runs.
		for _, uri := range []string{"http://127.0.0.1:9/cb", "http://localhost/cb", "ftp://example.org/x", "http://169.254.169.254/"} {
			b.problem(b.do("POST", "/processes/twins:water-tank/execution", map[string]any{"inputs": map[string]any{"inflow": 1, "outflow": 1},
				"subscriber": map[string]any{"successUri": "https://hooks.example.org/ok", "failedUri": uri}}), 400, "/subscriber/failedUri")
		}
		if len(b.queue.queued) != 0 {
			t.Fatalf("queued %v after a refused execution", b.queue.queued)
		}
		// Validation lists the same errors, from JSON or YAML; nothing runs.
		v := b.want(b.do("POST", "/processes/twins:water-tank/validation", map[string]any{"inputs": map[string]any{"inflow": -1, "outflow": "x", "colour": 1}}), 200).json(t)
		if v["valid"] != false || len(v["errors"].([]any)) != 3 {
			t.Fatalf("validation: %v", v)
		}
		yml := "inputs:\n  inflow: 0.5\n  outflow: 0.2\n  steps: 10\n"
		v = b.want(b.do("POST", "/processes/twins:water-tank/validation", yml, "Content-Type", "application/yaml"), 200).json(t)
		if v["valid"] != true || len(v["errors"].([]any)) != 0 {
			t.Fatalf("validation of YAML: %v", v)
		}
		v = b.want(b.do("POST", "/processes/twins:water-tank/validation", "inputs:\n  steps: many\n", "Content-Type", "application/yaml"), 200).json(t)
		if errs := v["errors"].([]any); len(errs) != 3 || errs[0].(map[string]any)["pointer"] != "/inflow" || errs[2].(map[string]any)["pointer"] != "/steps" {
			t.Fatalf("validation of bad YAML inputs: %v", v)
		}
		b.problem(b.do("POST", "/processes/twins:water-tank/validation", "inputs: [1", "Content-Type", "application/yaml"), 400, "")
		if len(b.queue.queued) != 0 {
			t.Fatalf("validation queued %v", b.queue.queued)
		}

		run := map[string]any{"inputs": map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 7}}
		r := b.want(b.do("POST", "/processes/twins:water-tank/execution", run, "Idempotency-Key", "run-1"), 201)
		st := r.json(t)
		id, _ := st["jobID"].(string)
		if st["status"] != "accepted" || !strings.HasSuffix(r.Header.Get("Location"), "/jobs/"+id) || !strings.HasPrefix(r.Header.Get("Location"), "http") {
			t.Fatalf("execution: %v, Location %q", st, r.Header.Get("Location"))
		}
		again := b.want(b.do("POST", "/processes/twins:water-tank/execution", run, "Idempotency-Key", "run-1"), 201).json(t)
		if again["jobID"] != id || len(b.queue.queued) != 1 {
			t.Fatalf("a repeated execution made job %v; queued %v", again["jobID"], b.queue.queued)
		}
		notReady := b.problem(b.do("GET", "/jobs/"+id+"/results", nil), 404, "")
		if notReady["type"] != "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready" {
			t.Fatalf("results of an accepted job: %v", notReady)
		}

		// A worker runs the queued job.
		runner := &workers.Runner{Jobs: b.jobs.Store, Catalog: b.catalog, Worker: "w",
			Executor: &workers.Local{Root: t.TempDir(), PhaseTimeout: time.Minute}}
		if err := runner.Run(t.Context(), b.queue.queued[0], 1); err != nil {
			t.Fatal(err)
		}
		st = b.want(b.do("GET", "/jobs/"+id, nil), 200).json(t)
		if st["status"] != "successful" || st["progress"] != 100.0 || st["dt:usage"] == nil {
			t.Fatalf("status: %v", st)
		}
		res := b.want(b.do("GET", "/jobs/"+id+"/results", nil), 200).json(t)
		href, _ := res["result"].(map[string]any)["href"].(string)
		if !strings.HasPrefix(href, b.base+"/collections/twins-water-tank-results/items/") {
			t.Fatalf("results: %v", res)
		}
		item := b.want(b.do("GET", strings.TrimPrefix(href, b.base), nil), 200).json(t)
		if _, ok := item["assets"].(map[string]any)["level.csv"]; !ok {
			t.Fatalf("the result item has no level.csv: %v", item["assets"])
		}
		csv := b.want(b.do("GET", strings.TrimPrefix(href, b.base)+"/assets/level.csv", nil), 200)
		if rows := strings.Count(string(csv.body), "\n"); rows != 8 {
			t.Fatalf("level.csv has %d lines", rows)
		}

		// Its log: the phases' lines and the server's, as a page and
		// followed as server-sent events.
		logs := b.want(b.do("GET", "/jobs/"+id+"/logs", nil), 200).json(t)
		lines, _ := logs["lines"].([]any)
		var text []string
		for _, l := range lines {
			m := l.(map[string]any)
			text = append(text, m["phase"].(string)+"/"+m["stream"].(string)+": "+m["text"].(string))
		}
		joined := strings.Join(text, "\n")
		if logs["done"] != true || !strings.Contains(joined, "create/stdout: water tank: inflow=0.5 outflow=0.2 steps=7") ||
			!strings.Contains(joined, "execute/twinstac: phase execute succeeded") {
			t.Fatalf("the job's log: %v\n%s", logs, joined)
		}
		page := b.want(b.do("GET", "/jobs/"+id+"/logs?limit=2", nil), 200).json(t)
		if got := page["lines"].([]any); len(got) != 2 || page["done"] != false {
			t.Fatalf("a page of 2 lines: %v", page)
		}
		sse := b.want(b.do("GET", "/jobs/"+id+"/logs", nil, "Accept", "text/event-stream", "Last-Event-ID", fmt.Sprint(page["next"])), 200)
		events := string(sse.body)
		if !strings.HasPrefix(sse.Header.Get("Content-Type"), "text/event-stream") || strings.Count(events, "event: log\n") != len(lines)-2 ||
			!strings.HasSuffix(events, "event: end\ndata: {\"status\":\"successful\"}\n\n") {
			t.Fatalf("followed log (%s):\n%s", sse.Header.Get("Content-Type"), events)
		}

		// A log followed while its job runs ends when the job does.
		third := b.want(b.do("POST", "/processes/twins:water-tank/execution", map[string]any{"inputs": map[string]any{"inflow": 1, "outflow": 0.1, "steps": 2}}), 201).json(t)
		followed := make(chan response, 1)
		go func() {
			followed <- b.do("GET", "/jobs/"+third["jobID"].(string)+"/logs", nil, "Accept", "text/event-stream")
		}()
		if err := runner.Run(t.Context(), third["jobID"].(string), 1); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-followed:
			if ev := string(f.body); !strings.Contains(ev, "steps=2") || !strings.HasSuffix(ev, "event: end\ndata: {\"status\":\"successful\"}\n\n") {
				t.Fatalf("the log followed live:\n%s", ev)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the followed log did not end with its job")
		}

		// A second job, dismissed before it runs.
		second := b.want(b.do("POST", "/processes/twins:water-tank/execution", map[string]any{"inputs": map[string]any{"inflow": 1, "outflow": 0.1}}), 201).json(t)
		d := b.want(b.do("DELETE", "/jobs/"+second["jobID"].(string), nil), 200).json(t)
		if d["status"] != "dismissed" {
			t.Fatalf("dismissed: %v", d)
		}
		jl := b.want(b.do("GET", "/jobs?status=successful", nil), 200).json(t)
		if js, _ := jl["jobs"].([]any); len(js) != 2 || js[1].(map[string]any)["jobID"] != id {
			t.Fatalf("successful jobs: %v", jl)
		}
		// By creation time: every job now, none before the first.
		created := st["created"].(string)
		if js := b.want(b.do("GET", "/jobs?datetime="+url.QueryEscape(created+"/.."), nil), 200).json(t)["jobs"].([]any); len(js) != 3 {
			t.Fatalf("jobs created from the first: %d", len(js))
		}
		if js := b.want(b.do("GET", "/jobs?datetime=../2000-01-01T00:00:00Z", nil), 200).json(t)["jobs"].([]any); len(js) != 0 {
			t.Fatalf("jobs created before 2000: %d", len(js))
		}
		b.problem(b.do("GET", "/jobs?datetime=yesterday", nil), 400, "")
		all := b.want(b.do("GET", "/jobs?limit=1", nil), 200).json(t)
		if js, _ := all["jobs"].([]any); len(js) != 1 || js[0].(map[string]any)["jobID"] != second["jobID"] {
			t.Fatalf("newest job first: %v", all)
		}
		next := ""
		for _, l := range all["links"].([]any) {
			if l.(map[string]any)["rel"] == "next" {
				next, _ = l.(map[string]any)["href"].(string)
			}
		}
		page2 := b.want(b.do("GET", strings.TrimPrefix(next, b.base), nil), 200).json(t)
		if js, _ := page2["jobs"].([]any); len(js) != 1 || js[0].(map[string]any)["jobID"] != third["jobID"] {
			t.Fatalf("second page: %v (next %q)", page2, next)
		}
	})
}
