package catalog

import (
	"encoding/json"
	"time"
)

// Collection is a STAC collection: its id and the whole document.
type Collection struct {
	ID string
	// Owner is the user who owns the collection (member dt:owner), set
	// by the server; Visibility (member dt:visibility) is private, node
	// or public. Stores keep both as columns too, to filter listings.
	Owner      string
	Visibility string
	// Doc holds every member of the collection as stored (without the
	// links the server adds when it serves it).
	Doc     Document
	ETag    string
	Created time.Time
	Updated time.Time
}

// Seal recomputes the ETag and returns the document bytes to store.
func (c *Collection) Seal() ([]byte, error) {
	b, err := json.Marshal(c.Doc)
	if err != nil {
		return nil, Internal(err)
	}
	c.ETag = etagOf("", b)
	return b, nil
}

// LoadCollection rebuilds a collection from its stored columns.
func LoadCollection(id, etag string, created, updated time.Time, doc []byte) (*Collection, error) {
	d, err := DecodeDocument("", doc)
	if err != nil {
		return nil, Internal(err)
	}
	c := &Collection{ID: id, Doc: d, ETag: etag, Created: created, Updated: updated}
	c.Owner, _, _ = d.String("", PropOwner)
	c.Visibility, _, _ = d.String("", PropVisibility)
	if c.Visibility == "" {
		c.Visibility = VisibilityPrivate
	}
	return c, nil
}

// ParseCollection parses and validates a collection sent by a client.
// pathID, when set, is the id the request path names.
// Codes: EINVALID.
func ParseCollection(pathID string, raw []byte) (*Collection, error) {
	doc, err := DecodeDocument("", raw)
	if err != nil {
		return nil, err
	}
	if t, ok, err := doc.String("", "type"); err != nil {
		return nil, err
	} else if ok && t != "Collection" {
		return nil, Invalid("/type", "a collection's type is \"Collection\", not %q", t)
	}
	doc.Set("type", "Collection")
	id, ok, err := doc.String("", "id")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Invalid("/id", "a collection needs an id")
	}
	if err := CheckID("/id", id); err != nil {
		return nil, err
	}
	if pathID != "" && id != pathID {
		return nil, Invalid("/id", "the id %q does not match the collection %q in the path", id, pathID)
	}
	if err := checkSTACVersion(doc); err != nil {
		return nil, err
	}
	if _, ok, err := doc.String("", "description"); err != nil {
		return nil, err
	} else if !ok {
		return nil, Invalid("/description", "a collection needs a description")
	}
	if _, ok, err := doc.String("", "license"); err != nil {
		return nil, err
	} else if !ok {
		return nil, Invalid("/license", "a collection needs a license (an SPDX id, or \"other\")")
	}
	if err := checkExtent(doc); err != nil {
		return nil, err
	}
	vis := VisibilityPrivate
	if v, ok, err := doc.String("", PropVisibility); err != nil {
		return nil, err
	} else if ok {
		if v != VisibilityPrivate && v != VisibilityNode && v != VisibilityPublic {
			return nil, Invalid("/"+PropVisibility, "visibility is %q, %q or %q, not %q", VisibilityPrivate, VisibilityNode, VisibilityPublic, v)
		}
		vis = v
	}
	doc.Set(PropVisibility, vis)
	if err := checkExpiryPolicy(doc); err != nil {
		return nil, err
	}
	if err := checkLinks(doc); err != nil {
		return nil, err
	}
	if err := checkAssets(doc); err != nil {
		return nil, err
	}
	return &Collection{ID: id, Doc: doc, Visibility: vis}, nil
}

// Collection members the server manages.
const (
	PropOwner      = "dt:owner"
	PropVisibility = "dt:visibility"
)

// Visibilities of a collection.
const (
	VisibilityPrivate = "private" // its owner, editors, viewers and those it is shared with
	VisibilityNode    = "node"    // every signed-in user of this node may read its published items
	VisibilityPublic  = "public"  // anonymous callers too
)

// SetOwner records the collection's owner in its document.
func (c *Collection) SetOwner(user string) {
	c.Owner = user
	if user == "" {
		delete(c.Doc, PropOwner)
		return
	}
	c.Doc.Set(PropOwner, user)
}

func checkExtent(doc Document) error {
	if doc.IsNull("extent") {
		return Invalid("/extent", "a collection needs an extent with spatial.bbox and temporal.interval")
	}
	var ext struct {
		Spatial *struct {
			BBox [][]float64 `json:"bbox"`
		} `json:"spatial"`
		Temporal *struct {
			Interval [][]*string `json:"interval"`
		} `json:"temporal"`
	}
	if err := json.Unmarshal(doc["extent"], &ext); err != nil {
		return Invalid("/extent", "must be {\"spatial\": {\"bbox\": [[...]]}, \"temporal\": {\"interval\": [[start, end]]}}: %s", jsonErrorText(err))
	}
	if ext.Spatial == nil || len(ext.Spatial.BBox) == 0 {
		return Invalid("/extent/spatial/bbox", "needs at least one bbox")
	}
	for i, b := range ext.Spatial.BBox {
		if err := ParseBBox("/extent/spatial/bbox/"+itoa(int64(i)), b); err != nil {
			return err
		}
	}
	if ext.Temporal == nil || len(ext.Temporal.Interval) == 0 {
		return Invalid("/extent/temporal/interval", "needs at least one interval")
	}
	for i, iv := range ext.Temporal.Interval {
		p := "/extent/temporal/interval/" + itoa(int64(i))
		if len(iv) != 2 {
			return Invalid(p, "an interval is [start, end]; either may be null")
		}
		var ts [2]time.Time
		for j, s := range iv {
			if s == nil {
				continue
			}
			t, err := ParseTime(*s)
			if err != nil {
				return Invalid(p+"/"+itoa(int64(j)), "must be an RFC 3339 date-time or null, not %q", *s)
			}
			ts[j] = t
		}
		if iv[0] != nil && iv[1] != nil && ts[0].After(ts[1]) {
			return Invalid(p, "the interval ends before it starts")
		}
	}
	return nil
}
