package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"time"

	geom "github.com/twpayne/go-geom"
)

// STAC versions the catalog accepts; new objects get DefaultSTACVersion.
const DefaultSTACVersion = "1.1.0"

var stacVersions = []string{"1.0.0", "1.1.0"}

// Property names the server manages.
const (
	PropState       = "dt:state"
	PropCreated     = "created"
	PropUpdated     = "updated"
	PropPublished   = "published"
	PropUnpublished = "unpublished"
	PropExpires     = "expires"
	PropDeprecated  = "deprecated"
)

// Extension schemas the server adds when it sets their fields.
const (
	ExtTimestamps = "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json"
	ExtVersion    = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
	ExtFile       = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
)

// Link relations the server writes itself; clients' links with these
// relations are replaced by the server's.
var serverRels = []string{"self", "root", "parent", "collection", "items", "latest-version"}

// Item is a STAC item as the catalog holds it: the extracted, indexed
// fields beside the whole document.
type Item struct {
	Collection string
	ID         string
	State      State
	// Start and End bound the item's time: datetime, or
	// start_datetime/end_datetime. Both are truncated to microseconds.
	Start, End time.Time
	// Geometry is nil for an item with a null geometry. Items a store
	// reads (LoadItem) leave it nil until LoadGeometry is called: reads
	// that only serve the document do not pay for decoding it.
	Geometry geom.T
	BBox     []float64
	Created  time.Time
	Updated  time.Time
	// ETag changes with every change of the stored document.
	ETag string
	// Doc holds every top-level member but properties; Props the
	// properties. Both are nil for a deleted item (a tombstone).
	Doc   Document
	Props Document
	// sealed is the document as of the last Seal.
	sealed []byte
	// lazyGeometry is set while Geometry has not been decoded from Doc.
	lazyGeometry bool
}

// LoadGeometry decodes the geometry of an item a store read, once, and
// returns it (nil for a null geometry).
func (it *Item) LoadGeometry() (geom.T, error) {
	if it.lazyGeometry {
		g, err := ParseGeometry("/geometry", it.Doc["geometry"])
		if err != nil {
			return nil, err
		}
		it.Geometry, it.lazyGeometry = g, false
	}
	return it.Geometry, nil
}

// copyGeometry gives to the geometry of it, decoded or not; to's Doc
// must hold the same geometry member.
func (it *Item) copyGeometry(to *Item) {
	to.Geometry, to.lazyGeometry = it.Geometry, it.lazyGeometry
}

// Owner returns the item's own owner (dt:owner), or "" when it has the
// collection's.
func (it *Item) Owner() string {
	if it.Props == nil {
		return ""
	}
	o, _, _ := it.Props.String("", PropOwner)
	return o
}

// Deleted reports whether the item is a tombstone.
func (it *Item) Deleted() bool { return it.State == StateDeleted }

// MarshalDocument returns the stored JSON document of the item (without
// the links the server adds when it serves it).
func (it *Item) MarshalDocument() ([]byte, error) {
	if it.Doc == nil {
		return []byte("null"), nil
	}
	return appendDocument(make([]byte, 0, 2048), it.Doc, "properties", it.Props), nil
}

// SealedDocument returns the document as of the last Seal, which is what
// stores write: items reach stores sealed. For an item never sealed it
// marshals the document.
func (it *Item) SealedDocument() ([]byte, error) {
	if it.sealed != nil {
		return it.sealed, nil
	}
	return it.MarshalDocument()
}

// Seal recomputes the ETag from the document and returns the document
// bytes the store writes.
func (it *Item) Seal() ([]byte, error) {
	b, err := it.MarshalDocument()
	if err != nil {
		return nil, Internal(err)
	}
	it.ETag = etagOf(it.State, b)
	it.sealed = b
	return b, nil
}

func etagOf(state State, doc []byte) string {
	h := sha256.New()
	h.Write([]byte(state))
	h.Write([]byte{0})
	h.Write(doc)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:15])
}

// LoadItem rebuilds an item from its stored document and columns. Stores
// call it when reading.
func LoadItem(collection, id string, state State, etag string, created, updated time.Time, doc []byte) (*Item, error) {
	it := &Item{Collection: collection, ID: id, State: state, ETag: etag, Created: created, Updated: updated}
	if state == StateDeleted || len(doc) == 0 || string(doc) == "null" {
		return it, nil
	}
	if err := it.decode(doc, false); err != nil {
		return nil, Internal(err)
	}
	return it, nil
}

// ParseItem parses and validates an item sent by a client for the given
// collection. It fills the extracted fields; the lifecycle fields (state,
// timestamps) are the service's to set.
// Codes: EINVALID.
func ParseItem(collection string, raw []byte) (*Item, error) {
	it := &Item{Collection: collection}
	if err := it.decode(raw, true); err != nil {
		return nil, err
	}
	return it, nil
}

func (it *Item) decode(raw []byte, strict bool) error {
	var (
		doc Document
		err error
	)
	if strict {
		doc, err = DecodeDocument("", raw)
	} else {
		// A stored document, valid JSON since it was written: split it
		// without validating every byte again.
		doc, err = splitObject(bytes.TrimSpace(raw))
	}
	if err != nil {
		return err
	}
	if t, ok, err := doc.String("", "type"); err != nil {
		return err
	} else if ok && t != "Feature" {
		return Invalid("/type", "an item's type is \"Feature\", not %q", t)
	}
	doc.Set("type", "Feature")
	id, ok, err := doc.String("", "id")
	if err != nil {
		return err
	}
	if !ok {
		return Invalid("/id", "an item needs an id")
	}
	if err := CheckID("/id", id); err != nil {
		return err
	}
	if it.ID != "" && it.ID != id {
		return Invalid("/id", "the id %q does not match the item %q in the path", id, it.ID)
	}
	it.ID = id
	c, ok, err := doc.String("", "collection")
	if err != nil {
		return err
	}
	if ok && c != it.Collection {
		return Invalid("/collection", "the item names collection %q but is sent to collection %q", c, it.Collection)
	}
	doc.Set("collection", it.Collection)
	if err := checkSTACVersion(doc); err != nil {
		return err
	}
	if !doc.Has("geometry") {
		return Invalid("/geometry", "an item needs a geometry (it may be null)")
	}
	if strict || doc.IsNull("bbox") {
		g, err := ParseGeometry("/geometry", doc["geometry"])
		if err != nil {
			return err
		}
		it.Geometry = g
	} else {
		// A stored document with a bbox: the geometry was checked when
		// it was written and is decoded when asked for.
		it.lazyGeometry = !doc.IsNull("geometry")
	}
	if err := it.decodeBBox(doc, strict); err != nil {
		return err
	}
	props, err := doc.Object("", "properties")
	if err != nil {
		return err
	}
	if props == nil {
		return Invalid("/properties", "an item needs a properties object")
	}
	delete(doc, "properties")
	if err := it.decodeTimes(props); err != nil {
		return err
	}
	if strict {
		if err := checkLinks(doc); err != nil {
			return err
		}
		if err := checkAssets(doc); err != nil {
			return err
		}
	}
	it.Doc, it.Props = doc, props
	return nil
}

func checkSTACVersion(doc Document) error {
	v, ok, err := doc.String("", "stac_version")
	if err != nil {
		return err
	}
	if !ok {
		doc.Set("stac_version", DefaultSTACVersion)
		return nil
	}
	if !slices.Contains(stacVersions, v) {
		return Invalid("/stac_version", "STAC version %q is not supported; use one of %v", v, stacVersions)
	}
	if doc.Has("stac_extensions") && !doc.IsNull("stac_extensions") {
		var exts []string
		if err := json.Unmarshal(doc["stac_extensions"], &exts); err != nil {
			return Invalid("/stac_extensions", "must be an array of schema URLs")
		}
	}
	return nil
}

func (it *Item) decodeBBox(doc Document, strict bool) error {
	if doc.IsNull("bbox") {
		if it.Geometry != nil {
			it.BBox = GeometryBBox(it.Geometry)
			doc.Set("bbox", it.BBox)
		} else {
			delete(doc, "bbox")
		}
		return nil
	}
	var b []float64
	if err := json.Unmarshal(doc["bbox"], &b); err != nil {
		return Invalid("/bbox", "must be an array of 4 or 6 numbers")
	}
	if err := ParseBBox("/bbox", b); err != nil {
		return err
	}
	if strict && it.Geometry != nil && !bboxCovers(b, GeometryBBox(it.Geometry)) {
		return Invalid("/bbox", "the bbox %v does not contain the geometry, whose bounds are %v", b, GeometryBBox(it.Geometry))
	}
	it.BBox = b
	return nil
}

func (it *Item) decodeTimes(props Document) error {
	dt, hasDT, err := props.Time("/properties", "datetime")
	if err != nil {
		return err
	}
	// expires is the client's (the expiry policy acts on it); it must be
	// a timestamp the server can compare.
	if _, _, err := props.Time("/properties", PropExpires); err != nil {
		return err
	}
	start, hasStart, err := props.Time("/properties", "start_datetime")
	if err != nil {
		return err
	}
	end, hasEnd, err := props.Time("/properties", "end_datetime")
	if err != nil {
		return err
	}
	if !props.Has("datetime") && !(hasStart && hasEnd) {
		return Invalid("/properties/datetime", "an item needs a datetime, or null with start_datetime and end_datetime")
	}
	if !props.Has("datetime") {
		// STAC requires the member, null with a range: it is written.
		props["datetime"] = json.RawMessage("null")
	}
	if !hasDT && !(hasStart && hasEnd) {
		return Invalid("/properties/start_datetime", "a null datetime needs both start_datetime and end_datetime")
	}
	if hasStart != hasEnd {
		if hasStart {
			return Invalid("/properties/end_datetime", "start_datetime needs an end_datetime")
		}
		return Invalid("/properties/start_datetime", "end_datetime needs a start_datetime")
	}
	if hasStart && start.After(end) {
		return Invalid("/properties/end_datetime", "end_datetime is before start_datetime")
	}
	switch {
	case hasStart:
		it.Start, it.End = start, end
	default:
		it.Start, it.End = dt, dt
	}
	it.Start, it.End = it.Start.Truncate(time.Microsecond), it.End.Truncate(time.Microsecond)
	return nil
}

func checkLinks(doc Document) error {
	if doc.IsNull("links") {
		delete(doc, "links")
		return nil
	}
	links, err := objects(doc["links"])
	if err != nil {
		return Invalid("/links", "must be an array of link objects")
	}
	kept := links[:0]
	for i, l := range links {
		p := "/links/" + itoa(int64(i))
		if _, ok, err := l.String(p, "href"); err != nil || !ok {
			return Invalid(p+"/href", "a link needs an href string")
		}
		rel, ok, err := l.String(p, "rel")
		if err != nil || !ok {
			return Invalid(p+"/rel", "a link needs a rel string")
		}
		if !slices.Contains(serverRels, rel) {
			kept = append(kept, l)
		}
	}
	if len(kept) != len(links) {
		doc.Set("links", kept)
	}
	return nil
}

func checkAssets(doc Document) error {
	if doc.IsNull("assets") {
		delete(doc, "assets")
		return nil
	}
	assets, err := doc.Object("", "assets")
	if err != nil {
		return Invalid("/assets", "must be an object of asset objects")
	}
	for k := range assets {
		p := "/assets/" + k
		if err := CheckID(p, k); err != nil {
			return Invalid(p, "bad asset key: %s", ErrorMessage(err))
		}
		a, err := assets.Object("/assets", k)
		if err != nil || a == nil {
			return Invalid(p, "must be an asset object")
		}
		if _, ok, err := a.String(p, "href"); err != nil || !ok {
			return Invalid(p+"/href", "an asset needs an href string")
		}
	}
	return nil
}

// Links returns the item's own (client) links.
func (it *Item) Links() []Document {
	var links []Document
	if it.Doc != nil && !it.Doc.IsNull("links") {
		_ = json.Unmarshal(it.Doc["links"], &links)
	}
	return links
}

// Assets returns the item's assets.
func (it *Item) Assets() map[string]Document {
	var assets map[string]Document
	if it.Doc != nil && !it.Doc.IsNull("assets") {
		_ = json.Unmarshal(it.Doc["assets"], &assets)
	}
	return assets
}

// addExtension adds a schema URL to stac_extensions once.
func addExtension(doc Document, url string) {
	var exts []string
	if !doc.IsNull("stac_extensions") {
		_ = json.Unmarshal(doc["stac_extensions"], &exts)
	}
	if !slices.Contains(exts, url) {
		doc.Set("stac_extensions", append(exts, url))
	}
}
