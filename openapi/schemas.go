package openapi

import (
	"github.com/danielgtaylor/huma/v2"
)

// STAC objects are open: extensions add members at the top level and in
// properties, so their schemas allow additional properties. They are
// written by hand rather than reflected from Go types, because the Go
// side keeps documents member by member.

const schemaRef = "#/components/schemas/"

func ref(name string) *huma.Schema { return &huma.Schema{Ref: schemaRef + name} }

func str(desc string) *huma.Schema { return &huma.Schema{Type: "string", Description: desc} }

func arr(items *huma.Schema) *huma.Schema { return &huma.Schema{Type: "array", Items: items} }

func openObject(desc string, props map[string]*huma.Schema, required ...string) *huma.Schema {
	return &huma.Schema{Type: "object", Description: desc, Properties: props, Required: required, AdditionalProperties: true}
}

// registerSchemas adds the STAC schemas to the registry once.
func registerSchemas(r huma.Registry) {
	m := r.Map()
	if _, ok := m["Item"]; ok {
		return
	}
	m["Link"] = openObject("A link to a related resource.", map[string]*huma.Schema{
		"href":   {Type: "string", Description: "The URL of the link target.", Examples: []any{"https://example.com/collections/c/items/i"}},
		"rel":    str("The relation type, such as self, parent, next or predecessor-version."),
		"type":   str("The media type of the target."),
		"title":  str("A title for the link."),
		"method": {Type: "string", Description: "The HTTP method of the link (paging links of POST searches)."},
		"body":   {Type: "object", Description: "The body to send with the link's method.", AdditionalProperties: true},
		"merge":  {Type: "boolean", Description: "Whether to merge body into the request that produced the link."},
	}, "href", "rel")
	m["Asset"] = openObject("A file of an item. Uploaded files carry file:size and file:checksum.", map[string]*huma.Schema{
		"href":          str("The URL of the file."),
		"type":          str("The media type of the file."),
		"title":         str("A title."),
		"roles":         arr(str("")),
		"file:size":     {Type: "integer", Description: "The size in bytes (STAC file extension)."},
		"file:checksum": str("The sha2-256 multihash of the file, in hex (STAC file extension)."),
	}, "href")
	m["Geometry"] = &huma.Schema{
		Type:        "object",
		Nullable:    true,
		Description: "A GeoJSON geometry in WGS 84 longitude/latitude, or null.",
		Properties: map[string]*huma.Schema{
			"type":        {Type: "string", Enum: []any{"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}},
			"coordinates": {Type: "array", Items: &huma.Schema{}},
			"geometries":  {Type: "array", Items: &huma.Schema{Type: "object", AdditionalProperties: true}},
		},
		Required:             []string{"type"},
		AdditionalProperties: true,
	}
	bbox := &huma.Schema{Type: "array", Items: &huma.Schema{Type: "number"}, MinItems: ptr(4), MaxItems: ptr(6),
		Description: "Bounding box [west, south, east, north] or [west, south, bottom, east, north, top]."}
	itemProps := func() map[string]*huma.Schema {
		return map[string]*huma.Schema{
			"type":            {Type: "string", Enum: []any{"Feature"}},
			"stac_version":    str("The STAC version of the item (1.0.0 or 1.1.0)."),
			"stac_extensions": arr(str("")),
			"id":              str("The item id, unique in its collection."),
			"collection":      str("The id of the item's collection."),
			"geometry":        ref("Geometry"),
			"bbox":            bbox,
			"properties": openObject("Item properties. `datetime` (or `start_datetime` and `end_datetime`) is required; `dt:state`, `created`, `updated`, `published` and `unpublished` are kept by the server.", map[string]*huma.Schema{
				"datetime": {Type: "string", Format: "date-time", Nullable: true, Description: "The nominal time of the item, or null with start_datetime and end_datetime."},
				"dt:state": {Type: "string", Enum: []any{"draft", "published", "deprecated", "archived", "deleted"}, Description: "The lifecycle state."},
			}),
			"links":  arr(ref("Link")),
			"assets": {Type: "object", AdditionalProperties: ref("Asset"), Description: "The item's files, by key."},
		}
	}
	m["Item"] = openObject("A STAC item as the catalog holds it.", itemProps(),
		"type", "stac_version", "id", "collection", "geometry", "properties", "links", "assets")
	// An item the server returns always has datetime (null with a range),
	// as STAC requires; one sent may leave it out with a range.
	m["Item"].Properties["properties"].Required = []string{"datetime"}
	m["ItemInput"] = openObject("A STAC item sent by a client. The server adds links, dt:state and timestamps; members it does not know round-trip unchanged.", itemProps(),
		"id", "geometry", "properties")
	m["ItemProjection"] = openObject("A STAC item, whole unless a search's fields parameter leaves members out; type and id are always there.", itemProps(),
		"type", "id")
	m["ItemCollection"] = openObject("A page of items (a GeoJSON FeatureCollection).", map[string]*huma.Schema{
		"type":           {Type: "string", Enum: []any{"FeatureCollection"}},
		"features":       arr(ref("ItemProjection")),
		"links":          arr(ref("Link")),
		"numberReturned": {Type: "integer", Description: "The number of items on this page."},
		"numberMatched":  {Type: "integer", Description: "The number of items that match, when known."},
	}, "type", "features")
	m["ItemCollectionInput"] = openObject("Items to create in one request (a GeoJSON FeatureCollection).", map[string]*huma.Schema{
		"type":     {Type: "string", Enum: []any{"FeatureCollection"}},
		"features": arr(ref("ItemInput")),
	}, "type", "features")
	extent := &huma.Schema{Type: "object", Description: "The spatial and temporal extent.", Properties: map[string]*huma.Schema{
		"spatial": {Type: "object", AdditionalProperties: true, Required: []string{"bbox"}, Properties: map[string]*huma.Schema{
			"bbox": {Type: "array", Items: bbox}}},
		"temporal": {Type: "object", AdditionalProperties: true, Required: []string{"interval"}, Properties: map[string]*huma.Schema{
			"interval": {Type: "array", Items: &huma.Schema{Type: "array", Items: &huma.Schema{Type: "string", Format: "date-time", Nullable: true}, MinItems: ptr(2), MaxItems: ptr(2)}}}},
	}, Required: []string{"spatial", "temporal"}, AdditionalProperties: true}
	collProps := func() map[string]*huma.Schema {
		return map[string]*huma.Schema{
			"type":            {Type: "string", Enum: []any{"Collection"}},
			"stac_version":    str("The STAC version (1.0.0 or 1.1.0)."),
			"stac_extensions": arr(str("")),
			"id":              str("The collection id."),
			"title":           str("A short title."),
			"description":     str("A description (CommonMark)."),
			"keywords":        arr(str("")),
			"license":         str("An SPDX license id, or \"other\"."),
			"extent":          extent,
			"links":           arr(ref("Link")),
		}
	}
	m["Collection"] = openObject("A STAC collection.", collProps(), "type", "stac_version", "id", "description", "license", "extent", "links")
	m["CollectionInput"] = openObject("A STAC collection sent by a client; the server adds its links.", collProps(), "id", "description", "license", "extent")
	m["Collections"] = openObject("A page of collections.", map[string]*huma.Schema{
		"collections":    arr(ref("Collection")),
		"links":          arr(ref("Link")),
		"numberReturned": {Type: "integer"},
	}, "collections", "links")
	m["MergePatch"] = &huma.Schema{Type: "object", AdditionalProperties: true,
		Description: "A JSON merge patch (RFC 7396): members set replace, members set to null are removed."}
}

func ptr[T any](v T) *T { return &v }

// Body types carry pre-rendered JSON and name their schema.

// itemJSON is one item as served.
type itemJSON []byte

func (b itemJSON) MarshalJSON() ([]byte, error)      { return b, nil }
func (b itemJSON) encodedJSON() []byte               { return b }
func (itemJSON) Schema(r huma.Registry) *huma.Schema { registerSchemas(r); return ref("Item") }
func (itemJSON) ContentType(string) string           { return "application/geo+json" }

// itemsJSON is a page of items.
type itemsJSON []byte

func (b itemsJSON) MarshalJSON() ([]byte, error) { return b, nil }
func (b itemsJSON) encodedJSON() []byte          { return b }
func (itemsJSON) Schema(r huma.Registry) *huma.Schema {
	registerSchemas(r)
	return ref("ItemCollection")
}
func (itemsJSON) ContentType(string) string { return "application/geo+json" }

// collectionJSON is one collection as served.
type collectionJSON []byte

func (b collectionJSON) MarshalJSON() ([]byte, error) { return b, nil }
func (b collectionJSON) encodedJSON() []byte          { return b }
func (collectionJSON) Schema(r huma.Registry) *huma.Schema {
	registerSchemas(r)
	return ref("Collection")
}

// collectionsJSON is a page of collections.
type collectionsJSON []byte

func (b collectionsJSON) MarshalJSON() ([]byte, error) { return b, nil }
func (b collectionsJSON) encodedJSON() []byte          { return b }
func (collectionsJSON) Schema(r huma.Registry) *huma.Schema {
	registerSchemas(r)
	return ref("Collections")
}

// rawInput receives a request body as bytes; schema names the schema the
// request documents.
type rawInput []byte

func (b *rawInput) UnmarshalJSON(data []byte) error { *b = append((*b)[:0], data...); return nil }

// itemInput is the body of an item create or replace.
type itemInput struct{ rawInput }

func (itemInput) Schema(r huma.Registry) *huma.Schema { registerSchemas(r); return ref("ItemInput") }

// itemOrFeaturesInput is the body of POST .../items: an item or a
// FeatureCollection of items.
type itemOrFeaturesInput struct{ rawInput }

func (itemOrFeaturesInput) Schema(r huma.Registry) *huma.Schema {
	registerSchemas(r)
	return &huma.Schema{OneOf: []*huma.Schema{ref("ItemInput"), ref("ItemCollectionInput")}}
}

// collectionInput is the body of a collection create or replace.
type collectionInput struct{ rawInput }

func (collectionInput) Schema(r huma.Registry) *huma.Schema {
	registerSchemas(r)
	return ref("CollectionInput")
}

// patchInput is a merge patch body.
type patchInput struct{ rawInput }

func (patchInput) Schema(r huma.Registry) *huma.Schema { registerSchemas(r); return ref("MergePatch") }
