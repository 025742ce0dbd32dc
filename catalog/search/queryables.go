package search

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/twinstac/twinstac/catalog"
)

// Queryables are the properties a filter may name, described as JSON
// Schema (the OGC API Features Part 3 queryables resource). The catalog
// derives them from a sample of each collection's items; an
// administrator refines them (titles, descriptions, enums, and which are
// indexed) with a document of the same form.

// QueryableStore keeps the refined queryables of collections. Stores
// implement it.
type QueryableStore interface {
	// Queryables returns a collection's refined queryables document, nil
	// when none was set. Codes: ENOTFOUND (no collection).
	Queryables(ctx context.Context, collection string) (json.RawMessage, error)
	// SetQueryables stores a collection's refined queryables document
	// and brings the collection's property indexes in line with indexes:
	// it builds the missing ones and drops the others. A store that
	// cannot index properties keeps the document only (Indexes says so).
	// Codes: ENOTFOUND (no collection), EUNAVAILABLE.
	SetQueryables(ctx context.Context, collection string, doc json.RawMessage, indexes []IndexedProperty) error
	// IndexesProperties reports whether SetQueryables builds indexes.
	IndexesProperties() bool
}

// IndexedProperty is a property a store indexes for filters (equality
// and ranges on Type's values, with the default order) and for sorting;
// an array for A_CONTAINS.
type IndexedProperty struct {
	Name string
	// Type is "number", "string", "boolean" or "array".
	Type string
}

// IndexKeyword marks a queryable as indexed in a refined document.
const IndexKeyword = "x-twinstac-index"

// SampleSize is how many of a collection's newest items queryables are
// derived from.
const SampleSize = 1000

// coreQueryables are the item members every collection has.
func coreQueryables() map[string]any {
	return map[string]any{
		PropID:         map[string]any{"title": "Item id", "type": "string"},
		PropCollection: map[string]any{"title": "Collection id", "type": "string"},
		PropGeometry:   map[string]any{"title": "Geometry", "$ref": "https://geojson.org/schema/Geometry.json"},
		PropDatetime:   map[string]any{"title": "Datetime", "type": "string", "format": "date-time"},
		PropState: map[string]any{"title": "Lifecycle state", "type": "string",
			"enum": []any{"draft", "published", "deprecated", "archived"}},
	}
}

// Derive describes the properties of a sample of items: each property's
// JSON types (a string that parses as an RFC 3339 date-time has format
// date-time, an array the types of its elements).
func Derive(items []*catalog.Item) map[string]any {
	types := map[string]map[string]bool{}
	formats := map[string]map[string]bool{}
	elems := map[string]map[string]bool{}
	for _, it := range items {
		for name, raw := range it.Props {
			t := jsonType(raw)
			if t == "null" {
				continue
			}
			if types[name] == nil {
				types[name], formats[name], elems[name] = map[string]bool{}, map[string]bool{}, map[string]bool{}
			}
			types[name][t] = true
			switch t {
			case "string":
				var s string
				if json.Unmarshal(raw, &s) == nil {
					if _, err := catalog.ParseTime(s); err == nil {
						formats[name]["date-time"] = true
					} else {
						formats[name]["-"] = true
					}
				}
			case "array":
				var list []json.RawMessage
				if json.Unmarshal(raw, &list) == nil {
					for _, el := range list {
						if et := jsonType(el); et != "null" {
							elems[name][et] = true
						}
					}
				}
			}
		}
	}
	out := map[string]any{}
	for name, ts := range types {
		s := map[string]any{}
		list := slices.Sorted(maps.Keys(ts))
		if len(list) == 1 {
			s["type"] = list[0]
		} else {
			s["type"] = list
		}
		if ts["string"] && len(formats[name]) == 1 && formats[name]["date-time"] {
			s["format"] = "date-time"
		}
		if ts["array"] {
			if es := slices.Sorted(maps.Keys(elems[name])); len(es) == 1 {
				s["items"] = map[string]any{"type": es[0]}
			}
		}
		out[name] = s
	}
	return out
}

// jsonType names the JSON type of a raw value ("number" for any number).
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "null"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// QueryablesDocument builds the JSON Schema document at id (its URL)
// from derived properties and refined documents (nil ones are skipped;
// a refined property replaces a derived one of the same name).
func QueryablesDocument(id, title string, derived map[string]any, refined ...json.RawMessage) (map[string]any, error) {
	props := coreQueryables()
	maps.Copy(props, derived)
	doc := map[string]any{
		"$schema":              "https://json-schema.org/draft/2019-09/schema",
		"$id":                  id,
		"type":                 "object",
		"title":                title,
		"additionalProperties": true,
	}
	for _, r := range refined {
		if r == nil {
			continue
		}
		var ref struct {
			Title       string                     `json:"title"`
			Description string                     `json:"description"`
			Properties  map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(r, &ref); err != nil {
			return nil, catalog.Internal(err)
		}
		if ref.Title != "" {
			doc["title"] = ref.Title
		}
		if ref.Description != "" {
			doc["description"] = ref.Description
		}
		for name, p := range ref.Properties {
			props[name] = p
		}
	}
	doc["properties"] = props
	return doc, nil
}

// ParseRefined checks an administrator's queryables document: a JSON
// object whose properties member maps names to JSON Schema objects. It
// returns the document and the properties marked indexed, which must
// name one of the types number, integer, string, boolean or array.
// Codes: EINVALID.
func ParseRefined(raw []byte) (json.RawMessage, []IndexedProperty, error) {
	var doc struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, nil, catalog.Invalid("", "the queryables are a JSON Schema object")
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, nil, catalog.Invalid("", "the queryables are not a JSON object: %v", err)
	}
	var idx []IndexedProperty
	for _, name := range slices.Sorted(maps.Keys(doc.Properties)) {
		at := "/properties/" + strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
		var p map[string]json.RawMessage
		if err := json.Unmarshal(doc.Properties[name], &p); err != nil || p == nil {
			return nil, nil, catalog.Invalid(at, "a queryable is a JSON Schema object")
		}
		if name == "" || len(name) > 256 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, nil, catalog.Invalid(at, "%q is not a property name", name)
		}
		raw, ok := p[IndexKeyword]
		if !ok {
			continue
		}
		var on bool
		if json.Unmarshal(raw, &on) != nil {
			return nil, nil, catalog.Invalid(at+"/"+IndexKeyword, "%s is true or false", IndexKeyword)
		}
		if !on {
			continue
		}
		switch name {
		case PropID, PropCollection, PropDatetime, PropState, PropGeometry, PropGeom:
			return nil, nil, catalog.Invalid(at+"/"+IndexKeyword, "%q is always indexed", name)
		}
		var typ string
		_ = json.Unmarshal(p["type"], &typ)
		switch typ {
		case "number", "integer":
			typ = "number"
		case "string", "boolean", "array":
		default:
			return nil, nil, catalog.Invalid(at+"/type", "an indexed queryable has type number, integer, string, boolean or array")
		}
		idx = append(idx, IndexedProperty{Name: name, Type: typ})
	}
	return json.RawMessage(raw), idx, nil
}
