package openapi_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// This file checks that the exported OpenAPI document agrees with the
// OpenAPI documents of STAC API 1.0.0 and of the extensions the server
// implements, read offline from ../shared/conformance/stac-api-spec.

// stacSpecDocs are the STAC API documents the exported document is checked
// against, by name (used in messages) and path under stac-api-spec.
var stacSpecDocs = []struct{ name, file string }{
	{"core", "bundled/v1.0.0/core/openapi.yaml"},
	{"collections", "bundled/v1.0.0/collections/openapi.yaml"},
	{"ogcapi-features", "bundled/v1.0.0/ogcapi-features/openapi.yaml"},
	{"item-search", "bundled/v1.0.0/item-search/openapi.yaml"},
	{"filter", "extensions/filter/openapi.yaml"},
	{"sort", "extensions/sort/openapi.yaml"},
	{"fields", "extensions/fields/openapi.yaml"},
	{"transaction", "extensions/transaction/openapi.yaml"},
}

// stacAllowed lists the deliberate differences from the STAC documents.
// An empty Doc, Method or Path matches any; a Field ending in * matches by
// prefix. An entry that no longer matches anything fails the test, so the
// list stays current.
var stacAllowed = []struct{ Doc, Method, Path, Field, Reason string }{
	{"", "", "", "query parameter bbox", "declared as a comma-separated string: the wire form of STAC's form/explode=false number array"},
	{"", "GET", "/search", "query parameter ids", "declared as a comma-separated string: the wire form of STAC's form/explode=false string array"},
	{"", "GET", "/search", "query parameter collections", "declared as a comma-separated string: the wire form of STAC's form/explode=false string array"},
	{"", "GET", "/search", "query parameter intersects", "a GeoJSON geometry in a query string is JSON text, so it is declared as a string"},
	{"filter", "GET", "", "query parameter filter", "the filter document marks its filter component required, yet a search or item list without a filter is valid (OGC API Features Part 3)"},
	{"", "", "", "response 200 body: features[].*", "features are projections: the fields extension lets a client leave out members STAC otherwise requires (ours always keeps type and id)"},
	{"", "", "", "response 200 body: bbox", "STAC item-spec requires bbox only when geometry is not null; items without geometry have none"},
	{"", "", "", "response 201 body: bbox", "STAC item-spec requires bbox only when geometry is not null; items without geometry have none"},
	{"sort", "GET", "/sortables", "operation", "we advertise sort v1.0.0 (landing.go), which has no sortables; the shared document is sort v1.1.0"},
	{"sort", "GET", "/collections/{collectionId}/sortables", "operation", "we advertise sort v1.0.0 (landing.go), which has no sortables; the shared document is sort v1.1.0"},
}

// allows reports whether an allow-list entry covers m.
func allows(doc, method, path, field string, m mismatch) bool {
	fieldOK := field == m.Field || strings.HasSuffix(field, "*") && strings.HasPrefix(m.Field, strings.TrimSuffix(field, "*"))
	return (doc == "" || doc == m.Doc) && (method == "" || method == m.Method) && (path == "" || path == m.Path) && fieldOK
}

// itemListOps are the operations the item-search and ogcapi-features
// conformance classes of an extension bind its query parameters to, when
// its document only defines them as components (fields, sort).
var itemListOps = [][2]string{{"GET", "/search"}, {"GET", "/collections/{collectionId}/items"}}

// stacAPISpecDir finds ../shared/conformance/stac-api-spec beside the module
// root. It skips the test when the folder is absent, unless
// TWINSTAC_TEST_REQUIRE_SERVICES=1 demands it.
func stacAPISpecDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(filepath.Dir(d), "shared", "conformance", "stac-api-spec")
			if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
				if os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
					t.Fatalf("../shared/conformance/stac-api-spec is missing (%v), and TWINSTAC_TEST_REQUIRE_SERVICES=1 requires it", err)
				}
				t.Skipf("../shared/conformance/stac-api-spec is missing (%v): a clone outside the workplace", err)
			}
			return dir
		}
		if filepath.Dir(d) == d {
			t.Fatal("go.mod not found above the working directory")
		}
	}
}

// offlineReader reads local files, and the URLs the extension documents
// refer to from their copies listed in stac-api-spec/README.md; it never
// goes to the network.
func offlineReader(specDir string) openapi3.ReadFromURIFunc {
	copies := map[string]string{
		"https://raw.githubusercontent.com/opengeospatial/ogcapi-features/master/cql2/standard/schema/cql2.yml": filepath.Join(specDir, "..", "cql2", "schema", "cql2.yml"),
	}
	for _, part := range []string{"core", "collections", "ogcapi-features", "item-search"} {
		copies["https://api.stacspec.org/v1.0.0/"+part+"/openapi.yaml"] = filepath.Join(specDir, "bundled", "v1.0.0", part, "openapi.yaml")
	}
	return func(loader *openapi3.Loader, location *url.URL) ([]byte, error) {
		if location.Host == "" && (location.Scheme == "" || location.Scheme == "file") {
			return openapi3.ReadFromFile(loader, location)
		}
		u := *location
		u.Fragment = ""
		if file, ok := copies[u.String()]; ok {
			return os.ReadFile(file)
		}
		return nil, fmt.Errorf("no offline copy of %s (see stac-api-spec/README.md)", u.String())
	}
}

func loadDoc(t *testing.T, loader *openapi3.Loader, file string) *openapi3.T {
	t.Helper()
	doc, err := loader.LoadFromFile(file)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return doc
}

func newSpecLoader(specDir string) *openapi3.Loader {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	loader.ReadFromURIFunc = offlineReader(specDir)
	return loader
}

// TestOpenAPIMatchesSTACSpec checks openapi-3.0.yaml against the STAC API
// documents: every STAC operation exists, its query and path parameters
// exist with compatible types and requiredness, the request bodies accept
// the STAC members, and the 200/201 bodies require what STAC requires.
func TestOpenAPIMatchesSTACSpec(t *testing.T) {
	t.Parallel()
	specDir := stacAPISpecDir(t)
	ours := loadDoc(t, newSpecLoader(specDir), "openapi-3.0.yaml")

	allowed := make([][]mismatch, len(stacAllowed))
	for _, d := range stacSpecDocs {
		theirs := loadDoc(t, newSpecLoader(specDir), filepath.Join(specDir, filepath.FromSlash(d.file)))
		if len(theirs.Paths.Map()) == 0 && (theirs.Components == nil || len(theirs.Components.Parameters) == 0) {
			t.Errorf("%s: nothing to compare: the document was not read", d.name)
		}
	next:
		for _, m := range compareSTAC(d.name, ours, theirs) {
			for i, a := range stacAllowed {
				if allows(a.Doc, a.Method, a.Path, a.Field, m) {
					allowed[i] = append(allowed[i], m)
					continue next
				}
			}
			t.Error(m)
		}
	}
	for i, a := range stacAllowed {
		if len(allowed[i]) == 0 {
			t.Errorf("allow-list entry %q %q %q %q matches no difference any more: remove it", a.Doc, a.Method, a.Path, a.Field)
			continue
		}
		t.Logf("allowed %d difference(s) (%s), such as %s", len(allowed[i]), a.Reason, allowed[i][0])
	}
}

// TestCompareSTACDetectsDifferences feeds compareSTAC deliberately broken
// copies of our document, to show that the contract test can fail.
func TestCompareSTACDetectsDifferences(t *testing.T) {
	t.Parallel()
	specDir := stacAPISpecDir(t)
	theirs := func(name string) *openapi3.T {
		for _, d := range stacSpecDocs {
			if d.name == name {
				return loadDoc(t, newSpecLoader(specDir), filepath.Join(specDir, filepath.FromSlash(d.file)))
			}
		}
		t.Fatalf("no document %s", name)
		return nil
	}
	cases := []struct {
		doc    string
		mutate func(ours *openapi3.T)
		want   mismatch
	}{
		{"item-search", func(ours *openapi3.T) {
			op := ours.Paths.Value("/search").Get
			op.Parameters = slices.DeleteFunc(op.Parameters, func(p *openapi3.ParameterRef) bool { return p.Value.Name == "limit" })
		}, mismatch{"item-search", "GET", "/search", "query parameter limit", ""}},
		{"item-search", func(ours *openapi3.T) {
			ours.Paths.Value("/search").Get.Parameters.GetByInAndName("query", "limit").Schema.Value.Type = &openapi3.Types{"string"}
		}, mismatch{"item-search", "GET", "/search", "query parameter limit", ""}},
		{"filter", func(ours *openapi3.T) {
			op := ours.Paths.Value("/collections/{collectionId}/items").Get
			op.Parameters = slices.DeleteFunc(op.Parameters, func(p *openapi3.ParameterRef) bool { return p.Value.Name == "filter-lang" })
		}, mismatch{"filter", "GET", "/collections/{collectionId}/items", "query parameter filter-lang", ""}},
		{"ogcapi-features", func(ours *openapi3.T) {
			ours.Paths.Value("/collections/{collectionId}/items").Get.Parameters.GetByInAndName("query", "datetime").Required = true
			ours.Paths.Value("/collections/{collectionId}/items").Get.Parameters.GetByInAndName("path", "collectionId").Required = false
		}, mismatch{"ogcapi-features", "GET", "/collections/{collectionId}/items", "path parameter collectionId", ""}},
		{"fields", func(ours *openapi3.T) {
			op := ours.Paths.Value("/collections/{collectionId}/items").Get
			op.Parameters = slices.DeleteFunc(op.Parameters, func(p *openapi3.ParameterRef) bool { return p.Value.Name == "fields" })
		}, mismatch{"fields", "GET", "/collections/{collectionId}/items", "query parameter fields", ""}},
		{"ogcapi-features", func(ours *openapi3.T) {
			ours.Paths.Delete("/collections/{collectionId}/items/{itemId}")
		}, mismatch{"ogcapi-features", "GET", "/collections/{collectionId}/items/{featureId}", "operation", ""}},
		{"collections", func(ours *openapi3.T) {
			s := ours.Components.Schemas["Collection"].Value
			s.Required = slices.DeleteFunc(s.Required, func(n string) bool { return n == "license" })
		}, mismatch{"collections", "GET", "/collections", "response 200 body: collections[].license", ""}},
		{"collections", func(ours *openapi3.T) {
			ext := ours.Components.Schemas["Collection"].Value.Properties["extent"].Value.Properties["temporal"].Value
			ext.Required = nil
		}, mismatch{"collections", "GET", "/collections/{collectionId}", "response 200 body: extent.temporal.interval", ""}},
		{"core", func(ours *openapi3.T) {
			s := ours.Components.Schemas["LinkObject"].Value
			s.Required = []string{"href"}
		}, mismatch{"core", "GET", "/", "response 200 body: links[].rel", ""}},
		{"item-search", func(ours *openapi3.T) {
			s := ours.Components.Schemas["SearchBody"].Value
			s.Required = append(s.Required, "limit")
		}, mismatch{"item-search", "POST", "/search", "request body: limit", ""}},
		{"item-search", func(ours *openapi3.T) {
			ours.Components.Schemas["SearchBody"].Value.Properties["ids"].Value.Type = &openapi3.Types{"string"}
		}, mismatch{"item-search", "POST", "/search", "request body: ids", ""}},
		{"ogcapi-features", func(ours *openapi3.T) {
			ours.Components.Schemas["Conformance"].Value.Required = nil
		}, mismatch{"ogcapi-features", "GET", "/conformance", "response 200 body: conformsTo", ""}},
		{"transaction", func(ours *openapi3.T) {
			ours.Paths.Value("/collections/{collectionId}/items").Post.Responses.Delete("201")
		}, mismatch{"transaction", "POST", "/collections/{collectionId}/items", "responses", ""}},
		{"sort", func(ours *openapi3.T) {
			delete(ours.Components.Schemas["SearchBody"].Value.Properties, "sortby")
		}, mismatch{"sort", "POST", "/search", "request body: sortby", ""}},
	}
	for _, c := range cases {
		t.Run(c.doc+" "+c.want.Field, func(t *testing.T) {
			// A fresh copy each time: the cases change it.
			ours := loadDoc(t, newSpecLoader(specDir), "openapi-3.0.yaml")
			th := theirs(c.doc)
			wanted := func(m mismatch) bool {
				return m.Doc == c.want.Doc && m.Method == c.want.Method && m.Path == c.want.Path && m.Field == c.want.Field
			}
			if before := compareSTAC(c.doc, ours, th); slices.ContainsFunc(before, wanted) {
				t.Fatalf("the intact document already differs at %s %s %s: %v", c.want.Method, c.want.Path, c.want.Field, before)
			}
			c.mutate(ours)
			after := compareSTAC(c.doc, ours, th)
			if i := slices.IndexFunc(after, wanted); i >= 0 {
				t.Logf("found: %s", after[i])
				return
			}
			t.Fatalf("want a difference at %s %s %s, got %v", c.want.Method, c.want.Path, c.want.Field, after)
		})
	}
}

// mismatch is one way our document disagrees with a STAC document. Path is
// the STAC document's path template.
type mismatch struct{ Doc, Method, Path, Field, Problem string }

func (m mismatch) String() string {
	return fmt.Sprintf("%s: %s %s: %s: %s", m.Doc, m.Method, m.Path, m.Field, m.Problem)
}

// compareSTAC lists the ways ours disagrees with theirs, the STAC document
// named name.
func compareSTAC(name string, ours, theirs *openapi3.T) []mismatch {
	c := &comparer{doc: name, ours: ours}
	for _, path := range theirs.Paths.InMatchingOrder() {
		item := theirs.Paths.Value(path)
		for _, method := range sortedKeys(item.Operations()) {
			op := item.Operations()[method]
			ourPath, ourItem, ourOp := c.findOperation(method, path)
			if ourOp == nil {
				continue
			}
			c.compareParams(method, path, ourPath, mergeParams(item, op), mergeParams(ourItem, ourOp))
			c.compareRequest(method, path, op, ourOp)
			c.compareResponses(method, path, op, ourOp)
		}
	}

	// Extensions that only define components (fields, sort) bind their
	// query parameters to the item lists, and their searchBody to POST
	// /search.
	usedParams := map[string]bool{}
	for _, item := range theirs.Paths.Map() {
		for _, op := range item.Operations() {
			for k := range mergeParams(item, op) {
				usedParams[k] = true
			}
		}
	}
	var unbound map[string]*openapi3.Parameter
	if theirs.Components != nil {
		for _, n := range sortedKeys(theirs.Components.Parameters) {
			p := theirs.Components.Parameters[n].Value
			if p == nil || p.In != "query" || usedParams[p.In+" "+p.Name] {
				continue
			}
			if unbound == nil {
				unbound = map[string]*openapi3.Parameter{}
			}
			unbound[p.In+" "+p.Name] = p
		}
	}
	if unbound != nil {
		for _, mp := range itemListOps {
			method, path := mp[0], mp[1]
			ourPath, ourItem, ourOp := c.findOperation(method, path)
			if ourOp == nil {
				continue
			}
			c.compareParams(method, path, ourPath, unbound, mergeParams(ourItem, ourOp))
		}
	}
	if theirs.Components != nil && theirs.Paths.Value("/search") == nil {
		if sb := theirs.Components.Schemas["searchBody"]; sb != nil && sb.Value != nil {
			if _, _, ourOp := c.findOperation("POST", "/search"); ourOp != nil {
				c.compareBody("POST", "/search", "application/json", sb.Value, ourOp)
			}
		}
	}
	return c.out
}

type comparer struct {
	doc  string
	ours *openapi3.T
	out  []mismatch
}

func (c *comparer) add(method, path, field, format string, args ...any) {
	c.out = append(c.out, mismatch{c.doc, method, path, field, fmt.Sprintf(format, args...)})
}

// templateKey reduces a path template to its shape, naming no parameter.
func templateKey(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// findPath returns our path with the same template as theirs.
func (c *comparer) findPath(path string) (string, *openapi3.PathItem) {
	key := templateKey(path)
	for p, item := range c.ours.Paths.Map() {
		if templateKey(p) == key {
			return p, item
		}
	}
	return "", nil
}

// findOperation returns our operation of method on the path with the
// same template as theirs, with its path and path item; a missing one is
// noted as a mismatch and returned nil.
func (c *comparer) findOperation(method, path string) (string, *openapi3.PathItem, *openapi3.Operation) {
	ourPath, ourItem := c.findPath(path)
	var ourOp *openapi3.Operation
	if ourItem != nil {
		ourOp = ourItem.GetOperation(method)
	}
	if ourOp == nil {
		c.add(method, path, "operation", "not in our document")
	}
	return ourPath, ourItem, ourOp
}

// mergeParams returns the parameters of an operation, path-level ones
// included, keyed by "in name".
func mergeParams(item *openapi3.PathItem, op *openapi3.Operation) map[string]*openapi3.Parameter {
	out := map[string]*openapi3.Parameter{}
	for _, list := range []openapi3.Parameters{item.Parameters, op.Parameters} {
		for _, r := range list {
			if r != nil && r.Value != nil {
				out[r.Value.In+" "+r.Value.Name] = r.Value
			}
		}
	}
	return out
}

// compareParams checks their query and path parameters against ours.
// Path parameters are matched by their place in the template, since the
// names differ (featureId and itemId).
func (c *comparer) compareParams(method, path, ourPath string, theirs, ours map[string]*openapi3.Parameter) {
	theirSegs, ourSegs := strings.Split(path, "/"), strings.Split(ourPath, "/")
	for _, k := range sortedKeys(theirs) {
		tp := theirs[k]
		var field, ourKey string
		switch tp.In {
		case "query":
			field, ourKey = "query parameter "+tp.Name, k
		case "path":
			field = "path parameter " + tp.Name
			i := slices.Index(theirSegs, "{"+tp.Name+"}")
			if i < 0 || i >= len(ourSegs) {
				c.add(method, path, field, "not in the path template")
				continue
			}
			ourKey = "path " + strings.Trim(ourSegs[i], "{}")
		default:
			continue // headers and cookies are out of scope
		}
		op := ours[ourKey]
		if op == nil {
			c.add(method, path, field, "missing in our %s %s", method, ourPath)
			continue
		}
		if tp.Required && !op.Required {
			c.add(method, path, field, "required by STAC, optional in ours (%s %s %s)", method, ourPath, op.Name)
		}
		var tt, ot []string
		if tp.Schema != nil {
			tt = typesOf(tp.Schema.Value, 0)
		}
		if op.Schema != nil {
			ot = typesOf(op.Schema.Value, 0)
		}
		if !compatible(ot, tt) {
			c.add(method, path, field, "type %v in STAC, %v in ours (%s %s %s)", tt, ot, method, ourPath, op.Name)
		}
	}
}

// jsonMedia returns the JSON media types of content, sorted.
func jsonMedia(content openapi3.Content) []string {
	var out []string
	for mt, m := range content {
		if strings.Contains(mt, "json") && m != nil && m.Schema != nil && m.Schema.Value != nil {
			out = append(out, mt)
		}
	}
	sort.Strings(out)
	return out
}

// pickMedia returns our media type matching want, or else our first JSON one.
func pickMedia(content openapi3.Content, want string) (string, *openapi3.Schema) {
	mts := jsonMedia(content)
	if len(mts) == 0 {
		return "", nil
	}
	mt := mts[0]
	if slices.Contains(mts, want) {
		mt = want
	}
	return mt, content[mt].Schema.Value
}

// compareRequest checks that our request body accepts every member of
// theirs and requires no member theirs leaves optional.
func (c *comparer) compareRequest(method, path string, op, ourOp *openapi3.Operation) {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return
	}
	for _, mt := range jsonMedia(op.RequestBody.Value.Content) {
		c.compareBody(method, path, mt, op.RequestBody.Value.Content[mt].Schema.Value, ourOp)
	}
}

func (c *comparer) compareBody(method, path, mt string, theirs *openapi3.Schema, ourOp *openapi3.Operation) {
	if ourOp.RequestBody == nil || ourOp.RequestBody.Value == nil {
		c.add(method, path, "request body", "ours takes no request body")
		return
	}
	_, ours := pickMedia(ourOp.RequestBody.Value.Content, mt)
	if ours == nil {
		c.add(method, path, "request body", "ours takes no JSON request body")
		return
	}
	// Every alternative STAC allows must fit one of ours.
	for _, ta := range alternatives(theirs) {
		c.out = append(c.out, bestOf(alternatives(ours), func(oa *openapi3.Schema) []mismatch {
			sub := &comparer{doc: c.doc}
			sub.requestSchema(method, path, "request body", oa, ta, 0)
			return sub.out
		})...)
	}
}

// requestSchema checks that ours accepts what theirs describes.
func (c *comparer) requestSchema(method, path, field string, ours, theirs *openapi3.Schema, depth int) {
	if ours == nil || theirs == nil || depth > 6 {
		return
	}
	if ours.Items != nil && theirs.Items != nil {
		c.requestSchema(method, path, field+"[]", ours.Items.Value, theirs.Items.Value, depth+1)
		return
	}
	theirReq, theirProps := flatten(theirs, 0)
	ourReq, ourProps := flatten(ours, 0)
	for _, n := range ourReq {
		if !slices.Contains(theirReq, n) {
			c.add(method, path, sub(field, n), "ours requires it, STAC does not")
		}
	}
	closed := ours.AdditionalProperties.Has != nil && !*ours.AdditionalProperties.Has
	for _, n := range sortedKeys(theirProps) {
		tp, op := theirProps[n], ourProps[n]
		if op == nil {
			if closed {
				c.add(method, path, sub(field, n), "not accepted by ours (additionalProperties: false)")
			}
			continue
		}
		tt, ot := typesOf(tp.Value, 0), typesOf(op.Value, 0)
		if !compatible(ot, tt) {
			c.add(method, path, sub(field, n), "type %v in STAC, %v in ours", tt, ot)
			continue
		}
		if len(tp.Value.OneOf) == 0 && len(tp.Value.AnyOf) == 0 {
			c.requestSchema(method, path, sub(field, n), op.Value, tp.Value, depth+1)
		}
	}
}

// compareResponses checks that every 200 and 201 body ours gives requires
// what STAC requires.
func (c *comparer) compareResponses(method, path string, op, ourOp *openapi3.Operation) {
	if op.Responses == nil {
		return
	}
	theirCodes := op.Responses.Map()
	var ourCodes map[string]*openapi3.ResponseRef
	if ourOp.Responses != nil {
		ourCodes = ourOp.Responses.Map()
	}
	var theirOK, ourOK []string
	for code := range theirCodes {
		if strings.HasPrefix(code, "2") {
			theirOK = append(theirOK, code)
		}
	}
	for code := range ourCodes {
		if strings.HasPrefix(code, "2") && theirCodes[code] != nil {
			ourOK = append(ourOK, code)
		}
	}
	sort.Strings(theirOK)
	if len(theirOK) > 0 && len(ourOK) == 0 {
		c.add(method, path, "responses", "ours has none of STAC's success codes %v", theirOK)
		return
	}
	for _, code := range []string{"200", "201"} {
		tr := theirCodes[code]
		if tr == nil || tr.Value == nil {
			continue
		}
		for _, mt := range jsonMedia(tr.Value.Content) {
			field := "response " + code + " body"
			or := ourCodes[code]
			if or == nil || or.Value == nil {
				if len(ourOK) == 0 {
					c.add(method, path, field, "ours has no %s response", code)
				}
				continue // ours answers with another code STAC allows
			}
			_, ours := pickMedia(or.Value.Content, mt)
			if ours == nil {
				c.add(method, path, field, "ours has no JSON body")
				continue
			}
			c.out = append(c.out, bestOf(alternatives(ours), func(oa *openapi3.Schema) []mismatch {
				sub := &comparer{doc: c.doc}
				sub.responseSchema(method, path, field, oa, tr.Value.Content[mt].Schema.Value, 0)
				return sub.out
			})...)
		}
	}
}

// responseSchema checks that ours requires every member theirs requires,
// in the object and in the objects nested in it.
func (c *comparer) responseSchema(method, path, field string, ours, theirs *openapi3.Schema, depth int) {
	if ours == nil || theirs == nil || depth > 8 || len(theirs.OneOf) > 0 || len(theirs.AnyOf) > 0 {
		return
	}
	if len(ours.OneOf) > 0 || len(ours.AnyOf) > 0 {
		c.out = append(c.out, bestOf(alternatives(ours), func(oa *openapi3.Schema) []mismatch {
			sub := &comparer{doc: c.doc}
			sub.responseSchema(method, path, field, oa, theirs, depth+1)
			return sub.out
		})...)
		return
	}
	if ours.Items != nil && theirs.Items != nil {
		c.responseSchema(method, path, field+"[]", ours.Items.Value, theirs.Items.Value, depth+1)
	}
	if ours.AdditionalProperties.Schema != nil && theirs.AdditionalProperties.Schema != nil {
		c.responseSchema(method, path, sub(field, "*"), ours.AdditionalProperties.Schema.Value, theirs.AdditionalProperties.Schema.Value, depth+1)
	}
	theirReq, theirProps := flatten(theirs, 0)
	ourReq, ourProps := flatten(ours, 0)
	for _, n := range theirReq {
		if slices.Contains(ourReq, n) {
			continue
		}
		if ourProps[n] != nil {
			c.add(method, path, sub(field, n), "required by STAC, optional in ours")
		} else {
			c.add(method, path, sub(field, n), "required by STAC, not in ours")
		}
	}
	for _, n := range sortedKeys(theirProps) {
		tp, op := theirProps[n], ourProps[n]
		if op == nil || op.Value == nil || tp.Value == nil {
			continue
		}
		if tt, ot := typesOf(tp.Value, 0), typesOf(op.Value, 0); !compatible(ot, tt) {
			c.add(method, path, sub(field, n), "type %v in STAC, %v in ours", tt, ot)
			continue
		}
		c.responseSchema(method, path, sub(field, n), op.Value, tp.Value, depth+1)
	}
}

// sub names member n of field: "response 200 body: links[].rel".
func sub(field, n string) string {
	if strings.HasSuffix(field, " body") {
		return field + ": " + n
	}
	return field + "." + n
}

// alternatives returns the oneOf/anyOf branches of s, or s itself.
func alternatives(s *openapi3.Schema) []*openapi3.Schema {
	var out []*openapi3.Schema
	for _, refs := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf} {
		for _, r := range refs {
			if r != nil && r.Value != nil {
				out = append(out, r.Value)
			}
		}
	}
	if len(out) == 0 {
		return []*openapi3.Schema{s}
	}
	return out
}

// bestOf returns the shortest list of mismatches that check finds over the
// alternatives, none when one of them fits.
func bestOf(alts []*openapi3.Schema, check func(*openapi3.Schema) []mismatch) []mismatch {
	var best []mismatch
	for i, a := range alts {
		ms := check(a)
		if len(ms) == 0 {
			return nil
		}
		if i == 0 || len(ms) < len(best) {
			best = ms
		}
	}
	return best
}

// flatten gathers the required members and properties of s and its allOf.
func flatten(s *openapi3.Schema, depth int) ([]string, map[string]*openapi3.SchemaRef) {
	props := map[string]*openapi3.SchemaRef{}
	var req []string
	if s == nil || depth > 8 {
		return req, props
	}
	for _, a := range s.AllOf {
		if a == nil || a.Value == nil {
			continue
		}
		r, p := flatten(a.Value, depth+1)
		for _, n := range r {
			if !slices.Contains(req, n) {
				req = append(req, n)
			}
		}
		for n, v := range p {
			props[n] = v
		}
	}
	for _, n := range s.Required {
		if !slices.Contains(req, n) {
			req = append(req, n)
		}
	}
	for n, v := range s.Properties {
		if v != nil && v.Value != nil {
			props[n] = v
		}
	}
	return req, props
}

// typesOf returns the JSON types s allows, nil when it does not say.
func typesOf(s *openapi3.Schema, depth int) []string {
	if s == nil || depth > 8 {
		return nil
	}
	if s.Type != nil && !s.Type.IsEmpty() {
		return s.Type.Slice()
	}
	var out []string
	for _, refs := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf} {
		for _, r := range refs {
			ts := typesOf(r.Value, depth+1)
			if ts == nil {
				return nil // one branch allows anything
			}
			for _, t := range ts {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
		}
	}
	if out != nil {
		return out
	}
	for _, r := range s.AllOf {
		if ts := typesOf(r.Value, depth+1); ts != nil {
			return ts
		}
	}
	switch {
	case len(s.Properties) > 0:
		return []string{"object"}
	case s.Items != nil:
		return []string{"array"}
	}
	return nil
}

// compatible reports whether a value STAC allows (of a type in theirs) can
// be of a type ours allows; an integer is a number, not the reverse.
func compatible(ours, theirs []string) bool {
	if len(ours) == 0 || len(theirs) == 0 {
		return true
	}
	for _, o := range ours {
		for _, t := range theirs {
			if o == t || o == "number" && t == "integer" {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
