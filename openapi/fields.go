package openapi

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/twinstac/twinstac/catalog"
)

// The fields extension: which members of each item a search returns.
// Rules follow the extension's include/exclude semantics: the most
// specific path decides, include wins over exclude for the same path,
// and a page without rules returns whole items.

// FieldsJSON is the fields member of a POST search. Include is a pointer
// so that a missing include (every field but the excluded ones) differs
// from an empty one (the default set but the excluded ones).
type FieldsJSON struct {
	Include *[]string `json:"include,omitempty" doc:"Fields to return (properties as name or properties.name)." example:"[\"id\",\"properties.eo:cloud_cover\"]"`
	Exclude []string  `json:"exclude,omitempty" doc:"Fields to leave out." example:"[\"geometry\"]"`
}

// itemMembers are the top-level members of an item; any other name in
// a fields list is a property.
var itemMembers = []string{"type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "properties", "links", "assets", "collection"}

// defaultFields are returned when the rules include nothing: what makes
// a valid STAC item.
var defaultFields = []string{"type", "stac_version", "id", "geometry", "bbox", "links", "assets", "collection", "properties.datetime"}

// fieldRules is a parsed fields request.
type fieldRules struct {
	include, exclude [][]string // paths split on "."
	// all: with no include, start from every field (else the default set).
	all bool
}

func fieldPath(name string) []string {
	parts := strings.Split(strings.TrimSpace(name), ".")
	if !slices.Contains(itemMembers, parts[0]) {
		parts = append([]string{"properties"}, parts...)
	}
	return parts
}

// parseFieldsParam reads the GET form: comma-separated names, "-" for an
// exclusion, an optional "+" for an inclusion. nil when absent.
func parseFieldsParam(s string, present bool) *fieldRules {
	if !present {
		return nil
	}
	r := &fieldRules{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "" || f == "-" || f == "+":
		case f[0] == '-':
			r.exclude = append(r.exclude, fieldPath(f[1:]))
		case f[0] == '+':
			r.include = append(r.include, fieldPath(f[1:]))
		default:
			r.include = append(r.include, fieldPath(f))
		}
	}
	return r
}

// fieldsOf reads the POST form; nil when absent.
func fieldsOf(f *FieldsJSON) *fieldRules {
	if f == nil {
		return nil
	}
	r := &fieldRules{all: f.Include == nil && len(f.Exclude) > 0}
	if f.Include != nil {
		for _, p := range *f.Include {
			if strings.TrimSpace(p) != "" {
				r.include = append(r.include, fieldPath(p))
			}
		}
	}
	for _, p := range f.Exclude {
		if strings.TrimSpace(p) != "" {
			r.exclude = append(r.exclude, fieldPath(p))
		}
	}
	return r
}

// decision is what the rules say about a path: 0 nothing, 1 include,
// -1 exclude, with the length of the rule that said it.
func (r *fieldRules) decide(path []string) (verdict, depth int) {
	best := func(rules [][]string) int {
		n := -1
		for _, rule := range rules {
			if len(rule) <= len(path) && slices.Equal(rule, path[:len(rule)]) && len(rule) > n {
				n = len(rule)
			}
		}
		return n
	}
	in, ex := best(r.include), best(r.exclude)
	switch {
	case in < 0 && ex < 0:
		return 0, -1
	case in >= ex:
		return 1, in
	}
	return -1, ex
}

// below reports whether some rule names a path under path.
func (r *fieldRules) below(path []string) bool {
	for _, rules := range [][][]string{r.include, r.exclude} {
		for _, rule := range rules {
			if len(rule) > len(path) && slices.Equal(rule[:len(path)], path) {
				return true
			}
		}
	}
	return false
}

// base says whether a path no rule names is returned.
func (r *fieldRules) base(path []string, datetimeNull bool) bool {
	if len(r.include) > 0 {
		return len(path) == 1 && (path[0] == "id" || path[0] == "type")
	}
	if r.all {
		return true
	}
	p := strings.Join(path, ".")
	if slices.Contains(defaultFields, p) {
		return true
	}
	return datetimeNull && (p == "properties.start_datetime" || p == "properties.end_datetime")
}

// apply projects a rendered item.
func (r *fieldRules) apply(item json.RawMessage) (json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(item, &doc); err != nil {
		return nil, catalog.Internal(err)
	}
	datetimeNull := false
	if props, ok := doc["properties"]; ok {
		var p map[string]json.RawMessage
		if json.Unmarshal(props, &p) == nil {
			d, ok := p["datetime"]
			datetimeNull = !ok || string(d) == "null"
		}
	}
	out, _ := r.project(doc, nil, datetimeNull)
	b, err := json.Marshal(out)
	if err != nil {
		return nil, catalog.Internal(err)
	}
	return b, nil
}

// project keeps the members of obj (at path) the rules return; it
// reports whether anything was kept.
func (r *fieldRules) project(obj map[string]json.RawMessage, path []string, datetimeNull bool) (map[string]json.RawMessage, bool) {
	out := map[string]json.RawMessage{}
	for k, v := range obj {
		p := append(slices.Clone(path), k)
		verdict, _ := r.decide(p)
		if r.below(p) {
			var child map[string]json.RawMessage
			if json.Unmarshal(v, &child) == nil && child != nil {
				if sub, ok := r.project(child, p, datetimeNull); ok || verdict == 1 {
					b, _ := json.Marshal(sub)
					out[k] = b
				}
				continue
			}
		}
		switch {
		case len(path) == 0 && (k == "id" || k == "type"):
			// Always kept: a feature is recognisable by them.
			out[k] = v
		case verdict == 1, verdict == 0 && r.base(p, datetimeNull):
			out[k] = v
		case verdict == 0 && len(path) == 0 && k == "properties" && len(r.include) == 0 && !r.all:
			// The default set reaches into properties.
			var child map[string]json.RawMessage
			if json.Unmarshal(v, &child) == nil {
				sub, _ := r.project(child, p, datetimeNull)
				b, _ := json.Marshal(sub)
				out[k] = b
			}
		}
	}
	return out, len(out) > 0
}
