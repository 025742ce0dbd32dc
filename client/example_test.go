package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/client"
	"github.com/twinstac/twinstac/internal/server/servertest"
	"github.com/twinstac/twinstac/workers"
)

// The server the examples and tests talk to, and its admin token.
var serverURL, adminToken string

func TestMain(m *testing.M) {
	// The in-process worker starts this binary to launch phase scripts.
	workers.LaunchPhase()
	srv, err := servertest.New(nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverURL, adminToken = srv.URL, servertest.AdminToken
	code := m.Run()
	srv.Close()
	os.Exit(code)
}

// A program that publishes the water-tank twin of examples/, runs it,
// follows its log, and finds its result with a search.
func Example() {
	ctx := context.Background()
	api, err := client.New(serverURL, client.Token(adminToken))
	if err != nil {
		log.Fatal(err)
	}
	// must stops at the first failed call; client.Check turns an answer
	// of 400 or above into a *client.Error with the problem details.
	must := func(_ any, err error) {
		if err != nil {
			log.Fatal(err)
		}
	}

	// A collection, and the twin in it: an item of kind digital-twin
	// whose parameters are a JSON schema, with its phase scripts as
	// lifecycle assets.
	must(client.Check(api.CreateCollectionWithBodyWithResponse(ctx, "application/json", strings.NewReader(`{
		"type": "Collection", "stac_version": "1.1.0", "id": "models", "description": "Our twins", "license": "CC-BY-4.0",
		"extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[null, null]]}}, "links": []}`))))
	params, err := os.ReadFile("../examples/water-tank/parameters.json")
	if err != nil {
		log.Fatal(err)
	}
	must(client.Check(api.CreateItemWithBodyWithResponse(ctx, "models", "application/json", strings.NewReader(`{
		"type": "Feature", "stac_version": "1.1.0", "id": "tank", "geometry": null, "links": [], "assets": {},
		"properties": {"datetime": "2026-01-01T00:00:00Z", "title": "Water tank", "dt:kind": "digital-twin", "dt:parameters": `+string(params)+`}}`))))
	var roles []string
	for _, phase := range []string{"create", "execute", "terminate", "clean"} {
		f, err := os.Open(filepath.Join("../examples/water-tank/lifecycle", phase))
		if err != nil {
			log.Fatal(err)
		}
		must(client.Check(api.PutAssetWithBodyWithResponse(ctx, "models", "tank", phase, nil, "text/x-shellscript", f)))
		_ = f.Close()
		roles = append(roles, fmt.Sprintf(`%q: {"roles": ["lifecycle"]}`, phase))
	}
	must(client.Check(api.UpdateItemWithBodyWithResponse(ctx, "models", "tank", nil, "application/merge-patch+json",
		strings.NewReader(`{"assets": {`+strings.Join(roles, ", ")+`}}`))))
	must(client.Check(api.MoveItemWithResponse(ctx, "models", "tank", nil, client.LifecycleRequest{State: "published"})))

	// Run it, and follow its log until it ends.
	inputs := map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 10}
	run, err := client.Check(api.ExecuteWithResponse(ctx, "models:tank", nil, client.ExecuteBody{Inputs: &inputs}))
	if err != nil {
		log.Fatal(err)
	}
	status, err := api.FollowLog(ctx, run.JSON201.JobID, 0, func(l client.LogLine) error {
		if l.Phase == "execute" && l.Stream == "stdout" {
			fmt.Println(l.Text)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the job ended", status)

	// Its result is an item of the twin's results collection, which a
	// search finds by the inputs of the run.
	var filter client.SearchBody_Filter
	if err := filter.FromSearchBodyFilter1(`"dt:input:steps" = 10`); err != nil {
		log.Fatal(err)
	}
	body := client.SearchBody{Collections: &[]string{"models-tank-results"}, Filter: &filter}
	for it, err := range api.Search(ctx, body) {
		if err != nil {
			log.Fatal(err)
		}
		inflow, _ := it.Properties.Get("dt:input:inflow")
		fmt.Printf("a result with inflow %v and the files %v\n", inflow, keys(*it.Assets))
	}
	// Output:
	// after 10 steps (t=10) the level is 3.142514
	// the job ended successful
	// a result with inflow 0.5 and the files [level.csv]
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
