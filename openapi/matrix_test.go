package openapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/apitest"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
)

// The authorisation matrix: every operation of the OpenAPI document ×
// every role → the status the operation answers. The test enumerates the
// operations from the document and fails when one has no row, so that no
// operation is ever added without a rule.

var roles = []string{"admin", "owner", "editor", "viewer", "other", "anonymous", "revoked", "expired"}

// expect lists the status per role, in the order of roles; revoked and
// expired tokens are a 401 everywhere, so rows give the first six.
func expect(admin, owner, editor, viewer, other, anonymous int) []int {
	return []int{admin, owner, editor, viewer, other, anonymous, 401, 401}
}

func all(status int) []int { return expect(status, status, status, status, status, status) }

// matrixCase is a request an operation answers, on the fixture below:
// collection c (private, owned by owen) with a draft d and a published
// item p that has an asset; editor eddie and viewer vic are granted by
// policies.
type matrixCase struct {
	method, path string
	body         any
	headers      []string
	want         []int
}

var matrix = map[string]matrixCase{
	"getLandingPage":            {"GET", "/", nil, nil, all(200)},
	"getConformance":            {"GET", "/conformance", nil, nil, all(200)},
	"getHealth":                 {"GET", "/healthz", nil, nil, all(200)},
	"getReadiness":              {"GET", "/readyz", nil, nil, all(200)},
	"whoami":                    {"GET", "/auth/whoami", nil, nil, all(200)},
	"getCollections":            {"GET", "/collections", nil, nil, all(200)},
	"createCollection":          {"POST", "/collections", collectionDoc("new"), nil, expect(201, 201, 201, 201, 201, 401)},
	"getCollection":             {"GET", "/collections/c", nil, nil, expect(200, 200, 200, 200, 404, 404)},
	"replaceCollection":         {"PUT", "/collections/c", collectionDoc("c"), nil, expect(200, 200, 200, 403, 404, 404)},
	"updateCollection":          {"PATCH", "/collections/c", map[string]any{"title": "T"}, nil, expect(200, 200, 200, 403, 404, 404)},
	"deleteCollection":          {"DELETE", "/collections/c", nil, nil, expect(204, 204, 403, 403, 404, 404)},
	"getItems":                  {"GET", "/collections/c/items", nil, nil, expect(200, 200, 200, 200, 404, 404)},
	"getItemSearch":             {"GET", "/search", nil, nil, all(200)},
	"postItemSearch":            {"POST", "/search", map[string]any{"limit": 5}, nil, all(200)},
	"getQueryables":             {"GET", "/queryables", nil, nil, all(200)},
	"getAggregate":              {"GET", "/aggregate", nil, nil, all(200)},
	"postAggregate":             {"POST", "/aggregate", map[string]any{"aggregations": []string{"total_count"}}, nil, all(200)},
	"getAggregations":           {"GET", "/aggregations", nil, nil, all(200)},
	"getCollectionAggregate":    {"GET", "/collections/c/aggregate", nil, nil, expect(200, 200, 200, 200, 404, 404)},
	"getCollectionAggregations": {"GET", "/collections/c/aggregations", nil, nil, expect(200, 200, 200, 200, 404, 404)},
	"getCollectionQueryables":   {"GET", "/collections/c/queryables", nil, nil, expect(200, 200, 200, 200, 404, 404)},
	"setCollectionQueryables": {"PUT", "/collections/c/queryables", map[string]any{"properties": map[string]any{"platform": map[string]any{"type": "string", "x-twinstac-index": true}}},
		nil, expect(200, 403, 403, 403, 404, 404)},
	"createItem":    {"POST", "/collections/c/items", itemDoc("n"), nil, expect(201, 201, 201, 403, 404, 404)},
	"getItem":       {"GET", "/collections/c/items/d", nil, nil, expect(200, 200, 200, 404, 404, 404)},
	"replaceItem":   {"PUT", "/collections/c/items/d", itemDoc("d"), nil, expect(200, 200, 200, 404, 404, 404)},
	"updateItem":    {"PATCH", "/collections/c/items/d", map[string]any{"properties": map[string]any{"x": 1}}, nil, expect(200, 200, 200, 404, 404, 404)},
	"deleteItem":    {"DELETE", "/collections/c/items/d", nil, nil, expect(204, 204, 204, 404, 404, 404)},
	"moveItem":      {"POST", "/collections/c/items/d/lifecycle", map[string]any{"state": "published"}, nil, expect(200, 200, 200, 404, 404, 404)},
	"putAsset":      {"PUT", "/collections/c/items/d/assets/data", "bytes", nil, expect(200, 200, 200, 404, 404, 404)},
	"getAsset":      {"GET", "/collections/c/items/p/assets/data", nil, nil, expect(200, 200, 200, 200, 404, 404)},
	"bulkLoadItems": {"POST", "/collections/c/bulk_items", ndjsonLine("b1"), []string{"Content-Type", "application/x-ndjson"}, expect(200, 200, 200, 403, 404, 404)},
	"createToken":   {"POST", "/auth/tokens", map[string]any{"name": "t"}, nil, expect(201, 201, 201, 201, 201, 401)},
	"listTokens":    {"GET", "/auth/tokens", nil, nil, expect(200, 200, 200, 200, 200, 401)},
	"revokeToken":   {"DELETE", "/auth/tokens/{spare}", nil, nil, expect(204, 204, 404, 404, 404, 401)},

	"createCollectionShare": {"POST", "/collections/c/shares", shareBody, nil, expect(201, 201, 403, 403, 404, 404)},
	"listCollectionShares":  {"GET", "/collections/c/shares", nil, nil, expect(200, 200, 403, 403, 404, 404)},
	"deleteCollectionShare": {"DELETE", "/collections/c/shares/{cshare}", nil, nil, expect(204, 204, 403, 403, 404, 404)},
	"createItemShare":       {"POST", "/collections/c/items/p/shares", shareBody, nil, expect(201, 201, 403, 403, 404, 404)},
	"listItemShares":        {"GET", "/collections/c/items/p/shares", nil, nil, expect(200, 200, 403, 403, 404, 404)},
	"deleteItemShare":       {"DELETE", "/collections/c/items/p/shares/{ishare}", nil, nil, expect(204, 204, 403, 403, 404, 404)},
	"listPolicies":          {"GET", "/policies", nil, nil, expect(200, 403, 403, 403, 403, 401)},
	"createPolicy": {"POST", "/policies", map[string]any{"id": "new-policy", "subjects": []string{"user:zed"}, "resources": []string{"collections:c"},
		"actions": []string{"read"}, "effect": "allow"}, nil, expect(201, 403, 403, 403, 403, 401)},
	"deletePolicy": {"DELETE", "/policies/spare-policy", nil, nil, expect(204, 403, 403, 403, 403, 401)},
	"getQuota":     {"GET", "/quotas/owen", nil, nil, expect(200, 200, 403, 403, 403, 401)},
	"setQuota":     {"PUT", "/quotas/owen", map[string]any{"stored_bytes": 1000}, nil, expect(200, 403, 403, 403, 403, 401)},
	"getUsage":     {"GET", "/usage", nil, nil, expect(200, 200, 200, 200, 200, 401)},

	"getProcesses":          {"GET", "/processes", nil, nil, all(200)},
	"getProcessDescription": {"GET", "/processes/c:t", nil, nil, expect(200, 200, 200, 200, 404, 404)},
	"execute":               {"POST", "/processes/c:t/execution", map[string]any{"inputs": map[string]any{"n": 1}}, nil, expect(201, 201, 403, 403, 404, 404)},
	"getJobs":               {"GET", "/jobs", nil, nil, expect(200, 200, 200, 200, 200, 401)},
	"getStatus":             {"GET", "/jobs/{job}", nil, nil, expect(200, 200, 404, 404, 404, 401)},
	"getResult":             {"GET", "/jobs/{job}/results", nil, nil, expect(404, 404, 404, 404, 404, 401)},
	"dismiss":               {"DELETE", "/jobs/{job}", nil, nil, expect(200, 200, 404, 404, 404, 401)},
	"getJobLogs":            {"GET", "/jobs/{job}/logs", nil, nil, expect(200, 200, 404, 404, 404, 401)},
	"getEvents":             {"GET", "/events", nil, nil, all(200)},
	"validateExecution":     {"POST", "/processes/c:t/validation", map[string]any{"inputs": map[string]any{"n": 1}}, nil, expect(200, 200, 200, 200, 404, 404)},
	"submitBatch":           {"POST", "/batches", map[string]any{"process": "c:t", "sweep": map[string]any{"n": []int{1, 2}}}, nil, expect(201, 201, 403, 403, 404, 404)},
	"getBatches":            {"GET", "/batches", nil, nil, expect(200, 200, 200, 200, 200, 401)},
	"getBatch":              {"GET", "/batches/{batch}", nil, nil, expect(200, 200, 404, 404, 404, 401)},
	"getBatchJobs":          {"GET", "/batches/{batch}/jobs", nil, nil, expect(200, 200, 404, 404, 404, 401)},
	"saveJob":               {"POST", "/jobs/{job}/save", nil, nil, expect(409, 409, 404, 404, 404, 401)},
	"dismissBatch":          {"DELETE", "/batches/{batch}", nil, nil, expect(200, 200, 404, 404, 404, 401)},
	"createJobShare":        {"POST", "/jobs/{job}/shares", shareBody, nil, expect(201, 201, 404, 404, 404, 401)},
	"listJobShares":         {"GET", "/jobs/{job}/shares", nil, nil, expect(200, 200, 404, 404, 404, 401)},
	"deleteJobShare":        {"DELETE", "/jobs/{job}/shares/{jshare}", nil, nil, expect(204, 204, 404, 404, 404, 401)},
	"createBatchShare":      {"POST", "/batches/{batch}/shares", shareBody, nil, expect(201, 201, 404, 404, 404, 401)},
	"listBatchShares":       {"GET", "/batches/{batch}/shares", nil, nil, expect(200, 200, 404, 404, 404, 401)},
	"deleteBatchShare":      {"DELETE", "/batches/{batch}/shares/{bshare}", nil, nil, expect(204, 204, 404, 404, 404, 401)},
}

// twinDoc is a twin of collection c: an execute script and one integer
// input.
func twinDoc(id string) map[string]any {
	d := itemDoc(id)
	props := d["properties"].(map[string]any)
	props["dt:kind"] = "digital-twin"
	props["dt:parameters"] = map[string]any{"type": "object", "properties": map[string]any{"n": map[string]any{"type": "integer"}}}
	return d
}

var shareBody = map[string]any{"subject": "user:zed", "actions": []string{"read"}}

func ndjsonLine(id string) string {
	b, _ := json.Marshal(itemDoc(id))
	return string(b) + "\n"
}

// fixture builds the scene of the matrix on a fresh server and returns
// the bearer secret of each role and the id of owen's spare token.
func fixture(t *testing.T, b *bundle) (secrets map[string]string, ids map[string]string) {
	t.Helper()
	ctx := context.Background()
	system := &access.Caller{User: "admin", Groups: []string{access.AdminGroup}}
	secrets = map[string]string{"admin": adminSecret, "anonymous": ""}
	for role, user := range map[string]string{"owner": "owen", "editor": "eddie", "viewer": "vic", "other": "olga", "revoked": "owen"} {
		tok, secret, err := b.tokens.Mint(ctx, system, access.MintRequest{Name: role, User: user})
		if err != nil {
			t.Fatal(err)
		}
		secrets[role] = secret
		if role == "revoked" {
			if err := b.tokens.Revoke(ctx, system, tok.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	spareTok, _, err := b.tokens.Mint(ctx, system, access.MintRequest{Name: "spare", User: "owen"})
	if err != nil {
		t.Fatal(err)
	}
	expired := "tst_expired-secret"
	if err := b.store.(access.TokenStore).CreateToken(ctx, &access.Token{ID: "expired", Name: "old", User: "owen", Hash: access.HashSecret(expired),
		Created: time.Now().Add(-2 * time.Hour), Expires: time.Now().Add(-time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	secrets["expired"] = expired

	owen := bearer(secrets["owner"])
	b.want(b.do("POST", "/collections", collectionDoc("c"), owen...), 201)
	b.want(b.do("POST", "/collections/c/items", itemDoc("d"), owen...), 201)
	b.want(b.do("POST", "/collections/c/items", itemDoc("p"), owen...), 201)
	b.want(b.do("PUT", "/collections/c/items/p/assets/data", "file", owen...), 200)
	b.want(b.do("POST", "/collections/c/items/p/lifecycle", map[string]any{"state": "published"}, owen...), 200)
	b.want(b.do("POST", "/collections/c/items", twinDoc("t"), owen...), 201)
	b.want(b.do("PUT", "/collections/c/items/t/assets/execute", "#!/bin/sh\necho run\n", owen...), 200)
	b.want(b.do("PATCH", "/collections/c/items/t", map[string]any{"assets": map[string]any{"execute": map[string]any{"roles": []string{"lifecycle"}}}}, owen...), 200)
	b.want(b.do("POST", "/collections/c/items/t/lifecycle", map[string]any{"state": "published"}, owen...), 200)
	twin, err := b.store.GetItem(ctx, "c", "t")
	if err != nil {
		t.Fatal(err)
	}
	proc, err := jobs.ProcessOf(twin)
	if err != nil {
		t.Fatal(err)
	}
	job, _, err := b.jobs.Submit(ctx, jobs.Submission{Process: proc, Owner: "owen", Inputs: map[string]any{"n": 2}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := b.jobs.SubmitBatch(ctx, jobs.BatchSubmission{Process: proc, Owner: "owen",
		InputSets: []map[string]any{{"n": 1}, {"n": 2}}, ResultsCollection: "c-t-results"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*access.Policy{
		{ID: "c-editor-collection", Subjects: []string{"user:eddie"}, Resources: []string{"collections:c"}, Actions: []string{"read", "update"}, Effect: access.Allow},
		{ID: "c-editor-items", Subjects: []string{"user:eddie"}, Resources: []string{"items:c/<.*>"}, Actions: []string{"read", "create", "update", "publish", "delete"}, Effect: access.Allow},
		{ID: "c-viewer", Subjects: []string{"user:vic"}, Resources: []string{"collections:c", "items:c/<.*>"}, Actions: []string{"read"}, Effect: access.Allow},
		{ID: "spare-policy", Subjects: []string{"user:zed"}, Resources: []string{"collections:zed"}, Actions: []string{"read"}, Effect: access.Allow},
	} {
		if _, err := b.policies.CreatePolicy(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	owner := &access.Caller{User: "owen"}
	cshare, err := b.policies.CreateShare(ctx, owner, access.CollectionShare("c"), "user:zed", []string{"read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ishare, err := b.policies.CreateShare(ctx, owner, access.ItemShare("c", "p"), "user:zed", []string{"read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	jshare, err := b.policies.CreateShare(ctx, owner, access.JobShare(job.ID), "user:zed", []string{"read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	bshare, err := b.policies.CreateShare(ctx, owner, access.BatchShare(batch.ID), "user:zed", []string{"read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return secrets, map[string]string{"{spare}": spareTok.ID, "{cshare}": cshare.ID, "{ishare}": ishare.ID, "{job}": job.ID, "{batch}": batch.ID,
		"{jshare}": jshare.ID, "{bshare}": bshare.ID}
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	doc, _, err := apitest.Document()
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if _, ok := matrix[op.OperationID]; !ok {
				t.Errorf("operation %s (%s %s) has no row in the authorisation matrix", op.OperationID, method, path)
			}
			ops = append(ops, op.OperationID)
		}
	}
	sort.Strings(ops)
	for id := range matrix {
		if !slices.Contains(ops, id) {
			t.Errorf("the matrix has a row for %s, which the document does not have", id)
		}
	}
	for _, op := range ops {
		tc, ok := matrix[op]
		if !ok {
			continue
		}
		for i, role := range roles {
			t.Run(op+"/"+role, func(t *testing.T) {
				t.Parallel()
				b := setup(t, func(tb testing.TB) catalog.Store { return testdb.SQLite(tb) })
				secrets, ids := fixture(t, b)
				headers := append([]string{}, tc.headers...)
				if secrets[role] == "" {
					headers = append(headers, anonymous...)
				} else {
					headers = append(headers, bearer(secrets[role])...)
				}
				path := tc.path
				for k, v := range ids {
					path = strings.ReplaceAll(path, k, v)
				}
				r := b.do(tc.method, path, tc.body, headers...)
				if r.StatusCode != tc.want[i] {
					t.Fatalf("%s %s as %s: %d, want %d\n%s", tc.method, path, role, r.StatusCode, tc.want[i], r.body)
				}
				if r.StatusCode == http.StatusUnauthorized || r.StatusCode == http.StatusForbidden || r.StatusCode == http.StatusNotFound {
					if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
						t.Fatalf("%d without a problem: %q", r.StatusCode, ct)
					}
				}
			})
		}
	}
}
